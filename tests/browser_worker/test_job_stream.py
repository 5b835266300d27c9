"""Jobs through the real stream proxy: events, parameters, tools, errors and cancel, end to end."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from pathlib import Path

import pytest

from shared import channel, protocol
from tests.browser_worker.conftest import JobResult
from tests.fixtures import FIXTURES_DIR as FIXTURES

pytestmark = pytest.mark.asyncio(loop_scope="module")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


async def ended_request(sim, timeout: float = 5.0) -> dict:
    """The newest recorded request once the simulator has recorded how its stream ended."""
    async with asyncio.timeout(timeout):
        while True:
            last = await asyncio.to_thread(sim.inspect, "requests/last")
            if last.get("ended"):
                return last
            await asyncio.sleep(0.05)  # polling another process's record, not the UI


@contextlib.contextmanager
def overridden(worker, **changes):
    """Run with some settings changed for the live worker's job runner (the one that reads them)."""
    runner = worker.supervisor.runner
    old = runner.settings
    runner.settings = old.model_copy(update=changes)
    try:
        yield
    finally:
        runner.settings = old


# ------------------------------------------------------------------ answers and events


@pytest.mark.parametrize(
    "model",
    [
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-3-pro-preview",
        "gemini-3-flash-preview",
        "gemini-2.0-flash",
    ],
)
async def test_every_model_family_streams_reasoning_content_usage_finish_in_order(
    stream_worker, client, sim, model
):
    """Reasoning (when the family thinks), content, usage and finish arrive in order from the wire."""
    result = await client.run("Tell me something #sim:think=6", model=model, reasoning_effort="high")
    last = sim.inspect("requests/last")
    assert result.error is None, result.error
    assert last["model"] == model
    types = result.types
    assert types[0] == "job_accepted" and types[-3:] == ["usage", "finish", "done"]
    assert result.stages == ["settings", "fill", "submit"]  # reported as they happen, before any answer
    first_answer = next(
        i for i, e in enumerate(result.events) if isinstance(e, protocol.Reasoning | protocol.Content)
    )
    assert not any(isinstance(e, protocol.Stage) for e in result.events[first_answer:])
    body = [t for t in types[1:-3]]
    assert body == sorted(body, key=lambda t: {"reasoning": 0, "content": 1, "tool_call": 2}[t])
    assert result.content == last["response"]["answer_text"]
    assert result.reasoning == last["response"]["thought_text"]
    assert result.reasoning, "the simulator thinks when asked to"
    assert result.of(protocol.Usage)[0].estimated is False
    assert result.of(protocol.Finish)[0].reason == "stop"
    assert (await client.status()).capture == "stream"


async def test_native_tool_call_arrives_as_tool_call_event(stream_worker, client, sim):
    """A declared tool called by the model comes back as a ToolCall with decoded arguments."""
    prompt = 'Weather? #sim:tool=get_weather #sim:args={"city":"Paris","days":2}'
    result = await client.run(prompt, tools=[WEATHER_TOOL])
    last = sim.inspect("requests/last")
    assert result.error is None, result.error
    assert [d["name"] for d in last["tools"]["function_declarations"]] == ["get_weather"]
    calls = result.of(protocol.ToolCall)
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Paris", "days": 2})]
    assert result.of(protocol.Finish)[0].reason == "tool_calls"
    assert result.types.index("tool_call") < result.types.index("usage")


async def test_function_calling_is_switched_off_without_tools(stream_worker, client, sim):
    """After a tools job, a plain job sends no function declarations."""
    await client.run("first #sim:words=3", tools=[WEATHER_TOOL])
    result = await client.run("second #sim:words=3")
    assert result.error is None
    assert sim.inspect("requests/last")["tools"]["function_declarations"] == []


async def test_emulated_tools_are_parsed_from_the_answer_text(stream_worker, client, sim):
    """Emulated mode puts the catalog in the prompt and turns 'Request function call' text into calls."""
    with overridden(stream_worker, function_calling_mode="emulated"):
        text = 'Request function call: get_weather\nParameters:\n{"city": "Rome"}'
        result = await client.run(f"{text}\n#sim:echo", tools=[WEATHER_TOOL])
    last = sim.inspect("requests/last")
    assert result.error is None, result.error
    assert "Available Tools Catalog:" in last["prompt"]
    assert last["tools"]["function_declarations"] == []
    assert ("get_weather", {"city": "Rome"}) in [(c.name, c.arguments) for c in result.of(protocol.ToolCall)]


