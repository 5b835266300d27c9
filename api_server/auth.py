"""Client API keys: a small JSON store of sha256 hashes, and the header parsing.

The file (``settings.api_keys_file``, mode 0600 in a 0700 folder) holds, per
key, an id, a short display prefix, the sha256 hex digest, a label and the
creation time; the full key is shown once, when created. Comparisons use
``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from api_server.key_limits import LIMIT_FIELDS, KeyLimits

log = logging.getLogger(__name__)

KEY_PREFIX = "sk-aisp-"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


#: Headers that carry a key as is: Anthropic's and OpenAI-compatible clients', and Google's.
KEY_HEADERS = ("x-api-key", "x-goog-api-key")


def presented_key(request: web.Request, *, from_query: bool = False) -> str | None:
    """The key from ``Authorization: Bearer <key>``, ``x-api-key`` or ``x-goog-api-key``; with
    ``from_query`` also the ``?key=`` parameter that Google's clients may send instead (only the
    client API takes it: a key in a URL ends up in proxies' and browsers' histories)."""
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for header in KEY_HEADERS:
        key = request.headers.get(header, "").strip()
        if key:
            return key
    if from_query:
        return request.query.get("key", "").strip() or None
    return None


#: The client API's path roots: OpenAI's and Anthropic's ``/v1``, Gemini's ``/v1beta``.
CLIENT_API_ROOTS = ("/v1", "/v1beta")


def is_client_api(path: str) -> bool:
    """The path belongs to the client API (keys checked, CORS applies)."""
    return any(path == root or path.startswith(root + "/") for root in CLIENT_API_ROOTS)


def same_secret(given: str | None, expected: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Caller:
    """Who sent a /v1 request: the admin (or anybody, while no client key exists) sees every request;
    a client key (``key_id``) sees only its own."""

    key_id: str | None = None

    @property
    def sees_all(self) -> bool:
        return self.key_id is None

    def may_see(self, owner: str | None) -> bool:
        return self.sees_all or owner == self.key_id


#: The caller of a request that no key check concerned (keyless mode, admin).
EVERYONE = Caller()


def _limits(record: dict[str, Any]) -> KeyLimits:
    """A stored key's limits (fields it lacks: no limit)."""
    return KeyLimits.model_validate({k: record[k] for k in LIMIT_FIELDS if k in record})


class KeyStore:
    """The client keys, loaded from and saved to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._records: list[dict[str, Any]] = self._load()

    def _load(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.error("cannot read %s (%s); starting with no client keys", self.path, exc)
            return []
        records = data.get("keys", []) if isinstance(data, dict) else []
        return [r for r in records if isinstance(r, dict) and isinstance(r.get("hash"), str)]

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"keys": self._records}, fh, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    @property
    def has_keys(self) -> bool:
        return bool(self._records)

    def verify(self, key: str | None) -> bool:
        return self.identify(key) is not None

    def identify(self, key: str | None) -> str | None:
        """The id of the client key ``key`` is, or None (also once the key expired: ``expires_at``)."""
        if not key:
            return None
        wanted = digest(key)
        found: dict[str, Any] | None = None
        for record in self._records:  # no early exit: constant work per record
            if hmac.compare_digest(wanted, record["hash"]):
                found = record
        if found is None:
            return None
        if _limits(found).expired(time.time()):
            log.info("refused the expired client key %s", found.get("id"))
            return None
        return str(found.get("id"))

    def limits(self, key_id: str) -> KeyLimits:
        """The key's limits (none for an unknown key or one made before limits existed)."""
        record = next((r for r in self._records if r.get("id") == key_id), None)
        return KeyLimits() if record is None else _limits(record)

    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        out = {k: record.get(k) for k in ("id", "prefix", "label", "created")}
        out.update(_limits(record).model_dump())
        return out

    def public(self) -> list[dict[str, Any]]:
        return [self._public(r) for r in self._records]

    def create(self, label: str = "", limits: KeyLimits | None = None) -> tuple[dict[str, Any], str]:
        """Add a key; returns (public record, the full key, shown only now)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record: dict[str, Any] = {
            "id": "key_" + secrets.token_hex(8),
            "prefix": key[: len(KEY_PREFIX) + 4],
            "hash": digest(key),
            "label": label,
            "created": int(time.time()),
        }
        if limits is not None:
            record.update(limits.model_dump(exclude_none=True))
        self._records.append(record)
        self._save()
        log.info("created client key %s (%s)", record["id"], label or "no label")
        return self._public(record), key

    def update(self, key_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Change a key's label or limits (a limit set to None is removed); None for an unknown key.
        ``changes`` must have been checked (``KeyLimits``)."""
        record = next((r for r in self._records if r.get("id") == key_id), None)
        if record is None:
            return None
        for name, value in changes.items():
            if value is None:
                record.pop(name, None)
            else:
                record[name] = value
        self._save()
        log.info("changed client key %s: %s", key_id, ", ".join(sorted(changes)))
        return self._public(record)

    def delete(self, key_id: str) -> bool:
        before = len(self._records)
        self._records = [r for r in self._records if r.get("id") != key_id]
        if len(self._records) == before:
            return False
        self._save()
        log.info("deleted client key %s", key_id)
        return True


class FailedAuthLimiter:
    """Counts failed key checks per client address; past ``limit`` within ``window_s`` the address is locked
    out for ``lockout_s`` (every key-checked request answers 429 then, a right key included, so guessing gets
    no signal). Bounded: at most ``max_addresses`` addresses are tracked (the stalest are forgotten)."""

    def __init__(
        self,
        limit: int,
        lockout_s: float,
        *,
        window_s: float = 60.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.lockout_s = lockout_s
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}

    def retry_after(self, address: str) -> float | None:
        """Seconds the address stays locked out, or None when it is not."""
        until = self._locked_until.get(address)
        if until is None:
            return None
        left = until - self._clock()
        if left <= 0:
            del self._locked_until[address]
            return None
        return left

    def failed(self, address: str) -> None:
        if self.limit <= 0:
            return
        now = self._clock()
        recent = [t for t in self._failures.pop(address, []) if now - t < self.window_s]
        recent.append(now)
        if len(recent) >= self.limit:
            self._locked_until[address] = now + self.lockout_s
            log.warning(
                "%d failed key attempts from %s within %.0f s: refusing it for %.0f s",
                len(recent),
                address,
                self.window_s,
                self.lockout_s,
            )
            recent = []
        else:
            self._failures[address] = recent  # re-inserted: the dict is ordered stalest first
        while len(self._failures) > self.max_addresses:
            del self._failures[next(iter(self._failures))]
        while len(self._locked_until) > self.max_addresses:
            del self._locked_until[next(iter(self._locked_until))]
