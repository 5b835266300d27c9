"""Model switching (docs/aistudio.md §8) on the real simulator page: the refused switch and what follows it."""

from __future__ import annotations

import pytest

from shared import errors

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: Listed by ListModels, refused by the page at boot (simulator config ``page_unknown_models``).
REFUSED = "gemini-2.5-flash-lite"


@pytest.fixture(autouse=True)
def _config_restored(sim):
    """Each test sets ``page_unknown_models``; the simulator's default config comes back after it."""
    yield
    sim.reset()


async def test_a_refused_switch_is_a_422_with_a_snapshot_and_the_old_model_comes_back(
    stream_worker, client, sim
):
    """The page falls back instead of taking the model: model_switch (422) naming it, a snapshot, no
    request upstream; the worker is ready again on the previous model, with temporary chat on."""
    before = await client.run("before #sim:words=3", model="gemini-2.5-flash")
    assert before.error is None, before.error
    sim.config(page_unknown_models=[REFUSED])

    failed = await client.run("refused #sim:words=3", model=REFUSED)

    error = failed.error
    assert error is not None and error.kind == "model_switch", error
    assert errors.from_kind(error.kind, error.message).status == 422
    assert REFUSED in error.message
    assert failed.types == ["job_accepted", "error", "done"]
    assert not [r for r in sim.inspect("requests") if "refused" in r["prompt"]]
    root = stream_worker.settings.error_snapshot_dir
    folders = [p for p in root.glob("*/*") if error.id in p.name]
    assert len(folders) == 1 and folders[0].name.endswith("_model_switch"), list(root.glob("*/*"))
    assert {"error.txt", "screenshot.png", "page.html"} <= {p.name for p in folders[0].iterdir()}
    assert REFUSED in (folders[0] / "error.txt").read_text()

    await stream_worker.wait_idle()
    status = await client.status()
    assert (status.state, status.model, status.message) == (
        "ready",
        "gemini-2.5-flash",
        "ready on gemini-2.5-flash",
    )
    studio = stream_worker.supervisor.studio
    assert await studio.current_model() == "gemini-2.5-flash"
    assert (await studio.navigation.read_prefs())["promptModel"] == "models/gemini-2.5-flash"
    assert await studio.chat.temporary_chat_active()


async def test_after_a_refused_switch_the_previous_and_another_model_answer(stream_worker, client, sim):
    """The job after a refused switch succeeds, on the previous model and on a third one."""
    assert (await client.run("warm #sim:words=3", model="gemini-2.5-flash")).error is None
    sim.config(page_unknown_models=[REFUSED])
    assert (await client.run("refused #sim:words=3", model=REFUSED)).error.kind == "model_switch"

    same = await client.run("same #sim:words=3", model="gemini-2.5-flash")
    assert same.error is None, same.error
    assert sim.inspect("requests/last")["model"] == "gemini-2.5-flash"
    other = await client.run("other #sim:words=3", model="gemini-2.0-flash")
    assert other.error is None, other.error
    assert sim.inspect("requests/last")["model"] == "gemini-2.0-flash"
    assert (await client.status()).model == "gemini-2.0-flash"

    sim.config(page_unknown_models=[])
    back = await client.run("accepted now #sim:words=3", model=REFUSED)
    assert back.error is None, back.error
    assert sim.inspect("requests/last")["model"] == REFUSED


async def test_when_the_previous_model_is_refused_too_the_worker_stays_on_the_pages_choice(
    stream_worker, client, sim
):
    """Going back fails as well: the worker reports the model the page fell back to and answers on it."""
    assert (await client.run("warm #sim:words=3", model="gemini-2.5-flash")).error is None
    sim.config(page_unknown_models=[REFUSED, "gemini-2.5-flash"], default_model="gemini-2.0-flash")
    assert (await client.run("refused #sim:words=3", model=REFUSED)).error.kind == "model_switch"

    await stream_worker.wait_idle()
    status = await client.status()
    assert (status.state, status.model, status.message) == (
        "ready",
        "gemini-2.0-flash",
        "ready on gemini-2.0-flash",
    )
    assert await stream_worker.supervisor.studio.chat.temporary_chat_active()
    fallback = await client.run("fallback #sim:words=3", model="gemini-2.0-flash")
    assert fallback.error is None, fallback.error
    assert sim.inspect("requests/last")["model"] == "gemini-2.0-flash"
