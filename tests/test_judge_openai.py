"""The ``openai`` judge against a real loopback chat-completions server, through the real openai client."""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from judge_server import Behaviour, JudgeServer
from PIL import Image

from revise.data import Sample
from revise.errors import JudgeError
from revise.judges import JudgeInput, JudgeResult, available, create_judge
from revise.judges.cache import JudgeCache
from revise.judges.openai_judge import OpenAIJudge
from revise.judges.protocol import PROTOCOL_VERSION, RESPONSE_FORMAT, prompt_hash
from revise.video import Video

KEY = "sk-test-7f3a9c1e-unique-judge-key"
FAST = {"backoff_base": 0.001, "backoff_max": 0.01, "retry_after_max": 0.5, "timeout": 2.0, "max_retries": 3}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("REVISE_JUDGE_BASE_URL", "REVISE_JUDGE_MODEL", "REVISE_JUDGE_API_KEY", "OPENAI_API_KEY",
                 "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REVISE_JUDGE_API_KEY", KEY)


@pytest.fixture
def server():
    with JudgeServer() as srv:
        yield srv


@pytest.fixture
def make_judge(server):
    judges = []

    def make(**kw) -> OpenAIJudge:
        judge = create_judge("openai", **{"base_url": server.base_url, "model": "test-judge", **FAST, **kw})
        judges.append(judge)
        return judge

    yield make
    for judge in judges:
        judge.close()


def make_item(n: int = 0, subset: str = "rave") -> JudgeInput:
    """A 16-frame 64x64 clip whose frame i is grey level 10*i (order survives JPEG)."""
    values = 10 * np.arange(16)
    frames = np.ascontiguousarray(np.broadcast_to(values[:, None, None, None], (16, 64, 64, 3)).astype(np.uint8))
    sample = Sample(id=f"{subset}-causal-test-s0-{n:04d}", subset=subset, dimension="causal",
                    instruction="What if the ramp were twice as steep?", source=Path("/data/src.mp4"))
    return JudgeInput(sample, Video(frames, 8.0), Video(frames.copy(), 8.0), None, f"{n:064x}")


