"""The dialect-neutral answer (api_server/answer.py) and the error-shape table."""

from __future__ import annotations

from api_server.answer import Answer, Call
from api_server.dialects import errors as error_shapes
from shared import protocol
from shared.errors import NotFound

PROMPT = [{"role": "user", "content": "hello there"}]


def test_pieces_come_back_in_order_and_calls_get_their_index() -> None:
    a = Answer(PROMPT)
    assert a.feed(protocol.Reasoning(id="r", ts=0, text="think")) == protocol.Reasoning(
        id="r", ts=0, text="think"
    )
    assert a.feed(protocol.Content(id="r", ts=0, text="")) is None  # nothing to send for empty text
    assert a.feed(protocol.Content(id="r", ts=0, text="Hi")) == protocol.Content(id="r", ts=0, text="Hi")
    first = a.feed(protocol.ToolCall(id="r", ts=0, name="f", arguments={"x": 1}))
    second = a.feed(protocol.ToolCall(id="r", ts=0, name="g", arguments={}, call_id="wire-id"))
    assert first == Call(0, "f", {"x": 1}, None)
    assert second == Call(1, "g", {}, "wire-id")
    assert a.feed(protocol.Finish(id="r", ts=0, reason="STOP")) is None
    assert (a.text, a.reasoning, a.finish) == ("Hi", "think", "tool_calls")


def test_max_calls_drops_later_calls() -> None:
    a = Answer(PROMPT, max_calls=1)
    assert a.feed(protocol.ToolCall(id="r", ts=0, name="f", arguments={})) is not None
    assert a.feed(protocol.ToolCall(id="r", ts=0, name="g", arguments={})) is None
    assert [c.name for c in a.calls] == ["f"]


def test_wire_tokens_keep_reasoning_apart_from_output() -> None:
    a = Answer(PROMPT)
    a.feed(protocol.Usage(id="r", ts=0, prompt_tokens=7, completion_tokens=5, reasoning_tokens=11))
    t = a.tokens()
    assert (t.prompt, t.output, t.reasoning, t.source) == (7, 5, 11, "wire")


def test_estimated_wire_usage_is_ignored_for_our_own_estimate() -> None:
    a = Answer(PROMPT)
    a.feed(protocol.Content(id="r", ts=0, text="a fairly short answer"))
    a.feed(protocol.Usage(id="r", ts=0, prompt_tokens=1000, completion_tokens=1000, estimated=True))
    t = a.tokens()
    assert t.source == "estimate"
    assert 0 < t.prompt < 1000 and 0 < t.output < 1000 and t.reasoning == 0


def test_openai_is_the_default_error_shape_and_prefixes_match_whole_segments() -> None:
    err = NotFound("nope", code="x")
    assert error_shapes.shape_for("/v1/chat/completions")(err) == (404, err.to_openai())

    def other(e: object) -> tuple[int, dict[str, object]]:
        return 418, {"other": True}

    error_shapes.SHAPES.insert(0, ("/v1/messages", other))
    try:
        assert error_shapes.shape_for("/v1/messages")(err)[0] == 418
        assert error_shapes.shape_for("/v1/messages/count_tokens")(err)[0] == 418
        assert error_shapes.shape_for("/v1/messagesX")(err)[0] == 404
    finally:
        error_shapes.SHAPES.pop(0)