# ------------------------------------------------------------------ parameters reach the simulator


async def test_sampling_parameters_reach_the_request(stream_worker, client, sim):
    """Temperature, top-P and max output tokens are set in the UI and sent by the page."""
    result = await client.run("params #sim:words=3", temperature=0.35, top_p=0.8, max_output_tokens=1234)
    config = sim.inspect("requests/last")["generation_config"]
    assert result.error is None
    assert config["temperature"] == pytest.approx(0.35)
    assert config["top_p"] == pytest.approx(0.8)
    assert config["max_output_tokens"] == 1234


async def test_finely_grained_sampling_values_are_set_exactly(stream_worker, client, sim):
    """Values with many digits are typed exactly, not rounded."""
    result = await client.run("fine #sim:words=3", temperature=0.123456789, top_p=0.7890625)
    config = sim.inspect("requests/last")["generation_config"]
    assert result.error is None, result.error
    assert config["temperature"] == pytest.approx(0.123456789, abs=1e-9)
    assert config["top_p"] == pytest.approx(0.7890625, abs=1e-12)


async def test_defaults_apply_when_parameters_are_absent(stream_worker, client, sim):
    """Absent parameters fall back to the model defaults and its output limit."""
    await client.run("set #sim:words=3", temperature=0.2, top_p=0.5, max_output_tokens=99)
    await client.run("reset #sim:words=3")
    config = sim.inspect("requests/last")["generation_config"]
    assert config["temperature"] == pytest.approx(1.0)
    assert config["top_p"] == pytest.approx(0.95)
    assert config["max_output_tokens"] == 65536


async def test_max_output_tokens_is_clamped_to_the_model_limit(stream_worker, client, sim):
    """A too-large max_output_tokens becomes the model's output limit (8192 for 2.0 Flash)."""
    await client.run("big #sim:words=3", max_output_tokens=10**7)
    assert sim.inspect("requests/last")["generation_config"]["max_output_tokens"] == 65536
    await client.run("big #sim:words=3", model="gemini-2.0-flash", max_output_tokens=10**7)
    last = sim.inspect("requests/last")
    assert last["model"] == "gemini-2.0-flash"
    assert last["generation_config"]["max_output_tokens"] == 8192


async def test_max_output_tokens_cut_reports_length(stream_worker, client, sim):
    """A cut at max tokens finishes with reason length."""
    result = await client.run("long #sim:words=50", max_output_tokens=5)
    assert result.of(protocol.Finish)[0].reason == "length"


@pytest.mark.parametrize(
    ("stop", "expected"),
    [(None, []), (["END", " halt ", "END", ""], ["END", "halt"]), ([], [])],
    ids=["default", "set", "none"],
)
async def test_stop_sequences_reach_the_request(stream_worker, client, sim, stop, expected):
    """Stops are a trimmed set; None means the default stops (none by default) and [] means none."""
    result = await client.run("stops #sim:words=3", stop=stop)
    assert result.error is None
    assert sorted(sim.inspect("requests/last")["generation_config"]["stop_sequences"] or []) == sorted(
        expected
    )


async def test_a_stop_sequence_no_css_selector_can_spell_is_removed_again(stream_worker, client, sim):
    """A stop chip whose text a CSS attribute selector cannot match (a NUL, astral characters) is still
    removed for the next job; it once stayed on the page and every later job timed out removing it."""
    odd = "\u00dc\u00fa\u0000\u00ab\U000231fa\u00d8"
    first = await client.run("odd stop #sim:words=3", stop=[odd, "END"])
    assert first.error is None, first.error
    after = await client.run("no stop #sim:words=3", stop=[])
    assert after.error is None, after.error
    assert sim.inspect("requests/last")["generation_config"]["stop_sequences"] in (None, [])


