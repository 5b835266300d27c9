"""Browser factory: one browser, a context and a page per slot (STYLE pattern 1, strict ownership).

``BrowserSession(settings, storage_state=..., slot=...)`` is an async context manager: it
starts Playwright, launches Chromium (or Camoufox) and (unless ``open_page=False``)
opens a first context with the stream proxy, the CA trust, the desktop viewport
and the clipboard permissions, and its page; ``open_slot`` opens one more
(``SlotPage``, owned by the caller). The context names its ``slot`` to the stream proxy as
its proxy user name, so every answer the proxy taps is tagged with the page that
asked for it (``browser_worker/feed.py``). Leaving the block closes all of it in reverse
order. ``lost`` is set when the browser disconnects or its first page crashes or
closes, so the worker can relaunch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright

from shared.browsers import browser_kind
from shared.ca import spki_hash
from shared.settings import Settings

log = logging.getLogger(__name__)

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
CLIPBOARD_PERMISSIONS = ["clipboard-read", "clipboard-write"]
#: The slot id of the one page (the proxy user name of its context).
DEFAULT_SLOT = "s1"
#: The proxy accepts any password: the user name only names the slot (the proxy listens on loopback).
PROXY_PASSWORD = "aisp"


def account_profiles(settings: Settings) -> list[Path]:
    """Every saved login the worker serves from: ``AUTH_PROFILE`` alone when set, else each
    ``active/*.json`` (one account each, by file name)."""
    if settings.auth_profile is not None:
        return [settings.auth_profile] if settings.auth_profile.is_file() else []
    active = settings.auth_profiles_dir / "active"
    return sorted(active.glob("*.json")) if active.is_dir() else []


def active_profile(settings: Settings) -> Path | None:
    """The storage-state file to load: ``AUTH_PROFILE``, else the first ``active/*.json``."""
    if settings.auth_profile is not None:
        return settings.auth_profile if settings.auth_profile.is_file() else None
    active = settings.auth_profiles_dir / "active"
    files = sorted(active.glob("*.json")) if active.is_dir() else []
    return files[0] if files else None


def proxy_server(settings: Settings) -> str | None:
    """The stream proxy as the browser's HTTP proxy, or None when interception is off."""
    if settings.stream_port == 0:
        return None
    return f"http://{settings.stream_host}:{settings.stream_port}"


def ca_spki(settings: Settings) -> str | None:
    """Base64 SPKI hash of the per-install CA, when interception is on and its certificate exists."""
    cert = settings.ca_cert_path
    if settings.stream_port == 0 or not cert.is_file():
        return None
    try:
        return spki_hash(cert)
    except Exception as exc:
        log.warning("cannot hash the CA certificate %s: %s", cert, exc)
        return None


def host_resolver_rules(settings: Settings) -> str | None:
    """Chromium ``--host-resolver-rules`` for demo mode without the stream proxy."""
    if settings.stream_port != 0 or not settings.demo_mode:
        return None
    return ", ".join(f"MAP {host} {ip}:{port}" for host, (ip, port) in settings.resolve_map.items())


def chromium_args(settings: Settings, spki: str | None) -> list[str]:
    args = list(CHROMIUM_ARGS)
    if spki:
        args.append(f"--ignore-certificate-errors-spki-list={spki}")
    rules = host_resolver_rules(settings)
    if rules:
        args.append(f"--host-resolver-rules={rules}")
    return args


def context_options(
    settings: Settings,
    storage_state: Path | dict[str, Any] | None,
    spki: str | None,
    kind: str = "chromium",
    slot: str = DEFAULT_SLOT,
) -> dict[str, Any]:
    proxied = proxy_server(settings) is not None
    options: dict[str, Any] = {
        "viewport": settings.viewport_size,
        "locale": "en-US",
        # Demo mode: the simulator's self-signed cert. Through the proxy without an SPKI pin
        # (none made, or Camoufox: Firefox cannot pin), the proxy's leaf certs cannot be trusted
        # any other way; the proxy then decrypts every host and checks the real certificates
        # itself (``shared/browsers.py``).
        "ignore_https_errors": settings.demo_mode or (proxied and (spki is None or kind == "camoufox")),
    }
    server = proxy_server(settings)
    if server:
        options["proxy"] = {"server": server, "username": slot, "password": PROXY_PASSWORD}
    if storage_state is not None:
        options["storage_state"] = str(storage_state) if isinstance(storage_state, Path) else storage_state
    return options


class SlotPage:
    """One slot's browser context and its page (strict ownership: ``close()`` closes both).

    ``lost`` is set when the page crashes or closes, or the owner gives it up (``mark_lost``).
    """

    def __init__(self, slot: str, context: BrowserContext, page: Page) -> None:
        self.slot = slot
        self.context = context
        self.page = page
        self.lost = asyncio.Event()
        self.lost_reason = ""
        page.on("crash", lambda _p: self.mark_lost("page crashed"))
        page.on("close", lambda _p: self.mark_lost("page closed"))

    def mark_lost(self, reason: str, deliberate: bool = False) -> None:
        if not self.lost.is_set():
            if not deliberate:
                log.warning("slot %s lost: %s", self.slot, reason)
            self.lost_reason = reason
            self.lost.set()

    async def close(self) -> None:
        self.mark_lost("closed", deliberate=True)  # the page's close event that follows is no loss
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.context.close()

    async def storage_state_dict(self) -> dict[str, Any]:
        return dict(await self.context.storage_state())


class BrowserSession:
    """Owns Playwright, the browser and (unless ``open_page=False``) its first context and page; more slots
    come from ``open_slot``."""

    def __init__(
        self,
        settings: Settings,
        *,
        storage_state: Path | dict[str, Any] | None = None,
        headless: bool | None = None,
        slot: str = DEFAULT_SLOT,
        open_page: bool = True,
    ) -> None:
        self.settings = settings
        self.storage_state = storage_state
        self.slot = slot
        self.open_page = open_page
        self.headless = settings.headless if headless is None else headless
        self.kind = browser_kind(settings)
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self._stack = contextlib.AsyncExitStack()
        self._spki: str | None = None
        self._closing = False
        self.playwright: Playwright | None = None
        self.browser: Browser | None = None
        self.first: SlotPage | None = None

    @property
    def context(self) -> BrowserContext | None:
        return self.first.context if self.first is not None else None

    @property
    def page(self) -> Page | None:
        return self.first.page if self.first is not None else None

    async def __aenter__(self) -> BrowserSession:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True  # what closes now was not lost: no warning
        await self._stack.aclose()

    def mark_lost(self, reason: str) -> None:
        """Declare the browser lost (it disconnected, its first page crashed or closed, or the worker gave
        the browser up): sets ``lost``, which the supervisor answers with a relaunch."""
        if not self.lost.is_set():
            if not self._closing:
                log.warning("browser lost: %s", reason)
            self.lost_reason = reason
            self.lost.set()

    async def _open(self) -> None:
        self._spki = ca_spki(self.settings)
        if self.kind == "camoufox":
            options = context_options(self.settings, None, self._spki, self.kind, self.slot)
            self.browser = await self._launch_camoufox(options)
        else:
            self.playwright = await self._stack.enter_async_context(async_playwright())
            self.browser = await self.playwright.chromium.launch(
                executable_path=str(self.settings.browser_executable),
                headless=self.headless,
                args=chromium_args(self.settings, self._spki),
            )
            self._stack.push_async_callback(self._close_browser)
        self.browser.on("disconnected", lambda _b: self.mark_lost("browser disconnected"))
        if self.open_page:
            self.first = await self.open_slot(self.slot, self.storage_state)
            self._stack.push_async_callback(self.first.close)
            self.first.page.on("crash", lambda _p: self.mark_lost("page crashed"))
            self.first.page.on("close", lambda _p: self.mark_lost("page closed"))
        log.info(
            "browser ready: %s (headless=%s, proxy=%s)", self.kind, self.headless, proxy_server(self.settings)
        )

    async def open_slot(self, slot: str, storage_state: Path | dict[str, Any] | None) -> SlotPage:
        """A new context (its own cookies, from ``storage_state``) and page for ``slot``; the caller owns it."""
        assert self.browser is not None
        options = context_options(self.settings, storage_state, self._spki, self.kind, slot)
        context = await self.browser.new_context(**options)
        try:
            with contextlib.suppress(Exception):  # Firefox has no clipboard-read permission
                await context.grant_permissions(CLIPBOARD_PERMISSIONS, origin=self.settings.aistudio_url)
            page = await context.new_page()
        except BaseException:
            with contextlib.suppress(Exception):
                await context.close()
            raise
        return SlotPage(slot, context, page)

    async def _launch_camoufox(self, options: dict[str, Any]) -> Browser:
        from camoufox.async_api import AsyncCamoufox

        launch: dict[str, Any] = {"headless": self.headless, "i_know_what_im_doing": True}
        if "proxy" in options:
            launch["proxy"] = options["proxy"]
        browser = await self._stack.enter_async_context(AsyncCamoufox(**launch))
        return browser  # type: ignore[return-value]

    async def _close_browser(self) -> None:
        if self.browser is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.browser.close()

    async def storage_state_dict(self) -> dict[str, Any]:
        assert self.first is not None
        return await self.first.storage_state_dict()
