"""The ``openai`` judge: ``rve-judge-v1`` scored by a VLM behind any OpenAI-compatible chat-completions
server (the OpenAI API, vLLM, SGLang), through the official ``openai`` client.

Configuration: ``base_url`` and ``model`` come from the constructor or from ``REVISE_JUDGE_BASE_URL``
(falling back to ``OPENAI_BASE_URL``, then the OpenAI API) and ``REVISE_JUDGE_MODEL``. The API key
comes only from the environment (``REVISE_JUDGE_API_KEY``, else ``OPENAI_API_KEY``); it is never a
constructor argument, and it is scrubbed from every message, error and cached text this module writes.

Determinism: temperature 0 and a recorded seed. Transient failures (HTTP 429, 5xx, timeouts, connection
errors) are retried at most ``max_retries`` times with exponential backoff and seeded jitter, honouring
``Retry-After`` up to ``retry_after_max`` seconds; the client's own retries are off. At most
``concurrency`` requests are in flight however many threads call :meth:`OpenAIJudge.score`.

Failures: :meth:`OpenAIJudge.score` raises :class:`~revise.errors.JudgeError` with a one-line message
naming the sample (the base-class contract; the runner records it and goes on). :meth:`score_many`
turns each failure into ``JudgeResult(error=...)`` instead. An unparseable answer is a failure, never
guessed; it is logged in the cache's ``failures`` table but not served as a hit, so a rerun retries it.

Caching: with ``cache=`` (a path or a :class:`JudgeCache`) every valid answer is stored under
``(sample id, prediction sha256, model, request hash)``; the request hash fingerprints the prompt text
and every setting that shapes the request (k, image size and format, seed, temperature, reference), so
a rerun with the same settings makes zero calls and a changed setting never reuses a stale verdict.

Example::

    judge = create_judge("openai", base_url="http://localhost:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct",
                         cache="out/judge_cache.sqlite", concurrency=8)
    result = judge.score(JudgeInput(sample, source, edited, None, edited_sha256))
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import JudgeError
from ..provenance import text_hash
from .base import Judge, JudgeInput, JudgeResult, register_judge
from .cache import CacheKey, JudgeCache
from .protocol import (
    DEFAULT_K,
    DEFAULT_MAX_SIDE,
    IMAGE_FORMATS,
    PROTOCOL_VERSION,
    RESPONSE_FORMAT,
    build_prompt,
    openai_messages,
    parse_answer,
    prompt_hash,
)

log = logging.getLogger(__name__)

ENV_BASE_URL = ("REVISE_JUDGE_BASE_URL", "OPENAI_BASE_URL")
ENV_MODEL = "REVISE_JUDGE_MODEL"
ENV_API_KEY = ("REVISE_JUDGE_API_KEY", "OPENAI_API_KEY")
OPENAI_API_URL = "https://api.openai.com/v1"
NO_KEY = "EMPTY"  # what vLLM and SGLang expect when they run without --api-key
_ERROR_CHARS = 240


def _first_env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _host(base_url: str) -> str:
    """``host[:port]`` of a URL, without scheme, credentials, path or query."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


