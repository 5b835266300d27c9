"""Names and files of accounts added without a desktop (issue 20): a typed name is checked, an unnamed sign-in
gets a free name, a saved login is private and never replaces an existing account, and a third sign-in at once
is refused before the browser is asked."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from browser_worker import remote_login
from browser_worker.remote_login import LoginRefused, RemoteLogins, check_name, name_from_state, save_account
from shared import protocol
from shared.settings import Settings

STATE = {"cookies": [{"name": "SID", "value": "v", "domain": ".google.com", "path": "/"}], "origins": []}


def settings(tmp_path: Path) -> Settings:
    return Settings(auth_profiles_dir=tmp_path / "auth", run_dir=tmp_path / "run")


@pytest.mark.parametrize("name", ["", "../evil", "a b", "x" * 65, "naïve"])
def test_a_name_outside_the_pattern_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(LoginRefused, match="letters, digits"):
        check_name(settings(tmp_path), name)


def test_an_unnamed_sign_in_gets_the_first_free_name(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert name_from_state(s, STATE) == "account"
    save_account(s, "account", STATE)
    assert name_from_state(s, STATE) == "account-2"
    save_account(s, "account-2", STATE)
    assert name_from_state(s, STATE) == "account-3"


def test_a_saved_login_is_private_and_never_replaces_an_account(tmp_path: Path) -> None:
    s = settings(tmp_path)
    save_account(s, "work", STATE)
    path = s.auth_profiles_dir / "active" / "work.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert json.loads(path.read_text()) == STATE
    with pytest.raises(LoginRefused, match="exists already"):
        check_name(s, "work")
    with pytest.raises(LoginRefused, match="exists already"):
        save_account(s, "work", {"cookies": [], "origins": []})
    assert json.loads(path.read_text()) == STATE


def test_a_sign_in_beyond_the_limit_is_refused_before_the_browser_is_asked(tmp_path: Path) -> None:
    logins = RemoteLogins(settings(tmp_path), lambda: None)
    for n in range(remote_login.MAX_SESSIONS):
        logins.sessions[f"login_{n}"] = None  # type: ignore[assignment]  # only their number counts here

    async def send(msg: protocol.Message) -> None:
        raise AssertionError(f"nothing is sent: {msg}")

    with pytest.raises(LoginRefused, match="sign-ins are open already"):
        asyncio.run(logins.start("new", send))


def test_a_sign_in_before_the_browser_runs_is_refused_with_a_reason(tmp_path: Path) -> None:
    async def send(msg: protocol.Message) -> None:
        raise AssertionError(f"nothing is sent: {msg}")

    with pytest.raises(LoginRefused, match="browser is not running yet"):
        asyncio.run(RemoteLogins(settings(tmp_path), lambda: None).start(None, send))