def user_parts(request) -> list[dict]:
    messages = request.body["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    return messages[1]["content"]


# --- success and what is sent ----------------------------------------------------------------------


def test_registered_and_info_has_provenance_but_no_key(make_judge, server):
    assert "openai" in available()
    judge = make_judge(seed=7, k=6, max_side=128)
    info = judge.info()
    assert info["judge"] == "openai" and info["protocol"] == PROTOCOL_VERSION == "rve-judge-v1"
    assert info["prompt_hash"] == prompt_hash() and info["model"] == "test-judge"
    assert info["base_url_host"] == server.base_url.split("//")[1].split("/")[0]
    assert (info["temperature"], info["seed"], info["k"], info["max_side"]) == (0.0, 7, 6, 128)
    assert KEY not in json.dumps(info)


def test_success_sends_key_only_in_header_and_frames_in_order(make_judge, server):
    server.script(Behaviour.answer(5, 4, 3, "steeper ramp, faster roll"))
    result = make_judge(seed=11).score(make_item())
    assert (result.reasoning, result.consistency, result.quality) == (5.0, 4.0, 3.0)
    assert result.error is None and result.rationale == "steeper ramp, faster roll"
    assert server.calls == 1
    request = server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in request.raw.decode() and KEY not in request.path
    assert sum(KEY in v for v in request.headers.values()) == 1
    body = request.body
    assert body["model"] == "test-judge" and body["temperature"] == 0 and body["seed"] == 11
    assert body["response_format"] == RESPONSE_FORMAT
    parts = user_parts(request)
    labels = [p["text"] for p in parts if p["type"] == "text" and " frame " in p["text"]]
    assert labels == [f"{role} frame {i}/8 at t={t:.2f}s" for role in ("source", "edited")
                      for i, t in zip(range(1, 9), [0, 0.25, 0.5, 0.75, 1.125, 1.375, 1.625, 1.875])]
    greys = []
    for part in parts:
        if part["type"] == "image_url":
            head, data = part["image_url"]["url"].split(",", 1)
            assert head == "data:image/jpeg;base64"
            greys.append(float(np.asarray(Image.open(io.BytesIO(base64.b64decode(data)))).mean()))
    assert len(greys) == 16
    expected = [10 * i for i in (0, 2, 4, 6, 9, 11, 13, 15)] * 2
    assert np.allclose(greys, expected, atol=2)


# --- retries -----------------------------------------------------------------------------------------


def test_500_then_success_is_retried(make_judge, server):
    server.script(Behaviour.error(500), Behaviour.answer())
    assert make_judge().score(make_item()).reasoning == 5.0
    assert server.calls == 2


def test_429_then_success_honours_retry_after(make_judge, server):
    server.script(Behaviour.rate_limited(retry_after=0.3), Behaviour.answer())
    start = time.monotonic()
    assert make_judge().score(make_item()).quality == 5.0
    assert time.monotonic() - start >= 0.3
    assert server.calls == 2
    gap = server.requests[1].arrived - server.requests[0].arrived
    assert gap >= 0.3


def test_retry_after_is_capped(make_judge, server):
    server.script(Behaviour.rate_limited(retry_after=120), Behaviour.answer())
    start = time.monotonic()
    make_judge(retry_after_max=0.05).score(make_item())
    assert time.monotonic() - start < 2.0 and server.calls == 2


def test_timeout_then_success(make_judge, server):
    server.script(Behaviour.slow(1.5), Behaviour.answer(4, 4, 4))
    start = time.monotonic()
    result = make_judge(timeout=0.3).score(make_item())
    assert result.overall == 4.0
    assert server.calls == 2 and time.monotonic() - start < 1.5


def test_retries_exhausted_fail_with_one_clear_line(make_judge, server, tmp_path):
    server.script(*[Behaviour.error(503)] * 3)
    judge = make_judge(max_retries=2, cache=tmp_path / "cache.sqlite")
    with pytest.raises(JudgeError) as info:
        judge.score(make_item())
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("openai judge: sample rave-causal-test-s0-0000: gave up after 3 attempt(s): HTTP 503")
    assert server.calls == 3
    assert len(judge.cache) == 0


def test_score_many_records_failures_as_results_in_order(make_judge, server):
    server.default = Behaviour.error(500)
    results = make_judge(max_retries=1, concurrency=1).score_many([make_item(0), make_item(1)])
    assert server.calls == 4 and server.max_in_flight == 1
    for n, result in enumerate(results):
        assert result.error.startswith(f"openai judge: sample rave-causal-test-s0-{n:04d}: gave up after 2 attempt(s)")
        assert result.overall is None and not result.passed


@pytest.mark.parametrize("body", ["<html>bad gateway</html>", '{"object": "error"}', '{"choices": []}'])
def test_a_reply_that_is_not_a_completion_fails_clearly(make_judge, server, body):
    server.script(Behaviour.raw_body(body))
    with pytest.raises(JudgeError, match="bad reply from the server") as info:
        make_judge().score(make_item())
    assert "\n" not in str(info.value) and server.calls == 1


def test_client_errors_are_not_retried(make_judge, server):
    server.script(Behaviour.error(400))
    with pytest.raises(JudgeError, match=r"HTTP 400 .*\(not retried\)"):
        make_judge().score(make_item())
    assert server.calls == 1


def test_connection_refused_is_retried_then_fails(make_judge):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = make_judge(base_url=f"http://127.0.0.1:{port}/v1", max_retries=2)
    with pytest.raises(JudgeError, match=r"gave up after 3 attempt\(s\): APIConnectionError"):
        judge.score(make_item())


def test_backoff_is_exponential_capped_and_seeded(make_judge):
    a, b = make_judge(seed=3, backoff_base=1.0, backoff_max=8.0), make_judge(seed=3, backoff_base=1.0, backoff_max=8.0)
    delays = [a._delay(n, None) for n in range(6)]
    assert delays == [b._delay(n, None) for n in range(6)]
    for n, d in enumerate(delays):
        ceiling = min(8.0, 2.0 ** n)
        assert ceiling / 2 <= d <= ceiling


# --- unparseable answers -----------------------------------------------------------------------------


@pytest.mark.parametrize("behaviour", [Behaviour.garbage(), Behaviour.half_json(), Behaviour.answer(reasoning=7)],
                         ids=["garbage", "half-json", "out-of-range"])
def test_unparseable_answer_is_a_failure_not_a_guess_and_is_retried_on_rerun(make_judge, server, tmp_path, behaviour):
    cache_path = tmp_path / "cache.sqlite"
    server.script(behaviour)
    judge = make_judge(cache=cache_path)
    with pytest.raises(JudgeError, match="unparseable answer") as info:
        judge.score(make_item())
    assert "\n" not in str(info.value) and "rave-causal-test-s0-0000" in str(info.value)
    assert server.calls == 1  # a bad answer is not retried within the call
    assert len(judge.cache) == 0
    assert judge.cache.failures()[0]["raw"] == behaviour.content
    rerun = make_judge(cache=cache_path)
    assert rerun.score(make_item()).reasoning == 5.0
    assert server.calls == 2


# --- cache ---------------------------------------------------------------------------------------------


def test_rerun_with_same_cache_makes_zero_calls(make_judge, server, tmp_path):
    cache_path = tmp_path / "judge_cache.sqlite"
    items = [make_item(n) for n in range(4)]
    first = make_judge(cache=cache_path).score_many(items)
    assert server.calls == 4
    server.default = Behaviour.error(500)  # any call now would fail
    second = make_judge(cache=cache_path).score_many(items)
    assert server.calls == 4
    assert [r.to_dict() for r in first] == [r.to_dict() for r in second]


def test_cache_key_covers_prediction_model_and_settings(make_judge, server, tmp_path):
    cache_path = tmp_path / "judge_cache.sqlite"
    make_judge(cache=cache_path).score(make_item())
    make_judge(cache=cache_path).score(make_item())
    assert server.calls == 1
    changed = make_item()
    changed.edited_sha256 = "f" * 64
    make_judge(cache=cache_path).score(changed)
    make_judge(cache=cache_path, model="other-judge").score(make_item())
    make_judge(cache=cache_path, k=4).score(make_item())
    make_judge(cache=cache_path, seed=1).score(make_item())
    assert server.calls == 5


def test_shared_cache_object_is_thread_safe(tmp_path):
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        from revise.judges.cache import CacheKey

        def put(n):
            key = CacheKey(f"s{n}", "p", "m", "h")
            cache.put(key, "{}", {"n": n})
            return cache.get(key).parsed["n"]

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(put, range(200))) == list(range(200))
        assert len(cache) == 200


