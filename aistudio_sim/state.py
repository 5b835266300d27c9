"""Simulator state: accounts and sessions (persisted in the state dir), runtime config toggles,
recorded GenerateContent requests, jserrors and an event log (in memory)."""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .helper import MirrorBook

SESSION_COOKIES = ("SID", "SAPISID", "HSID", "SSID", "APISID", "__Secure-1PSID", "__Secure-3PSID")
HTTP_ONLY_EXEMPT = frozenset({"SAPISID"})

OVERLAYS = (
    "transparent_backdrop",
    "tooltip",
    "survey_iframe",
    "post_upload_dialog",
    "welcome_dialog",
    "cookie_banner",
)

#: Changed layouts the page can switch to (``dom_variant``), as AI Studio's own UI changes do; each breaks
#: one named selector of the worker (the simulator README says which, and the override that restores it).
DOM_VARIANTS = ("renamed_run_button", "moved_advanced_settings", "no_top_p", "first_use_dialog")

DEFAULT_CONFIG: dict[str, Any] = {
    "new_chat_resets_function_calling": False,
    "inject_overlays": [],
    "first_use_dialogs": False,
    "quota_exhausted_accounts": [],
    "exhausted_accounts": [],
    "rate_limited_accounts": {},
    "denied_accounts": [],
    "expired_accounts": [],
    "default_model": "gemini-2.5-pro",
    "chunk_delay_ms": 15,
    "gzip": True,
    "virtualize_turns": False,
    "accept_any_email": False,
    "grounding_index": 7,
    "page_unknown_models": [],
    "dom_variant": None,
}

_CONFIG_TYPES: dict[str, type | tuple[type, ...]] = {
    "new_chat_resets_function_calling": bool,
    "inject_overlays": list,
    "first_use_dialogs": bool,
    "quota_exhausted_accounts": list,
    "exhausted_accounts": list,
    "rate_limited_accounts": dict,
    "denied_accounts": list,
    "expired_accounts": list,
    "default_model": str,
    "chunk_delay_ms": int,
    "gzip": bool,
    "virtualize_turns": bool,
    "accept_any_email": bool,
    "grounding_index": int,
    "page_unknown_models": list,
    "dom_variant": (str, type(None)),
}


#: The config keys that name accounts (each must be known to the simulator).
ACCOUNT_KEYS = ("exhausted_accounts", "rate_limited_accounts", "denied_accounts", "expired_accounts")


class ConfigError(ValueError):
    """A config update names an unknown key or has a value of the wrong type."""


def _is_a(value: Any, expected: type | tuple[type, ...]) -> bool:
    """``isinstance`` that leaves ``value`` typed Any for the per-key checks after it."""
    return isinstance(value, expected)


