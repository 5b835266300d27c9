"""Whatever lies over the chat and catches clicks: first-use dialogs, backdrops, tooltips, survey
iframes, the cookie banner (docs/aistudio.md §2.2, §2.10)."""

from __future__ import annotations

import logging

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from browser_worker import selectors as S
from browser_worker.page import scripts
from browser_worker.page.translate import first_line, translated

log = logging.getLogger(__name__)


def obstacles() -> list[str]:
    """What ``Overlays.clear`` looks for before doing anything (read at each call: overrides apply)."""
    return [S.BACKDROP_SHOWING, *S.TOOLTIP_SELECTORS, S.SURVEY_IFRAMES, S.COOKIE_BANNER_REJECT]


def blockers() -> list[str]:
    """What keeps a scripted Run click from being safe: the obstacles, an open menu, a dialog."""
    return [*obstacles(), S.OVERLAY_MENU, S.DIALOG_SURFACE]


class Overlays:
    """Clears the way for a click; every other region calls ``clear`` before it clicks."""

    def __init__(self, page: Page) -> None:
        self.page = page

    async def clear(self) -> None:
        """Cheap: only acts when a backdrop, tooltip, survey or banner is actually there."""
        if await self.page.evaluate(scripts.ANY_PRESENT, obstacles()):
            await self.clear_all()

    async def clear_all(self) -> None:
        """Accept dialogs, dismiss overlays, reject the cookie banner, whether or not they are there."""
        await self.accept_dialogs()
        await self.dismiss()
        await self._reject_cookie_banner()

    @translated
    async def accept_dialogs(self) -> None:
        """Click through post-upload / first-use dialogs in the overlay container (docs/aistudio.md §2.2)."""
        overlay = self.page.locator(S.OVERLAY_CONTAINER)
        for _ in range(3):
            clicked = False
            for text in S.DIALOG_ACCEPT_TEXTS:
                button = overlay.get_by_role(S.DIALOG_ACCEPT_ROLE, name=text, exact=True)
                if await button.count() and await button.first.is_visible():
                    clicked = await click_if_still_there(button.first)
                    break
            if not clicked:
                ack = overlay.locator(S.DIALOG_ACK_BUTTON)
                if await ack.count() and await ack.first.is_visible():
                    clicked = await click_if_still_there(ack.first)
            if not clicked:
                break

    @translated
    async def dismiss(self) -> None:
        """docs/aistudio.md §2.10: Escape stray backdrops, delete tooltips, remove survey iframes."""
        backdrop = self.page.locator(S.BACKDROP_SHOWING)
        for _ in range(3):
            if not await backdrop.count():
                break
            await self.page.keyboard.press("Escape")
            try:
                await backdrop.first.wait_for(state="detached", timeout=500)
            except PlaywrightTimeout:
                continue
        if await backdrop.count():
            # A backdrop that ignores Escape: remove it so it cannot swallow clicks.
            await self._remove([S.BACKDROP_SHOWING])
        await self.page.mouse.move(0, 0)
        await self._remove([*S.TOOLTIP_SELECTORS, S.SURVEY_IFRAMES])

    async def _remove(self, selectors: list[str]) -> None:
        await self.page.evaluate(scripts.REMOVE, [selectors, S.OVERLAY_PANE, S.OVERLAY_PANE_KEEP])

    async def _reject_cookie_banner(self) -> None:
        banner = self.page.locator(S.COOKIE_BANNER_REJECT)
        if await banner.count() and await banner.first.is_visible():
            await click_if_still_there(banner.first)


async def click_if_still_there(loc: Locator) -> bool:
    """Click a transient control (a dialog button); False when it went away first."""
    try:
        await loc.click(timeout=2_000)
        return True
    except PlaywrightError as exc:
        log.info("transient control went away: %s", first_line(exc))
        return False