# --- the key never leaks -----------------------------------------------------------------------------------


def test_api_key_never_in_cache_info_results_errors_or_logs(make_judge, server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    cache_path = tmp_path / "judge_cache.sqlite"
    judge = make_judge(cache=cache_path, max_retries=1)
    texts = [json.dumps(judge.info())]
    server.script(Behaviour.error(500, echo_auth=True), Behaviour("content", content=Behaviour.answer().content[:-2],
                                                                  echo_auth=True))
    with pytest.raises(JudgeError) as failed:  # half an answer with the key echoed after it
        judge.score(make_item(0))
    texts.append(str(failed.value))
    server.script(*[Behaviour.error(500, echo_auth=True)] * 2)
    with pytest.raises(JudgeError) as exhausted:
        judge.score(make_item(1))
    texts.append(str(exhausted.value))
    assert "Bearer ***" in texts[-1]  # the echoed header was scrubbed, not dropped silently
    server.script(Behaviour("content", content='{"reasoning": 5, "consistency": 5, "quality": 5, "rationale": "ok"}',
                            echo_auth=False))
    texts.append(json.dumps(judge.score(make_item(2)).to_dict()))
    texts += [json.dumps(r.to_dict()) for r in judge.score_many([make_item(2), make_item(3)])]
    judge.close()
    texts.append(caplog.text)
    for text in texts:
        assert KEY not in text
    for path in tmp_path.iterdir():  # the database and its WAL / shared-memory files
        assert KEY.encode() not in path.read_bytes()
    assert all(KEY in r.headers["authorization"] for r in server.requests)


def test_key_comes_only_from_environment(monkeypatch, server):
    with pytest.raises(TypeError):
        OpenAIJudge(model="m", base_url=server.base_url, api_key="sk-nope")
    monkeypatch.delenv("REVISE_JUDGE_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback-key")
    judge = OpenAIJudge(model="m", base_url=server.base_url)
    judge.score(make_item())
    judge.close()
    assert server.requests[0].headers["authorization"] == "Bearer sk-fallback-key"


def test_configuration_from_environment(monkeypatch, server):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("REVISE_JUDGE_MODEL", "env-model")
    judge = OpenAIJudge()
    assert judge.info()["model"] == "env-model"
    judge.score(make_item())
    judge.close()
    assert server.requests[0].body["model"] == "env-model"
    monkeypatch.setenv("REVISE_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    assert OpenAIJudge().info()["base_url_host"] == "127.0.0.1:9"


def test_missing_model_or_key_for_openai_is_a_clear_error(monkeypatch):
    with pytest.raises(JudgeError, match="REVISE_JUDGE_MODEL"):
        OpenAIJudge(base_url="http://127.0.0.1:9/v1")
    monkeypatch.delenv("REVISE_JUDGE_API_KEY")
    with pytest.raises(JudgeError, match="no API key for api.openai.com"):
        OpenAIJudge(model="gpt-4o")


# --- concurrency -----------------------------------------------------------------------------------------


def test_concurrency_really_overlaps(make_judge, server):
    server.latency = 0.1
    judge = make_judge(concurrency=8)
    judge.score(make_item(99))  # warm the client (imports, first connection)
    start = time.monotonic()
    results = judge.score_many([make_item(n) for n in range(8)])
    elapsed = time.monotonic() - start
    assert all(r.error is None for r in results)
    assert elapsed < 0.45, f"8 x 100 ms requests took {elapsed:.2f}s at concurrency 8"
    assert server.max_in_flight >= 4


def test_concurrency_bounds_requests_in_flight_across_caller_threads(make_judge, server):
    server.latency = 0.05
    judge = make_judge(concurrency=2)
    with ThreadPoolExecutor(8) as pool:  # the runner calls score() from its own, larger pool
        results = list(pool.map(judge.score, [make_item(n) for n in range(8)]))
    assert all(isinstance(r, JudgeResult) and r.error is None for r in results)
    assert server.max_in_flight == 2
    assert threading.active_count() < 50
