"""The stream proxy restarting under a running worker: nothing lost, nothing repeated."""

from __future__ import annotations

import asyncio

import pytest

from shared import protocol

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_proxy_restart_mid_answer_keeps_the_text_whole(stream_worker, stream_proxy, client, sim):
    """SIGTERM + restart of stream_proxy while an answer streams: the client gets exactly the answer."""
    restarted: list[asyncio.Task] = []

    async def restart_after_first_content(ev):
        if isinstance(ev, protocol.Content) and not restarted:

            def restart() -> None:
                stream_proxy.stop()
                stream_proxy.start()

            restarted.append(asyncio.create_task(asyncio.to_thread(restart)))

    result = await client.run("slow #sim:words=120 #sim:chunks=40 #sim:delay_ms=100", on_event=restart_after_first_content)
    await restarted[0]
    last = sim.inspect("requests/last")
    assert result.error is None, result.error
    assert result.content == last["response"]["answer_text"]
    follow = await client.run("after restart #sim:words=5")
    assert follow.error is None, follow.error
    assert follow.content == sim.inspect("requests/last")["response"]["answer_text"]


async def test_job_submitted_while_the_proxy_is_down_waits_for_it(stream_worker, stream_proxy, client, sim):
    """A job that arrives while stream_proxy is stopped runs once it is back, reaching upstream once."""
    stream_proxy.stop()
    job = asyncio.create_task(client.run("waiting job #sim:words=6"))
    await asyncio.to_thread(stream_proxy.start)
    result = await job
    assert result.error is None, result.error
    assert [r["prompt"] for r in sim.inspect("requests")].count("User:\nwaiting job #sim:words=6\n") == 1


async def test_the_proxy_ca_is_trusted_by_its_spki_pin_alone(stream_proxy, simulator, demo_profile, work_dir):
    """Outside demo mode, Chromium trusts the proxy's leaf certificates through the CA's SPKI pin."""
    from browser_worker.browser import BrowserSession, ca_spki, context_options
    from browser_worker.page.studio import StudioPage
    from shared.settings import Settings

    settings = Settings(
        _env_file=None, stream_port=stream_proxy.port, certs_dir=work_dir / "certs", browser="chromium"
    )
    spki = ca_spki(settings)
    assert spki and not settings.demo_mode
    assert context_options(settings, None, spki)["ignore_https_errors"] is False
    async with BrowserSession(settings, storage_state=demo_profile) as session:
        studio = StudioPage(session.page, settings.aistudio_url)
        await studio.open_new_chat()
        assert await studio.wait_ready()