async def test_an_answer_containing_user_colon_comes_back_whole(stream_worker, client, sim):
    """No hidden stop sequence (issue 13): an answer that contains ``User:`` (a dialogue, a log) is not cut
    there. The simulator's default answer quotes the prompt's last line, so it contains ``User: hello``."""
    result = await client.run("Write a dialogue:\nUser: hello there, Bot: hi", model="gemini-2.0-flash")
    assert result.error is None, result.error
    recorded = sim.inspect("requests/last")
    assert not recorded["generation_config"]["stop_sequences"]
    assert "User: hello there, Bot: hi" in result.content
    assert result.content == recorded["response"]["answer_text"]
    assert result.of(protocol.Finish)[0].reason == "stop"


@pytest.mark.parametrize(
    ("model", "effort", "check"),
    [
        ("gemini-2.5-pro", 2048, lambda t: t["include_thoughts"] and t["budget"] == 2048),
        ("gemini-2.5-pro", -1, lambda t: t["include_thoughts"] and t["budget"] is None),
        # "none": off where the model allows it, else its lowest setting (issue 13).
        ("gemini-2.5-pro", "none", lambda t: t["include_thoughts"] and t["budget"] == 1024),
        ("gemini-2.5-flash", "none", lambda t: t == {"include_thoughts": False, "budget": 0, "level": None}),
        ("gemini-3-flash-preview", "none", lambda t: t["level"] == "MINIMAL"),
        ("gemini-3-pro-preview", "none", lambda t: t["level"] == "LOW"),
        ("gemini-2.0-flash", "none", lambda t: t is None),
        ("gemini-2.5-flash", 0, lambda t: not t or not t.get("include_thoughts") or t.get("budget") == 0),
        ("gemini-2.5-flash", 4096, lambda t: t["include_thoughts"] and t["budget"] == 4096),
        ("gemini-3-flash-preview", "minimal", lambda t: t["level"] == "MINIMAL"),
        ("gemini-3-flash-preview", "medium", lambda t: t["level"] == "MEDIUM"),
        ("gemini-3-pro-preview", "low", lambda t: t["level"] == "LOW"),
        ("gemini-3-pro-preview", "high", lambda t: t["level"] == "HIGH"),
    ],
    ids=[
        "pro-budget",
        "pro-auto",
        "pro-none",
        "flash-none",
        "g3flash-none",
        "g3pro-none",
        "g20-none",
        "flash-off",
        "flash-budget",
        "g3flash-minimal",
        "g3flash-medium",
        "g3pro-low",
        "g3pro-high",
    ],
)
async def test_thinking_settings_reach_the_request(stream_worker, client, sim, model, effort, check):
    """reasoning_effort becomes the right thinking control per model family."""
    result = await client.run("think #sim:words=3", model=model, reasoning_effort=effort)
    assert result.error is None, result.error
    last = sim.inspect("requests/last")
    assert last["model"] == model
    assert check(last["generation_config"]["thinking"]), last["generation_config"]["thinking"]


async def test_google_search_and_url_context_tools_turn_the_toggles_on(stream_worker, client, sim):
    """A google_search tool and a url_context tool switch on grounding and URL context; none turns them off."""
    result = await client.run(
        "search #sim:words=3", tools=[{"type": "google_search"}, {"type": "url_context"}]
    )
    tools = sim.inspect("requests/last")["tools"]
    assert result.error is None
    assert tools["google_search"] is True
    assert tools["url_context"] is True
    await client.run("plain #sim:words=3", tools=[])
    tools = sim.inspect("requests/last")["tools"]
    assert tools["google_search"] is False
    assert tools["url_context"] is False


async def test_url_context_is_off_again_for_a_job_without_tools(stream_worker, client, sim):
    """A job that says nothing about tools does not inherit URL context from the job before (issue 13)."""
    await client.run("browse #sim:words=3", tools=[{"type": "url_context"}])
    assert sim.inspect("requests/last")["tools"]["url_context"] is True
    result = await client.run("plain #sim:words=3")
    assert result.error is None
    assert sim.inspect("requests/last")["tools"]["url_context"] is False


