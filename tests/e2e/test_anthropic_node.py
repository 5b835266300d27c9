"""The official TypeScript ``@anthropic-ai/sdk`` (pinned in node/package-lock.json) against the demo stack.

Each scenario of ``node/anthropic.mjs`` runs in its own node process, so the simulator's record of the
last request belongs to that scenario.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL, THINKING_MODEL
from tests.requirements import skip_unless

NODE_DIR = Path(__file__).resolve().parent / "node"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201ffa7c1e1f40000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def sdk_installed(node_bin: str) -> str:
    skip_unless((NODE_DIR / "node_modules" / "@anthropic-ai" / "sdk").exists(), "@anthropic-ai/sdk (npm ci)")
    return node_bin


def scenario(node_bin: str, stack: Stack, name: str) -> Any:
    args = {
        "baseURL": stack.base_url,
        "scenario": name,
        "model": PLAIN_MODEL,
        "thinkingModel": THINKING_MODEL,
        "image": base64.b64encode(PNG).decode(),
    }
    proc = subprocess.run(
        [node_bin, "anthropic.mjs", json.dumps(args)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, f"node anthropic.mjs {name} failed ({proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout)


def last_request(stack: Stack) -> dict[str, Any]:
    return stack.sim_inspect("requests/last")


def test_create_returns_the_page_s_answer_as_an_anthropic_message(sdk_installed: str, stack: Stack):
    msg = scenario(sdk_installed, stack, "create")
    recorded = last_request(stack)
    assert (msg["type"], msg["role"], msg["model"], msg["stop_reason"]) == (
        "message",
        "assistant",
        PLAIN_MODEL,
        "end_turn",
    )
    assert msg["id"].startswith("msg_")
    [block] = msg["content"]
    assert block["type"] == "text" and block["text"] == recorded["response"]["answer_text"]
    assert len(block["text"].split()) == 5
    assert msg["usage"]["input_tokens"] > 0 and msg["usage"]["output_tokens"] > 0
    assert recorded["prompt"].startswith("System Instructions:\nBe brief.")


def test_a_stream_with_thinking_and_a_tool_call_arrives_as_anthropic_s_events(
    sdk_installed: str, stack: Stack
):
    out = scenario(sdk_installed, stack, "stream")
    events, msg = out["events"], out["message"]
    assert events[0] == "message_start" and events[-2:] == ["message_delta", "message_stop"]
    assert "content_block_delta:thinking_delta" in events and "content_block_delta:signature_delta" in events
    assert "content_block_delta:input_json_delta" in events
    assert events.count("content_block_start") == events.count("content_block_stop") == len(msg["content"])
    assert [b["type"] for b in msg["content"]][0] == "thinking" and msg["content"][-1]["type"] == "tool_use"
    thinking, call = msg["content"][0], msg["content"][-1]
    assert thinking["thinking"].strip() == last_request(stack)["response"]["thought_text"].strip()
    assert thinking["signature"]
    assert (call["name"], call["input"]) == ("get_weather", {"city": "Oslo"})
    assert call["id"].startswith("toolu_") and msg["stop_reason"] == "tool_use"


def test_a_tool_loop_sends_the_result_back_and_ends_with_the_model_s_answer(sdk_installed: str, stack: Stack):
    out = scenario(sdk_installed, stack, "loop")
    first, second = out["first"], out["second"]
    assert first["stop_reason"] == "tool_use"
    [call] = [b for b in first["content"] if b["type"] == "tool_use"]
    assert (call["name"], call["input"]) == ("get_weather", {"city": "Lima"})
    assert second["stop_reason"] == "end_turn" and len(second["content"][-1]["text"].split()) == 3
    assert "foggy, 17 degrees" in last_request(stack)["prompt"]


def test_an_image_reaches_the_page_as_the_same_bytes(sdk_installed: str, stack: Stack):
    msg = scenario(sdk_installed, stack, "image")
    assert msg["stop_reason"] == "end_turn"
    [attachment] = last_request(stack)["attachments"]
    assert attachment["sha256"] == hashlib.sha256(PNG).hexdigest()


def test_count_tokens_grows_with_the_request(sdk_installed: str, stack: Stack):
    out = scenario(sdk_installed, stack, "count")
    assert 0 < out["short"] < out["long"]


def test_bad_requests_throw_the_sdk_s_typed_errors(sdk_installed: str, stack: Stack):
    out = scenario(sdk_installed, stack, "errors")
    assert out["unknownModel"] == {"thrown": "NotFoundError", "status": 404, "type": "not_found_error"}
    assert out["noMaxTokens"] == {"thrown": "BadRequestError", "status": 400, "type": "invalid_request_error"}
    assert out["badRole"] == {"thrown": "BadRequestError", "status": 400, "type": "invalid_request_error"}
