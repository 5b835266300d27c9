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

    result = await client.run(
        "slow #sim:words=120 #sim:chunks=40 #sim:delay_ms=100", on_event=restart_after_first_content
    )
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


async def test_stream_tier_gone_for_good_mid_answer_the_page_finishes_it(
    stream_worker, stream_proxy, client, sim
):
    """The proxy's event socket vanishes mid-answer and does not come back: the page tier streams the rest.

    The proxy keeps forwarding the browser's traffic; only the worker's subscription is gone (its
    socket file is moved away, so re-subscribing fails until the job is over). The answer must
    arrive whole, without repeats, the rest of it streamed from the page (several pieces, not one
    read at the end), and the outcome must name both tiers: ``stream+dom``.
    """
    hidden = stream_proxy.socket.with_name("proxy.sock.hidden")
    cut_at: list[int] = []

    async def cut_after_first_content(ev):
        if isinstance(ev, protocol.Content) and not cut_at:
            stream_proxy.socket.rename(hidden)
            cut_at.append(1)
            await stream_worker.feed.drop_connection()

    try:
        result = await client.run(
            "long #sim:words=240 #sim:chunks=24 #sim:delay_ms=120",
            on_event=cut_after_first_content,
            timeout=90,
        )
    finally:
        if hidden.exists():
            hidden.rename(stream_proxy.socket)
    answer = sim.inspect("requests/last")["response"]["answer_text"]
    assert result.error is None, result.error
    assert cut_at, "the answer ended before its first piece"
    assert result.content == answer
    pieces = result.of(protocol.Content)
    assert len(pieces) >= 4, (
        f"the rest of the answer came in {len(pieces) - 1} piece(s), not streamed from the page"
    )
    assert [f.capture for f in result.of(protocol.Finish)] == ["stream+dom"]
    async with asyncio.timeout(10):
        await stream_worker.feed.client.connected.wait()
    again = await client.run("after the socket is back #sim:words=5")
    assert again.error is None, again.error
    assert [f.capture for f in again.of(protocol.Finish)] == ["stream"]
