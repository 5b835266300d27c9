"""``StudioPage.wait_for_login_redirect``: it answers a redirect to the sign-in host, and a cancelled
wait (every job cancels its own when it ends) leaves nothing behind in Playwright. A real Chromium
page; navigations to ``data:`` URLs, the sign-in host answered by a route."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_asyncio

from browser_worker.page.studio import StudioPage

LOGIN_URL = "https://accounts.google.com/v3/signin/identifier"


@pytest_asyncio.fixture
async def page(bare_page: Any) -> Any:
    await bare_page.goto("data:text/html,<p>studio</p>")
    return bare_page


async def test_the_wait_ends_with_the_sign_in_url(page):
    """A navigation to the sign-in host ends the wait with that URL."""
    await page.route(
        "https://accounts.google.com/**",
        lambda route: route.fulfill(body="<p>sign in</p>", content_type="text/html"),
    )
    studio = StudioPage(page, "https://aistudio.google.com")
    wait = asyncio.create_task(studio.wait_for_login_redirect())
    await page.goto("data:text/html,<p>another studio page</p>")
    assert not wait.done()
    await page.goto(LOGIN_URL)
    async with asyncio.timeout(10):
        assert await wait == LOGIN_URL


async def test_cancelled_waits_leave_nothing_that_later_navigations_add_to(page):
    """Playwright's own ``wait_for_url``, once cancelled, kept listening: every later navigation
    then left one more message record per cancelled wait in Playwright's connection."""
    connection = page._impl_obj._connection  # Playwright's bookkeeping is what this is about
    studio = StudioPage(page, "https://aistudio.google.com")
    before = len(connection._callbacks)
    for _ in range(3):
        wait = asyncio.create_task(studio.wait_for_login_redirect())
        await page.evaluate("1")  # a round trip: the wait has started listening meanwhile
        wait.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait
    for i in range(3):
        await page.goto(f"data:text/html,<p>page {i}</p>")
    assert len(connection._callbacks) == before
    assert page._impl_obj.listeners("framenavigated") == []
