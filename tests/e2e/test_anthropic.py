"""Anthropic's clients against the whole demo stack: the ``anthropic`` Python SDK and Claude Code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import pytest

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL, THINKING_MODEL
from tests.requirements import skip_unless

NODE_BIN = Path(__file__).resolve().parent / "node" / "node_modules" / ".bin"
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
async def sdk(stack: Stack) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=stack.base_url, api_key="e2e-unused", max_retries=0) as c:
        yield c


async def test_a_message_and_a_stream_with_thinking_come_from_the_page(sdk: anthropic.AsyncAnthropic):
    msg = await sdk.messages.create(
        model=PLAIN_MODEL, max_tokens=200, messages=[{"role": "user", "content": "#sim:words=5 hello"}]
    )
    assert msg.stop_reason == "end_turn" and len(msg.content[0].text.split()) == 5
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    async with sdk.messages.stream(
        model=THINKING_MODEL,
        max_tokens=8000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "#sim:think=6 #sim:words=4 think first"}],
    ) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert len(final.content[0].thinking.split()) == 6 and len(final.content[1].text.split()) == 4


async def test_a_tool_call_and_its_result_make_a_two_turn_loop(sdk: anthropic.AsyncAnthropic, stack: Stack):
    first = await sdk.messages.create(
        model=PLAIN_MODEL,
        max_tokens=500,
        tools=[WEATHER],
        messages=[{"role": "user", "content": '#sim:tool=get_weather #sim:args={"city": "Paris"} weather?'}],
    )
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"})
    second = await sdk.messages.create(
        model=PLAIN_MODEL,
        max_tokens=500,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "weather in Paris? #sim:words=3"},
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn" and len(second.content[-1].text.split()) == 3
    assert "sunny" in stack.sim_inspect("requests/last")["prompt"]


async def test_an_unknown_model_is_anthropic_s_not_found_error(sdk: anthropic.AsyncAnthropic):
    with pytest.raises(anthropic.NotFoundError) as missing:
        await sdk.messages.create(
            model="claude-nope", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.status_code == 404 and PLAIN_MODEL in missing.value.message


def test_claude_code_answers_headless_through_the_stack(stack: Stack, tmp_path: Path):
    """``claude -p`` with ``ANTHROPIC_BASE_URL`` pointed at the stack: its streamed, thinking-enabled request with
    ~20 tools and cache_control blocks is answered, and it prints the page's answer."""
    claude = NODE_BIN / "claude"
    skip_unless(
        claude.exists() and shutil.which("node") is not None, "Claude Code (npm ci in tests/e2e/node)"
    )
    env = _claude_env(stack, tmp_path)
    done = subprocess.run(
        [str(claude), "-p", "#sim:words=7 say hello", "--model", THINKING_MODEL, "--no-session-persistence"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    assert len(done.stdout.split()) == 7, done.stdout


def _claude_env(stack: Stack, tmp_path: Path) -> dict[str, str]:
    """Claude Code headless, quiet and self-contained, talking to the stack."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
        "ANTHROPIC_BASE_URL": stack.base_url,
        "ANTHROPIC_API_KEY": "e2e-unused",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": PLAIN_MODEL,
        "ANTHROPIC_SMALL_FAST_MODEL": PLAIN_MODEL,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }


def test_claude_code_runs_a_tool_and_answers_with_its_result(stack: Stack, tmp_path: Path):
    """``claude -p`` in a tool loop: the model (the simulator) asks for its Bash tool, Claude Code runs the
    command, sends the result back as a tool_result, and the run ends with the model's next answer. The
    command's output names an undeclared tool, which makes the simulator answer in text instead of calling
    Bash again (the whole conversation is one prompt, so the first turn's directive stays in it)."""
    claude = NODE_BIN / "claude"
    skip_unless(
        claude.exists() and shutil.which("node") is not None, "Claude Code (npm ci in tests/e2e/node)"
    )
    marker = tmp_path / "ran.txt"
    args = json.dumps({"command": f"touch {marker} && echo '#sim:tool=end_of_loop'", "description": "mark"})
    env = _claude_env(stack, tmp_path)
    done = subprocess.run(
        [
            str(claude),
            "-p",
            f"#sim:tool=Bash #sim:args={args} run it",
            "--model",
            THINKING_MODEL,  # Claude Code asks for 32000 output tokens: more than gemini-2.0-flash's 8192
            "--no-session-persistence",
            "--allowedTools",
            "Bash",
            "--max-turns",
            "4",
        ],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    assert marker.exists(), "Claude Code did not run the Bash tool"
    assert "end_of_loop" in done.stdout, done.stdout
