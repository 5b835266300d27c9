"""The page journal records network events (method, URL, status, failure) without making Playwright
keep the requests: a real Chromium page against a local aiohttp server."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from playwright._impl._network import Request as PlaywrightRequest

from browser_worker.snapshots import NETWORK_ENABLE, PageJournal

BODY_MARK = "journal-body-mark-"
POST_JS = "([url, body]) => fetch(url, {method: 'POST', body}).then((r) => r.status)"


@pytest_asyncio.fixture
async def server() -> AsyncIterator[str]:
    """``/`` a page, ``/echo`` takes a POST and answers 201, ``/teapot`` answers 418."""

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text="<html><body>journal</body></html>", content_type="text/html")

    async def echo(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=201, text="ok")

    async def teapot(_request: web.Request) -> web.Response:
        return web.Response(status=418, text="no")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/", index)
    app.router.add_post("/echo", echo)
    app.router.add_get("/teapot", teapot)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def failures_seen(page: Any) -> asyncio.Queue[dict[str, Any]]:
    """A DevTools session of the test's own: the failure has reached DevTools once it sees it (the
    page's script can see a failed fetch before any session gets the event)."""
    seen: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    cdp = await page.context.new_cdp_session(page)
    cdp.on("Network.loadingFailed", seen.put_nowait)
    await cdp.send("Network.enable", NETWORK_ENABLE)
    return seen


@pytest.fixture
def page(bare_page: Any) -> Any:
    return bare_page


async def test_requests_responses_and_failures_are_journaled_without_bodies(server, page):
    """A POST, a 418 and a refused connection each leave their lines; the body is in none of them."""
    journal = PageJournal()
    await journal.attach(page)
    failures = await failures_seen(page)
    await page.goto(server + "/")
    body = BODY_MARK + "x" * 1000
    assert await page.evaluate(POST_JS, [server + "/echo", body]) == 201
    assert await page.evaluate("(url) => fetch(url).then((r) => r.status)", server + "/teapot") == 418
    # Port 1 is one Chromium refuses to connect to: the request fails without a response.
    await page.evaluate("() => fetch('http://127.0.0.1:1/refused').catch(() => null)")
    async with asyncio.timeout(10):
        await failures.get()
        # Two DevTools sessions get the event in no promised order: wait for the journal's own line.
        while not any(" xx GET http://127.0.0.1:1/refused" in line for line in journal.network):
            await asyncio.sleep(0.01)  # polling the journal's state, under the timeout
    lines = [line.split(" ", 1)[1] for line in journal.network]  # without the time

    assert f"-> GET {server}/" in lines
    assert f"<- 200 {server}/" in lines
    assert f"-> POST {server}/echo" in lines
    assert f"<- 201 {server}/echo" in lines
    assert f"<- 418 {server}/teapot" in lines
    assert any(line.startswith("xx GET http://127.0.0.1:1/refused net::ERR_") for line in lines), lines
    assert not any(BODY_MARK in line for line in journal.network)


async def test_the_journal_makes_playwright_keep_no_request(server, page):
    """Listening to Playwright's request events would keep every request, its body included, in the
    driver and in this process until the page closes; the journal must not."""
    journal = PageJournal()
    await journal.attach(page)
    await page.goto(server + "/")
    mark = BODY_MARK + "kept?"
    for _ in range(3):
        assert await page.evaluate(POST_JS, [server + "/echo", mark + "y" * 100_000]) == 201
    assert sum(line.endswith(f"-> POST {server}/echo") for line in journal.network) == 3
    gc.collect()
    kept = [r for r in gc.get_objects() if isinstance(r, PlaywrightRequest) and r.url.endswith("/echo")]
    assert kept == []


async def test_no_devtools_no_network_events_and_no_request_listener():
    """Camoufox (Firefox) has no DevTools protocol: the journal says so and does not fall back to
    Playwright's request events."""
    events: list[str] = []

    def no_cdp(*_args: object) -> None:
        raise AssertionError("a CDP session was requested on Firefox")

    browser = SimpleNamespace(browser_type=SimpleNamespace(name="firefox"))
    page = SimpleNamespace(
        context=SimpleNamespace(browser=browser, new_cdp_session=no_cdp),
        on=lambda event, _handler: events.append(event),
    )
    journal = PageJournal()
    await journal.attach(page)
    assert sorted(events) == ["console", "pageerror"]
    assert [line.split(" ", 1)[1] for line in journal.network] == [
        "(no network events: firefox has no DevTools protocol)"
    ]
