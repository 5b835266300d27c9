"""Adding an account without a desktop: a remote view of a fresh sign-in page, and a cookie import.

``RemoteLogins.start`` opens a fresh browser context (no saved login) in the worker's browser, on AI Studio,
which sends it to Google's sign-in page, and streams the page as JPEG frames (Chromium's DevTools screencast)
to the API, which relays them to the dashboard; the operator's clicks and keys come back (``LoginInput``) and
are replayed on the page. Once the page is AI Studio signed in (its model list RPC answers, as for ``make
login``), the context's storage state is saved as a new account, ``auth_profiles/active/<name>.json`` (0600),
which the supervisor picks up like any new login file, and the session ends (``LoginEnded``).

``import_account`` checks an uploaded storage state the same way, in a fresh context, before it is saved.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Page

from browser_worker import selectors as S
from browser_worker.auth import NAME_RE, write_private_json
from browser_worker.browser import BrowserSession, SlotPage
from shared import protocol
from shared.settings import Settings
from shared.wire import endpoints

log = logging.getLogger(__name__)

#: A sign-in left alone this long is closed (seconds).
LOGIN_TIMEOUT_S = 600.0
#: A storage state gets this long to prove it is signed in (seconds).
IMPORT_TIMEOUT_S = 30.0
#: Sign-ins at once.
MAX_SESSIONS = 2
#: Keys replayed by name; everything else arrives as text.
KEYS = frozenset(
    {
        "Enter",
        "Tab",
        "Backspace",
        "Delete",
        "Escape",
        "ArrowLeft",
        "ArrowRight",
        "ArrowUp",
        "ArrowDown",
        "Home",
        "End",
        "Shift+Tab",
    }
)

Send = Callable[[protocol.Message], Awaitable[None]]
#: The messages ``RemoteLogins.handle`` takes.
LOGIN_MESSAGES = (protocol.LoginStart, protocol.LoginInput, protocol.LoginCancel, protocol.AccountImport)


class LoginRefused(Exception):
    """A sign-in or import that cannot go on; the message is for the operator."""


@dataclass
class _Session:
    id: str
    name: str | None
    slot: SlotPage
    send: Send
    task: asyncio.Task[None] | None = None
    cdp: Any = None
    width: int = 0
    height: int = 0
    frames: int = field(default=0)


class RemoteLogins:
    """The sign-ins running in the worker's browser."""

    def __init__(self, settings: Settings, session: Callable[[], BrowserSession | None]) -> None:
        self.settings = settings
        self._browser = session
        self.sessions: dict[str, _Session] = {}
        self._requests: set[asyncio.Task[None]] = set()

    def _session(self) -> BrowserSession:
        browser = self._browser()
        if browser is None or browser.browser is None:
            raise LoginRefused("the browser is not running yet; try again in a moment")
        if browser.kind != "chromium":
            raise LoginRefused("the remote view needs Chromium (BROWSER=chromium); import cookies instead")
        return browser

    async def start(self, name: str | None, send: Send) -> protocol.LoginStarted:
        """Open the sign-in page and start streaming it; ``send`` carries its frames and its end."""
        if name is not None:
            check_name(self.settings, name)
        if len(self.sessions) >= MAX_SESSIONS:
            raise LoginRefused(f"{MAX_SESSIONS} sign-ins are open already; finish or cancel one first")
        session_id = "login_" + secrets.token_hex(6)
        slot = await self._session().open_slot(session_id, None)
        login = _Session(session_id, name, slot, send)
        self.sessions[session_id] = login
        viewport = slot.page.viewport_size or self.settings.viewport_size
        login.width, login.height = viewport["width"], viewport["height"]
        login.task = asyncio.get_running_loop().create_task(self._run(login), name=session_id)
        return protocol.LoginStarted(id="", session=session_id, width=login.width, height=login.height)

    async def _run(self, login: _Session) -> None:
        page = login.slot.page
        ok, account, message = False, None, "the sign-in was cancelled"
        try:
            proved = _models_answered(page)
            login.cdp = await login.slot.context.new_cdp_session(page)
            login.cdp.on("Page.screencastFrame", lambda frame: self._frame(login, frame))
            await login.cdp.send(
                "Page.startScreencast",
                {"format": "jpeg", "quality": 70, "maxWidth": login.width, "maxHeight": login.height},
            )
            await page.goto(self.settings.aistudio_url.rstrip("/") + S.NEW_CHAT_PATH, wait_until="commit")
            async with asyncio.timeout(LOGIN_TIMEOUT_S):
                await proved.wait()
            state = await login.slot.context.storage_state()
            account = login.name or name_from_state(self.settings, dict(state))
            save_account(self.settings, account, dict(state))
            ok, message = True, f"signed in; saved as account {account!r}"
        except TimeoutError:
            message = f"no sign-in within {LOGIN_TIMEOUT_S / 60:.0f} minutes"
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # the page closed, the browser went, a name clash: the operator hears why
            message = f"the sign-in failed: {exc}"
            log.warning("remote sign-in %s failed: %s", login.id, exc)
        finally:
            self.sessions.pop(login.id, None)
            with contextlib.suppress(Exception):
                await login.slot.close()
            with contextlib.suppress(Exception):
                await login.send(
                    protocol.LoginEnded(session=login.id, ok=ok, account=account, message=message)
                )
        log.info("remote sign-in %s ended: %s", login.id, message)

    def _frame(self, login: _Session, frame: dict[str, Any]) -> None:
        login.frames += 1
        meta = frame.get("metadata", {})
        msg = protocol.LoginFrame(
            session=login.id,
            data=frame["data"],
            width=int(meta.get("deviceWidth") or login.width),
            height=int(meta.get("deviceHeight") or login.height),
            url=login.slot.page.url,
        )
        task = asyncio.get_running_loop().create_task(self._forward(login, msg, frame["sessionId"]))
        self._requests.add(task)  # held until done: a task nothing refers to may be collected mid-way
        task.add_done_callback(self._requests.discard)

    async def _forward(self, login: _Session, msg: protocol.LoginFrame, ack: int) -> None:
        with contextlib.suppress(Exception):
            await login.send(msg)
        with contextlib.suppress(Exception):  # the next frame comes once this one is acknowledged
            await login.cdp.send("Page.screencastFrameAck", {"sessionId": ack})

    async def input(self, msg: protocol.LoginInput) -> None:
        """Replay one of the operator's clicks, scrolls, keys or typed text."""
        login = self.sessions.get(msg.session)
        if login is None:
            return
        page = login.slot.page
        with contextlib.suppress(Exception):  # the page may be navigating; the operator tries again
            if msg.kind == "click":
                await page.mouse.click(msg.x, msg.y)
            elif msg.kind == "wheel":
                await page.mouse.wheel(msg.dx, msg.dy)
            elif msg.kind == "key" and msg.key in KEYS:
                await page.keyboard.press(msg.key)
            elif msg.kind == "text" and msg.text:
                await page.keyboard.type(msg.text[:1000])

    async def handle(self, msg: protocol.Message, send: Send) -> None:
        """One of the login messages from the API (``LOGIN_MESSAGES``). A start or an import takes a while:
        it runs in the background (the connection keeps serving jobs) and answers with ``send``."""
        if isinstance(msg, protocol.LoginInput):
            await self.input(msg)
        elif isinstance(msg, protocol.LoginCancel):
            self.cancel(msg.session)
        elif isinstance(msg, protocol.LoginStart | protocol.AccountImport):
            task = asyncio.get_running_loop().create_task(self._answer(msg, send))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

    async def _answer(self, msg: protocol.LoginStart | protocol.AccountImport, send: Send) -> None:
        reply: protocol.Message
        if isinstance(msg, protocol.LoginStart):
            try:
                reply = (await self.start(msg.name, send)).model_copy(update={"id": msg.id})
            except (LoginRefused, OSError) as exc:
                reply = protocol.LoginStarted(id=msg.id, error=str(exc))
        else:
            try:
                reply = protocol.AccountImported(
                    id=msg.id, ok=True, account=await self.import_account(msg.name, msg.storage_state)
                )
            except (LoginRefused, OSError) as exc:
                reply = protocol.AccountImported(id=msg.id, ok=False, error=str(exc))
            except Exception as exc:  # a storage state the browser cannot load
                reply = protocol.AccountImported(id=msg.id, ok=False, error=f"the browser refused it: {exc}")
        with contextlib.suppress(Exception):
            await send(reply)

    def cancel(self, session_id: str) -> None:
        login = self.sessions.get(session_id)
        if login is not None and login.task is not None:
            login.task.cancel()

    async def import_account(self, name: str, state: dict[str, Any]) -> str:
        """Prove ``state`` signs in to AI Studio in a fresh context, then save it as account ``name``."""
        check_name(self.settings, name)
        slot = await self._session().open_slot("import_" + secrets.token_hex(4), state)
        try:
            proved = _models_answered(slot.page)
            await slot.page.goto(
                self.settings.aistudio_url.rstrip("/") + S.NEW_CHAT_PATH, wait_until="commit"
            )
            if not await _first_proof(slot.page, proved):
                where = "Google's sign-in page" if S.LOGIN_HOST in slot.page.url else slot.page.url
                raise LoginRefused(
                    f"these cookies do not sign in to AI Studio (it went to {where}): expired, signed out, "
                    "or not the cookies of aistudio.google.com and google.com"
                ) from None
            fresh = await slot.context.storage_state()
        finally:
            with contextlib.suppress(Exception):
                await slot.close()
        save_account(self.settings, name, dict(fresh))
        return name


