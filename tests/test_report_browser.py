"""The HTML report in real headless Chromium (Debian ``chromium``; ``make browser`` installs it).

Chromium is driven over the Chrome DevTools Protocol with a tiny stdlib WebSocket client, so the test needs
no extra Python package. Checks: the page renders (non-blank screenshot), every <video> decodes (H.264)
and plays, the console stays clean, no injected element runs, and the filters hide the other cards.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from revise.bench.report import write_report
from test_report import XSS_ATTR, XSS_SCRIPT, build_run

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

STARTUP_S = 30
COMMAND_S = 20


class WebSocket:
    """The client half of RFC 6455, just enough for CDP: masked text frames out, (fragmented) frames in."""

    def __init__(self, url: str, timeout: float):
        assert url.startswith("ws://"), url
        hostport, _, path = url[len("ws://"):].partition("/")
        host, _, port = hostport.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv_some()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"websocket upgrade refused: {head[:200]!r}")

    def _recv_some(self) -> bytes:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the browser closed the DevTools connection")
        return chunk

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self._recv_some()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode("utf-8"))

    def recv(self, deadline: float) -> str:
        message = b""
        while True:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            first, second = self._read(2)
            opcode, n = first & 0x0F, second & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if second & 0x80 else b""
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError("the browser closed the DevTools connection")
            elif opcode in (0x0, 0x1, 0x2):
                message += payload
                if first & 0x80:
                    return message.decode("utf-8")

    def close(self) -> None:
        self.sock.close()


class CDP:
    """Commands (with bounded waits) on one page session; every event is kept in ``events``."""

    def __init__(self, ws: WebSocket):
        self.ws, self.next_id, self.events, self.session = ws, 0, [], None

    def call(self, method: str, timeout: float = COMMAND_S, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"CDP {method}: no answer within {timeout} s")
            reply = json.loads(self.ws.recv(deadline))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"CDP {method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, timeout: float = COMMAND_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event["method"] == method:
                    self.events.remove(event)
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(f"CDP: no {method} event within {timeout} s")
            self.events.append(json.loads(self.ws.recv(deadline)))

    def evaluate(self, expression: str, timeout: float = COMMAND_S):
        result = self.call("Runtime.evaluate", timeout=timeout, expression=expression, awaitPromise=True,
                           returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {json.dumps(result['exceptionDetails'])[:800]}")
        return result["result"].get("value")

    def console_errors(self) -> list[str]:
        """Uncaught exceptions, console.error/assert calls, and browser log entries at level error."""
        errors = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(json.dumps(params.get("exceptionDetails"))[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                errors.append(f"{params['entry'].get('source')}: {params['entry'].get('text')}")
        return errors


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian chromium is not installed: run `make browser` "
                    "(apt-get install -y chromium); `make test` does this first", pytrace=False)
    return path


class Browser:
    """Headless Chromium in its own process group with a throwaway profile; killed on exit, whatever happens."""

    def __init__(self, profile: Path):
        self.profile = profile
        profile.mkdir(parents=True, exist_ok=True)
        self.log = profile / "chromium.log"  # a file, not a pipe: an unread pipe can fill and stall chromium
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [_chromium(), "--headless=new", "--remote-debugging-port=0", "--no-sandbox", "--disable-gpu",
                 "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-extensions", "--mute-audio", "--window-size=1280,1000",
                 f"--user-data-dir={profile}", "about:blank"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def __enter__(self) -> CDP:
        try:
            return self._connect()
        except BaseException:
            self.__exit__()
            raise

    def _connect(self) -> CDP:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + STARTUP_S
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"chromium exited with {self.proc.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"chromium did not open its DevTools port within {STARTUP_S} s")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        self.cdp = CDP(WebSocket(f"ws://127.0.0.1:{port}{path}", timeout=COMMAND_S))
        target = self.cdp.call("Target.createTarget", url="about:blank")["targetId"]
        self.cdp.session = self.cdp.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.cdp.call(f"{domain}.enable")
        self.cdp.call("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)
        return self.cdp

    def __exit__(self, *exc) -> None:
        if hasattr(self, "cdp"):
            self.cdp.ws.close()
        try:  # the whole group this test started: the browser and its renderer/GPU/zygote children
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


def _open(cdp: CDP, page: Path) -> None:
    cdp.events.clear()
    cdp.call("Page.navigate", url=page.as_uri())
    cdp.wait_event("Page.loadEventFired")


# Wait (bounded) until every video has decoded a frame, then play each and see its clock move.
VIDEOS_PLAY = """(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const videos = [...document.querySelectorAll("video")];
  const t0 = performance.now();
  while (performance.now() - t0 < 10000 && !videos.every((v) => v.readyState >= 2 || v.error)) await sleep(50);
  // Chromium defers muted autoplay of off-screen videos (power saving): bring the first card into view.
  document.querySelector(".card").scrollIntoView();
  const first = videos[0];
  while (performance.now() - t0 < 12000 && first.paused) await sleep(50);
  const autoplayed = !first.paused;
  const out = [];
  for (const v of videos) {
    const row = {label: v.getAttribute("aria-label"), ready: v.readyState, error: v.error && v.error.code,
                 width: v.videoWidth, advanced: false};
    v.pause();
    const start = v.currentTime;
    try { await v.play(); } catch (e) { row.error = String(e); }
    const t1 = performance.now();
    while (performance.now() - t1 < 4000 && v.currentTime === start) await sleep(25);
    row.advanced = v.currentTime !== start;
    out.push(row);
  }
  window.scrollTo(0, 0);
  return {autoplayed, videos: out};
})()"""

FILTER = """(async () => {
  const pick = (id, value) => { const s = document.getElementById(id); s.value = value;
                                s.dispatchEvent(new Event("change")); };
  const visible = () => [...document.querySelectorAll(".card")].filter((c) => c.offsetParent !== null)
                        .map((c) => [c.dataset.subset, c.dataset.dimension, c.dataset.status]);
  const all = visible();
  pick("f-dimension", "causal");
  const causal = visible();
  const count = document.getElementById("f-count").textContent;
  pick("f-dimension", ""); pick("f-status", "failed");
  const failed = visible();
  document.getElementById("f-reset").click();
  return {all, causal, count, failed, reset: visible().length};
})()"""

XSS = """(() => ({
  imgs: document.querySelectorAll("img").length,
  scripts: document.querySelectorAll("script").length,
  hijacked: typeof window.__xss !== "undefined",
  text: document.body.innerText,
}))()"""


def _assert_renders(cdp: CDP, png_path: Path) -> None:
    height = cdp.evaluate("document.documentElement.scrollHeight")
    clip = {"x": 0, "y": 0, "width": 1280, "height": min(4000, int(height)), "scale": 1}
    shot = cdp.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
    png_path.write_bytes(base64.b64decode(shot["data"]))
    image = Image.open(io.BytesIO(png_path.read_bytes())).convert("RGB")
    assert image.width == 1280 and image.height > 600
    spread = ImageStat.Stat(image).stddev
    assert max(spread) > 20, f"screenshot {png_path} looks blank (stddev {spread})"
    assert len(image.getcolors(1 << 20) or range(1 << 20)) > 50, f"screenshot {png_path} has almost no colours"


def test_report_in_headless_chromium(tmp_path):
    out = build_run(tmp_path)
    embedded = write_report(out)
    linked = out / "linked.html"
    shutil.copyfile(write_report(out, embed_videos=False), linked)  # same folder, so its relative links work
    write_report(out)

    with Browser(tmp_path / "profile") as cdp:
        codec = cdp.evaluate('document.createElement("video").canPlayType(\'video/mp4; codecs="avc1.42E01E"\')')
        assert codec == "probably", f"this chromium cannot play H.264 mp4 (canPlayType -> {codec!r})"

        for page, name in ((linked, "linked"), (embedded, "embedded")):
            _open(cdp, page)
            played = cdp.evaluate(VIDEOS_PLAY, timeout=30)
            assert played["autoplayed"], f"{name}: the first video did not autoplay once in view"
            assert len(played["videos"]) == 9
            for video in played["videos"]:
                assert video["ready"] >= 2 and not video["error"] and video["width"] == 64, (name, video)
                assert video["advanced"], (name, video)
            assert not cdp.console_errors(), (name, cdp.console_errors())
            assert not [e for e in cdp.events if e["method"] == "Page.javascriptDialogOpening"]

        # still on the embedded page: layout, injection, filters
        _assert_renders(cdp, tmp_path / "report.png")
        print(f"screenshot: {tmp_path / 'report.png'}")

        dom = cdp.evaluate(XSS)
        assert dom["imgs"] == 0 and dom["scripts"] == 1 and not dom["hijacked"]
        assert XSS_SCRIPT in dom["text"] and XSS_ATTR in dom["text"]

        shown = cdp.evaluate(FILTER)
        assert len(shown["all"]) == 4
        assert shown["causal"] == [["rave", "causal", "ok"]] and shown["count"] == "1 of 4 samples"
        assert [c[2] for c in shown["failed"]] == ["failed"]
        assert shown["reset"] == 4
        assert not cdp.console_errors(), cdp.console_errors()