@register_judge("openai")
class OpenAIJudge(Judge):
    """``rve-judge-v1`` through an OpenAI-compatible chat-completions server (see the module docstring).

    Args:
        model: the served model name (else ``REVISE_JUDGE_MODEL``); required.
        base_url: server root incl. ``/v1`` (else ``REVISE_JUDGE_BASE_URL``, ``OPENAI_BASE_URL``, OpenAI).
        cache: SQLite file (or an open :class:`JudgeCache`) for answers; None disables caching.
        k: frames sampled uniformly from each of source and edited video.
        max_side: longest image side sent, in pixels; ``image_format``: ``"jpeg"`` or ``"png"``.
        seed: sent to the server and used for retry jitter. ``temperature``: 0 unless you must.
        timeout: seconds per request. ``max_retries``: retries after the first attempt (bounded).
        backoff_base, backoff_max: exponential backoff in seconds (base * 2**retry, jittered, capped).
        retry_after_max: cap on an honoured ``Retry-After``. ``concurrency``: requests in flight.
        max_completion_tokens: answer budget; ``structured``: send :data:`RESPONSE_FORMAT` (turn off for
        servers without structured outputs; the prompt still asks for the same JSON).
        with_reference: show the sample's text ``reference_answer`` to the judge when it has one.
    """

    name = "openai"

    def __init__(self, *, model: str | None = None, base_url: str | None = None,
                 cache: str | Path | JudgeCache | None = None, k: int = DEFAULT_K, max_side: int = DEFAULT_MAX_SIDE,
                 image_format: str = "jpeg", seed: int = 0, temperature: float = 0.0, timeout: float = 120.0,
                 max_retries: int = 4, backoff_base: float = 1.0, backoff_max: float = 30.0,
                 retry_after_max: float = 60.0, concurrency: int = 8, max_completion_tokens: int | None = 1024,
                 structured: bool = True, with_reference: bool = True):
        self.model = model or os.environ.get(ENV_MODEL, "").strip()
        if not self.model:
            raise JudgeError(f"openai judge: no model given; pass model= or set {ENV_MODEL}")
        self.base_url = (base_url or _first_env(ENV_BASE_URL) or OPENAI_API_URL).rstrip("/")
        if urlsplit(self.base_url).scheme not in ("http", "https") or not _host(self.base_url):
            raise JudgeError("openai judge: the base URL must look like http(s)://host[:port]/v1")
        if k < 1 or max_side < 16 or image_format not in IMAGE_FORMATS:
            raise JudgeError(f"openai judge: need k >= 1, max_side >= 16 and image_format in {IMAGE_FORMATS}")
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise JudgeError("openai judge: need concurrency >= 1, max_retries >= 0 and timeout > 0")
        self._api_key = _first_env(ENV_API_KEY)
        if self._api_key is None and _host(self.base_url) == "api.openai.com":
            raise JudgeError(f"openai judge: no API key for {_host(self.base_url)}; set {' or '.join(ENV_API_KEY)}")
        self.k, self.max_side, self.image_format = k, max_side, image_format
        self.seed, self.temperature, self.timeout = seed, temperature, timeout
        self.max_retries, self.backoff_base, self.backoff_max = max_retries, backoff_base, backoff_max
        self.retry_after_max, self.concurrency = retry_after_max, concurrency
        self.max_completion_tokens = max_completion_tokens
        self.structured, self.with_reference = structured, with_reference
        self.prompt_hash = prompt_hash()
        self.request_hash = text_hash(json.dumps({
            "protocol": PROTOCOL_VERSION, "prompt_hash": self.prompt_hash, "k": k, "max_side": max_side,
            "image_format": image_format, "seed": seed, "temperature": temperature, "structured": structured,
            "with_reference": with_reference, "max_completion_tokens": max_completion_tokens,
        }, sort_keys=True))
        self._owns_cache = not isinstance(cache, JudgeCache)
        self.cache = cache if isinstance(cache, JudgeCache) else (JudgeCache(cache) if cache is not None else None)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._client = self._make_client()

    def _make_client(self):
        import openai

        return openai.OpenAI(api_key=self._api_key or NO_KEY, base_url=self.base_url, timeout=self.timeout,
                             max_retries=0)

    def info(self) -> dict:
        return {
            "judge": self.name, "protocol": PROTOCOL_VERSION, "prompt_hash": self.prompt_hash,
            "request_hash": self.request_hash, "model": self.model, "base_url_host": _host(self.base_url),
            "temperature": self.temperature, "seed": self.seed, "k": self.k, "max_side": self.max_side,
            "image_format": self.image_format, "structured": self.structured,
            "with_reference": self.with_reference,
            "runtime": {"max_retries": self.max_retries, "timeout_s": self.timeout, "concurrency": self.concurrency,
                        "cache": self.cache is not None},
        }

    def cache_key(self, item: JudgeInput) -> CacheKey:
        return CacheKey(item.sample.id, item.edited_sha256, self.model, self.request_hash)

    def score(self, item: JudgeInput) -> JudgeResult:
        """Score one sample (thread-safe): a cache hit, or one bounded, retried request.

        Raises JudgeError (one line, naming the sample) when the server keeps failing or the answer is
        not a valid ``rve-judge-v1`` object.
        """
        key = self.cache_key(item)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:  # re-parsed, so only an answer valid under today's parser is ever served
                try:
                    return parse_answer(hit.raw).to_result(self.name)
                except JudgeError:
                    pass
        messages = openai_messages(build_prompt(item, self.k, with_reference=self.with_reference),
                                   self.max_side, self.image_format)
        raw = self._scrub(self._request(item.sample.id, messages))
        try:
            verdict = parse_answer(raw)
        except JudgeError as exc:
            error = self._one_line(f"openai judge: sample {item.sample.id}: {exc}")
            if self.cache is not None:
                self.cache.record_failure(key, raw, error)
            raise JudgeError(error) from None
        if self.cache is not None:
            self.cache.put(key, raw, verdict.to_dict())
        return verdict.to_result(self.name)

    def score_many(self, items: list[JudgeInput]) -> list[JudgeResult]:
        """Score many samples, at most ``concurrency`` requests in flight; a failure becomes
        ``JudgeResult(error=...)``. Twice as many threads as slots, so the next prompts are encoded while
        requests are in flight."""

        def one(item: JudgeInput) -> JudgeResult:
            try:
                return self.score(item)
            except JudgeError as exc:
                return JudgeResult(judge=self.name, error=str(exc))

        with ThreadPoolExecutor(max_workers=2 * self.concurrency, thread_name_prefix="openai-judge") as pool:
            return list(pool.map(one, items))

    def close(self) -> None:
        self._client.close()
        if self.cache is not None and self._owns_cache:
            self.cache.close()

    def _request(self, sample_id: str, messages: list[dict]) -> str:
        """The answer text of one chat completion, after at most ``max_retries`` retries."""
        import openai
        from openai.types.chat import ChatCompletion

        body: dict = {"model": self.model, "messages": messages, "temperature": self.temperature, "seed": self.seed}
        if self.max_completion_tokens is not None:
            body["max_completion_tokens"] = self.max_completion_tokens
        if self.structured:
            body["response_format"] = RESPONSE_FORMAT
        prefix = f"openai judge: sample {sample_id}:"
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                with self._slots:
                    # The client's generic POST sends the same request as chat.completions.create without
                    # the SDK's typed walk over every message part (~15 ms of CPU per request with 16
                    # images, under the GIL), which otherwise caps throughput on small machines.
                    response = self._client.post("/chat/completions", body=body, cast_to=ChatCompletion)
            except (openai.APIConnectionError, openai.APIStatusError) as exc:  # timeouts are connection errors
                reason = self._one_line(self._describe(exc))
                status = getattr(exc, "status_code", None)
                if status is not None and status != 429 and status < 500:
                    raise JudgeError(f"{prefix} {reason} (not retried)") from None
                if attempt + 1 == attempts:
                    raise JudgeError(f"{prefix} gave up after {attempts} attempt(s): {reason}") from None
                delay = self._delay(attempt, getattr(exc, "response", None))
                log.warning("%s %s; retry %d/%d in %.2fs", prefix, reason, attempt + 1, self.max_retries, delay)
                time.sleep(delay)
                continue
            except (openai.OpenAIError, ValueError) as exc:  # a reply that is not a chat completion
                raise JudgeError(self._one_line(f"{prefix} bad reply from the server: {self._describe(exc)}")) from None
            choices = response.choices if isinstance(response, ChatCompletion) else None
            if not choices:
                raise JudgeError(f"{prefix} bad reply from the server: not a chat completion with choices")
            content = getattr(getattr(choices[0], "message", None), "content", None)
            return content if isinstance(content, str) else ""
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _delay(self, attempt: int, response) -> float:
        """Seconds to wait before retry ``attempt + 1``: ``Retry-After`` (capped) or jittered backoff."""
        retry_after = _retry_after(response.headers) if response is not None else None
        if retry_after is not None:
            return min(retry_after, self.retry_after_max)
        with self._rng_lock:
            jitter = 0.5 + 0.5 * self._rng.random()
        return min(self.backoff_max, self.backoff_base * 2 ** attempt) * jitter

    def _describe(self, exc: Exception) -> str:
        status = getattr(exc, "status_code", None)
        if status is not None:
            message = getattr(exc, "message", "") or str(exc)
            return f"HTTP {status} ({type(exc).__name__}): {message}"
        return f"{type(exc).__name__}: {exc}"

    def _scrub(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text

    def _one_line(self, text: str) -> str:
        flat = " ".join(self._scrub(text).split())
        return flat if len(flat) <= _ERROR_CHARS else flat[:_ERROR_CHARS - 3] + "..."


def _retry_after(headers) -> float | None:
    """Seconds asked for by ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), if any."""
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None
