"""Tests for the decoder CLI, run as a real subprocess: python -m stream_proxy.decode."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stream_proxy.decode import event_fields
from tests.shared.wire.test_decoder import EXPECTED, FIXTURES, FUNCTION_CALL, ROOT, TEXT, THINKING

FIXTURE_NAMES = [TEXT, THINKING, FUNCTION_CALL]


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "stream_proxy.decode", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )


def lines(result: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def expected_lines(name: str) -> list[dict[str, Any]]:
    return [event_fields(event) for event in EXPECTED[name]]


def boundaries(name: str) -> str:
    offsets = json.loads((FIXTURES / "chunk_boundaries.json").read_text())[name]
    return ",".join(map(str, offsets))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_cli_prints_the_fixture_events_as_json_lines(name: str) -> None:
    """A fixture decodes to one JSON object per event and exit status 0."""
    result = run_cli(FIXTURES / name)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert json.dumps(lines(result)) == json.dumps(expected_lines(name))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_cli_split_at_chunk_boundaries_gives_the_same_lines(name: str) -> None:
    """--split-at with the fixture's chunk boundaries changes nothing in the output."""
    result = run_cli("--split-at", boundaries(name), FIXTURES / name)
    assert result.returncode == 0, result.stderr
    assert json.dumps(lines(result)) == json.dumps(expected_lines(name))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_cli_gzip_file_split_anywhere_gives_the_same_lines(name: str, tmp_path: Path) -> None:
    """--gzip reads a compressed body, also when cut inside the compressed stream."""
    path = tmp_path / (name + ".gz")
    path.write_bytes(gzip.compress((FIXTURES / name).read_bytes()))
    size = path.stat().st_size
    for extra in ([], ["--split-at", ",".join(map(str, range(1, size, 3)))]):
        result = run_cli("--gzip", *extra, path)
        assert result.returncode == 0, result.stderr
        assert json.dumps(lines(result)) == json.dumps(expected_lines(name))


def test_cli_lines_hold_the_type_and_the_decoded_fields_only() -> None:
    """The function-call fixture's lines, spelled out: no id, ts or protocol defaults the decoder did not set."""
    out = lines(run_cli(FIXTURES / FUNCTION_CALL))
    assert out[0] == {"type": "reasoning", "text": EXPECTED[FUNCTION_CALL][0].text}
    assert out[2] == {
        "type": "tool_call",
        "name": "get_weather",
        "arguments": {"city": "Tokyo", "unit": "celsius", "days": [1, 2, 3]},
    }
    assert out[3:] == [
        {"type": "finish", "reason": "tool_calls"},
        {
            "type": "usage",
            "prompt_tokens": 88,
            "completion_tokens": 71,
            "reasoning_tokens": 43,
            "total_tokens": 202,
        },
        {"type": "done"},
    ]


def test_cli_output_keeps_unicode_unescaped() -> None:
    """Text is written as UTF-8, not as \\u escapes."""
    result = run_cli(FIXTURES / TEXT)
    assert 'café \\"Le Procope\\" opened in 1686 — it still serves coffee ☕.' in result.stdout.decode()


def test_cli_malformed_body_prints_the_error_line_and_exits_1(tmp_path: Path) -> None:
    """Invalid JSON in an event gives a protocol error line, then done, and exit status 1."""
    path = tmp_path / "bad.stream"
    path.write_bytes(b'[[[[[[[[null,"ok"]],"model"]]]],[[[[[[null,"a" "b"]],"model"]]]]]]')
    result = run_cli(path)
    assert result.returncode == 1
    out = lines(result)
    assert out[0] == {"type": "content", "text": "ok"}
    assert out[1]["type"] == "error" and out[1]["kind"] == "protocol" and out[1]["status"] is None
    assert out[2:] == [{"type": "done"}]


def test_cli_truncated_body_reports_aborted_and_exits_1(tmp_path: Path) -> None:
    """A body cut short gives the complete events, an aborted error, done, and exit status 1."""
    path = tmp_path / "short.stream"
    path.write_bytes((FIXTURES / TEXT).read_bytes()[:-3])
    result = run_cli("--split-at", "10,200", path)
    assert result.returncode == 1
    assert [line["type"] for line in lines(result)] == ["content"] * 3 + ["error", "done"]
    assert lines(result)[3]["kind"] == "aborted"


def test_cli_gzip_flag_on_plain_file_is_a_protocol_error() -> None:
    """--gzip on an uncompressed body reports a decoding error with exit status 1."""
    result = run_cli("--gzip", FIXTURES / TEXT)
    assert result.returncode == 1
    assert [line["type"] for line in lines(result)] == ["error", "done"]


@pytest.mark.parametrize(
    "args",
    [
        ["/nonexistent/body.stream"],
        ["--split-at", "abc", str(FIXTURES / TEXT)],
        ["--split-at", "-1", str(FIXTURES / TEXT)],
        ["--split-at", "10,99999", str(FIXTURES / TEXT)],
        [],
        ["--bogus", str(FIXTURES / TEXT)],
    ],
    ids=[
        "missing_file",
        "non_integer_offset",
        "negative_offset",
        "offset_beyond_file",
        "no_file",
        "unknown_option",
    ],
)
def test_cli_bad_usage_prints_one_line_and_exits_2(args: list[str]) -> None:
    """Bad usage gives a one-line message on stderr, no traceback, no output and exit status 2."""
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == b""
    err = result.stderr.decode()
    assert err.count("\n") == 1 and err.strip()
    assert "Traceback" not in err
