"""Error snapshots: what the page looked like when a job failed.

``PageJournal`` keeps the last console messages and network events of the
page (network: method, URL, status or failure, never a body; on Chromium
only). ``write_snapshot`` stores
``<error_snapshot_dir>/<YYYY-MM-DD>/<HHMMSS>_<request-id>_<kind>/`` with
``screenshot.png``, ``page.html`` (secrets redacted), ``console.txt`` and
``network.txt``; directories are 0700 and at most ``max_error_snapshots``
are kept (oldest deleted first).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from playwright.async_api import Error as PlaywrightError

log = logging.getLogger(__name__)

JOURNAL_SIZE = 200
#: ``Network.enable`` for the journal's own DevTools session: no request bodies in the events
#: (``maxPostDataSize`` 0 would mean no limit) and no response bodies kept for it in the browser.
NETWORK_ENABLE = {"maxPostDataSize": 1, "maxTotalBufferSize": 0, "maxResourceBufferSize": 0}

_SECRET_NAMES = (
    r"(?:__Secure-[0-9A-Za-z]+|S?APISID|[HS]?SID|SSID|SIDCC|NID|OSID|LSID|AEC|"
    r"access_token|id_token|refresh_token|api[_-]?key|authorization|cookie|token|key)"
)
REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization header values (SAPISIDHASH ..., Bearer ...).
    (re.compile(r"((?:SAPISID(?:1P|3P)?HASH|Bearer)\s+)[^\s\"'<>&]+", re.I), r"\1[redacted]"),
    # name=value pairs (cookies, query strings, attributes) for secret-looking names.
    (re.compile(rf"(\b{_SECRET_NAMES}\s*=\s*)[^\s;,&\"'<>]+", re.I), r"\1[redacted]"),
    # JSON / JS objects: "SID": "value"
    (re.compile(rf"([\"']{_SECRET_NAMES}[\"']\s*:\s*[\"'])[^\"']*", re.I), r"\1[redacted]"),
    # Google API keys.
    (re.compile(r"AIza[0-9A-Za-z_\-]{30,}"), "[redacted-api-key]"),
)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """Remove cookie values, tokens and auth headers from ``text``."""
    for value in sorted(secrets or [], key=len, reverse=True):
        if len(value) >= 6:
            text = text.replace(value, "[redacted]")
    for pattern, repl in REDACTIONS:
        text = pattern.sub(repl, text)
    return text


class PageJournal:
    """Ring buffers of the page's console messages and network events.

    The network events come from a DevTools session of the journal's own (Chromium), not from
    Playwright's ``request`` / ``response`` / ``requestfailed`` events: while a page listens to
    any of those, Playwright keeps every request it reported, post data included (the whole
    prompt), in its driver and in this process until the page closes. Camoufox/Firefox has no
    DevTools protocol; there the journal records console messages only.
    """

    def __init__(self, size: int = JOURNAL_SIZE) -> None:
        self.console: collections.deque[str] = collections.deque(maxlen=size)
        self.network: collections.deque[str] = collections.deque(maxlen=size)
        #: "METHOD url" of requests not finished yet, by DevTools request id (for the failure line).
        self._open: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._size = size

    async def attach(self, page: Any) -> None:
        page.on("console", lambda m: self.console.append(f"{_now()} {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"{_now()} pageerror: {e}"))
        await self._watch_network(page)

    async def _watch_network(self, page: Any) -> None:
        browser = page.context.browser
        kind = browser.browser_type.name if browser is not None else "this browser"
        if kind != "chromium":
            self.network.append(f"{_now()} (no network events: {kind} has no DevTools protocol)")
            return
        try:
            cdp = await page.context.new_cdp_session(page)
            cdp.on("Network.requestWillBeSent", self._on_request)
            cdp.on("Network.responseReceived", self._on_response)
            cdp.on("Network.loadingFinished", self._on_finished)
            cdp.on("Network.loadingFailed", self._on_failed)
            await cdp.send("Network.enable", NETWORK_ENABLE)
        except PlaywrightError as exc:
            log.warning("error snapshots will have no network events: %s", str(exc).splitlines()[0])

    def _on_request(self, event: dict[str, Any]) -> None:
        redirect = event.get("redirectResponse")
        if redirect:
            self.network.append(f"{_now()} <- {redirect.get('status')} {_short(redirect.get('url', ''))}")
        request = event.get("request", {})
        line = f"{request.get('method', '?')} {_short(request.get('url', ''))}"
        self._open[event.get("requestId", "")] = line
        while len(self._open) > self._size:  # requests that never finish (e.g. a closed document's)
            self._open.popitem(last=False)
        self.network.append(f"{_now()} -> {line}")

    def _on_response(self, event: dict[str, Any]) -> None:
        response = event.get("response", {})
        self.network.append(f"{_now()} <- {response.get('status')} {_short(response.get('url', ''))}")

    def _on_finished(self, event: dict[str, Any]) -> None:
        self._open.pop(event.get("requestId", ""), None)

    def _on_failed(self, event: dict[str, Any]) -> None:
        line = self._open.pop(event.get("requestId", ""), "?")
        reason = event.get("errorText", "") + (" (canceled)" if event.get("canceled") else "")
        self.network.append(f"{_now()} xx {line} {reason}")


def _now() -> str:
    t = time.time()
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def _short(url: str) -> str:
    return url if len(url) <= 300 else url[:300] + "..."


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", part)[:80] or "x"


def snapshot_dir(root: Path, request_id: str, kind: str, when: float | None = None) -> Path:
    t = time.localtime(when or time.time())
    return (
        root
        / time.strftime("%Y-%m-%d", t)
        / f"{time.strftime('%H%M%S', t)}_{_safe(request_id)}_{_safe(kind)}"
    )


def _private_mkdir(path: Path, root: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    current = path
    while True:
        with contextlib.suppress(OSError):
            os.chmod(current, 0o700)
        if current == root or current.parent == current:
            break
        current = current.parent


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


async def write_snapshot(
    root: Path,
    keep: int,
    request_id: str,
    kind: str,
    *,
    message: str,
    studio: Any | None,
    journal: PageJournal | None,
    secrets: list[str] | None = None,
) -> Path | None:
    """Write one snapshot folder; never raises (a failing snapshot must not hide the error)."""
    if keep <= 0:
        return None
    try:
        folder = snapshot_dir(root, request_id, kind)
        _private_mkdir(folder, root)
        _write(folder / "error.txt", redact(f"{kind}: {message}\n", secrets).encode())
        if studio is not None:
            with contextlib.suppress(Exception):
                _write(folder / "screenshot.png", await studio.screenshot())
            with contextlib.suppress(Exception):
                html = await studio.html()
                _write(folder / "page.html", redact(html, secrets).encode())
        if journal is not None:
            _write(folder / "console.txt", redact("\n".join(journal.console) + "\n", secrets).encode())
            _write(folder / "network.txt", redact("\n".join(journal.network) + "\n", secrets).encode())
        prune(root, keep)
        log.info("error snapshot written to %s", folder)
        return folder
    except Exception:
        log.exception("could not write an error snapshot")
        return None


def prune(root: Path, keep: int) -> None:
    """Keep the ``keep`` newest snapshot folders; remove emptied day folders."""
    folders = sorted(p for day in root.glob("*") if day.is_dir() for p in day.iterdir() if p.is_dir())
    folders.sort(key=lambda p: (p.parent.name, p.name))
    for old in folders[: max(0, len(folders) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
    for day in root.glob("*"):
        if day.is_dir() and not any(day.iterdir()):
            with contextlib.suppress(OSError):
                day.rmdir()
