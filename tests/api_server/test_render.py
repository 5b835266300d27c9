"""Worker events -> OpenAI objects: chunks, the whole completion, usage and response_format checks."""

from __future__ import annotations

import json
import re
import time

import pytest

from api_server.engine import tools_to_send
from api_server.render import CompletionBuilder, check_response_format, check_tool_choice, finish_reason
from shared import protocol
from shared.errors import UpstreamError


def builder() -> CompletionBuilder:
    return CompletionBuilder(
        req_id="req_1",
        model="m",
        created=1,
        fingerprint="fp_x",
        prompt_messages=[{"role": "user", "content": "Hello there, how are you?"}],
    )


def ev(cls: type[protocol.Message], **fields: object) -> protocol.Message:
    return cls(id="req_1", ts=time.time(), **fields)


def _fed(b: CompletionBuilder, *events: protocol.Message) -> CompletionBuilder:
    for event in events:
        b.feed(event)
    return b


def test_first_chunk_carries_the_assistant_role() -> None:
    """Only the first delta has role: assistant."""
    b = builder()
    first = b.feed(ev(protocol.Content, text="a"))[0]
    second = b.feed(ev(protocol.Content, text="b"))[0]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "a"}
    assert second["choices"][0]["delta"] == {"content": "b"}


def test_reasoning_is_kept_apart_from_content() -> None:
    """reasoning_content is never merged into content."""
    b = builder()
    b.feed(ev(protocol.Reasoning, text="think"))
    b.feed(ev(protocol.Content, text="answer"))
    msg = b.completion()["choices"][0]["message"]
    assert msg["content"] == "answer" and msg["reasoning_content"] == "think"