async def test_model_switch_is_verified_and_reported(stream_worker, client, sim):
    """Switching models changes the request's model and the worker's status model."""
    result = await client.run("switch #sim:words=3", model="models/gemini-2.5-flash-lite")
    assert result.error is None
    assert sim.inspect("requests/last")["model"] == "gemini-2.5-flash-lite"
    assert (await client.status()).model == "gemini-2.5-flash-lite"


async def test_unknown_model_is_an_invalid_request(stream_worker, client, sim):
    """A model the page does not list fails with invalid_request and no request."""
    result = await client.run("x", model="gemini-9-ultra")
    assert result.error is not None and result.error.kind == "invalid_request"


@pytest.mark.parametrize("case_id", ["single_user_message", "multi_turn_with_tools"])
async def test_prompt_text_is_byte_exact(stream_worker, client, sim, case_id):
    """The prompt typed into the page is exactly the serialised conversation."""
    cases = {c["id"]: c for c in json.loads((FIXTURES / "prompt_serialization.json").read_text())["cases"]}
    case = cases[case_id]
    with overridden(stream_worker, function_calling_mode="emulated"):
        result = await client.run(
            messages=case["messages"], tools=case.get("tools"), tool_choice=case.get("tool_choice")
        )
    assert result.error is None, result.error
    assert sim.inspect("requests/last")["prompt"] == case["expected_recommended"]


async def test_echo_returns_a_large_prompt_byte_exact(stream_worker, client, sim):
    """A 40 kB prompt with unicode is filled by script and echoed back unchanged."""
    text = ("Zeile ünïcode ✓ 漢字\t**fett** `code` " * 1_000) + "\n#sim:echo"
    result = await client.run(text, stop=[])
    last = sim.inspect("requests/last")
    assert result.error is None, result.error
    assert last["prompt"] == f"User:\n{text}\n"
    assert result.content == last["prompt"]


