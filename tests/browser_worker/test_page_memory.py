"""After a very large prompt the page is replaced by a fresh document (its memory can be given back);
after an ordinary one the cheap in-page New chat is kept. Observable facts only: the memory figures
are in the ``chromium_memory`` benchmark."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from browser_worker import selectors as S
from browser_worker.job import LARGE_PROMPT_CHARS
from browser_worker.page.studio import StudioPage

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: One model throughout: a model switch loads a new document by itself.
MODEL = "gemini-2.0-flash"

MARK_JS = "() => { window.__aispDocument = 'before the job'; }"
READ_JS = """
(textarea) => ({
  mark: window.__aispDocument ?? null,
  prompt: [...document.querySelectorAll(textarea)].filter((el) => !el.closest("ms-chat-turn"))
    .map((el) => el.value),
  turns: document.querySelectorAll("ms-chat-turn").length,
})
"""


def large_prompt(tag: str) -> str:
    line = f"a long pasted context line for {tag}, with some words in it\n"
    return "#sim:words=5\n" + line * (LARGE_PROMPT_CHARS // len(line) + 1)


async def mark_document(worker, client) -> None:
    """Be on MODEL (a switch would load a new document), then mark the current document."""
    warm = await client.run("warm up #sim:words=2", model=MODEL)
    assert warm.error is None, warm.error
    await worker.wait_idle()
    async with worker.supervisor.page_lock:
        await worker.supervisor.studio.page.evaluate(MARK_JS)


async def page_facts(worker) -> dict:
    await worker.wait_idle()  # Done is sent before the clean-up; wait for the page to be handed back
    async with worker.supervisor.page_lock:
        return await worker.supervisor.studio.page.evaluate(READ_JS, S.PROMPT_TEXTAREA)


async def test_after_a_large_prompt_the_next_job_gets_a_fresh_document_with_an_empty_prompt_box(
    dom_worker, client, sim
):
    """A prompt over LARGE_PROMPT_CHARS: the old document (and the prompt it held) is gone."""
    prompt = large_prompt("fresh")
    assert len(prompt) > LARGE_PROMPT_CHARS
    await mark_document(dom_worker, client)
    result = await client.run(prompt, model=MODEL)
    assert result.error is None, result.error
    assert len(sim.inspect("requests/last")["prompt"]) > LARGE_PROMPT_CHARS
    facts = await page_facts(dom_worker)
    assert facts == {"mark": None, "prompt": [""], "turns": 0}
    assert await dom_worker.supervisor.studio.chat.temporary_chat_active()
    assert (await client.status()).state == "ready"
    after = await client.run("an ordinary question #sim:words=4", model=MODEL)
    assert after.error is None and after.content.strip(), after.error


async def test_after_an_ordinary_prompt_the_same_document_gets_a_new_chat(dom_worker, client, sim):
    """Below the threshold nothing changes: New chat inside the same document, no page load."""
    await mark_document(dom_worker, client)
    result = await client.run("a short question #sim:words=5", model=MODEL)
    assert result.error is None, result.error
    facts = await page_facts(dom_worker)
    assert facts == {"mark": "before the job", "prompt": [""], "turns": 0}


async def test_collect_garbage_works_through_chromiums_devtools_protocol(dom_worker):
    """The worker's Chromium accepts HeapProfiler.collectGarbage."""
    await dom_worker.wait_idle()
    async with dom_worker.supervisor.page_lock:
        assert await dom_worker.supervisor.studio.collect_garbage() is True


async def test_collect_garbage_does_nothing_on_firefox():
    """Camoufox (Firefox) has no DevTools protocol: no CDP session is even attempted."""

    def no_cdp(*_args: object) -> None:
        raise AssertionError("a CDP session was requested on Firefox")

    browser = SimpleNamespace(browser_type=SimpleNamespace(name="firefox"))
    studio = SimpleNamespace(
        page=SimpleNamespace(context=SimpleNamespace(browser=browser, new_cdp_session=no_cdp))
    )
    assert await StudioPage.collect_garbage(studio) is False  # type: ignore[arg-type]