def test_tool_calls_get_stable_ids_and_json_arguments() -> None:
    """Missing call ids become call_<24 hex>, the same in chunks and in the message; content is null."""
    b = builder()
    chunk = b.feed(ev(protocol.ToolCall, name="f", arguments={"x": 1, "s": "é"}))[0]
    b.feed(ev(protocol.ToolCall, name="g", arguments={}, call_id="given"))
    b.feed(ev(protocol.Finish, reason="STOP"))
    delta = chunk["choices"][0]["delta"]["tool_calls"][0]
    assert re.fullmatch(r"call_[0-9a-f]{24}", delta["id"]) and delta["index"] == 0
    done = b.completion()
    msg = done["choices"][0]["message"]
    assert msg["content"] is None
    assert [c["id"] for c in msg["tool_calls"]] == [delta["id"], "given"]
    assert json.loads(msg["tool_calls"][0]["function"]["arguments"]) == {"x": 1, "s": "é"}
    assert done["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("raw", "tools", "expected"),
    [
        ("stop", False, "stop"),
        ("STOP", False, "stop"),
        ("MAX_TOKENS", False, "length"),
        ("length", False, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        (None, False, "stop"),
        ("stop", True, "tool_calls"),
        ("function_call", False, "tool_calls"),  # the legacy name of the reason, outside a legacy request
        ("other", False, "stop"),
    ],
)
def test_finish_reasons_map_to_openai(raw: str | None, tools: bool, expected: str) -> None:
    """Gemini/worker reasons map onto stop, length, tool_calls and content_filter."""
    assert finish_reason(raw, tools) == expected


def test_wire_usage_follows_openai_arithmetic() -> None:
    """Wire usage, labelled wire, in OpenAI's arithmetic: the wire counts thoughts apart from the answer
    (candidates 7, thoughts 3), OpenAI's completion_tokens include them, and total = prompt + completion. Both
    detail objects are there, as OpenAI sends them (AI Studio reports no cached or audio tokens: 0)."""
    b = builder()
    b.feed(ev(protocol.Usage, prompt_tokens=11, completion_tokens=7, reasoning_tokens=3, total_tokens=21))
    usage, source = b.usage()
    assert source == "wire"
    assert usage == {
        "prompt_tokens": 11,
        "completion_tokens": 10,
        "total_tokens": 21,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 3,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def test_estimated_usage_is_computed_here() -> None:
    """An estimated (or missing) Usage falls back to shared.tokens, labelled estimate."""
    b = builder()
    b.feed(ev(protocol.Reasoning, text="let me think about it"))
    b.feed(ev(protocol.Content, text="fine thanks"))
    b.feed(ev(protocol.Usage, prompt_tokens=1, completion_tokens=1, estimated=True))
    usage, source = b.usage()
    assert source == "estimate"
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens_details"]["reasoning_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


PARIS = {"uri": "https://example.com/paris", "title": "Paris", "domain": "example.com"}
OSLO = {"uri": "https://example.com/oslo", "title": None, "domain": "example.com"}
BARE = {"uri": "https://bare.example/", "title": None, "domain": None}


def citation(url: str, title: str) -> dict[str, object]:
    return {
        "type": "url_citation",
        "url_citation": {"url": url, "title": title, "start_index": 0, "end_index": 0},
    }


def test_grounding_sources_become_url_citations_and_the_grounding_extension() -> None:
    """The message has OpenAI url_citation annotations and grounding with the exact wire sources."""
    b = builder()
    b.feed(ev(protocol.Content, text="Paris."))
    assert b.feed(ev(protocol.Grounding, sources=[PARIS, OSLO, BARE], queries=["capital"])) == []
    msg = b.completion()["choices"][0]["message"]
    assert msg["annotations"] == [
        citation(PARIS["uri"], "Paris"),
        citation(OSLO["uri"], "example.com"),
        citation(BARE["uri"], BARE["uri"]),
    ]
    assert msg["grounding"] == {"sources": [PARIS, OSLO, BARE], "queries": ["capital"]}
    assert msg["content"] == "Paris."


def test_grounding_sources_are_deduplicated_by_uri_across_events() -> None:
    """Repeated sources and queries from later events are kept once, in first-seen order."""
    b = builder()
    b.feed(ev(protocol.Grounding, sources=[PARIS], queries=["q1"]))
    b.feed(
        ev(
            protocol.Grounding,
            sources=[{**PARIS, "title": "again"}, OSLO, {"title": "no uri"}],
            queries=["q1", "q2"],
        )
    )
    msg = b.completion()["choices"][0]["message"]
    assert msg["grounding"] == {"sources": [PARIS, OSLO], "queries": ["q1", "q2"]}
    assert [a["url_citation"]["url"] for a in msg["annotations"]] == [PARIS["uri"], OSLO["uri"]]


def test_a_message_without_grounding_has_no_annotations_field() -> None:
    """Without sources neither annotations nor grounding appear (the message shape is unchanged)."""
    b = builder()
    b.feed(ev(protocol.Content, text="plain"))
    msg = b.completion()["choices"][0]["message"]
    assert "annotations" not in msg and "grounding" not in msg
    assert b.final_chunk()["choices"][0]["delta"] == {}


def test_streamed_sources_arrive_once_in_the_final_chunk_delta() -> None:
    """All sources go in one delta, the finish_reason chunk's, whatever the number of events."""
    b = builder()
    b.start_chunk()
    b.feed(ev(protocol.Grounding, sources=[PARIS], queries=["q"]))
    b.feed(ev(protocol.Content, text="more"))
    b.feed(ev(protocol.Grounding, sources=[OSLO]))
    final = b.final_chunk()["choices"][0]
    assert final["finish_reason"] == "stop"
    assert final["delta"] == {
        "annotations": [citation(PARIS["uri"], "Paris"), citation(OSLO["uri"], "example.com")],
        "grounding": {"sources": [PARIS, OSLO], "queries": ["q"]},
    }


def test_openai_sdk_parses_the_annotations_and_keeps_grounding_as_an_extra() -> None:
    """The SDK types accept the message and the chunk; its stream accumulator merges the delta."""
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    b = builder()
    b.feed(ev(protocol.Content, text="Paris."))
    b.feed(ev(protocol.Grounding, sources=[PARIS, OSLO], queries=["q"]))
    done = ChatCompletion.model_validate(b.completion())
    msg = done.choices[0].message
    assert [a.url_citation.url for a in msg.annotations or []] == [PARIS["uri"], OSLO["uri"]]
    assert (msg.model_extra or {})["grounding"]["sources"] == [PARIS, OSLO]

    state = ChatCompletionStreamState()
    for chunk in [b.start_chunk(), *b.feed(ev(protocol.Content, text="x")), b.final_chunk()]:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    streamed = state.get_final_completion().choices[0].message
    assert [a.url_citation.title for a in streamed.annotations or []] == ["Paris", "example.com"]
    assert (streamed.model_extra or {})["grounding"]["queries"] == ["q"]


def test_json_object_format_accepts_objects_and_strips_fences() -> None:
    """A fenced JSON object passes and comes back unfenced."""
    assert check_response_format({"type": "json_object"}, '```json\n{"a": 1}\n```') == '{"a": 1}'
    assert check_response_format({"type": "text"}, "anything") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "The model's answer is not valid JSON (Expecting value: line 1 column 1 (char 0))."),
        ("[1, 2]", "The model's answer is JSON but not an object."),
    ],
)
def test_json_object_violation_is_an_upstream_error(text: str, message: str) -> None:
    """Non-JSON or non-object answers are 502 invalid_json_output, saying which."""
    with pytest.raises(UpstreamError) as info:
        check_response_format({"type": "json_object"}, text)
    assert info.value.status == 502 and info.value.code == "invalid_json_output"
    assert info.value.message == message


