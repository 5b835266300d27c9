"""Jobs with ``STREAM_PORT=0``: the answer is read from the page, streamed without contradictions."""

from __future__ import annotations

import pytest

from shared import protocol

pytestmark = pytest.mark.asyncio(loop_scope="module")

MARKDOWN = (
    "First paragraph, plain words only.\n\n"
    "Second paragraph is plain too.\n\n"
    "The capital is **Paris** and `code` stays raw.\n\n"
    "- a list item\n- another *item*\n\n"
    "Last plain paragraph."
)


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-3-pro-preview", "gemma-3-27b-it"])
async def test_dom_capture_streams_reasoning_content_usage_finish_in_order(dom_worker, client, sim, model):
    """Without the proxy the answer comes from the page, in order, with estimated usage."""
    result = await client.run("Tell me #sim:think=5", model=model, reasoning_effort="high")
    last = sim.inspect("requests/last")
    assert result.error is None, result.error
    assert result.types[0] == "job_accepted" and result.types[-3:] == ["usage", "finish", "done"]
    assert result.content == last["response"]["answer_text"]
    if last["response"]["thought_text"]:
        assert result.reasoning.strip() == last["response"]["thought_text"].strip()
        assert result.types.index("reasoning") < result.types.index("content")
    usage = result.of(protocol.Usage)[0]
    assert usage.estimated is True and usage.completion_tokens > 0
    assert (await client.status()).capture == "dom"


async def test_dom_capture_of_markdown_is_raw_and_never_repeats(dom_worker, client, sim):
    """Rendered deltas are sent only while they are a prefix of the raw text; the rest comes from Edit."""
    result = await client.run(f"{MARKDOWN}\n#sim:echo #sim:chunks=12 #sim:delay_ms=60", stop=[])
    last = sim.inspect("requests/last")
    assert result.error is None, result.error
    assert result.content == last["response"]["answer_text"]
    deltas = [e.text for e in result.of(protocol.Content)]
    assert len(deltas) >= 3, "plain prose is streamed before the end"
    assert deltas[0].startswith("User:\nFirst")


@pytest.mark.parametrize(
    "text",
    [
        "Intro line\n- item one\n- item two\n\nAfter the list 1. not a list",
        "Plain start then a heading\n\n# Title\n\nText & more <b>tags</b> and 2 < 3",
        "Numbers\n1. first\n2) second\n\n```python\nprint('x')\n```\nDone here",
        "Tricky **bold\nacross** lines and a_b_c and \\*escaped\\* stars",
    ],
    ids=["list", "heading-html", "ordered-code", "escapes"],
)
async def test_dom_capture_never_contradicts_the_raw_markdown(dom_worker, client, sim, text):
    """Whatever the markdown, the streamed DOM deltas add up to exactly the raw answer."""
    result = await client.run(f"{text}\n#sim:echo #sim:chunks=40 #sim:delay_ms=25", stop=[])
    assert result.error is None, result.error
    assert result.content == sim.inspect("requests/last")["response"]["answer_text"]


async def test_dom_capture_reads_native_tool_calls(dom_worker, client, sim):
    """Native function calls are read from the rendered function-call chunks."""
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string"}, "n": {"type": "integer"}},
            },
        },
    }
    result = await client.run('find #sim:tool=lookup #sim:args={"q":"tea","n":3}', tools=[tool])
    assert result.error is None, result.error
    assert [(c.name, c.arguments) for c in result.of(protocol.ToolCall)] == [("lookup", {"q": "tea", "n": 3})]
    assert result.of(protocol.Finish)[0].reason == "tool_calls"


@pytest.mark.parametrize(
    ("directive", "kind"),
    [
        ("quota", "quota"),
        ("rate_limit", "rate_limit"),
        ("internal", "upstream"),
        ("permission", "permission"),
    ],
)
async def test_dom_capture_maps_page_errors(dom_worker, client, sim, directive, kind):
    """The quota callout and the error toast become typed errors without the proxy."""
    result = await client.run(f"fail #sim:error={directive}")
    assert result.error is not None and result.error.kind == kind, result.error
    follow = await client.run("fine #sim:words=3")
    assert follow.error is None, follow.error


async def test_stream_and_dom_tiers_give_the_same_text(dom_worker, stream_worker, sim):
    """The same prompt yields identical answer text through the proxy and through the page."""
    from tests.browser_worker.conftest import WorkerClient

    prompt = f"{MARKDOWN}\n#sim:echo"
    via_dom = await WorkerClient(dom_worker.settings.worker_socket).run(prompt, stop=[])
    via_stream = await WorkerClient(stream_worker.settings.worker_socket).run(prompt, stop=[])
    assert via_dom.error is None and via_stream.error is None
    assert via_dom.content == via_stream.content
    assert via_stream.of(protocol.Usage)[0].estimated is False


async def test_missing_function_calling_ui_degrades_and_falls_back_to_emulated_tools(dom_worker, client, sim):
    """A self-test miss is named in the status; tools are then emulated in the prompt."""
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    await dom_worker.supervisor.studio.page.evaluate(
        "() => document.querySelector('[data-test-id=\"functionCallingTooltip\"]').remove()"
    )
    try:
        result_test = await dom_worker.supervisor.run_self_test()
        status = await client.status()
        assert result_test["function_calling"] is False
        assert status.state == "degraded" and "function_calling" in status.message
        result = await client.run("Request function call: lookup\nParameters:\n{}\n#sim:echo", tools=[tool])
        assert result.error is None, result.error
        assert "Available Tools Catalog:" in sim.inspect("requests/last")["prompt"]
        assert [c.name for c in result.of(protocol.ToolCall)] == ["lookup"]
    finally:
        await dom_worker.supervisor.reload_page()
        await dom_worker.supervisor.run_self_test()
    assert (await client.status()).state == "ready"


async def test_dom_capture_streams_a_growing_paragraph_and_cancel_stops_it(dom_worker, client, sim):
    """Plain prose streams word by word from the page; JobCancel stops the generation within 1 s."""
    import asyncio
    import time

    at: list[float] = []

    def second_delta(ev):
        if isinstance(ev, protocol.Content):
            at.append(time.time())
            return len(at) == 2
        return False

    result = await client.run("long #sim:words=400 #sim:delay_ms=40", cancel_when=second_delta)
    assert result.error is not None and result.error.kind == "cancelled"
    async with asyncio.timeout(5):
        while not (last := sim.inspect("requests/last")).get("ended"):
            await asyncio.sleep(0.05)  # polling the simulator's record, not the UI
    assert last["ended"] == "client_closed"
    assert last["last_byte_at"] - at[1] < 1.0
    assert last["response"]["answer_text"].startswith(result.content)


async def test_dom_capture_in_native_mode_parses_a_call_leaked_as_text(dom_worker, client, sim):
    """DOM tier, function calling on, #sim:ctrl_tokens: the leaked call is parsed, no <ctrl46> passes."""
    tool = {
        "type": "function",
        "function": {
            "name": "read_file",
            "parameters": {
                "type": "object",
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"path": {"type": "string"}}},
                    }
                },
            },
        },
    }
    result = await client.run("Read it #sim:ctrl_tokens", tools=[tool])
    assert result.error is None, result.error
    assert sim.inspect("requests/last")["tools"]["function_declarations"]
    assert "<ctrl" not in result.content and "Request function call" not in result.content
    assert [(c.name, c.arguments) for c in result.of(protocol.ToolCall)] == [
        ("read_file", {"files": [{"path": "temp.txt"}]})
    ]
