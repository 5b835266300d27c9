"""SSE framing: ``data:`` lines, blank-line separation, comments and ``[DONE]``."""

from __future__ import annotations

import orjson

from api_server.sse import DONE, encode_comment, encode_event
from shared.errors import UpstreamError


def test_event_is_one_data_line_and_a_blank_line() -> None:
    """An event is ``data: <json>`` followed by an empty line."""
    frame = encode_event({"a": "x\ny", "b": [1]})
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    assert frame.count(b"\n") == 2  # newlines inside strings are escaped by JSON
    assert orjson.loads(frame[len(b"data: ") : -2]) == {"a": "x\ny", "b": [1]}


def test_non_ascii_text_is_utf8_json() -> None:
    """CJK text survives as UTF-8."""
    assert orjson.loads(encode_event({"t": "你好"})[6:-2]) == {"t": "你好"}


def test_comment_lines_start_with_colon() -> None:
    """Comments are ``: text`` lines ending in a blank line, one per input line."""
    assert encode_comment("keep-alive") == b": keep-alive\n\n"
    assert encode_comment("a\nb") == b": a\n: b\n\n"


def test_done_marker() -> None:
    """The stream ends with ``data: [DONE]``."""
    assert DONE == b"data: [DONE]\n\n"


def test_error_event_has_the_openai_error_shape() -> None:
    """An error event carries ``{"error": {message, type, param, code}}``."""
    frame = encode_event(UpstreamError("boom", code="x").to_openai())
    body = orjson.loads(frame[6:-2])
    assert set(body["error"]) == {"message", "type", "param", "code"}
