"""The raw SSE bytes of /v1/chat/completions as ``curl -N`` sees them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL, THINKING_MODEL
from tests.requirements import needs

pytestmark = needs(shutil.which("curl") is not None, "curl")


def curl_stream(stack: Stack, body: dict[str, Any], tmp_path: Path) -> tuple[str, bytes]:
    """POST with ``curl -N``; return (response headers, raw body bytes)."""
    headers = tmp_path / "headers.txt"
    proc = subprocess.run(
        [
            "curl",
            "-N",
            "-sS",
            "--max-time",
            "120",
            "-D",
            str(headers),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            json.dumps(body),
            stack.base_url + "/v1/chat/completions",
        ],
        capture_output=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return headers.read_text(), proc.stdout


def events(raw: bytes) -> list[str]:
    """Split a body into SSE blocks, checking the framing on the way: LF only, blocks end with a blank line."""
    assert b"\r" not in raw
    assert raw.endswith(b"\n\n"), raw[-80:]
    blocks = raw.decode("utf-8").split("\n\n")
    assert blocks.pop() == ""
    for block in blocks:
        assert block, "two blank lines in a row"
        assert "\n" not in block, f"an event spans several lines: {block!r}"
        assert block.startswith(("data: ", ":")), block
    return blocks


def data_of(blocks: list[str]) -> list[str]:
    return [b.removeprefix("data: ") for b in blocks if b.startswith("data: ")]


def test_stream_bytes_are_data_lines_with_blank_lines_and_done(stack: Stack, tmp_path: Path):
    """event-stream headers; data: lines split by blank lines; role first; one id; [DONE] last."""
    headers, raw = curl_stream(
        stack,
        {
            "model": PLAIN_MODEL,
            "stream": True,
            "messages": [{"role": "user", "content": "Raw bytes please #sim:words=40 #sim:chunks=8"}],
        },
        tmp_path,
    )
    assert headers.startswith("HTTP/1.1 200")
    assert "content-type: text/event-stream" in headers.lower()
    assert "x-request-id: " in headers.lower()
    data = data_of(events(raw))
    assert data[-1] == "[DONE]"
    assert "[DONE]" not in data[:-1]
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in chunks[1:])
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["id"].startswith("chatcmpl-")
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["created"] for c in chunks}) == 1
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == stack.sim_inspect("requests/last")["response"]["answer_text"]
    assert len([c for c in chunks if c["choices"][0]["delta"].get("content")]) >= 4
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}


def test_stream_with_usage_and_reasoning_keeps_the_shape(stack: Stack, tmp_path: Path):
    """include_usage adds one choice-less usage chunk before [DONE]; reasoning deltas use reasoning_content."""
    _, raw = curl_stream(
        stack,
        {
            "model": THINKING_MODEL,
            "stream": True,
            "stream_options": {"include_usage": True},
            "reasoning_effort": "low",
            "messages": [{"role": "user", "content": "Think #sim:think=10"}],
        },
        tmp_path,
    )
    data = data_of(events(raw))
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    assert len({c["id"] for c in chunks}) == 1
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks[:-1])
    assert len(reasoning.split()) == 10


def test_stream_error_after_output_is_one_error_event_then_done(stack: Stack, tmp_path: Path):
    """An upstream failure after output started ends with one OpenAI error object in a data: line, then [DONE]."""
    headers, raw = curl_stream(
        stack,
        {
            "model": PLAIN_MODEL,
            "stream": True,
            "messages": [{"role": "user", "content": "Fail #sim:error=cut #sim:words=40"}],
        },
        tmp_path,
    )
    assert headers.startswith("HTTP/1.1 200")
    data = data_of(events(raw))
    assert data[-1] == "[DONE]"
    assert json.loads(data[0])["choices"][0]["delta"]["content"]
    error = json.loads(data[-2])
    assert set(error) == {"error"}
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert error["error"]["type"] == "upstream_error"


def test_stream_error_before_output_is_a_plain_json_error(stack: Stack, tmp_path: Path):
    """An upstream failure before any output is the same JSON error (and status) as without streaming."""
    headers, raw = curl_stream(
        stack,
        {
            "model": PLAIN_MODEL,
            "stream": True,
            "messages": [{"role": "user", "content": "Fail #sim:error=internal"}],
        },
        tmp_path,
    )
    assert headers.startswith("HTTP/1.1 502") and "application/json" in headers.lower()
    assert json.loads(raw)["error"]["type"] == "upstream_error"