def test_json_schema_violation_names_the_path() -> None:
    """A schema violation names where it happened."""
    fmt = {
        "type": "json_schema",
        "json_schema": {
            "name": "x",
            "schema": {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]},
        },
    }
    assert check_response_format(fmt, '{"age": 3}') == '{"age": 3}'
    with pytest.raises(UpstreamError) as info:
        check_response_format(fmt, '{"age": "old"}')
    assert "age" in info.value.message and info.value.code == "invalid_json_output"


def _call(name: str) -> dict:
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": "{}"}}


@pytest.mark.parametrize("choice", [None, "auto", "none"])
def test_tool_choice_without_a_demand_accepts_any_answer(choice):
    """auto, none and no tool_choice accept answers with or without calls."""
    check_tool_choice(choice, [])
    check_tool_choice(choice, [_call("f")])


def test_required_tool_choice_without_a_call_is_an_upstream_error():
    """The page cannot force a call, so an answer without one is a 502 naming tool_choice."""
    check_tool_choice("required", [_call("f")])
    with pytest.raises(UpstreamError) as info:
        check_tool_choice("required", [])
    assert info.value.status == 502 and info.value.param == "tool_choice"


def test_named_tool_choice_accepts_only_calls_to_that_function():
    """A named choice is met by calls to that function only; another function or none is a 502."""
    named = {"type": "function", "function": {"name": "get_time"}}
    check_tool_choice(named, [_call("get_time"), _call("get_time")])
    for calls in ([], [_call("get_weather")], [_call("get_time"), _call("get_weather")]):
        with pytest.raises(UpstreamError, match="get_time"):
            check_tool_choice(named, calls)


def test_tool_choice_none_declares_no_function_but_keeps_search():
    """With tool_choice none the worker gets no function tools; Google Search stays."""
    fn = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    search = {"type": "google_search"}
    assert tools_to_send([fn, search], "none") == [search]
    assert tools_to_send([fn], "none") is None
    assert tools_to_send([fn], "auto") == [fn]
    assert tools_to_send([], None) is None


def test_required_tool_choice_error_says_what_happened():
    with pytest.raises(UpstreamError) as info:
        check_tool_choice("required", [])
    assert (
        info.value.message == "tool_choice is 'required' but the model answered without calling a function."
    )
    assert info.value.code == "tool_choice_not_followed"


@pytest.mark.parametrize(
    ("calls", "got"),
    [([], "no function"), ([_call("get_weather"), _call("get_time")], "get_weather, get_time")],
)
def test_named_tool_choice_error_lists_the_functions_called(calls, got):
    named = {"type": "function", "function": {"name": "get_time"}}
    with pytest.raises(UpstreamError) as info:
        check_tool_choice(named, calls)
    assert info.value.message == f"tool_choice names function 'get_time' but the model called {got}."
    assert info.value.param == "tool_choice" and info.value.code == "tool_choice_not_followed"


def test_tool_calls_have_the_openai_shape_in_chunks_and_message() -> None:
    """Each call is {id, type: function, function: {name, arguments}}; generated ids differ per request and call."""
    b = builder()
    chunk = b.feed(ev(protocol.ToolCall, name="f", arguments={"x": 1}))[0]
    b.feed(ev(protocol.ToolCall, name="f", arguments={"x": 2}))
    first, second = b.completion()["choices"][0]["message"]["tool_calls"]
    assert first == {
        "id": first["id"],
        "type": "function",
        "function": {"name": "f", "arguments": '{"x": 1}'},
    }
    assert chunk["choices"][0]["delta"]["tool_calls"] == [{"index": 0, **first}]
    assert second["id"] != first["id"]
    other = CompletionBuilder(req_id="req_2", model="m", created=1, fingerprint="fp_x", prompt_messages=[])
    again = builder()
    for b2 in (other, again):
        b2.feed(ev(protocol.ToolCall, name="f", arguments={"x": 1}))
    assert other.tool_calls[0]["id"] != first["id"]
    assert again.tool_calls[0]["id"] == first["id"]  # stable: the same request and index give the same id


