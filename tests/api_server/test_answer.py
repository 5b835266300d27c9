"""The dialect-neutral answer (api_server/answer.py) and the error-shape table."""

from __future__ import annotations

from api_server.answer import Answer, Call, prompt_text
from api_server.dialects import errors as error_shapes
from shared import protocol
from shared.errors import NotFound
from shared.tokens import estimate_tokens

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


# ---- found by the mutation review (docs/mutation.md): each pins one behaviour no other test did


def test_prompt_text_is_every_text_and_call_of_the_conversation_one_per_line() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image"}, "stray", 7]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"function": None},
                {},
            ],
        },
        {"role": "tool", "content": "sunny"},
    ]
    assert prompt_text(messages) == "\n".join(
        ["be brief", "look", "", 'get_weather {"city": "Paris"}', " ", " ", "sunny"]
    )
    assert prompt_text([]) == ""
    assert prompt_text([{"role": "user", "content": [{"text": 42}]}]) == "42"


def test_estimated_tokens_count_the_prompt_the_text_and_each_call() -> None:
    a = Answer([{"role": "user", "content": "one two three"}])
    a.feed(protocol.Content(id="r", ts=0, text="four five"))
    a.feed(protocol.ToolCall(id="r", ts=0, name="lookup", arguments={"q": "six"}))
    t = a.tokens()
    expected_output = estimate_tokens("four five") + estimate_tokens('lookup{"q": "six"}')
    assert (t.prompt, t.output, t.source) == (estimate_tokens("one two three"), expected_output, "estimate")
    assert expected_output > estimate_tokens("four five")
    a.feed(protocol.ToolCall(id="r", ts=0, name="find", arguments={}))
    both = estimate_tokens("four five") + estimate_tokens('lookup{"q": "six"}find{}')
    assert a.tokens().output == both


def test_wire_usage_without_reasoning_tokens_estimates_them_and_keeps_a_zero_prompt() -> None:
    a = Answer(PROMPT)
    a.feed(protocol.Reasoning(id="r", ts=0, text="let me think about it"))
    a.feed(protocol.Usage(id="r", ts=0, prompt_tokens=0, completion_tokens=5))
    t = a.tokens()
    assert (t.prompt, t.output, t.source) == (0, 5, "wire")
    assert t.reasoning == estimate_tokens("let me think about it") > 0
    a.feed(protocol.Usage(id="r", ts=0, prompt_tokens=4, completion_tokens=0))
    assert (a.tokens().prompt, a.tokens().output) == (4, 0)


def test_the_wire_s_finish_reason_decides_without_calls() -> None:
    a = Answer(PROMPT)
    a.feed(protocol.Content(id="r", ts=0, text="cut"))
    a.feed(protocol.Finish(id="r", ts=0, reason="MAX_TOKENS"))
    assert a.finish == "max_tokens"  # each dialect maps it (chat: "length")


def test_a_source_named_twice_in_one_event_is_kept_once() -> None:
    a = Answer(PROMPT)
    twice = [{"uri": "https://a.example", "title": "A"}, {"uri": "https://a.example", "title": "A again"}]
    a.feed(protocol.Grounding(id="r", ts=0, sources=twice, queries=["q", "q"]))
    assert a.sources == [{"uri": "https://a.example", "title": "A"}] and a.queries == ["q"]


def test_a_dropped_call_is_logged_with_its_index_name_and_the_limit(caplog) -> None:
    a = Answer(PROMPT, max_calls=1)
    a.feed(protocol.ToolCall(id="r", ts=0, name="f", arguments={}))
    with caplog.at_level("INFO", logger="api_server.answer"):
        assert a.feed(protocol.ToolCall(id="r", ts=0, name="g", arguments={})) is None
    assert "dropping call 1 (g): at most 1 allowed" in caplog.messages
