"""Open an HTML file in headless Chromium and report what a reader would see.

Driven over the Chrome DevTools Protocol on a pipe (`--remote-debugging-pipe`: JSON messages
separated by NUL bytes, Chromium reads fd 3 and writes fd 4), so no websocket client or
chromedriver is needed and console messages arrive as structured events. The network is cut
three ways: a dead proxy, a resolver that maps every host to nothing, and DevTools' offline
emulation; every request the page makes is recorded so a test can assert it loaded only
file: and data: URLs.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")

# What every chart container holds after vega-embed ran (renderer: svg).
_INSPECT_JS = r"""
(() => {
  const charts = Array.from(document.querySelectorAll('.chart')).map(el => {
    const svg = el.querySelector('svg');
    const canvas = el.querySelector('canvas');
    const box = (svg || canvas || el).getBoundingClientRect();
    return {
      id: el.id,
      state: el.dataset.state || null,
      svg: !!svg,
      canvas: !!canvas,
      width: box.width,
      height: box.height,
      // data marks only (axes, legends and titles have other roles)
      marks: svg ? svg.querySelectorAll('g.role-mark > *').length : 0,
      text: el.textContent.slice(0, 200),
    };
  });
  return JSON.stringify({
    rendered: document.body.dataset.rendered || null,
    charts: charts,
    notes: Array.from(document.querySelectorAll('.note')).map(n => n.textContent),
    tables: document.querySelectorAll('table').length,
    height: document.documentElement.scrollHeight,
    title: document.title,
  });
})()
"""


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    """What the page did: console output, exceptions, network requests, the DOM's state."""

    console: list[dict] = field(default_factory=list)  # {"level", "text"}
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    dom: dict = field(default_factory=dict)
    screenshot: Path | None = None
    seconds: float = 0.0

    @property
    def errors(self) -> list[str]:
        return [
            c["text"] for c in self.console if c["level"] in ("error", "assert")
        ] + self.exceptions

    @property
    def warnings(self) -> list[str]:
        return [c["text"] for c in self.console if c["level"] in ("warning", "warn")]


class _Pipe:
    """A minimal CDP client over Chromium's debugging pipe."""

    def __init__(self, proc: subprocess.Popen, to_chrome: int, from_chrome: int) -> None:
        self.proc = proc
        self._w = to_chrome
        self._r = from_chrome
        self._next = 0
        self._replies: dict[int, dict] = {}
        self._cv = threading.Condition()
        self.events: list[dict] = []
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cv:
                    self._closed = True
                    self._cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cv:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cv.notify_all()

    def call(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict:
        with self._cv:
            self._next += 1
            mid = self._next
        msg: dict = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cv:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if self._closed:
                    raise RuntimeError(f"Chromium closed the pipe during {method}")
                if left <= 0:
                    raise TimeoutError(f"no reply to {method} within {timeout}s")
                self._cv.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for ev in self.events:
                    if ev.get("method") == method:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise TimeoutError(f"no {method} within {timeout}s")
                self._cv.wait(left)


def _high_fd(fd: int) -> int:
    """Move fd above 10 so the child can dup2 it onto 3/4 without clobbering the other."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


def open_report(
    html: Path,
    screenshot: Path | None = None,
    *,
    width: int = 1280,
    timeout: float = 60.0,
    chromium: str | None = None,
) -> PageReport:
    """Load `html` from file:// in headless Chromium with the network off; inspect it."""
    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found (Debian: apt-get install chromium)")
    t0 = time.monotonic()
    cmd_r, cmd_w = (_high_fd(f) for f in os.pipe())  # we write commands, Chromium reads fd 3
    ev_r, ev_w = (_high_fd(f) for f in os.pipe())  # Chromium writes fd 4, we read

    def child_fds() -> None:
        os.dup2(cmd_r, 3)
        os.dup2(ev_w, 4)

    profile = tempfile.mkdtemp(prefix="memwh-chromium-")
    args = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--mute-audio",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--allow-file-access-from-files",
        f"--user-data-dir={profile}",
        f"--window-size={width},900",
        "--remote-debugging-pipe",
        "about:blank",
    ]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        close_fds=False,
        preexec_fn=child_fds,  # fds 3 and 4 (dup2-ed, inheritable) only
    )
    os.close(cmd_r)
    os.close(ev_w)
    report = PageReport()
    try:
        cdp = _Pipe(proc, cmd_w, ev_r)
        targets = cdp.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        sid = cdp.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page", "Network"):
            cdp.call(f"{domain}.enable", session=sid)
        cdp.call(
            "Network.emulateNetworkConditions",
            {
                "offline": True,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": -1,
            },
            session=sid,
        )
        cdp.call(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width,
                "height": 900,
                "deviceScaleFactor": 1,
                "mobile": False,
            },
            session=sid,
        )
        cdp.call("Page.navigate", {"url": html.resolve().as_uri()}, session=sid)
        cdp.wait_event("Page.loadEventFired", timeout)
        deadline = time.monotonic() + timeout
        while True:
            dom = json.loads(
                cdp.call(
                    "Runtime.evaluate",
                    {
                        "expression": _INSPECT_JS,
                        "returnByValue": True,
                    },
                    session=sid,
                )["result"]["value"]
            )
            if dom["rendered"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(0.3)  # let late console messages arrive
        report.dom = dom
        if screenshot is not None:
            cdp.call(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": width,
                    "height": min(int(dom["height"]), 16000),
                    "deviceScaleFactor": 1,
                    "mobile": False,
                },
                session=sid,
            )
            shot = cdp.call(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True},
                session=sid,
            )
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            report.screenshot = screenshot
        for ev in list(cdp.events):
            method, p = ev.get("method"), ev.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", [])
                )
                report.console.append({"level": p.get("type"), "text": text})
            elif method == "Log.entryAdded":
                e = p["entry"]
                report.console.append({"level": e.get("level"), "text": e.get("text", "")})
            elif method == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                report.exceptions.append(
                    d.get("exception", {}).get("description") or d.get("text", "exception")
                )
            elif method == "Network.requestWillBeSent":
                report.requests.append(p["request"]["url"])
            elif method == "Network.loadingFailed":
                report.failed_requests.append(f"{p.get('errorText')} ({p.get('requestId')})")
        with contextlib.suppress(RuntimeError, TimeoutError):
            cdp.call("Browser.close", timeout=5)
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(cmd_w)
        os.close(ev_r)
        shutil.rmtree(profile, ignore_errors=True)
        log.close()
    report.seconds = time.monotonic() - t0
    return report
