"""``Cooldowns``: which accounts rest after a quota, rate-limit or permission error (pure bookkeeping).

``cool(account, error)`` starts a cooldown as long as the error says (``Retry-After``: a minute for a
rate limit, an hour for a used-up quota; ``DEFAULT_COOLDOWN_S`` when it says nothing). When it is
over the account **ramps up**: ``is_cooling`` turns it into a ramping account, which the supervisor
lets serve with one page at a time until ``succeeded`` says a job went through there.
"""

from __future__ import annotations

import logging
import time

from shared.errors import PermissionDenied, QuotaExceeded, RateLimited, ServiceError

log = logging.getLogger(__name__)

#: The cooldown of an account whose error gave no time (a permission error).
DEFAULT_COOLDOWN_S = 300.0
#: The errors that say the account, not the request, is the problem.
COOLING_ERRORS = (QuotaExceeded, RateLimited, PermissionDenied)


class Cooldowns:
    def __init__(self) -> None:
        #: Account name -> when its cooldown ends (``time.time()``).
        self.until: dict[str, float] = {}
        #: Accounts whose cooldown is over and that serve with one page until a job succeeds.
        self.ramping: set[str] = set()

    def cooling_until(self, account: str | None) -> float | None:
        """When ``account``'s cooldown ends, or None when it is not cooling."""
        until = self.until.get(account or "")
        return until if until is not None and until > time.time() else None

    def is_cooling(self, account: str | None) -> bool:
        """Whether ``account`` is cooling; a cooldown that is over starts its ramp-up."""
        if account is None or account not in self.until:
            return False
        if self.cooling_until(account) is not None:
            return True
        del self.until[account]
        self.ramping.add(account)
        log.info("account %s: cooldown over; ramping up with one page", account)
        return False

    def cool(self, account: str, error: ServiceError) -> bool:
        """Start (or lengthen) ``account``'s cooldown when ``error`` is about the account; whether it did."""
        if not isinstance(error, COOLING_ERRORS):
            return False
        seconds = error.retry_after if error.retry_after is not None else DEFAULT_COOLDOWN_S
        self.until[account] = max(time.time() + seconds, self.until.get(account, 0.0))
        self.ramping.discard(account)
        log.warning("account %s cools down for %.0f s (%s)", account, seconds, error.kind)
        return True

    def succeeded(self, account: str | None) -> bool:
        """A job went through on ``account``: it serves with all its pages again; whether it was ramping."""
        if account not in self.ramping:
            return False
        self.ramping.discard(account)
        log.info("account %s: back to all its pages", account)
        return True

    def next_end(self) -> float | None:
        """The earliest end of a running cooldown (the supervisor looks again then)."""
        return min(self.until.values(), default=None)