@pytest.mark.parametrize(
    ("name", "mime", "size"),
    [
        ("pixel.png", "image/png", 68),
        ("notes.txt", "text/plain", 5_000),
        ("big.pdf", "application/pdf", 3_000_000),
    ],
)
async def test_attachments_are_uploaded_by_type_and_size(
    stream_worker, client, sim, work_dir, name, mime, size
):
    """Attachments go through the upload menu and reach the request intact."""
    data = hashlib.sha256(name.encode()).digest() * (size // 32 + 1)
    path = Path(work_dir) / name
    path.write_bytes(data[:size])
    attachment = protocol.Attachment(path=str(path), name=name, mime_type=mime, size=size)
    result = await client.run("describe #sim:words=3", attachments=[attachment])
    assert result.error is None, result.error
    got = sim.inspect("requests/last")["attachments"]
    assert [(a["name"], a["size"], a["sha256"]) for a in got] == [
        (name, size, hashlib.sha256(data[:size]).hexdigest())
    ]


# ------------------------------------------------------------------ robustness


async def test_injected_overlays_and_first_use_dialogs_do_not_break_a_job(stream_worker, client, sim):
    """Backdrops, tooltips, survey iframes, banners and dialogs are dismissed before submitting."""
    sim.config(
        inject_overlays=[
            "transparent_backdrop",
            "tooltip",
            "survey_iframe",
            "welcome_dialog",
            "cookie_banner",
        ],
        first_use_dialogs=True,
    )
    await stream_worker.supervisor.reload_page()
    result = await client.run("overlay #sim:words=4")
    assert result.error is None, result.error
    assert result.content == sim.inspect("requests/last")["response"]["answer_text"]


async def test_post_upload_dialog_is_accepted(stream_worker, client, sim, work_dir):
    """The copyright dialog after an upload is clicked away."""
    sim.config(inject_overlays=["post_upload_dialog"])
    path = Path(work_dir) / "dialog.txt"
    path.write_text("hello")
    attachment = protocol.Attachment(path=str(path), name="dialog.txt", mime_type="text/plain", size=5)
    result = await client.run("file #sim:words=3", attachments=[attachment])
    assert result.error is None, result.error
    assert [a["name"] for a in sim.inspect("requests/last")["attachments"]] == ["dialog.txt"]


async def check_cancel_at_first_content(client, sim) -> JobResult:
    """JobCancel at the first content delta: the simulator's stream ends within 1 s of it, and the
    next job gets its whole answer."""
    cancel_at: list[float] = []

    def first_content(ev):
        if isinstance(ev, protocol.Content):
            cancel_at.append(time.time())
            return True
        return False

    result = await client.run("long #sim:words=600 #sim:delay_ms=40", cancel_when=first_content)
    assert result.error is not None and result.error.kind == "cancelled"
    last = await ended_request(sim)
    assert last["ended"] == "client_closed"
    assert last["last_byte_at"] - cancel_at[0] < 1.0
    follow = await client.run("after cancel #sim:words=3")
    assert follow.error is None and follow.content == sim.inspect("requests/last")["response"]["answer_text"]
    return result


async def test_cancel_mid_stream_stops_the_generation_within_a_second(stream_worker, client, sim):
    """JobCancel clicks Stop; the simulator's stream ends within 1 s and the next job works."""
    result = await check_cancel_at_first_content(client, sim)
    assert result.done.timings["stopped"] > 0


async def test_losing_the_event_channel_mid_answer_continues_from_the_page(stream_worker, client, sim):
    """When the proxy subscription drops mid-answer, the rest comes from the DOM: nothing lost or repeated."""
    dropped: list[int] = []

    async def drop_after_some_content(ev):
        if isinstance(ev, protocol.Content) and not dropped:
            dropped.append(1)
            await stream_worker.feed.drop_connection()

    result = await client.run(
        "long #sim:words=300 #sim:chunks=30 #sim:delay_ms=30", on_event=drop_after_some_content
    )
    last = sim.inspect("requests/last")
    assert result.error is None, result.error
    assert dropped
    assert len(result.of(protocol.Content)) >= 2
    assert result.content == last["response"]["answer_text"]
    async with asyncio.timeout(10):
        await stream_worker.feed.client.connected.wait()
    again = await client.run("after reconnect #sim:words=5")
    assert again.error is None and again.of(protocol.Usage)[0].estimated is False


async def test_client_disconnect_stops_the_generation(stream_worker, sim):
    """An API connection that closes mid-answer cancels the job and stops the simulator's stream."""
    conn = await channel.connect(stream_worker.settings.worker_socket)
    job = protocol.Job(
        model="gemini-2.5-pro", messages=[{"role": "user", "content": "x #sim:words=600 #sim:delay_ms=40"}]
    )
    await conn.send(protocol.JobSubmit(id="req-gone", job=job))
    async with asyncio.timeout(30):
        async for msg in conn:
            if isinstance(msg, protocol.Content):
                break
    left_at = time.time()
    await conn.close()
    last = await ended_request(sim)
    assert last["ended"] == "client_closed"
    assert last["last_byte_at"] - left_at < 1.0
    async with asyncio.timeout(30):
        await stream_worker.wait_idle()
    assert stream_worker.counts["cancelled"] >= 1


@pytest.mark.parametrize(
    ("directive", "kind", "retry"),
    [
        ("quota", "quota", 3600),
        ("rate_limit", "rate_limit", 60),
        ("permission", "permission", None),
        ("internal", "upstream", None),
        ("inline", "quota", 3600),
        ("cut", "upstream", None),
    ],
)
async def test_simulated_failures_become_typed_errors(stream_worker, client, sim, directive, kind, retry):
    """Each failure directive maps to its error kind and retry hint, then the worker recovers."""
    result = await client.run(f"fail #sim:error={directive}")
    assert result.error is not None, result.types
    assert result.error.kind == kind, result.error
    assert result.error.retry_after == retry
    assert result.types[-2:] == ["error", "done"]
    follow = await client.run("recovered #sim:words=3")
    assert follow.error is None, follow.error


async def test_stalled_stream_times_out(stream_worker, client, sim):
    """A stream that stops sending fails with a timeout after the silence limit."""
    with overridden(stream_worker, silence_timeout_ms=2_000):
        result = await client.run("stall #sim:error=stall")
    assert result.error is not None and result.error.kind == "timeout", result.error
    assert (await ended_request(sim))["ended"] == "client_closed"


async def test_no_first_byte_times_out(stream_worker, client, sim):
    """A response that does not start within the silence limit fails with a timeout."""
    with overridden(stream_worker, silence_timeout_ms=1_500):
        result = await client.run("slow #sim:ttfb_ms=4000 #sim:words=3")
    assert result.error is not None and result.error.kind == "timeout", result.error
    assert "first response" in result.error.message
    follow = await client.run("quick #sim:words=3")
    assert follow.error is None, follow.error


async def test_failure_writes_a_redacted_snapshot(stream_worker, client, sim):
    """A failed job leaves screenshot, HTML without cookie values, console and network logs."""
    result = await client.run("fail #sim:error=internal")
    assert result.error is not None
    root = stream_worker.settings.error_snapshot_dir
    folders = sorted(p for p in root.glob("*/*") if result.error.id in p.name)
    assert folders, list(root.glob("*/*"))
    folder = folders[-1]
    assert {p.name for p in folder.iterdir()} >= {"screenshot.png", "page.html", "console.txt", "network.txt"}
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    cookies = json.loads(stream_worker.supervisor.profile.read_text())["cookies"]
    html = (folder / "page.html").read_text()
    for cookie in cookies:
        assert cookie["value"] not in html


async def test_response_format_turns_on_structured_output_with_the_schema(stream_worker, client, sim):
    """json_schema sets structured output and the cleaned schema; the answer is valid JSON; none turns it off."""
    schema = {
        "type": "object",
        "title": "Answer",
        "additionalProperties": False,
        "properties": {"city": {"type": "string"}, "rank": {"type": "integer"}},
        "required": ["city"],
    }
    result = await client.run(
        "json please", response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    )
    config = sim.inspect("requests/last")["generation_config"]
    assert result.error is None, result.error
    assert config["response_mime_type"] == "application/json"
    sent = (
        json.loads(config["response_schema"])
        if isinstance(config["response_schema"], str)
        else config["response_schema"]
    )
    assert sent["properties"]["city"]["type"].lower() == "string" and "title" not in sent
    assert "city" in json.loads(result.content)
    await client.run("plain again #sim:words=3")
    assert sim.inspect("requests/last")["generation_config"]["response_mime_type"] is None


# ------------------------------------------------------------------ warm jobs (docs/performance.md)


SETTERS = (
    "set_temperature",
    "set_top_p",
    "set_max_output_tokens",
    "set_stop_sequences",
    "open_tools_group",
    "set_structured_output",
    "set_url_context",
    "set_google_search",
    "apply_thinking",
    "set_function_declarations",
    "switch_model",
)


@contextlib.contextmanager
def counted_setters(studio):
    """Count calls to the page's setters (the originals still run)."""
    calls: list[str] = []
    originals = {name: getattr(studio, name) for name in SETTERS}

    def spy(name, fn):
        async def wrapper(*args, **kwargs):
            calls.append(name)
            return await fn(*args, **kwargs)

        return wrapper

    for name, fn in originals.items():
        setattr(studio, name, spy(name, fn))
    try:
        yield calls
    finally:
        for name in originals:
            delattr(studio, name)


async def test_a_warm_repeat_job_sets_no_control(stream_worker, client, sim):
    """Same model and settings twice: the second job reads the settings once and sets nothing."""
    job = dict(model="gemini-2.5-flash", temperature=0.6, top_p=0.85, max_output_tokens=777, stop=["<X>"])
    first = await client.run("warm one #sim:words=3", **job)
    assert first.error is None, first.error
    await stream_worker.wait_idle()
    with counted_setters(stream_worker.supervisor.studio) as calls:
        second = await client.run("warm two #sim:words=3", **job)
    assert second.error is None, second.error
    assert calls == []
    config = sim.inspect("requests/last")["generation_config"]
    assert config["temperature"] == pytest.approx(0.6)
    assert config["max_output_tokens"] == 777
    current = await stream_worker.supervisor.studio.read_run_settings()
    assert current.model == "gemini-2.5-flash"
    assert current.temperature == pytest.approx(0.6) and current.top_p == pytest.approx(0.85)
    assert current.max_tokens == 777 and current.stops == ("<X>",)


async def test_a_repeated_response_schema_is_not_pasted_again(stream_worker, client, sim):
    """The schema dialog is saved once; the same schema again costs no setter, another one does."""

    def fmt(schema):
        return {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}

    def sent_schema():
        raw = sim.inspect("requests/last")["generation_config"]["response_schema"]
        return json.loads(raw) if isinstance(raw, str) else raw

    city = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    rank = {"type": "object", "properties": {"rank": {"type": "integer"}}, "required": ["rank"]}
    job = dict(model="gemini-2.5-flash", temperature=0.6, top_p=0.85, max_output_tokens=777, stop=["<X>"])
    assert (await client.run("json one", response_format=fmt(city), **job)).error is None
    await stream_worker.wait_idle()
    with counted_setters(stream_worker.supervisor.studio) as calls:
        again = await client.run("json two", response_format=fmt(city), **job)
    assert again.error is None, again.error
    assert calls == []
    assert "city" in sent_schema()["properties"]
    await stream_worker.wait_idle()
    with counted_setters(stream_worker.supervisor.studio) as calls:
        other = await client.run("json three", response_format=fmt(rank), **job)
    assert other.error is None, other.error
    assert calls == ["set_structured_output"]
    assert list(sent_schema()["properties"]) == ["rank"]
    await client.run("plain again #sim:words=3", **job)
    assert sim.inspect("requests/last")["generation_config"]["response_mime_type"] is None


async def test_only_the_changed_control_is_set_and_read_back(stream_worker, client, sim):
    """A repeat job with one different value calls only that setter, and the page sends the new value."""
    job = dict(model="gemini-2.5-flash", temperature=0.6, top_p=0.85, max_output_tokens=777, stop=["<X>"])
    assert (await client.run("base #sim:words=3", **job)).error is None
    await stream_worker.wait_idle()
    with counted_setters(stream_worker.supervisor.studio) as calls:
        result = await client.run("changed #sim:words=3", **{**job, "temperature": 1.25})
    assert result.error is None, result.error
    assert calls == ["set_temperature"]
    assert sim.inspect("requests/last")["generation_config"]["temperature"] == pytest.approx(1.25)


async def test_dom_watcher_does_not_wake_per_chunk_while_the_stream_is_live(stream_worker, client, sim):
    """60 chunks 20 ms apart through the stream tier: the DOM watcher wakes a few times, not per chunk."""
    studio = stream_worker.supervisor.studio
    original = studio.wait_dom_change
    woken: list[bool] = []

    async def spy(previous, timeout_ms, *, text=True):
        state = await original(previous, timeout_ms, text=text)
        if state is not None:
            woken.append(text)
        return state

    studio.wait_dom_change = spy
    try:
        result = await client.run(
            "many #sim:words=300 #sim:chunks=60 #sim:delay_ms=20", model="gemini-2.0-flash"
        )
    finally:
        del studio.wait_dom_change
    assert result.error is None, result.error
    assert result.content == sim.inspect("requests/last")["response"]["answer_text"]
    assert len(result.of(protocol.Content)) >= 30
    assert woken and not any(woken)  # only signal watching
    assert len(woken) <= 10, len(woken)


# ------------------------------------------------------------------ clean-up race (a page finishing by itself)


FAKE_STOP_JS = """
([removeAfterMs, removeOnClick]) => {
  const b = document.createElement("button");
  b.setAttribute("aria-label", "Stop generating");
  b.id = "fake-stop";
  b.textContent = "Stop";
  b.addEventListener("click", () => { window.__fakeStopClicked = true; if (removeOnClick) b.remove(); });
  document.body.appendChild(b);
  window.__fakeStopClicked = false;
  if (removeAfterMs !== null) setTimeout(() => b.remove(), removeAfterMs);
}
"""


@contextlib.asynccontextmanager
async def page_to_ourselves(worker):
    """The worker idle (the last job's clean-up over) and its page lock held by the test."""
    await worker.wait_idle()
    async with worker.supervisor.page_lock:
        yield worker.supervisor.studio
        await worker.supervisor.studio.page.evaluate("() => document.getElementById('fake-stop')?.remove()")


async def _fake_stop(studio, remove_after_ms, remove_on_click=False):
    await studio.page.evaluate(FAKE_STOP_JS, [remove_after_ms, remove_on_click])


async def test_stop_after_a_finished_job_waits_for_the_page_to_finish_by_itself(stream_worker, client, sim):
    """Stop still shown after the answer completed: the page gets ≤ 1 s to finish; no click, no error."""
    async with page_to_ourselves(stream_worker) as studio:
        await _fake_stop(studio, 300)
        started = time.monotonic()
        stopped = await studio.stop_generation(settle_ms=1_000)
        assert stopped is False
        assert time.monotonic() - started < 1.0
        assert await studio.page.evaluate("() => window.__fakeStopClicked") is False


async def test_stop_that_vanishes_before_the_click_is_success_not_a_timeout(stream_worker, client, sim):
    """Stop seen, then gone before the click (the page finished): success at once, no 3 s timeout."""
    async with page_to_ourselves(stream_worker) as studio:
        await _vanishing_stop(studio)


async def _vanishing_stop(studio):
    await _fake_stop(studio, None)
    real = studio.chat.stop_button

    class SeenThenGone:
        """The Stop locator, whose ``count`` sees the button and then lets the page finish."""

        async def count(self):
            n = await real.count()
            await studio.page.evaluate("() => document.getElementById('fake-stop').remove()")
            return n

        def __getattr__(self, name):
            return getattr(real, name)

    studio.chat.stop_button = SeenThenGone()
    try:
        started = time.monotonic()
        assert await studio.stop_generation() is False
        assert time.monotonic() - started < 1.0
    finally:
        studio.chat.stop_button = real


async def test_stop_still_shown_after_the_settle_time_is_clicked(stream_worker, client, sim):
    """A page that does not finish within the settle time gets its Stop clicked."""
    async with page_to_ourselves(stream_worker) as studio:
        await _fake_stop(studio, None, remove_on_click=True)
        assert await studio.stop_generation(settle_ms=200) is True
        assert await studio.page.evaluate("() => window.__fakeStopClicked") is True
    follow = await client.run("after stop #sim:words=3")
    assert follow.error is None, follow.error


# ------------------------------------------------------------------ logging


async def test_each_job_logs_its_timings_once_with_the_request_id(stream_worker, client, sim, caplog):
    """One INFO line per job where Done is sent: the request id, the outcome and every timing."""
    with caplog.at_level(logging.INFO, logger="browser_worker.worker"):
        ok = await client.run("timed #sim:words=3")
        failed = await client.run("timed #sim:error=internal")
    assert ok.error is None and failed.error is not None
    for result, outcome in ((ok, "ok"), (failed, failed.error.kind)):
        lines = [r.getMessage() for r in caplog.records if f"job {result.done.id} done" in r.getMessage()]
        assert len(lines) == 1, lines
        assert f"({outcome})" in lines[0]
        for name in result.done.timings:
            assert f"{name} " in lines[0]


# ------------------------------------------------------------------ native mode: a call leaked as text (docs/aistudio.md §4.7)


READ_FILE_TOOL = {
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


async def test_native_mode_parses_a_call_leaked_as_text_and_strips_control_tokens(stream_worker, client, sim):
    """#sim:ctrl_tokens with function calling on: no <ctrl46> reaches the client; the call is a ToolCall."""
    result = await client.run("Read it #sim:ctrl_tokens", tools=[READ_FILE_TOOL])
    assert result.error is None, result.error
    assert [d["name"] for d in sim.inspect("requests/last")["tools"]["function_declarations"]] == [
        "read_file"
    ]
    assert "<ctrl" not in result.content and "Request function call" not in result.content
    assert [(c.name, c.arguments) for c in result.of(protocol.ToolCall)] == [
        ("read_file", {"files": [{"path": "temp.txt"}]})
    ]
    assert result.of(protocol.Finish)[0].reason == "tool_calls"


async def test_native_mode_plain_answer_still_streams_incrementally(stream_worker, client, sim):
    """With tools declared but no leak, the answer arrives in many deltas and byte-exact."""
    result = await client.run("plain #sim:words=120 #sim:chunks=20 #sim:delay_ms=20", tools=[READ_FILE_TOOL])
    assert result.error is None, result.error
    assert result.content == sim.inspect("requests/last")["response"]["answer_text"]
    assert len(result.of(protocol.Content)) >= 10
