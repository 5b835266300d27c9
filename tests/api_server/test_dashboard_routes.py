"""The dashboard's routes against the fake worker (issue 20): static files confined to their folder, the live
feed behind the admin key, the error snapshots (text redacted unless asked), and the control routes' refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from tests.api_server.fake_worker import FakeWorker

ADMIN_KEY = "dashboard-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def settings_overrides(short_dir: Path) -> dict[str, Any]:
    return {"admin_key": ADMIN_KEY, "error_snapshot_dir": short_dir / "errors"}


async def test_the_page_and_its_files_load_without_a_key_and_nothing_else_does(client: TestClient) -> None:
    page = await client.get("/dashboard")
    assert page.status == 200 and page.content_type == "text/html"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for name, kind in (("app.js", "text/javascript"), ("api.js", "text/javascript"), ("app.css", "text/css")):
        resp = await client.get(f"/dashboard/{name}")
        assert (resp.status, resp.content_type) == (200, kind), name
    for bad in ("../app.py", "..%2f__init__.py", "%2e%2e%2fapp.py", ".hidden", "nope.js", "__init__.py"):
        resp = await client.get(f"/dashboard/{bad}")
        assert resp.status == 404, bad
        assert "import" not in await resp.text()


async def test_the_feed_needs_the_admin_key_and_sends_the_state_at_once(
    ready: TestClient, fake: FakeWorker
) -> None:
    assert (await ready.get("/api/events")).status == 401
    assert (await ready.get("/api/events", headers={"Authorization": "Bearer nope"})).status == 401
    resp = await ready.get("/api/events", headers=ADMIN)
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    assert await resp.content.readline() == b"event: state\n"
    data = await resp.content.readline()
    state = orjson.loads(data.removeprefix(b"data: "))
    assert set(state) == {"processes", "accounts", "slots", "self_test", "selectors", "queue", "recent"}
    assert state["processes"]["browser_worker"]["state"] == "ready"
    assert state["processes"]["stream_proxy"] == {"state": "disabled", "message": "STREAM_PORT=0"}
    resp.close()


async def test_snapshots_are_listed_and_their_text_is_shown_only_when_asked(
    ready: TestClient, short_dir: Path
) -> None:
    folder = short_dir / "errors" / "2026-12-05" / "120102_req_abc_upstream"
    folder.mkdir(parents=True)
    (folder / "error.txt").write_text("upstream: the prompt could not be submitted\n")
    (folder / "page.html").write_text("<p>my secret prompt</p><b> </b>")
    (folder / "screenshot.png").write_bytes(b"\x89PNG fake")
    (folder / "cookies.json").write_text("{}")
    assert (await ready.get("/api/snapshots")).status == 401
    listed = await (await ready.get("/api/snapshots", headers=ADMIN)).json()
    assert listed["data"] == [
        {
            "day": "2026-12-05",
            "name": "120102_req_abc_upstream",
            "request_id": "req_abc",
            "kind": "upstream",
            "error": "upstream: the prompt could not be submitted\n",
            "files": ["error.txt", "page.html", "screenshot.png"],
        }
    ]
    base = "/api/snapshots/2026-12-05/120102_req_abc_upstream"
    hidden = await ready.get(f"{base}/page.html", headers=ADMIN)
    assert await hidden.text() == "<p>[16 characters]</p><b> </b>"
    shown = await ready.get(f"{base}/page.html?reveal=1", headers=ADMIN)
    assert "my secret prompt" in await shown.text()
    image = await ready.get(f"{base}/screenshot.png", headers=ADMIN)
    assert (image.status, image.content_type, await image.read()) == (200, "image/png", b"\x89PNG fake")
    for bad in (
        f"{base}/cookies.json",
        "/api/snapshots/2026-12-05/..%2f..%2fx/error.txt",
        "/api/snapshots/x/y/error.txt",
    ):
        assert (await ready.get(bad, headers=ADMIN)).status == 404, bad


async def test_restarting_a_disabled_stream_proxy_is_refused(ready: TestClient) -> None:
    assert (await ready.post("/api/control/restart/stream_proxy")).status == 401
    resp = await ready.post("/api/control/restart/stream_proxy", headers=ADMIN)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "stream_proxy_disabled"
    assert (await ready.post("/api/control/restart/simulator", headers=ADMIN)).status == 404
