"""The facts about an answer that several processes share: one rule each."""

from __future__ import annotations

import pytest

from shared.answer import capture_label, finish_reason
from shared.deadlines import completion_timeout_s
from shared.settings import Settings


@pytest.mark.parametrize(
    ("reason", "calls", "expected"),
    [
        (None, False, "stop"),
        ("length", False, "length"),
        ("content_filter", False, "content_filter"),
        (None, True, "tool_calls"),
        ("length", True, "tool_calls"),
        ("stop", True, "tool_calls"),
    ],
)
def test_a_call_makes_the_finish_reason_tool_calls(reason: str | None, calls: bool, expected: str) -> None:
    assert finish_reason(reason, tool_calls=calls) == expected


@pytest.mark.parametrize(
    ("stream", "helper", "expected"),
    [
        (True, True, "stream"),
        (True, False, "stream"),
        (False, True, "helper"),
        (False, False, "dom"),
    ],
)
def test_the_capture_label_prefers_stream_then_helper_then_dom(
    stream: bool, helper: bool, expected: str
) -> None:
    assert capture_label(stream=stream, helper=helper) == expected


def test_the_completion_timeout_grows_with_the_prompt_beyond_the_setting() -> None:
    settings = Settings(_env_file=None, response_completion_timeout_ms=60_000)  # type: ignore[call-arg]
    assert completion_timeout_s(settings, 0) == 60.0
    assert completion_timeout_s(settings, 55_000) == 60.0
    assert completion_timeout_s(settings, 100_000) == 105.0
