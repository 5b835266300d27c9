"""Capture tier 2: the answer's body from ``HELPER_ENDPOINT`` (the simulator acting as the helper)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from aistudio_sim.processes import pick_free_port
from browser_worker.worker import Worker
from shared import protocol
from tests.browser_worker.conftest import ProxyProcess, WorkerClient, start_worker, worker_settings
from tests.browser_worker.test_job_dom import MARKDOWN
from tests.browser_worker.test_job_stream import WEATHER_TOOL, check_cancel_at_first_content
from tests.simulator.conftest import SimProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def helper_worker(simulator: SimProcess, demo_profile: Path, work_dir: Path) -> AsyncIterator[Worker]:
    """``STREAM_PORT=0`` with the simulator as ``HELPER_ENDPOINT``."""
    settings = worker_settings(
        simulator, work_dir / "helper", demo_profile, stream_port=0, helper_endpoint=simulator.helper_url
    )
    async with start_worker(settings) as worker:
        yield worker


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def proxy_and_helper_worker(
    simulator: SimProcess, stream_proxy: ProxyProcess, demo_profile: Path, work_dir: Path
) -> AsyncIterator[Worker]:
    """The stream proxy first, the helper as its fallback."""
    settings = worker_settings(
        simulator,
        work_dir / "both",
        demo_profile,
        stream_port=stream_proxy.port,
        run_dir=work_dir / "run",  # the proxy's socket lives there
        helper_endpoint=simulator.helper_url,
    )
    async with start_worker(settings) as worker:
        async with asyncio.timeout(10):
            await worker.feed.client.connected.wait()  # type: ignore[union-attr]
        yield worker


@pytest.fixture
def client(helper_worker: Worker) -> WorkerClient:
    return WorkerClient(helper_worker.settings.worker_socket)


def served_by_helper(sim: SimProcess) -> list[str]:
    """Simulator request ids the helper served, oldest first."""
    return [e["request"] for e in sim.inspect("events") if e["kind"] == "helper_serve"]


@pytest.mark.parametrize(
    "model", ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-3-pro-preview", "gemma-3-27b-it"]
)
async def test_helper_tier_streams_reasoning_content_usage_finish_in_order(client, sim, model):
    """Without the proxy, the helper's body gives the exact text, thoughts and the real usage."""
    result = await client.run(
        "Tell me #sim:think=5 #sim:words=40 #sim:chunks=8", model=model, reasoning_effort="high"
    )
    last = sim.inspect("requests/last")
    assert result.error is None, result.error
    assert result.types[0] == "job_accepted" and result.types[-3:] == ["usage", "finish", "done"]
    assert result.content == last["response"]["answer_text"]
    assert result.reasoning == last["response"]["thought_text"]
    if last["response"]["thought_text"]:
        assert result.types.index("reasoning") < result.types.index("content")
    assert len(result.of(protocol.Content)) >= 2, "the answer streams, it is not read at the end"
    usage = result.of(protocol.Usage)[0]
    assert usage.estimated is False and usage.total_tokens
    assert served_by_helper(sim) == [last["id"]]
    assert (await client.status()).capture == "helper"


async def test_helper_tier_gives_native_tool_calls(client, sim):
    result = await client.run(
        'weather please #sim:tool=get_weather #sim:args={"city":"Oslo","days":2}', tools=[WEATHER_TOOL]
    )
    assert result.error is None, result.error
    assert [(c.name, c.arguments) for c in result.of(protocol.ToolCall)] == [
        ("get_weather", {"city": "Oslo", "days": 2})
    ]
    assert result.of(protocol.Finish)[0].reason == "tool_calls"


async def test_helper_stream_and_dom_tiers_give_the_same_text(helper_worker, dom_worker, stream_worker, sim):
    prompt = f"{MARKDOWN}\n#sim:echo"
    texts = []
    for worker in (helper_worker, dom_worker, stream_worker):
        result = await WorkerClient(worker.settings.worker_socket).run(prompt, stop=[])
        assert result.error is None, result.error
        texts.append(result.content)
    assert texts[0] == texts[1] == texts[2]


@pytest.mark.parametrize(
    ("directive", "kind"),
    [
        ("quota", "quota"),
        ("rate_limit", "rate_limit"),
        ("internal", "upstream"),
        ("permission", "permission"),
        ("inline", "quota"),
    ],
)
async def test_helper_tier_maps_upstream_errors(client, sim, directive, kind):
    """HTTP and in-stream errors come from the helper's body, typed like the stream tier's."""
    result = await client.run(f"fail #sim:error={directive} #sim:words=20")
    assert result.error is not None and result.error.kind == kind, result.error
    follow = await client.run("fine #sim:words=3")
    assert follow.error is None, follow.error