async def _first_proof(page: Page, proved: asyncio.Event) -> bool:
    """Whichever comes first: the page proves it is signed in (True), or it lands on Google's sign-in page or
    ``IMPORT_TIMEOUT_S`` passes (False)."""
    signed_in = asyncio.ensure_future(proved.wait())
    sent_away = asyncio.ensure_future(
        page.wait_for_url(lambda url: S.LOGIN_HOST in url, timeout=IMPORT_TIMEOUT_S * 1000)
    )
    done, pending = await asyncio.wait(
        {signed_in, sent_away}, timeout=IMPORT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.exception()  # retrieved: a timeout of the URL wait is no error here
    return proved.is_set()


def _models_answered(page: Page) -> asyncio.Event:
    """Set once AI Studio's model list RPC answers on AI Studio's own page: the page is signed in."""
    proved = asyncio.Event()

    def on_response(response: Any) -> None:
        if endpoints.LIST_MODELS_FRAGMENT in response.url and response.ok and endpoints.PAGE_HOST in page.url:
            proved.set()

    page.on("response", on_response)
    return proved


def check_name(settings: Settings, name: str) -> None:
    if not NAME_RE.match(name) or len(name) > 64:
        raise LoginRefused(f"an account name uses letters, digits, _ and - (at most 64), not {name!r}")
    if (settings.auth_profiles_dir / "active" / f"{name}.json").exists():
        raise LoginRefused(f"an account named {name!r} exists already; choose another name")


def name_from_state(settings: Settings, state: dict[str, Any]) -> str:
    """A free account name for a sign-in the operator did not name: ``account``, ``account-2``…"""
    active = settings.auth_profiles_dir / "active"
    name, n = "account", 1
    while (active / f"{name}.json").exists():
        n += 1
        name = f"account-{n}"
    return name


def save_account(settings: Settings, name: str, state: dict[str, Any]) -> None:
    path = settings.auth_profiles_dir / "active" / f"{name}.json"
    if path.exists():
        raise LoginRefused(f"an account named {name!r} exists already")
    write_private_json(path, state)
    log.info("new account %s saved to %s (%d cookies)", name, path, len(state.get("cookies", [])))


def frame_bytes(frame: protocol.LoginFrame) -> bytes:
    """A frame's JPEG bytes (tests and tools)."""
    return base64.b64decode(frame.data)