def validate_config_update(update: Any, known_accounts: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``update`` checked key by key; the per-account keys (``ACCOUNT_KEYS``) may name only
    ``known_accounts``."""
    if not isinstance(update, dict):
        raise ConfigError("config update must be a JSON object")
    for key, value in update.items():
        expected = _CONFIG_TYPES.get(key)
        if expected is None:
            raise ConfigError(f"unknown config key {key!r}")
        if key == "dom_variant" and value not in (None, "normal", *DOM_VARIANTS):
            raise ConfigError(f"unknown dom_variant {value!r}; known: {['normal', *DOM_VARIANTS]}")
        if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{key} must be an integer")
        if not _is_a(value, expected):
            raise ConfigError(f"{key} must be {getattr(expected, '__name__', expected)}")
        if key == "inject_overlays":
            unknown = [v for v in value if v not in OVERLAYS]
            if unknown:
                raise ConfigError(f"unknown overlays {unknown}; known: {list(OVERLAYS)}")
        if key == "quota_exhausted_accounts" and not all(isinstance(v, str) for v in value):
            raise ConfigError("quota_exhausted_accounts must be a list of emails")
        if key in ACCOUNT_KEYS:
            _check_accounts(key, value, known_accounts)
        if key == "page_unknown_models" and not all(isinstance(v, str) and v for v in value):
            raise ConfigError("page_unknown_models must be a list of model ids")
        if key == "chunk_delay_ms" and value < 0:
            raise ConfigError("chunk_delay_ms must be >= 0")
        if key == "grounding_index" and value not in (7, 8):
            raise ConfigError("grounding_index must be 7 or 8")
    return dict(update)


def _check_accounts(key: str, value: list[Any] | dict[str, Any], known: frozenset[str]) -> None:
    """Every account named is known; a rate limit lasts a positive number of seconds."""
    for email in value:
        if not isinstance(email, str) or email.lower() not in known:
            raise ConfigError(f"{key}: unknown account {email!r}; known: {sorted(known)}")
        if isinstance(value, dict):
            seconds = value[email]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
                raise ConfigError(f"{key}: {email} needs a positive number of seconds, not {seconds!r}")


@dataclass
class Session:
    email: str
    cookies: dict[str, str]
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {"email": self.email, "cookies": self.cookies, "created_at": self.created_at}


def _write_private_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class AccountStore:
    """Demo accounts (`accounts.json`) and live sessions (`sessions.json`) in the state dir.

    A session is valid when the request's `SID` and `SAPISID` cookies match one stored session.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._accounts_path = state_dir / "accounts.json"
        self._sessions_path = state_dir / "sessions.json"
        if not self._accounts_path.exists():
            _write_private_json(
                self._accounts_path,
                {
                    "accounts": [{"email": "demo@example.com", "password": "demo"}],
                    "accept_any_email": False,
                },
            )
        data = json.loads(self._accounts_path.read_text())
        self.accounts: dict[str, str] = {a["email"].lower(): a["password"] for a in data["accounts"]}
        self.demo_email: str = data["accounts"][0]["email"].lower()
        self.accept_any_email_default: bool = bool(data.get("accept_any_email", False))
        self.sessions: dict[str, Session] = {}
        self._loaded_mtime: int | None = None
        self._load_sessions()

    def _load_sessions(self) -> None:
        """(Re)load sessions; another process (`demo-profile`) may have added one."""
        try:
            mtime = self._sessions_path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._loaded_mtime:
            return
        raw = json.loads(self._sessions_path.read_text())
        self.sessions = {
            sid: Session(s["email"], s["cookies"], s["created_at"])
            for sid, s in raw.get("sessions", {}).items()
        }
        self._loaded_mtime = mtime

    def _save(self) -> None:
        _write_private_json(
            self._sessions_path, {"sessions": {sid: s.to_json() for sid, s in self.sessions.items()}}
        )
        self._loaded_mtime = self._sessions_path.stat().st_mtime_ns

    def check_password(self, email: str, password: str, *, accept_any_email: bool) -> bool:
        email = email.strip().lower()
        if not email:
            return False
        if email in self.accounts:
            return secrets.compare_digest(self.accounts[email], password)
        return accept_any_email and "@" in email

    def create_session(self, email: str) -> Session:
        cookies = {name: secrets.token_urlsafe(24) for name in SESSION_COOKIES}
        session = Session(email.strip().lower(), cookies, time.time())
        self._load_sessions()
        self.sessions[cookies["SID"]] = session
        self._save()
        return session

    def lookup(self, cookies: dict[str, str]) -> Session | None:
        sid = cookies.get("SID")
        if not sid:
            return None
        if sid not in self.sessions:
            self._load_sessions()
        session = self.sessions.get(sid)
        if session is None or not secrets.compare_digest(
            session.cookies["SAPISID"], cookies.get("SAPISID", "")
        ):
            return None
        return session

    def lookup_sapisid(self, sapisid: str) -> Session | None:
        """The session holding this ``SAPISID`` (the stream helper's only credential)."""
        if not sapisid:
            return None
        self._load_sessions()
        for session in self.sessions.values():
            if secrets.compare_digest(session.cookies["SAPISID"], sapisid):
                return session
        return None

    def known_emails(self) -> frozenset[str]:
        """The accounts with a password and every account signed in."""
        self._load_sessions()
        return frozenset(self.accounts) | {s.email for s in self.sessions.values()}

    def expire(self, session: Session) -> None:
        self._load_sessions()
        self.sessions.pop(session.cookies["SID"], None)
        self._save()

    def expire_all(self) -> int:
        count = len(self.sessions)
        self.sessions.clear()
        self._save()
        return count


def storage_state(session: Session) -> dict[str, Any]:
    """A Playwright `storage_state` holding the session cookies."""
    cookies = []
    for name in SESSION_COOKIES:
        cookies.append(
            {
                "name": name,
                "value": session.cookies[name],
                "domain": ".google.com",
                "path": "/",
                "expires": -1,
                "httpOnly": name not in HTTP_ONLY_EXEMPT,
                "secure": True,
                "sameSite": "None",
            }
        )
    return {"cookies": cookies, "origins": []}


def write_storage_state(path: Path, session: Session) -> None:
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    _write_private_json(path, storage_state(session))


@dataclass
class SimState:
    """Everything the running simulator knows. Lives on the app under `keys.STATE`."""

    accounts: AccountStore
    config: dict[str, Any] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    jserrors: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    call_counter: int = 0
    #: Every GenerateContent answer as written, for the stream helper (`helper.py`).
    mirrors: MirrorBook = field(default_factory=MirrorBook)
    #: When each account of ``rate_limited_accounts`` is served again (``time.monotonic()``).
    rate_limited_until: dict[str, float] = field(default_factory=dict)
    _next_id: int = 1

    def __post_init__(self) -> None:
        if not self.config:
            self.config = self.default_config()

    def default_config(self) -> dict[str, Any]:
        config: dict[str, Any] = json.loads(json.dumps(DEFAULT_CONFIG))
        config["accept_any_email"] = self.accounts.accept_any_email_default
        return config

    def reset(self) -> None:
        self.requests.clear()
        self.jserrors.clear()
        self.events.clear()
        self.call_counter = 0
        self.mirrors.mirrors.clear()
        self.config = self.default_config()
        self.rate_limited_until.clear()

    def update_config(self, update: dict[str, Any]) -> None:
        """Merge a validated update. ``rate_limited_accounts`` replaces the limits (``{}`` ends them
        all); each given account's limit starts now."""
        if "rate_limited_accounts" in update:
            limits = {e.lower(): s for e, s in update["rate_limited_accounts"].items()}
            now = time.monotonic()
            self.rate_limited_until = {e: now + s for e, s in limits.items()}
            update = {**update, "rate_limited_accounts": limits}
        self.config.update(update)

    def account_error(self, email: str) -> str | None:
        """The error every GenerateContent of ``email`` gets from the config: ``"login"`` (its session
        ends) for an expired account, ``"permission"`` for a denied one, ``"quota"`` for an exhausted one,
        ``"rate_limit"`` while its limit lasts, else None."""
        if email in {e.lower() for e in self.config["expired_accounts"]}:
            return "login"
        if email in {e.lower() for e in self.config["denied_accounts"]}:
            return "permission"
        exhausted = self.config["quota_exhausted_accounts"] + self.config["exhausted_accounts"]
        if email in {e.lower() for e in exhausted}:
            return "quota"
        until = self.rate_limited_until.get(email)
        if until is not None and time.monotonic() < until:
            return "rate_limit"
        return None

    def next_request_id(self) -> str:
        rid = f"req-{self._next_id:04d}"
        self._next_id += 1
        return rid

    def log(self, kind: str, **data: Any) -> None:
        self.events.append({"at": time.time(), "kind": kind, **data})