async def test_a_cut_answer_fails_cleanly_and_the_next_job_works(client, sim):
    """The upstream cut reaches the helper too: the page then says what happened."""
    result = await client.run("x #sim:error=cut #sim:words=40")
    assert result.error is not None and result.error.kind == "upstream", result.error
    follow = await client.run("fine #sim:words=3")
    assert follow.error is None and follow.content == sim.inspect("requests/last")["response"]["answer_text"]


async def test_cancel_under_the_helper_tier_stops_the_generation_within_a_second(client, sim):
    await check_cancel_at_first_content(client, sim)


async def test_losing_the_proxy_mid_answer_continues_from_the_helper(proxy_and_helper_worker, sim):
    """Stream tier first; when its subscription drops the helper replays the body and only the rest
    is sent: nothing lost or repeated, usage still exact."""
    dropped: list[int] = []

    async def drop_after_some_content(ev):
        if isinstance(ev, protocol.Content) and not dropped:
            dropped.append(1)
            await proxy_and_helper_worker.feed.drop_connection()

    client = WorkerClient(proxy_and_helper_worker.settings.worker_socket)
    result = await client.run(
        "long #sim:think=20 #sim:words=300 #sim:chunks=30 #sim:delay_ms=30",
        model="gemini-2.5-flash",
        on_event=drop_after_some_content,
    )
    last = sim.inspect("requests/last")
    assert result.error is None, result.error
    assert dropped
    assert result.content == last["response"]["answer_text"]
    assert result.reasoning == last["response"]["thought_text"]
    assert result.of(protocol.Usage)[0].estimated is False
    assert served_by_helper(sim) == [last["id"]]
    async with asyncio.timeout(10):
        await proxy_and_helper_worker.feed.client.connected.wait()  # type: ignore[union-attr]


@pytest.mark.parametrize("where", ["closed-port", "wrong-path"])
async def test_an_unusable_helper_falls_back_to_the_page(simulator, demo_profile, work_dir, where):
    """A helper that cannot be reached, or refuses, costs nothing: the answer comes from the DOM."""
    endpoint = (
        f"http://127.0.0.1:{pick_free_port()}/getStreamResponse"
        if where == "closed-port"
        else simulator.helper_url.replace("getStreamResponse", "nothing-here")
    )
    settings = worker_settings(
        simulator, work_dir / where, demo_profile, stream_port=0, helper_endpoint=endpoint
    )
    simulator.reset()
    async with start_worker(settings) as worker:
        result = await WorkerClient(worker.settings.worker_socket).run("Tell me #sim:words=30")
    assert result.error is None, result.error
    assert result.content == simulator.inspect("requests/last")["response"]["answer_text"]
    assert result.of(protocol.Usage)[0].estimated is True


async def test_calls_sent_before_the_proxy_drop_are_not_repeated_by_the_helper(proxy_and_helper_worker, sim):
    """Three parallel calls; the subscription drops after the first: the helper's replay adds the
    other two, once each."""
    time_tool = {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
        },
    }
    dropped: list[int] = []

    async def drop_after_first_call(ev):
        if isinstance(ev, protocol.ToolCall) and not dropped:
            dropped.append(1)
            await proxy_and_helper_worker.feed.drop_connection()

    prompt = (
        'calls #sim:tool=get_weather #sim:args={"city":"Lima"} #sim:tool=get_time #sim:args={"zone":"UTC"} '
        '#sim:tool=get_weather #sim:args={"city":"Quito"} #sim:delay_ms=150'
    )
    result = await WorkerClient(proxy_and_helper_worker.settings.worker_socket).run(
        prompt, tools=[WEATHER_TOOL, time_tool], on_event=drop_after_first_call
    )
    assert result.error is None, result.error
    assert dropped
    assert [(c.name, c.arguments) for c in result.of(protocol.ToolCall)] == [
        ("get_weather", {"city": "Lima"}),
        ("get_time", {"zone": "UTC"}),
        ("get_weather", {"city": "Quito"}),
    ]
    assert served_by_helper(sim) == [sim.inspect("requests/last")["id"]]
    async with asyncio.timeout(10):
        await proxy_and_helper_worker.feed.client.connected.wait()  # type: ignore[union-attr]
