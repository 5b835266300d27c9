"""Pure helpers: secret redaction, snapshot pruning and folder modes, profile refresh."""

from __future__ import annotations

import json
import os

import pytest

from browser_worker.auth import refresh_profile, sapisid_from_profile, write_private_json
from browser_worker.snapshots import PageJournal, prune, redact, write_snapshot


def test_redact_removes_cookie_values_tokens_and_auth_headers():
    """Known secrets, cookie pairs, JSON secrets and SAPISIDHASH headers are all replaced."""
    html = (
        '<script>document.cookie="SID=abc123secret; SAPISID=zzzyyyxxx"</script>'
        '<div data-x=\'{"access_token": "tok-987654"}\'>Authorization: SAPISIDHASH 1700_deadbeef</div>'
        "<p>plain text stays, key AIzaSyA1234567890123456789012345678901</p>"
    )
    out = redact(html, secrets=["verysecretvalue"]) + redact(
        "x verysecretvalue y", secrets=["verysecretvalue"]
    )
    for secret in ("abc123secret", "zzzyyyxxx", "tok-987654", "deadbeef", "verysecretvalue", "AIzaSyA123"):
        assert secret not in out
    assert "plain text stays" in out


class _FakeStudio:
    async def screenshot(self) -> bytes:
        return b"\x89PNG fake"

    async def html(self) -> str:
        return "<html>SID=cookie-value-123456</html>"


@pytest.mark.asyncio
async def test_snapshot_folder_is_private_redacted_and_pruned(tmp_path):
    """Each snapshot has its four files in a 0700 folder; only the newest N are kept."""
    journal = PageJournal()
    journal.console.append("log: hello")
    journal.network.append("-> POST https://x/GenerateContent?key=AIzaSyA1234567890123456789012345678901")
    folders = []
    for i in range(4):
        folder = await write_snapshot(
            tmp_path,
            3,
            f"req-{i}",
            "upstream",
            message="boom",
            studio=_FakeStudio(),
            journal=journal,
            secrets=["cookie-value-123456"],
        )
        folders.append(folder)
    kept = sorted(p for day in tmp_path.iterdir() for p in day.iterdir())
    assert len(kept) <= 3
    last = folders[-1]
    assert {p.name for p in last.iterdir()} >= {"screenshot.png", "page.html", "console.txt", "network.txt"}
    assert oct(last.stat().st_mode & 0o777) == "0o700"
    assert "cookie-value-123456" not in (last / "page.html").read_text()
    assert "AIzaSy" not in (last / "network.txt").read_text()
    prune(tmp_path, 0)
    assert not any(tmp_path.iterdir())


def test_refresh_profile_keeps_other_keys_and_stays_private(tmp_path):
    """Cookie refresh replaces cookies and origins only; the file stays 0600 in a 0700 folder."""
    path = tmp_path / "active" / "me.json"
    write_private_json(path, {"cookies": [], "origins": [], "note": "keep me"})
    refresh_profile(path, {"cookies": [{"name": "SID", "value": "v"}], "origins": [{"origin": "o"}]})
    data = json.loads(path.read_text())
    assert data == {
        "cookies": [{"name": "SID", "value": "v"}],
        "origins": [{"origin": "o"}],
        "note": "keep me",
    }
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert oct(os.stat(path.parent).st_mode & 0o777) == "0o700"


def test_sapisid_is_read_from_a_saved_profile(tmp_path):
    """The stream helper's credential; anything unreadable gives None, never an exception."""
    path = tmp_path / "me.json"
    write_private_json(path, {"cookies": [{"name": "SID", "value": "a"}, {"name": "SAPISID", "value": "b"}]})
    assert sapisid_from_profile(path) == "b"
    write_private_json(path, {"cookies": [{"name": "SID", "value": "a"}]})
    assert sapisid_from_profile(path) is None
    path.write_text("[not json")
    assert sapisid_from_profile(path) is None
    assert sapisid_from_profile(tmp_path / "missing.json") is None
