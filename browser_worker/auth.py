"""Saved Google logins: writing storage states, cookie refresh, and the interactive login.

A profile is a Playwright ``storage_state`` JSON file (docs/aistudio.md §7). Files are
written atomically with mode 0600 in 0700 folders. Refreshing a profile
replaces its ``cookies`` and ``origins`` and keeps every other key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page

from browser_worker import selectors as S
from browser_worker.browser import BrowserSession
from shared.settings import Settings
from shared.wire import endpoints

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
LOGIN_TIMEOUT_S = 600.0


class LoginFailed(Exception):
    """The interactive login did not produce a working session."""


def write_private_json(path: Path, data: Any) -> None:
    """Write JSON atomically: file 0600, parent folders 0700."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def refresh_profile(path: Path, state: dict[str, Any]) -> None:
    """Write the context's cookies and origins back into ``path``, keeping other keys."""
    try:
        existing = json.loads(path.read_text())
        if not isinstance(existing, dict):
            existing = {}
    except (OSError, ValueError):
        existing = {}
    existing["cookies"] = state.get("cookies", [])
    existing["origins"] = state.get("origins", [])
    write_private_json(path, existing)


def sapisid_from_profile(path: Path) -> str | None:
    """The ``SAPISID`` cookie of a saved storage state (the stream helper's credential)."""
    try:
        cookies = json.loads(path.read_text()).get("cookies", [])
    except (OSError, ValueError, AttributeError):
        return None
    return _sapisid_in(cookies if isinstance(cookies, list) else [])


async def session_sapisid(context: BrowserContext | None, url: str, profile: Path | None) -> str | None:
    """The session's ``SAPISID`` cookie (the stream helper's credential): the one a live browser ``context``
    sends to ``url``, else the saved profile's."""
    if context is not None:
        with contextlib.suppress(Exception):
            if found := _sapisid_in(await context.cookies(url)):
                return found
    return sapisid_from_profile(profile) if profile is not None else None


def _sapisid_in(cookies: Iterable[Any]) -> str | None:
    for cookie in cookies:
        if isinstance(cookie, dict) and cookie.get("name") == "SAPISID" and cookie.get("value"):
            return str(cookie["value"])
    return None


def profile_signature(settings: Settings, profile: Path | None) -> tuple[Any, ...]:
    """Something that changes when the active profile (or the set of candidates) changes."""
    active = settings.auth_profiles_dir / "active"
    names = tuple(sorted(p.name for p in active.glob("*.json"))) if active.is_dir() else ()
    mtime = None
    if profile is not None:
        try:
            mtime = profile.stat().st_mtime_ns
        except OSError:
            mtime = None
    explicit = None
    if settings.auth_profile is not None:
        try:
            explicit = settings.auth_profile.stat().st_mtime_ns
        except OSError:
            explicit = None
    return names, mtime, explicit


async def interactive_login(
    settings: Settings,
    name: str,
    *,
    headless: bool = False,
    timeout_s: float = LOGIN_TIMEOUT_S,
    on_page: Callable[[Page], Awaitable[None]] | None = None,
) -> Path:
    """Open AI Studio, wait for the user to sign in, prove the session, save the profile.

    ``on_page`` runs once the login page is open (tests fill the simulator's form with it).
    """
    if not NAME_RE.match(name):
        raise LoginFailed(f"profile name {name!r} must match {NAME_RE.pattern}")
    target = settings.auth_profiles_dir / "active" / f"{name}.json"
    async with BrowserSession(settings, storage_state=None, headless=headless) as session:
        page = session.page
        assert page is not None and session.context is not None
        proved = asyncio.Event()

        def on_response(response: Any) -> None:
            if (
                endpoints.LIST_MODELS_FRAGMENT in response.url
                and response.ok
                and endpoints.PAGE_HOST in page.url
            ):
                proved.set()

        page.on("response", on_response)
        await page.goto(settings.aistudio_url.rstrip("/") + S.NEW_CHAT_PATH, wait_until="domcontentloaded")
        print(
            f"Sign in to Google in the browser window (waiting up to {timeout_s / 60:.0f} min)...", flush=True
        )
        if on_page is not None:
            await on_page(page)
        try:
            async with asyncio.timeout(timeout_s):
                await proved.wait()
        except TimeoutError:
            raise LoginFailed(f"no working AI Studio session after {timeout_s:.0f} s") from None
        if S.LOGIN_HOST in page.url:
            raise LoginFailed("still on the Google sign-in page")
        state = await session.context.storage_state()
    write_private_json(target, state)
    log.info("saved the login to %s (%d cookies)", target, len(state.get("cookies", [])))
    return target


async def refresh_loop(interval_s: float, save: Callable[[], Awaitable[None]]) -> None:
    """Call ``save`` every ``interval_s`` seconds (cookie refresh, docs/aistudio.md §7)."""
    if interval_s <= 0:
        return
    next_at = time.monotonic() + interval_s
    while True:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += interval_s
        try:
            await save()
        except Exception:
            log.exception("cookie refresh failed")
