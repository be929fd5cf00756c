"""Headless Chromium driven over the DevTools protocol on a pipe (no extra dependency).

    with Browser.launch() as browser:
        page = browser.new_page()
        page.cookie("geoservice_session", value, "127.0.0.1")
        page.goto("http://127.0.0.1:5000/map")
        page.wait_for("window.gsMap && gsMap.features.issues > 0")
        page.requests  # every URL the page asked for
        page.screenshot("out.png")

`--remote-debugging-pipe` makes Chromium read commands from fd 3 and write answers to fd 4,
each a JSON message ended by a NUL byte. Only what the tests need is here: pages, cookies,
requests seen (Network.requestWillBeSent), JS exceptions, evaluation, mouse clicks and
screenshots. Network access beyond 127.0.0.1 is blocked by a host-resolver rule as well, so a
stray request fails fast instead of waiting for a timeout — the tests still see it was made.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import make_server

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """The app on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def session_cookie(base_url: str, username: str, password: str) -> tuple[str, str]:
    """Signs in through the login form (with its CSRF token); the session cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base_url}/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if token is None:
        raise BrowserError("no CSRF token on /login")
    form = urllib.parse.urlencode(
        {"username": username, "password": password, "csrf_token": token.group(1)}
    ).encode()
    opener.open(f"{base_url}/login", form, timeout=30).read()
    for cookie in jar:
        if "session" in cookie.name:
            return cookie.name, cookie.value or ""
    raise BrowserError(f"signing in as {username} gave no session cookie")


def chromium_path() -> str | None:
    return next((p for name in CHROMIUM_NAMES if (p := shutil.which(name))), None)


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self, process: subprocess.Popen, commands: int, answers: int, profile: str):
        self._process = process
        self._out = os.fdopen(commands, "wb", buffering=0)
        self._in = os.fdopen(answers, "rb", buffering=0)
        self._profile = profile
        self._next_id = 0
        self._lock = threading.Lock()
        self._waiting: dict[int, dict[str, Any]] = {}
        self._events: dict[str, list[dict[str, Any]]] = {}  # session id → events
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    @contextmanager
    def launch(cls, size: tuple[int, int] = (1400, 900)) -> Iterator[Browser]:
        exe = chromium_path()
        if exe is None:
            raise BrowserError("chromium is not installed")
        profile = tempfile.mkdtemp(prefix="gs-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def child_fds() -> None:
            # fd 3: commands in, fd 4: answers out (dup to high numbers first: no clobbering).
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--mute-audio",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--window-size={size[0]},{size[1]}",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        process = subprocess.Popen(
            args,
            preexec_fn=child_fds,
            pass_fds=(3, 4),  # kept open in the child (made there by child_fds)
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        browser = cls(process, to_browser_w, from_browser_r, profile)
        try:
            yield browser
        finally:
            browser.close()

    def close(self) -> None:
        with suppress(Exception):
            self.send("Browser.close", timeout=5)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for f in (self._out, self._in):
            with suppress(OSError):
                f.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._in.read(65536)
            except (OSError, ValueError):
                chunk = b""
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                with self._cond:
                    if "id" in message:
                        self._waiting[message["id"]] = message
                    else:
                        self._events.setdefault(message.get("sessionId", ""), []).append(message)
                    self._cond.notify_all()

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout=30
    ) -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            mid = self._next_id
        message: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._out.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._waiting:
                left = deadline - time.monotonic()
                if left <= 0 or self._process.poll() is not None:
                    raise BrowserError(f"no answer to {method}")
                self._cond.wait(left)
            answer = self._waiting.pop(mid)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def events(self, session: str) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._events.get(session, []))

    def new_page(self, isolated: bool = False, size: tuple[int, int] | None = None) -> Page:
        """A tab; `isolated`: in its own browser context (cookies of its own); `size`: the
        viewport in CSS pixels (default: the window's)."""
        params: dict[str, Any] = {"url": "about:blank"}
        if isolated:
            params["browserContextId"] = self.send("Target.createBrowserContext")[
                "browserContextId"
            ]
        target = self.send("Target.createTarget", params)["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Network"):
            page.send(f"{domain}.enable")
        if size is not None:
            page.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False},
            )
        return page


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        return self.browser.send(method, params, self.session, timeout)

    def cookie(self, name: str, value: str, domain: str) -> None:
        self.send(
            "Network.setCookie",
            {"name": name, "value": value, "domain": domain, "path": "/", "httpOnly": True},
        )

    def sign_in(self, base_url: str, username: str, password: str) -> None:
        """Signs in through /login (as a browser would) and hands the cookie to this page."""
        name, value = session_cookie(base_url, username, password)
        self.cookie(name, value, urlsplit(base_url).hostname or "127.0.0.1")

    def goto(self, url: str, timeout: float = 30) -> None:
        start = len(self.browser.events(self.session))
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(
                e["method"] == "Page.loadEventFired"
                for e in self.browser.events(self.session)[start:]
            ):
                return
            time.sleep(0.05)
        raise BrowserError(f"{url} did not load in {timeout} s")

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise BrowserError(f"timed out waiting for {expression}")

    def click(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            params: dict[str, Any] = {"type": kind, "x": x, "y": y}
            if kind != "mouseMoved":
                params.update(button="left", clickCount=1)
            self.send("Input.dispatchMouseEvent", params)

    def screenshot(self, path: str | Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))

    @property
    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.browser.events(self.session)
            if e["method"] == "Network.requestWillBeSent"
        ]

    @property
    def exceptions(self) -> list[str]:
        return [
            json.dumps(e["params"]["exceptionDetails"], ensure_ascii=False)[:500]
            for e in self.browser.events(self.session)
            if e["method"] == "Runtime.exceptionThrown"
        ]

    @property
    def console(self) -> list[str]:
        return [
            " ".join(str(a.get("value", a.get("description", ""))) for a in e["params"]["args"])
            for e in self.browser.events(self.session)
            if e["method"] == "Runtime.consoleAPICalled"
        ]
