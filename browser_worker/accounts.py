"""Accounts and their pages, decided from the login files (pure: no page, no I/O).

``plan_pages`` gives every account ``PAGES_PER_ACCOUNT`` slots (reusing unassigned ones first) and
marks the slots of accounts that are gone as draining; ``account_states`` says what each account is
doing, for the worker's status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from browser_worker.cooldowns import Cooldowns
from browser_worker.slot import Slot
from shared import protocol

log = logging.getLogger(__name__)


def plan_pages(
    slots: list[Slot], profiles: Sequence[Path], per_account: int, new_slot: Callable[[], Slot]
) -> None:
    """Drain the slots of accounts not in ``profiles``; give each account ``per_account`` live slots
    (``new_slot()`` appends one to ``slots``); with no account at all keep ``per_account`` spare slots."""
    for slot in slots:
        if slot.profile is not None and slot.profile not in profiles and not slot.draining:
            log.info("account %s removed or disabled: draining slot %s", slot.account, slot.id)
            slot.draining = True
            slot.ready.clear()
    spare = [s for s in slots if s.profile is None]
    for profile in profiles:
        have = len([s for s in slots if s.profile == profile and not s.draining])
        for _ in range(per_account - have):
            slot = spare.pop(0) if spare else new_slot()
            slot.profile = profile
    while not profiles and len(slots) < per_account:
        new_slot()


def account_states(
    profiles: Sequence[Path], slots: Sequence[Slot], disabled: set[str], cooldowns: Cooldowns
) -> list[protocol.AccountStatus]:
    """Every account's state, in the order of their login files."""
    out: list[protocol.AccountStatus] = []
    for profile in profiles:
        name = profile.stem
        pages = [s for s in slots if s.account == name]
        live = [s for s in pages if not s.draining]
        started = [s for s in live if s.state != "standby"]
        until = cooldowns.cooling_until(name)
        if name in disabled:
            state = "draining" if pages else "disabled"
        elif until is not None:
            state = "cooling"
        elif any(s.state in ("ready", "degraded") for s in started):
            state = "ready"
        elif started and all(s.state == "busy" for s in started):
            state = "busy"
        elif started and all(s.state == "login_required" for s in started):
            state = "login_required"
        else:
            state = "starting"
        out.append(protocol.AccountStatus(name=name, state=state, pages=len(live), cooling_until=until))
    return out
