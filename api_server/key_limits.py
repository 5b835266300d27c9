"""Per-key limits (issue 19): what one client key may ask, checked before a request reaches the queue.

A key's ``KeyLimits`` (all optional; none = no limit, as for every key made before limits existed):

* ``rpm`` — requests admitted in any 60 s;
* ``tpm`` — tokens (prompt + completion + reasoning) of the key's requests that finished in the last 60 s;
* ``daily_tokens`` — the same since 00:00 UTC; past it the key is refused until the next UTC day;
* ``max_concurrent`` — the key's requests queued or running at once;
* ``models`` — the models it may use (``*`` wildcards), matched against the model that runs (after
  ``MODEL_ALIASES``) and the name it asked for;
* ``expires_at`` — from then on the key is refused like an unknown key (401).

``KeyLimiter.admit`` raises the refusal (``RateLimited`` 429 with the exact ``Retry-After``: when the
oldest request or tokens leave the window, or the next UTC midnight; ``ModelNotAllowed`` 403) and the
error middleware shapes it in the request's dialect. Token counts come from finished requests
(``spent``); at start the day's counts are read back from the usage ledger, so a restart does not reset
``daily_tokens``.
"""

from __future__ import annotations

import collections
import fnmatch
import math
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api_server import utc
from shared.errors import PermissionDenied, RateLimited

WINDOW_S = 60.0
LIMIT_FIELDS = ("rpm", "tpm", "daily_tokens", "max_concurrent", "models", "expires_at")


class KeyLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    daily_tokens: int | None = Field(default=None, ge=1)
    max_concurrent: int | None = Field(default=None, ge=1)
    models: list[str] | None = Field(default=None, min_length=1, max_length=100)
    #: Unix seconds (an ISO 8601 date/time is accepted and converted).
    expires_at: float | None = None

    @field_validator("models")
    @classmethod
    def _patterns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not p.strip() or len(p) > 200 for p in value):
            raise ValueError("each model pattern must be a non-empty string of at most 200 characters")
        return value

    @field_validator("expires_at", mode="before")
    @classmethod
    def _when(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return utc.unix_seconds(value)
            except ValueError:
                raise ValueError("expires_at must be Unix seconds or an ISO 8601 date/time") from None
        return value

    def allows(self, *models: str) -> bool:
        return self.models is None or any(fnmatch.fnmatchcase(m, p) for m in models for p in self.models)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class ModelNotAllowed(PermissionDenied):
    default_code = "model_not_allowed"


def _seconds(wait: float) -> float:
    """A ``Retry-After`` in whole seconds that is never early."""
    return float(max(1, math.ceil(wait)))


class KeyLimiter:
    def __init__(
        self, limits_of: Callable[[str], KeyLimits], *, clock: Callable[[], float] = time.time
    ) -> None:
        self.limits_of = limits_of
        self.clock = clock
        self._admitted: dict[str, collections.deque[float]] = {}
        self._tokens: dict[str, collections.deque[tuple[float, int]]] = {}
        self._active: collections.Counter[str] = collections.Counter()

    # ---- accounting

    def spent(self, key_id: str | None, tokens: int, at: float | None = None) -> None:
        """A finished request of ``key_id`` used ``tokens``."""
        if key_id and tokens > 0:
            self._tokens.setdefault(key_id, collections.deque()).append(
                (self.clock() if at is None else at, tokens)
            )

    def release(self, key_id: str | None) -> None:
        """An admitted request ended (however it ended)."""
        if key_id and self._active[key_id] > 0:
            self._active[key_id] -= 1

    def _tokens_since(self, key_id: str, since: float) -> tuple[int, collections.deque[tuple[float, int]]]:
        spent = self._tokens.get(key_id, collections.deque())
        day_start = utc.day_start(self.clock())
        while spent and spent[0][0] < min(since, day_start):
            spent.popleft()
        return sum(t for at, t in spent if at >= since), spent

    # ---- the check

    def admit(self, key_id: str | None, *models: str) -> bool:
        """Refuse (raise) or admit one request of ``key_id``; True when it was counted (``release`` it)."""
        if key_id is None:
            return False
        limits = self.limits_of(key_id)
        now = self.clock()
        if not limits.allows(*models):
            raise ModelNotAllowed(
                f"This API key may not use the model '{models[-1]}' (allowed: {', '.join(limits.models or [])}).",
                param="model",
            )
        if limits.max_concurrent is not None and self._active[key_id] >= limits.max_concurrent:
            raise RateLimited(
                f"This API key already has {limits.max_concurrent} request(s) running or queued (max_concurrent).",
                retry_after=1.0,
                code="concurrency_limit_exceeded",
            )
        admitted = self._admitted.setdefault(key_id, collections.deque())
        while admitted and admitted[0] <= now - WINDOW_S:
            admitted.popleft()
        if limits.rpm is not None and len(admitted) >= limits.rpm:
            raise RateLimited(
                f"This API key is limited to {limits.rpm} requests per minute (rpm).",
                retry_after=_seconds(admitted[0] + WINDOW_S - now),
                code="rpm_limit_exceeded",
            )
        if limits.tpm is not None:
            used, spent = self._tokens_since(key_id, now - WINDOW_S)
            if used >= limits.tpm:
                over, wait = used - limits.tpm, WINDOW_S
                for at, tokens in spent:  # the oldest tokens leave the window first
                    if at < now - WINDOW_S:
                        continue
                    over -= tokens
                    if over < 0:
                        wait = at + WINDOW_S - now
                        break
                raise RateLimited(
                    f"This API key is limited to {limits.tpm} tokens per minute (tpm); {used} were used in the "
                    "last minute.",
                    retry_after=_seconds(wait),
                    code="tpm_limit_exceeded",
                )
        if limits.daily_tokens is not None:
            midnight = utc.next_midnight(now)
            used, _ = self._tokens_since(key_id, utc.day_start(now))
            if used >= limits.daily_tokens:
                raise RateLimited(
                    f"This API key used its {limits.daily_tokens} tokens for today (daily_tokens); it is served "
                    "again from 00:00 UTC.",
                    retry_after=_seconds(midnight - now),
                    code="daily_token_limit_exceeded",
                )
        admitted.append(now)
        self._active[key_id] += 1
        return True
