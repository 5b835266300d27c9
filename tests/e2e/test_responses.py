"""OpenAI's Responses API against the whole demo stack: the ``openai`` SDK's ``client.responses``,
openai-agents with its default (Responses) model, the AI SDK's default OpenAI provider in node, and the
Codex CLI headless."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL, THINKING_MODEL
from tests.requirements import skip_unless

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_BIN = NODE_DIR / "node_modules" / ".bin"
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CALL_WEATHER = '#sim:tool=get_weather #sim:args={"city": "Paris"} weather in Paris?'
#: The whole conversation is the page's prompt, so the first turn's tool directive stays in it; a tool result
#: naming an undeclared tool turns the next answer into text ("Function end_of_loop is not declared…").
END_OF_LOOP = "#sim:tool=end_of_loop"


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=stack.base_url + "/v1", api_key="e2e-unused", max_retries=0, timeout=120
    ) as c:
        yield c


def test_a_function_tool_loop_through_previous_response_id(client: openai.OpenAI, stack: Stack) -> None:
    first = client.responses.create(model=PLAIN_MODEL, input=CALL_WEATHER, tools=[WEATHER])
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    second = client.responses.create(
        model=PLAIN_MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": f"sunny {END_OF_LOOP}"}],
        tools=[WEATHER],
    )
    assert second.status == "completed" and "end_of_loop is not declared" in second.output_text
    prompt = stack.sim_inspect("requests/last")["prompt"]
    assert "weather in Paris?" in prompt and "sunny" in prompt  # the stored conversation came first
    assert client.responses.retrieve(second.id).output_text == second.output_text
    items = client.responses.input_items.list(second.id).data
    assert [i.type for i in items] == ["function_call_output"]
    client.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)


def test_a_stream_with_reasoning_summary_and_usage(client: openai.OpenAI, stack: Stack) -> None:
    stream = client.responses.create(
        model=THINKING_MODEL,
        input="#sim:think=8 #sim:words=12 hello",
        reasoning={"effort": "low", "summary": "auto"},
        stream=True,
    )
    events = list(stream)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds and "response.output_text.delta" in kinds
    final = events[-1].response  # type: ignore[union-attr]
    recorded = stack.sim_inspect("requests/last")
    assert final.output_text == recorded["response"]["answer_text"]
    assert final.output[0].type == "reasoning" and final.output[0].summary[0].text.strip()  # type: ignore[union-attr]
    assert final.usage is not None and final.usage.output_tokens > 0


def test_text_format_json_schema(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    resp = client.responses.create(
        model=PLAIN_MODEL,
        input="#sim:json a city",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}},
    )
    assert set(json.loads(resp.output_text)) == {"city"}


async def test_openai_agents_default_model_runs_a_function_tool(stack: Stack) -> None:
    agents = pytest.importorskip("agents")
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny {END_OF_LOOP}"

    client = openai.AsyncOpenAI(base_url=stack.base_url + "/v1", api_key="e2e-unused", max_retries=0)
    agents.set_default_openai_client(client, use_for_tracing=False)
    agents.set_default_openai_api("responses")
    agents.set_tracing_disabled(True)
    agent = agents.Agent(name="weather", instructions="Use the tool.", tools=[get_weather], model=PLAIN_MODEL)
    result = await agents.Runner.run(agent, '#sim:tool=get_weather #sim:args={"city": "Paris"} weather?')
    assert calls == ["Paris"]
    assert "end_of_loop is not declared" in str(result.final_output)


def test_ai_sdk_default_openai_provider(node_bin: str, stack: Stack) -> None:
    skip_unless((NODE_DIR / "node_modules" / "@ai-sdk" / "openai").exists(), "@ai-sdk/openai (npm ci)")
    args = {"baseURL": stack.base_url + "/v1", "model": PLAIN_MODEL}
    proc = subprocess.run(
        [node_bin, "ai_sdk_responses.mjs", json.dumps(args)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert len(out["text"].split()) == 5
    assert len(out["streamed"].split()) == 6
    assert out["toolCalls"] == [{"toolName": "get_weather", "input": {"city": "Paris"}}]
    assert "end_of_loop is not declared" in out["afterTool"]


def test_codex_exec_runs_a_tool_through_the_stack(stack: Stack, tmp_path: Path) -> None:
    codex = NODE_BIN / "codex"
    skip_unless(codex.exists() and shutil.which("node") is not None, "Codex CLI (npm ci in tests/e2e/node)")
    home = tmp_path / "codex"
    home.mkdir()
    (home / "config.toml").write_text(
        f'model = "{PLAIN_MODEL}"\n'
        'model_provider = "stack"\n'
        "check_for_update_on_startup = false\n"
        "[analytics]\nenabled = false\n"
        "[feedback]\nenabled = false\n"
        "[model_providers.stack]\n"
        'name = "stack"\n'
        f'base_url = "{stack.base_url}/v1"\n'
        'env_key = "STACK_KEY"\n'
        'wire_api = "responses"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "CODEX_HOME": str(home),
        "STACK_KEY": "e2e-unused",
    }
    tool = "exec_command"  # Codex's shell tool
    # the command prints the directive for the answer after the call (not written whole in the prompt)
    command = "echo tool-ran; echo '#sim:''tool=end_of_loop'"
    prompt = f"#sim:tool={tool} #sim:args={json.dumps({'cmd': command})} run it"
    done = subprocess.run(
        [
            str(codex),
            "exec",
            "--skip-git-repo-check",
            "--ephemeral",
            "--color",
            "never",
            "--sandbox",
            "danger-full-access",
            prompt,
        ],
        env=env,
        cwd=work,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    last = stack.sim_inspect("requests/last")
    assert "tool-ran\n#sim:tool=end_of_loop" in last["prompt"]  # the command's output went back
    assert "end_of_loop is not declared" in done.stdout, done.stdout
