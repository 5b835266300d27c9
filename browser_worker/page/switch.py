"""A ``role=switch`` control (a Material slide toggle): the run settings and the tool dialogs both own some."""

from __future__ import annotations

import logging

from playwright.async_api import Locator, expect

from browser_worker import selectors as S
from browser_worker.page.overlays import Overlays

log = logging.getLogger(__name__)


class Switch:
    """One switch, by locator and a name for the log."""

    def __init__(self, locator: Locator, name: str, overlays: Overlays, *, timeout_ms: float = 5_000) -> None:
        self.locator = locator
        self.name = name
        self.overlays = overlays
        self.timeout_ms = timeout_ms

    async def present(self) -> bool:
        return await self.locator.count() > 0

    async def is_on(self) -> bool:
        return (await self.locator.get_attribute("aria-checked")) == "true"

    async def is_disabled(self) -> bool:
        if await self.locator.is_disabled():
            return True
        return S.SWITCH_DISABLED_CLASS in ((await self.locator.get_attribute("class")) or "")

    async def set(self, want: bool) -> bool | None:
        """Switch it to ``want``; None when it is absent, False when disabled and different."""
        loc = self.locator
        if not await loc.count():
            return None
        await loc.wait_for(state="visible", timeout=self.timeout_ms)
        if await self.is_on() == want:
            return True
        if await self.is_disabled():
            log.info("%s is disabled; left %s", self.name, "off" if want else "on")
            return False
        await self.overlays.clear()
        await loc.click()
        await expect(loc).to_have_attribute("aria-checked", "true" if want else "false", timeout=3_000)
        return True
