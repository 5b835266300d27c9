"""Per-key limits (issue 19): the limiter's windows on an injected clock, then every limit over HTTP in each
dialect's shape with the official SDKs, against the fake worker."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from aiohttp.test_utils import TestClient, TestServer
from google import genai
from google.genai import errors as genai_errors

from api_server.app import create_app
from api_server.app_keys import QUEUE, WORKER
from api_server.auth import KeyStore
from api_server.key_limits import KeyLimiter, KeyLimits, ModelNotAllowed
from api_server.utc import next_midnight
from shared.errors import RateLimited
from shared.settings import Settings
from tests.api_server.fake_worker import HANG, FakeWorker, content, finish, usage

ADMIN = "limits-admin-key"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
MODEL = "gemini-2.5-pro"
NOON = datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **limits: Any) -> KeyLimiter:
    return KeyLimiter(lambda key_id: KeyLimits(**limits), clock=clock)


def refusal(admit: Callable[[], Any]) -> RateLimited:
    with pytest.raises(RateLimited) as refused:
        admit()
    return refused.value


# --------------------------------------------------------------------------- the limiter itself


def test_rpm_retry_after_is_when_the_oldest_request_leaves_the_minute() -> None:
    clock = Clock(NOON)
    lim = limiter(clock, rpm=2)
    assert lim.admit("k", MODEL)
    clock.now += 10
    assert lim.admit("k", MODEL)
    clock.now += 10
    refused = refusal(lambda: lim.admit("k", MODEL))
    assert (refused.status, refused.code, refused.retry_after) == (429, "rpm_limit_exceeded", 40)
    clock.now = NOON + 60  # the first request is a minute old: out of the window
    assert lim.admit("k", MODEL)
    assert lim.admit("other", MODEL) and lim.admit(None, MODEL) is False  # per key; keyless is never counted


def test_tpm_retry_after_is_when_enough_tokens_left_the_minute() -> None:
    clock = Clock(NOON)
    lim = limiter(clock, tpm=120)
    lim.spent("k", 100, at=NOON)
    lim.spent("k", 50, at=NOON + 30)
    clock.now = NOON + 40
    refused = refusal(lambda: lim.admit("k", MODEL))
    assert (refused.code, refused.retry_after) == ("tpm_limit_exceeded", 20)  # the 100 leave at NOON + 60
    clock.now = NOON + 60.5
    assert lim.admit("k", MODEL)


def test_daily_tokens_refuse_until_the_next_utc_midnight() -> None:
    clock = Clock(NOON)
    lim = limiter(clock, daily_tokens=1000)
    lim.spent("k", 600, at=NOON - 3600)
    lim.spent("k", 400, at=NOON - 60)
    clock.now = NOON + 0.5
    refused = refusal(lambda: lim.admit("k", MODEL))
    assert (refused.code, refused.retry_after) == ("daily_token_limit_exceeded", math.ceil(12 * 3600 - 0.5))
    lim.spent("k", 5000, at=NOON - 13 * 3600)  # yesterday's tokens do not count
    clock.now = next_midnight(NOON)
    assert lim.admit("k", MODEL)


def test_max_concurrent_counts_until_release() -> None:
    lim = limiter(Clock(NOON), max_concurrent=2)
    assert lim.admit("k", MODEL) and lim.admit("k", MODEL)
    refused = refusal(lambda: lim.admit("k", MODEL))
    assert (refused.code, refused.retry_after) == ("concurrency_limit_exceeded", 1)
    lim.release("k")
    assert lim.admit("k", MODEL)


def test_models_allow_list_with_wildcards() -> None:
    lim = limiter(Clock(NOON), models=["gemini-2.5-*", "my-alias"])
    assert lim.admit("k", "gemini-2.5-flash", "gemini-2.5-flash")
    assert lim.admit("k", "gemini-2.0-flash", "my-alias")  # the name asked for counts too
    with pytest.raises(ModelNotAllowed) as refused:
        lim.admit("k", "gemini-2.0-flash", "gemini-2.0-flash")
    assert (refused.value.status, refused.value.code) == (403, "model_not_allowed")


def test_keys_made_before_limits_keep_working_with_none(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    old = {"id": "key_old", "prefix": "sk-aisp-abcd", "hash": "", "label": "old", "created": 1}
    from api_server.auth import digest

    old["hash"] = digest("sk-aisp-the-old-key")
    path.write_text(json.dumps({"keys": [old]}))
    store = KeyStore(path)
    assert store.identify("sk-aisp-the-old-key") == "key_old"
    assert store.limits("key_old") == KeyLimits()


def test_an_expired_key_is_unknown(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    record, key = store.create("soon", KeyLimits(expires_at="2020-01-01T00:00:00Z"))  # type: ignore[arg-type]
    assert record["expires_at"] == datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    assert store.identify(key) is None
    store.update(record["id"], {"expires_at": None})
    assert store.identify(key) == record["id"]


# --------------------------------------------------------------------------- over HTTP


pytestmark_http = pytest.mark.parametrize("settings_overrides", [{"admin_key": ADMIN}])


async def make_key(client: TestClient, **limits: Any) -> tuple[str, str]:
    resp = await client.post("/api/keys", json={"label": "t", **limits}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    return made["id"], made["key"]


def sdk_base(client: TestClient) -> str:
    return str(client.make_url("")).rstrip("/")


@pytestmark_http
async def test_rpm_in_every_dialect_is_its_own_429_with_retry_after(
    ready: TestClient, fake: FakeWorker
) -> None:
    base = sdk_base(ready)
    _, key = await make_key(ready, rpm=1)
    fake.script = [content("ok"), finish()]

    oa = openai.AsyncOpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
    await oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as chat:
        await oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert chat.value.code == "rpm_limit_exceeded"
    assert 59 <= int(chat.value.response.headers["retry-after"]) <= 60
    with pytest.raises(openai.RateLimitError):
        await oa.responses.create(model=MODEL, input="hi")

    an = anthropic.AsyncAnthropic(base_url=base, api_key=key, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as msg:
        await an.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert msg.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert 59 <= int(msg.value.response.headers["retry-after"]) <= 60

    gem = genai.Client(api_key=key, http_options={"base_url": base, "api_version": "v1beta"})
    with pytest.raises(genai_errors.ClientError) as google:
        await gem.aio.models.generate_content(model=MODEL, contents="hi")
    assert google.value.code == 429 and google.value.status == "RESOURCE_EXHAUSTED"
    await oa.close()
    await an.close()
    assert len(fake.submitted) == 1  # the refused requests never reached the queue


@pytestmark_http
async def test_max_concurrent_is_freed_by_every_ending(ready: TestClient, fake: FakeWorker) -> None:
    _, key = await make_key(ready, max_concurrent=1)
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    fake.script = [HANG]
    running = asyncio.ensure_future(ready.post("/v1/chat/completions", json=body, headers=headers))
    await fake.wait_submitted(1)
    second = await ready.post("/v1/chat/completions", json=body, headers=headers)
    assert second.status == 429 and (await second.json())["error"]["code"] == "concurrency_limit_exceeded"
    assert second.headers["Retry-After"] == "1"
    cancel = await ready.post(f"/v1/cancel/{ready.app[QUEUE].active()[0].id}", headers=AUTH)  # type: ignore[index]
    assert cancel.status == 200
    assert (await running).status == 499
    fake.script = [content("ok"), finish()]
    assert (await ready.post("/v1/chat/completions", json=body, headers=headers)).status == 200
    bad = await ready.post("/v1/chat/completions", json={"model": MODEL, "messages": []}, headers=headers)
    assert bad.status == 400  # refused before admission: nothing to free
    assert (await ready.post("/v1/chat/completions", json=body, headers=headers)).status == 200


@pytestmark_http
async def test_a_model_outside_the_allow_list_is_refused_in_each_dialect(
    ready: TestClient, fake: FakeWorker
) -> None:
    _, key = await make_key(ready, models=["gemini-2.0-*"])
    headers = {"Authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    user = [{"role": "user", "content": "hi"}]
    chat = await ready.post("/v1/chat/completions", json={"model": MODEL, "messages": user}, headers=headers)
    assert chat.status == 403 and (await chat.json())["error"]["code"] == "model_not_allowed"
    msg = await ready.post(
        "/v1/messages", json={"model": MODEL, "max_tokens": 9, "messages": user}, headers=headers
    )
    assert msg.status == 403 and (await msg.json())["error"]["type"] == "permission_error"
    gem = await ready.post(
        f"/v1beta/models/{MODEL}:generateContent",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        headers=headers,
    )
    assert gem.status == 403 and (await gem.json())["error"]["status"] == "PERMISSION_DENIED"
    assert fake.submitted == []


@pytestmark_http
async def test_patch_changes_limits_and_expiry_refuses_the_key(ready: TestClient, fake: FakeWorker) -> None:
    key_id, key = await make_key(ready, rpm=1)
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    fake.script = [content("ok"), finish()]
    assert (await ready.post("/v1/chat/completions", json=body, headers=headers)).status == 200
    assert (await ready.post("/v1/chat/completions", json=body, headers=headers)).status == 429
    patched = await ready.patch(f"/api/keys/{key_id}", json={"rpm": None, "label": "renamed"}, headers=AUTH)
    assert patched.status == 200 and (await patched.json())["rpm"] is None
    assert (await ready.post("/v1/chat/completions", json=body, headers=headers)).status == 200
    bad = await ready.patch(f"/api/keys/{key_id}", json={"tpm": 0}, headers=AUTH)
    assert bad.status == 400 and (await bad.json())["error"]["param"] == "tpm"
    assert (await ready.patch("/api/keys/key_nope", json={"rpm": 3}, headers=AUTH)).status == 404
    await ready.patch(f"/api/keys/{key_id}", json={"expires_at": "2020-01-01T00:00:00Z"}, headers=AUTH)
    expired = await ready.post("/v1/chat/completions", json=body, headers=headers)
    assert expired.status == 401
    listed = (await (await ready.get("/api/keys", headers=AUTH)).json())["data"]
    assert (
        listed[0]["label"] == "renamed"
        and listed[0]["expires_at"] == datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    )


@pytest.mark.parametrize("settings_overrides", [{"admin_key": ADMIN}])
async def test_daily_tokens_survive_a_restart_through_the_ledger(
    settings: Settings, fake: FakeWorker
) -> None:
    fake.script = [content("ok"), usage(11, 7, reasoning_tokens=3), finish()]
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    key = ""
    for life in range(2):
        async with TestClient(TestServer(create_app(settings))) as client:
            await client.app[WORKER].wait_usable()  # type: ignore[index]
            if life == 0:
                _, key = await make_key(client, daily_tokens=20)
                first = await client.post("/v1/chat/completions", json=body, headers={"x-api-key": key})
                assert first.status == 200  # 21 tokens used: over the day's 20
            refused = await client.post("/v1/chat/completions", json=body, headers={"x-api-key": key})
            assert refused.status == 429, life
            assert (await refused.json())["error"]["code"] == "daily_token_limit_exceeded"
    assert len(fake.submitted) == 1