def test_a_stream_opens_with_the_role_and_empty_content_and_ends_with_usage() -> None:
    """start_chunk is {role: assistant, content: ""}; usage_chunk has no choices and the usage object."""
    b = builder()
    assert b.start_chunk()["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    b.feed(ev(protocol.Usage, prompt_tokens=11, completion_tokens=7, reasoning_tokens=3, total_tokens=21))
    chunk = b.usage_chunk()
    assert chunk == {
        "id": "chatcmpl-req_1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "system_fingerprint": "fp_x",
        "choices": [],
        "usage": b.usage()[0],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('```{"a": 1}```', '{"a": 1}'),  # a fence on one line
        ('```{\n"a": 1}\n```', '{\n"a": 1}'),  # the JSON starts on the fence's line (no language tag)
        ('```\n{"a": 1}\n```', '{"a": 1}'),
        ('  ```JSON\n{"a": 1}```  ', '{"a": 1}'),
    ],
)
def test_fenced_json_is_unfenced(text: str, expected: str) -> None:
    assert check_response_format({"type": "json_object"}, text) == expected


@pytest.mark.parametrize("text", ["```\n123456", "123456\n```"])
def test_half_a_fence_is_not_stripped(text: str) -> None:
    """Only a surrounding fence is stripped: an unclosed (or unopened) one leaves the answer invalid JSON."""
    with pytest.raises(UpstreamError, match="not valid JSON"):
        check_response_format({"type": "json_schema", "json_schema": {"name": "n"}}, text)


def test_json_schema_with_upper_case_type_names_checks_the_answer() -> None:
    """Gemini-style type names ("OBJECT", "STRING"), which the request check accepts, validate the answer
    like their lower-case forms (they crashed the check with jsonschema's UnknownType)."""
    schema = {"type": "OBJECT", "properties": {"tags": {"type": "ARRAY", "items": {"type": "STRING"}}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert check_response_format(fmt, '{"tags": ["a"]}') == '{"tags": ["a"]}'
    with pytest.raises(UpstreamError) as info:
        check_response_format(fmt, '{"tags": ["a", 2]}')
    assert (
        info.value.message
        == "The model's answer violates the JSON schema at tags/1: 2 is not of type 'string'"
    )


def test_json_schema_violation_at_the_top_says_root() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    with pytest.raises(UpstreamError) as info:
        check_response_format(fmt, "[1]")
    assert (
        info.value.message
        == "The model's answer violates the JSON schema at (root): [1] is not of type 'object'"
    )


def test_the_whole_completion_has_the_openai_shape() -> None:
    b = _fed(builder(), ev(protocol.Content, text="Hi."), ev(protocol.Finish, reason="STOP"))
    assert b.completion() == {
        "id": "chatcmpl-req_1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "system_fingerprint": "fp_x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi.", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": b.usage()[0],
    }
    assert b.completion("{}")["choices"][0]["message"]["content"] == "{}"  # e.g. the unfenced JSON


def test_text_said_before_a_tool_call_is_kept_as_content() -> None:
    b = _fed(
        builder(), ev(protocol.Content, text="Let me check."), ev(protocol.ToolCall, name="f", arguments={})
    )
    assert b.completion()["choices"][0]["message"]["content"] == "Let me check."


def test_legacy_functions_answer_with_one_function_call() -> None:
    """A request with the deprecated functions gets function_call (the first call only), no tool_calls."""
    b = CompletionBuilder(
        req_id="req_1", model="m", created=1, fingerprint="fp_x", prompt_messages=[], legacy_functions=True
    )
    chunk = b.feed(ev(protocol.ToolCall, name="f", arguments={"x": 1}))[0]
    assert b.feed(ev(protocol.ToolCall, name="g", arguments={})) == []  # the legacy API has no parallel calls
    function_call = {"name": "f", "arguments": '{"x": 1}'}
    assert chunk["choices"][0]["delta"] == {"role": "assistant", "function_call": function_call}
    done = b.completion()["choices"][0]
    assert done["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "function_call": function_call,
    }
    assert done["finish_reason"] == "function_call"


@pytest.mark.parametrize(
    ("sources", "queries"), [([PARIS], []), ([], ["capital"])], ids=["sources-only", "queries-only"]
)
def test_sources_or_queries_alone_are_reported(sources: list, queries: list) -> None:
    b = _fed(builder(), ev(protocol.Grounding, sources=sources, queries=queries))
    assert b.grounding() == {
        "annotations": [citation(s["uri"], s["title"]) for s in sources],
        "grounding": {"sources": sources, "queries": queries},
    }


def test_a_reasoning_chunk_has_the_openai_chunk_shape() -> None:
    """Reasoning streams as delta.reasoning_content, in a chunk like every other one."""
    assert builder().feed(ev(protocol.Reasoning, text="hmm")) == [
        {
            "id": "chatcmpl-req_1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "system_fingerprint": "fp_x",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "reasoning_content": "hmm"},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
    ]
