"""A real OpenAI-compatible chat-completions server on 127.0.0.1, scriptable, for judge tests and benchmarks.

It speaks enough of ``POST /v1/chat/completions`` for the official ``openai`` client. Each call takes the
next scripted :class:`Behaviour` (then ``default``): a valid answer, an HTTP error (500, 429 with
``Retry-After``), a reply slower than the client's timeout, garbage text, half a JSON object or a body
that is not a chat completion at all; a fixed ``latency`` applies to every call. Every request is
recorded (path, headers with lower-case names, parsed JSON body, arrival time) and the peak number of
requests in flight is tracked, so tests can check what was sent, in which order, and what overlapped.

    with JudgeServer(latency=0.1) as server:
        server.script(Behaviour.error(500), Behaviour.answer(5, 4, 5))
        judge = create_judge("openai", base_url=server.base_url, model="test-judge")
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Behaviour:
    """What the server does for one call. Build with the class methods."""

    kind: str  # "content" | "error" | "sleep" | "raw"
    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    sleep: float = 0.0
    echo_auth: bool = False  # append the received Authorization header to the reply (a leaky proxy)

    @classmethod
    def answer(cls, reasoning: int = 5, consistency: int = 4, quality: int = 5,
               rationale: str = "looks right") -> "Behaviour":
        """A valid ``rve-judge-v1`` answer."""
        body = {"reasoning": reasoning, "consistency": consistency, "quality": quality, "rationale": rationale}
        return cls("content", content=json.dumps(body))

    @classmethod
    def content(cls, text: str) -> "Behaviour":
        """A 200 response whose message content is ``text`` verbatim."""
        return cls("content", content=text)

    @classmethod
    def garbage(cls) -> "Behaviour":
        return cls.content("The edit looks mostly fine, I would say 4 out of 5 overall.")

    @classmethod
    def half_json(cls) -> "Behaviour":
        return cls.content('{"reasoning": 4, "consistency": 5, "qual')

    @classmethod
    def error(cls, status: int = 500, retry_after: float | str | None = None, echo_auth: bool = False) -> "Behaviour":
        """An HTTP error with an OpenAI-style error body (and ``Retry-After`` when given)."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls("error", status=status, headers=headers, echo_auth=echo_auth)

    @classmethod
    def raw_body(cls, text: str, status: int = 200) -> "Behaviour":
        """Send ``text`` as the whole HTTP body (e.g. a proxy's HTML page instead of a completion)."""
        return cls("raw", content=text, status=status)

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = 1) -> "Behaviour":
        return cls.error(429, retry_after=retry_after)

    @classmethod
    def slow(cls, seconds: float) -> "Behaviour":
        """Sleep ``seconds`` before answering validly (set it past the client's timeout)."""
        return cls("sleep", sleep=seconds, content=Behaviour.answer().content)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict
    raw: bytes
    arrived: float


class JudgeServer:
    """A loopback chat-completions server in a background thread (use as a context manager)."""

    def __init__(self, *, latency: float = 0.0, default: Behaviour | None = None, host: str = "127.0.0.1"):
        self.latency = latency
        self.default = default or Behaviour.answer()
        self.requests: list[RecordedRequest] = []
        self.max_in_flight = 0
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._httpd = ThreadingHTTPServer((host, 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next calls, in order; afterwards ``default`` applies."""
        with self._lock:
            self._queue.extend(behaviours)

    def reset(self) -> None:
        """Forget recorded requests, queued behaviours and the in-flight peak."""
        with self._lock:
            self.requests.clear()
            self._queue.clear()
            self.max_in_flight = 0

    def start(self) -> "JudgeServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="judge-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "JudgeServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next(self, request: RecordedRequest) -> Behaviour:
        with self._lock:
            self.requests.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return self._queue.popleft() if self._queue else self.default

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes; no 40 ms ACK stalls

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                request = RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body, raw,
                                          time.monotonic())
                behaviour = server._next(request)
                try:
                    if self.path.rstrip("/") != "/v1/chat/completions":
                        self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                        return
                    time.sleep(server.latency + behaviour.sleep)
                    echo = f" (you sent {self.headers.get('Authorization')})" if behaviour.echo_auth else ""
                    if behaviour.kind == "raw":
                        self._send_bytes(behaviour.status, behaviour.content.encode())
                    elif behaviour.kind == "error":
                        self._send(behaviour.status, {"error": {"message": f"scripted {behaviour.status}{echo}",
                                                                "type": "server_error", "code": None}},
                                   behaviour.headers)
                    else:
                        self._send(200, _completion(body.get("model", "test-judge"), behaviour.content + echo))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to answer
                finally:
                    server._done()

            def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                self._send_bytes(status, json.dumps(payload).encode(), headers)

            def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _completion(model: str, content: str) -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
        "system_fingerprint": "fp_test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
