"""Client keys: admin-only management, hashed storage with private modes, and /v1 enforcement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api_server.key_limits import LIMIT_FIELDS
from shared.settings import Settings
from tests.api_server.fake_worker import FakeWorker

ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"admin_key": "admin-secret"}


async def test_key_routes_need_the_admin_key(client: TestClient) -> None:
    """Without or with a wrong admin key /api/keys answers 401 in the OpenAI shape."""
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"x-api-key": "wrong"}):
        resp = await client.get("/api/keys", headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("settings_overrides", [{"admin_key": None}])
async def test_key_routes_are_refused_without_a_configured_admin_key(client: TestClient) -> None:
    """With no ADMIN_KEY the routes answer 403 saying how to enable them."""
    resp = await client.post("/api/keys", headers=ADMIN)
    assert resp.status == 403
    assert "ADMIN_KEY" in (await resp.json())["error"]["message"]


async def test_created_key_is_shown_once_and_stored_hashed(client: TestClient, settings: Settings) -> None:
    """POST returns the full key once; the file holds only hash, prefix, label, created (0600 in 0700)."""
    resp = await client.post("/api/keys", json={"label": "laptop"}, headers={"x-api-key": "admin-secret"})
    assert resp.status == 201
    made = await resp.json()
    key = made["key"]
    assert key.startswith(made["prefix"]) and made["label"] == "laptop"
    path: Path = settings.api_keys_file
    text = path.read_text()
    assert key not in text
    stored = json.loads(text)["keys"][0]
    assert set(stored) == {"id", "prefix", "hash", "label", "created"}
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    listed = await (await client.get("/api/keys", headers=ADMIN)).json()
    assert listed["data"] == [{k: v for k, v in made.items() if k != "key"}]
    assert {k: v for k, v in made.items() if k in LIMIT_FIELDS} == dict.fromkeys(LIMIT_FIELDS)  # no limits


async def test_v1_needs_a_client_key_once_one_exists(client: TestClient) -> None:
    """/v1 is open with no keys; after one is created, missing/wrong keys get 401 and the key works."""
    assert (await client.get("/v1/queue")).status == 200
    key = (await (await client.post("/api/keys", headers=ADMIN)).json())["key"]
    assert (await client.get("/v1/queue")).status == 401
    assert (await client.get("/v1/queue", headers={"Authorization": "Bearer nope"})).status == 401
    assert (await client.get("/v1/queue", headers={"Authorization": f"Bearer {key}"})).status == 200
    assert (await client.get("/v1/queue", headers={"x-api-key": key})).status == 200
    info = await (await client.get("/api/info")).json()
    assert info["api_key_required"] is True


async def test_client_key_cannot_manage_keys(client: TestClient) -> None:
    """A client key is not an admin key."""
    key = (await (await client.post("/api/keys", headers=ADMIN)).json())["key"]
    assert (await client.get("/api/keys", headers={"Authorization": f"Bearer {key}"})).status == 401


async def test_deleted_key_stops_working(client: TestClient) -> None:
    """DELETE by path or body removes the key; unknown ids are 404."""
    first = await (await client.post("/api/keys", headers=ADMIN)).json()
    second = await (await client.post("/api/keys", headers=ADMIN)).json()
    assert (await client.delete(f"/api/keys/{first['id']}", headers=ADMIN)).status == 200
    assert (await client.get("/v1/queue", headers={"x-api-key": first["key"]})).status == 401
    assert (await client.delete("/api/keys", json={"id": second["id"]}, headers=ADMIN)).status == 200
    assert (await client.delete("/api/keys?id=key_missing", headers=ADMIN)).status == 404
    assert (await client.get("/v1/queue")).status == 200  # no keys left: open again


async def test_keys_survive_a_restart(settings: Settings, client: TestClient) -> None:
    """A new KeyStore on the same file verifies the key."""
    from api_server.auth import KeyStore

    key = (await (await client.post("/api/keys", headers=ADMIN)).json())["key"]
    store = KeyStore(settings.api_keys_file)
    assert store.verify(key) and not store.verify(key + "x") and not store.verify(None)


async def _client_key(client: TestClient, label: str) -> dict[str, str]:
    created = await client.post("/api/keys", json={"label": label}, headers=ADMIN)
    return {"Authorization": f"Bearer {(await created.json())['key']}"}


async def test_a_client_key_sees_and_cancels_only_its_own_requests(ready: TestClient, fake: Any) -> None:
    """With keys, /v1/queue shows a client only its own requests and /v1/cancel of another client's id is a 404
    (as for an unknown id); the admin key sees and cancels every request."""
    import asyncio

    from tests.api_server.fake_worker import HANG

    alice, bob = await _client_key(ready, "alice"), await _client_key(ready, "bob")
    fake.script = [HANG]
    body = {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}
    running = asyncio.ensure_future(ready.post("/v1/chat/completions", json=body, headers=alice))
    await fake.wait_submitted(1)
    alice_id = fake.submitted[0].id
    waiting = asyncio.ensure_future(ready.post("/v1/chat/completions", json=body, headers=bob))

    async def rows(headers: dict[str, str]) -> list[dict[str, Any]]:
        resp = await ready.get("/v1/queue", headers=headers)
        assert resp.status == 200
        return (await resp.json())["data"]

    from api_server.app_keys import QUEUE

    await ready.app[QUEUE].wait_for(lambda q: len(q) == 2)  # type: ignore[index]
    assert [r["id"] for r in await rows(alice)] == [alice_id]
    bob_rows = await rows(bob)
    assert len(bob_rows) == 1 and bob_rows[0]["id"] != alice_id and bob_rows[0]["position"] == 1
    assert len(await rows(ADMIN)) == 2
    refused = await ready.post(f"/v1/cancel/{alice_id}", headers=bob)
    assert refused.status == 404 and (await refused.json())["error"]["code"] == "request_not_found"
    assert not running.done()
    assert (await ready.post(f"/v1/cancel/{bob_rows[0]['id']}", headers=ADMIN)).status == 200
    assert (await waiting).status == 499
    assert (await ready.post(f"/v1/cancel/{alice_id}", headers=alice)).status == 200
    assert (await running).status == 499


@pytest.mark.parametrize("settings_overrides", [{"admin_key": None}])
async def test_keyless_mode_shows_everyone_every_request(ready: TestClient, fake: Any) -> None:
    """Without keys (loopback only) /v1/queue lists every request and any caller may cancel it."""
    import asyncio

    from tests.api_server.fake_worker import HANG

    fake.script = [HANG]
    body = {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}
    running = asyncio.ensure_future(
        ready.post("/v1/chat/completions", json=body, headers={"x-api-key": "one"})
    )
    await fake.wait_submitted(1)
    rows = (await (await ready.get("/v1/queue", headers={"x-api-key": "two"})).json())["data"]
    assert [r["id"] for r in rows] == [fake.submitted[0].id]
    assert (await ready.post(f"/v1/cancel/{rows[0]['id']}")).status == 200
    assert (await running).status == 499


@pytest.mark.parametrize(
    "settings_overrides", [{"admin_key": "admin-secret", "auth_failure_limit": 3, "auth_lockout_s": 300}]
)
async def test_repeated_failed_keys_lock_the_address_out(
    ready: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """After AUTH_FAILURE_LIMIT failed key checks within a minute the address gets 429 with Retry-After, even
    with a right key (no signal for guessing), on /v1 and /api/keys alike; the lockout is logged once."""
    good = await _client_key(ready, "good")
    for _ in range(3):
        assert (await ready.get("/v1/models", headers={"Authorization": "Bearer wrong"})).status == 401
    for path, headers in (("/v1/models", good), ("/api/keys", ADMIN), ("/v1/models", {"x-api-key": "x"})):
        resp = await ready.get(path, headers=headers)
        assert resp.status == 429, path
        assert 295 <= int(resp.headers["Retry-After"]) <= 300
        assert (await resp.json())["error"]["code"] == "too_many_failed_auth"
    assert sum("failed key attempts" in r.getMessage() for r in caplog.records) == 1


def test_failed_auth_limiter_counts_per_address_within_the_window() -> None:
    """Failures older than the window do not count; addresses are independent; the lockout ends; memory is
    bounded."""
    from api_server.auth import FailedAuthLimiter

    now = [0.0]
    limiter = FailedAuthLimiter(3, 100, window_s=60, max_addresses=2, clock=lambda: now[0])
    limiter.failed("a")
    limiter.failed("a")
    now[0] = 61
    limiter.failed("a")  # the first two are out of the window
    assert limiter.retry_after("a") is None
    limiter.failed("b")
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.retry_after("a") == 100 and limiter.retry_after("b") is None
    now[0] = 161
    assert limiter.retry_after("a") is None
    for address in ("c", "d", "e"):
        limiter.failed(address)
    assert len(limiter._failures) == 2  # the stalest addresses were forgotten


async def test_the_admin_key_is_accepted_on_v1_too(ready: TestClient, fake: Any) -> None:
    """Once client keys exist, /v1 needs a key: a client key or ADMIN_KEY (as the README says), nothing else."""
    await _client_key(ready, "someone")
    assert (await ready.get("/v1/models")).status == 401
    assert (await ready.get("/v1/models", headers={"Authorization": "Bearer not-the-admin"})).status == 401
    assert (await ready.get("/v1/models", headers=ADMIN)).status == 200
    assert (await ready.get("/v1/models", headers={"x-api-key": "admin-secret"})).status == 200


# --------------------------------------------------------------------------- accounts (admin)


async def test_accounts_are_listed_and_drained_with_the_admin_key_only(
    ready: TestClient, fake: FakeWorker
) -> None:
    """GET /api/accounts and POST /api/accounts/{name}/disable|enable need the admin key; an unknown name is
    404 naming the accounts; a known one is sent to the worker, and its new state comes back."""
    assert (await ready.get("/api/accounts")).status == 401
    listed = await (await ready.get("/api/accounts", headers=ADMIN)).json()
    assert [(a["name"], a["state"]) for a in listed["data"]] == [("demo", "ready")]
    missing = await ready.post("/api/accounts/nobody/disable", headers=ADMIN)
    assert missing.status == 404 and "demo" in (await missing.json())["error"]["message"]
    assert (await ready.post("/api/accounts/demo/disable")).status == 401
    resp = await ready.post("/api/accounts/demo/disable", headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["state"] == "disabled"
    resp = await ready.post("/api/accounts/demo/enable", headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["state"] == "ready"
    assert [(a.account, a.action) for a in fake.account_actions] == [("demo", "disable"), ("demo", "enable")]
    health = await (await ready.get("/health")).json()
    assert health["components"]["worker"]["accounts"][0]["name"] == "demo"
