"""The selector overrides in use in this process: loaded at start, checked on the first page, reloaded on demand.

The selectors are module attributes of ``browser_worker/selectors.py``, so the overrides in use are one per
process, and so is this state. ``load_at_start`` reads ``SELECTORS_FILE`` (names and types: a bad file is
refused, logged and reported in the status, and the built-in selectors serve); the first page to start checks
the file's selectors parse (``check_pending``) before it builds a locator. ``reload``
(``POST /api/selectors/reload``) reads the file again and, when every check passes on a live page, puts it in
place all at once; the caller then has each page rebuild its regions and run its self-test again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from playwright.async_api import Page

from browser_worker import selector_overrides as overrides
from browser_worker.job import degraded
from shared import protocol
from shared.settings import Settings

if TYPE_CHECKING:
    from browser_worker.slot import Slot

log = logging.getLogger(__name__)


@dataclass
class _InUse:
    current: overrides.Overrides = field(default_factory=overrides.Overrides)
    #: The selectors of ``current`` have not been parsed by a page yet.
    unchecked: bool = False
    error: str | None = None


_state = _InUse()
#: One check of the pending selectors at a time (several pages may start at once).
_checking = asyncio.Lock()
#: The pages' refreshes after a reload (each waits for its page's job to end).
_refreshes: set[asyncio.Task[None]] = set()


def info(settings: Settings) -> protocol.SelectorsInfo:
    """What the status reports: the file, the names it overrides now, the last error."""
    file = str(settings.selectors_file) if settings.selectors_file else None
    return protocol.SelectorsInfo(file=file, overrides=sorted(_state.current.values), error=_state.error)


def load_at_start(settings: Settings) -> None:
    """Read ``SELECTORS_FILE`` when set; a bad file leaves the built-in selectors in use, with its error."""
    if settings.selectors_file is None:
        return
    try:
        loaded = overrides.load(settings.selectors_file)
    except overrides.OverrideError as exc:
        _state.error = str(exc)
        log.error("selector overrides refused, using the built-in selectors: %s", exc)
        return
    overrides.apply(loaded)
    _state.current, _state.unchecked, _state.error = loaded, True, None
    log.info("selector overrides from %s: %s", loaded.path, ", ".join(sorted(loaded.values)) or "none")


async def check_pending(page: Page) -> None:
    """On a page about to start, before it builds any locator: parse the selectors loaded at start; any that
    fails puts the built-ins back. Pages starting at once wait for the first one's check."""
    async with _checking:
        if not _state.unchecked:
            return
        try:
            await overrides.check_syntax(page, _state.current)
        except overrides.OverrideError as exc:
            overrides.apply(overrides.Overrides())
            _state.current, _state.error = overrides.Overrides(), str(exc)
            log.error("selector overrides refused, using the built-in selectors: %s", exc)
        _state.unchecked = False  # (a page closing mid-check leaves it to the next page)


async def reload(settings: Settings, page: Page | None, request_id: str) -> protocol.SelectorsReloaded:
    """Read ``SELECTORS_FILE`` again and put it in place when it passes every check (else nothing changes).

    ``page``: a live page to parse the selectors with; without one they are parsed by the first page to start.
    """
    if settings.selectors_file is None:
        return protocol.SelectorsReloaded(id=request_id, ok=False, error="SELECTORS_FILE is not set")
    try:
        loaded = overrides.load(settings.selectors_file)
        if page is not None:
            await overrides.check_syntax(page, loaded)
    except overrides.OverrideError as exc:
        log.warning("selector reload refused, the selectors in use stay: %s", exc)
        _state.error = str(exc)
        return protocol.SelectorsReloaded(
            id=request_id, ok=False, error=str(exc), overrides=sorted(_state.current.values)
        )
    changed = overrides.apply(loaded)
    degraded.forget()
    _state.current, _state.unchecked, _state.error = loaded, page is None, None
    log.info("selectors reloaded from %s; changed: %s", loaded.path, ", ".join(changed) or "nothing")
    return protocol.SelectorsReloaded(
        id=request_id, ok=True, overrides=sorted(loaded.values), changed=changed
    )


async def reload_pages(
    settings: Settings, slots: Sequence[Slot], request_id: str
) -> protocol.SelectorsReloaded:
    """``reload``, parsing with a live page of ``slots``; once in place, every started page rebuilds its regions
    and runs its self-test again, in the background (a page running a job does it after the job)."""
    live = next((s.page.page for s in slots if s.page is not None and not s.page.lost.is_set()), None)
    result = await reload(settings, live, request_id)
    if result.ok:
        for slot in slots:
            task = asyncio.get_running_loop().create_task(_refresh(slot), name=f"selectors-{slot.id}")
            _refreshes.add(task)
            task.add_done_callback(_refreshes.discard)
    return result


async def _refresh(slot: Slot) -> None:
    try:
        await slot.refresh_selectors()
    except Exception as exc:  # the page may be closing; its replacement starts with the new selectors
        log.warning("slot %s: refresh after the selector reload failed: %s", slot.id, exc)
