"""Browser clients (CORS): no cross-origin access by default; listed origins get preflights answered and the
CORS headers on every /v1 answer, streams and errors included; ``*`` only together with keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api_server.app import create_app
from shared.settings import SettingsError, load_settings
from tests.api_server.conftest import make_settings
from tests.api_server.fake_worker import FakeWorker, content, error, finish
from tests.requirements import skip_unless

APP = "http://app.example:3000"
BODY: dict[str, Any] = {"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}
PREFLIGHT = {
    "Origin": APP,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os, x-evil",
}


async def test_by_default_no_origin_is_allowed(ready: TestClient, fake: FakeWorker) -> None:
    """Without CORS_ORIGINS a preflight is refused and answers carry no Access-Control-Allow-Origin."""
    resp = await ready.options("/v1/chat/completions", headers=PREFLIGHT)
    assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
    error = (await resp.json())["error"]  # the OpenAI error shape, like every other refusal
    assert error["type"] == "permission_error" and error["code"] == "cors_origin_not_allowed"
    assert "CORS_ORIGINS" in error["message"] and error["param"] is None
    resp = await ready.post("/v1/chat/completions", json=BODY, headers={"Origin": APP})
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers


@pytest.mark.parametrize("settings_overrides", [{"cors_origins": f"{APP}, https://other.example"}])
async def test_a_listed_origin_gets_preflights_and_headers_everywhere(
    ready: TestClient, fake: FakeWorker
) -> None:
    """Preflight 204 with methods and the allowed headers only; JSON, streamed and error answers all carry the
    origin; another origin gets nothing."""
    resp = await ready.options("/v1/chat/completions", headers=PREFLIGHT)
    assert resp.status == 204 and resp.headers["Access-Control-Allow-Origin"] == APP
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"authorization", "content-type", "x-stainless-os"}
    resp = await ready.post("/v1/chat/completions", json=BODY, headers={"Origin": APP})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == APP
    exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"x-request-id", "x-client-request-id", "retry-after"} <= exposed and "Origin" in resp.headers[
        "Vary"
    ]
    fake.script = [content("a"), finish()]
    resp = await ready.post("/v1/chat/completions", json={**BODY, "stream": True}, headers={"Origin": APP})
    assert resp.headers["Access-Control-Allow-Origin"] == APP and (await resp.read()).endswith(b"[DONE]\n\n")
    fake.script = [error("quota", "no quota")]
    resp = await ready.post("/v1/chat/completions", json={**BODY, "stream": True}, headers={"Origin": APP})
    assert resp.status == 429 and resp.headers["Access-Control-Allow-Origin"] == APP
    resp = await ready.get("/v1/nothing-here", headers={"Origin": APP})
    assert resp.status == 404 and resp.headers["Access-Control-Allow-Origin"] == APP
    resp = await ready.get("/v1/models", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers


@pytest.mark.parametrize("settings_overrides", [{"cors_origins": "*", "admin_key": "admin-secret"}])
async def test_star_is_honoured_only_while_keys_are_required(ready: TestClient, fake: FakeWorker) -> None:
    """``*`` with ADMIN_KEY: no CORS while no client key exists (the server is still keyless), ``*`` after."""
    resp = await ready.options("/v1/models", headers=PREFLIGHT)
    assert resp.status == 403
    created = await ready.post(
        "/api/keys", json={"label": "web"}, headers={"Authorization": "Bearer admin-secret"}
    )
    key = (await created.json())["key"]
    resp = await ready.options("/v1/models", headers=PREFLIGHT)
    assert resp.status == 204 and resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = await ready.get("/v1/models", headers={"Origin": APP})  # no key: 401, still readable by the page
    assert resp.status == 401 and resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = await ready.get("/v1/models", headers={"Origin": APP, "Authorization": f"Bearer {key}"})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"CORS_ORIGINS": "*"}, "ADMIN_KEY"),
        ({"CORS_ORIGINS": "app.example"}, "not an origin"),
        ({"CORS_ORIGINS": "https://app.example/path"}, "not an origin"),
    ],
)
def test_bad_cors_origins_stop_the_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], words: str
) -> None:
    """A bad CORS_ORIGINS is one settings error naming the variable."""
    monkeypatch.delenv("ADMIN_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=rf"^CORS_ORIGINS: .*{words}"):
        load_settings(_env_file=None)


async def test_a_real_browser_reads_answers_only_from_an_allowed_origin(short_dir: Path) -> None:
    """Chromium: a page on the allowed origin reads a streamed answer across origins (preflight and all); a page
    on another origin is blocked by the browser."""
    chromium = Path("/usr/bin/chromium")
    skip_unless(chromium.exists(), "Chromium")
    from playwright.async_api import async_playwright

    site = web.Application()
    site.router.add_get(
        "/", lambda _: web.Response(text="<html><body>page</body></html>", content_type="text/html")
    )
    pages = [TestServer(site, host="127.0.0.1"), TestServer(site, host="localhost")]
    for server in pages:
        await server.start_server()
    settings = make_settings(short_dir, cors_origins=f"http://127.0.0.1:{pages[0].port}")
    results = []
    async with FakeWorker(settings.worker_socket) as fake, TestServer(create_app(settings)) as api:
        await fake.wait_connected()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
            try:
                for server in pages:
                    page = await browser.new_page()
                    await page.goto(str(server.make_url("/")))
                    results.append(
                        await page.evaluate(
                            FETCH_JS, [str(api.make_url("/v1/chat/completions")), {**BODY, "stream": True}]
                        )
                    )
            finally:
                await browser.close()
    for server in pages:
        await server.close()
    assert results == ["read", "blocked"]


FETCH_JS = """async ([url, body]) => {
    try {
        const r = await fetch(url, {method: "POST", body: JSON.stringify(body),
                                    headers: {"Content-Type": "application/json", "Authorization": "Bearer x"}});
        return (await r.text()).includes("[DONE]") ? "read" : "unread";
    } catch (e) { return "blocked"; }
}"""
