"""Native function calling through the page, tool calls back to the client, tool_choice, emulated fallback.

Everything goes through the openai SDK (or raw HTTP) against the real stack; what reached AI Studio is read
from the simulator's inspection API. ``#sim:tool=NAME #sim:args={...}`` makes the simulator answer with a
function call (repeat it for parallel calls); NAME must be among the declarations the page sent.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from aistudio_sim.stack import Stack
from tests.features.conftest import MODEL, last_request, make_client, user
from tests.fixtures import FIXTURES_DIR


def function(
    name: str, parameters: dict[str, Any] | None = None, description: str = "", strict: bool | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "description": description or f"The {name} function."}
    if parameters is not None:
        spec["parameters"] = parameters
    if strict is not None:
        spec["strict"] = strict
    return {"type": "function", "function": spec}


WEATHER = function(
    "get_weather",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
    "Current weather for a city.",
)
TIME = function(
    "get_time",
    {
        "type": "object",
        "properties": {"zone": {"type": "string"}},
        "required": ["zone"],
    },
    "Local time in a time zone.",
)

#: The two calls of ``fixtures/generate_content_function_call.stream`` (every value type), decoded.
BOOK_FLIGHT_ARGS = {
    "destination": "Tokyo",
    "passengers": 2,
    "max_price": 1234.5,
    "refundable": True,
    "window_seat": False,
    "promo_code": None,
    "traveler": {"name": "Ada Lovelace", "age": 36, "contact": {"email": "ada@example.com", "sms": False}},
    "dates": ["2026-05-01", "2026-05-09"],
    "seat_prefs": [{"row": 12, "letter": "A"}, {"row": 14, "letter": "C"}],
    "tags": [],
    "meta": {},
}
GET_WEATHER_ARGS = {"city": "Tokyo", "unit": "celsius", "days": [1, 2, 3]}
BOOK_FLIGHT = function(
    "book_flight",
    {
        "type": "object",
        "properties": {
            "destination": {"type": "string"},
            "passengers": {"type": "integer", "minimum": 1},
            "max_price": {"type": "number"},
            "refundable": {"type": "boolean"},
            "window_seat": {"type": "boolean"},
            "promo_code": {"type": ["string", "null"]},
            "traveler": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "age": {"type": "integer"},
                    "contact": {
                        "type": "object",
                        "properties": {"email": {"type": "string"}, "sms": {"type": "boolean"}},
                    },
                },
            },
            "dates": {"type": "array", "items": {"type": "string", "format": "date"}},
            "seat_prefs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"row": {"type": "integer"}, "letter": {"type": "string"}},
                },
            },
            "tags": {"type": "array", "items": {"type": "string"}},
            "meta": {"type": "object", "properties": {"note": {"type": "string"}}},
        },
        "required": ["destination", "passengers"],
    },
)
FORECAST = function(
    "get_forecast",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string"},
            "days": {"type": "array", "items": {"type": "integer"}},
        },
    },
)
#: Any arguments at all: used to send the fixture's argument cases back.
RECORD = function("record_case", {"type": "object", "properties": {"payload": {"type": "string"}}})


def call_directive(name: str, args: dict[str, Any] | None = None) -> str:
    text = f"#sim:tool={name}"
    if args is not None:
        text += " #sim:args=" + json.dumps(args, ensure_ascii=False)
    return text


def declared(stack: Stack) -> list[dict[str, Any]]:
    """The function declarations the page sent with the newest request ([] when none)."""
    return (last_request(stack).get("tools") or {}).get("function_declarations") or []


def arguments_of(message: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]


def post_chat(stack: Stack, body: dict[str, Any]) -> tuple[int, Any]:
    """POST /v1/chat/completions without the SDK: (status, parsed JSON)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        stack.base_url + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


# --------------------------------------------------------------------------- the agent loop


def test_agent_loop_with_the_sdk_calls_the_tool_and_ends_with_an_answer(client: openai.OpenAI, stack: Stack):
    """Call → tool result → final answer, an unmodified SDK loop; round two's prompt carries both (docs/aistudio.md §3.5)."""

    def get_weather(city: str, unit: str = "celsius") -> str:
        # The simulator replays the directives of the whole conversation; an undeclared function named in
        # the tool's result is its way of answering with text, which ends the loop.
        return json.dumps({"city": city, "temperature": 21, "unit": unit, "note": "#sim:tool=weather_done"})

    messages: list[Any] = user(
        "What is the weather in Paris? " + call_directive("get_weather", {"city": "Paris"})
    )
    rounds = []
    for _ in range(4):
        done = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER, TIME])
        rounds.append(done)
        message = done.choices[0].message
        if not message.tool_calls:
            break
        messages.append(message)
        for call in message.tool_calls:
            result = {"get_weather": get_weather}[call.function.name](**json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    assert len(rounds) == 2, [r.choices[0].message for r in rounds]
    first, final = rounds
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.id.startswith("call_") and call.type == "function"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    assert first.choices[0].message.content is None

    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == last_request(stack)["response"]["answer_text"]
    prompt = last_request(stack)["prompt"]
    assert 'Assistant:\nRequest function call: get_weather\nParameters:\n{\n  "city": "Paris"\n}' in prompt
    assert f"Tool:\nTool result (tool_call_id={call.id}):\n" + get_weather("Paris") in prompt
    assert prompt.count(get_weather("Paris")) == 1
    assert [d["name"] for d in declared(stack)] == ["get_weather", "get_time"]


async def test_streaming_agent_loop_with_the_async_sdk_accumulates_deltas(stack: Stack):
    """An async streaming loop that assembles tool_calls from deltas by index, as agents do, also ends."""
    tools = [WEATHER, TIME]
    messages: list[Any] = user(
        "Time in Tokyo and Oslo? "
        + call_directive("get_time", {"zone": "Asia/Tokyo"})
        + " "
        + call_directive("get_time", {"zone": "Europe/Oslo"})
    )
    finishes = []
    async with openai.AsyncOpenAI(
        base_url=stack.base_url + "/v1", api_key="x", max_retries=0, timeout=120
    ) as c:
        for _ in range(4):
            calls: dict[int, dict[str, Any]] = {}
            text = ""
            stream = await c.chat.completions.create(model=MODEL, messages=messages, tools=tools, stream=True)
            async for chunk in stream:
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                text += choice.delta.content or ""
                for delta in choice.delta.tool_calls or []:
                    slot = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = delta.id or slot["id"]
                    slot["name"] += (delta.function and delta.function.name) or ""
                    slot["arguments"] += (delta.function and delta.function.arguments) or ""
                if choice.finish_reason:
                    finishes.append(choice.finish_reason)
            if not calls:
                break
            messages.append(
                {
                    "role": "assistant",
                    "content": text or None,
                    "tool_calls": [
                        {
                            "id": v["id"],
                            "type": "function",
                            "function": {"name": v["name"], "arguments": v["arguments"]},
                        }
                        for _, v in sorted(calls.items())
                    ],
                }
            )
            for _, v in sorted(calls.items()):
                zone = json.loads(v["arguments"])["zone"]
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": v["id"],
                        "content": f"12:00 in {zone} #sim:tool=time_done",
                    }
                )
    assert finishes == ["tool_calls", "stop"]
    assert [
        json.loads(m["tool_calls"][i]["function"]["arguments"]) for m in messages[1:2] for i in (0, 1)
    ] == [{"zone": "Asia/Tokyo"}, {"zone": "Europe/Oslo"}]
    assert text == last_request(stack)["response"]["answer_text"]
    prompt = last_request(stack)["prompt"]
    for call in messages[1]["tool_calls"]:
        assert f"Tool result (tool_call_id={call['id']}):" in prompt


def test_declarations_are_visible_in_the_simulator(client: openai.OpenAI, stack: Stack):
    """Every function tool arrives as a declaration: name, description and cleaned parameters."""
    client.chat.completions.create(
        model=MODEL, messages=user("Weather? " + call_directive("get_time")), tools=[WEATHER, TIME]
    )
    assert declared(stack) == [
        {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
        {
            "name": "get_time",
            "description": "Local time in a time zone.",
            "parameters": {
                "type": "object",
                "properties": {"zone": {"type": "string"}},
                "required": ["zone"],
            },
        },
    ]


def test_rejected_schema_keywords_arrive_cleaned(client: openai.OpenAI, stack: Stack):
    """title, default, additionalProperties, anyOf, $ref/$defs, const, examples... are rewritten, not pasted."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "SearchArgs",
        "type": "object",
        "additionalProperties": False,
        "$defs": {
            "Range": {
                "title": "Range",
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "low": {"type": "integer", "exclusiveMinimum": 0},
                    "high": {"type": "integer", "default": 10},
                },
                "required": ["low", "ghost"],
            }
        },
        "properties": {
            "query": {"type": "string", "title": "Query", "default": "", "examples": ["cats"]},
            "limit": {
                "anyOf": [{"type": "integer", "maximum": 50}, {"type": "null"}],
                "default": None,
                "description": "At most this many.",
            },
            "mode": {"const": "fast"},
            "kind": {"type": "STRING", "enum": ["a", "b"]},
            "range": {"$ref": "#/$defs/Range", "description": "Inclusive range."},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "minItems": 1},
        },
        "required": ["query", "mode"],
    }
    tool = function("search_docs", schema, "Search the docs.")
    client.chat.completions.create(
        model=MODEL, messages=user("Find " + call_directive("search_docs")), tools=[tool]
    )
    assert declared(stack) == [
        {
            "name": "search_docs",
            "description": "Search the docs.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "limit": {
                        "description": "At most this many.",
                        "type": "integer",
                        "nullable": True,
                        "maximum": 50,
                    },
                    "mode": {"type": "string", "enum": ["fast"]},
                    "kind": {"type": "string", "enum": ["a", "b"]},
                    "range": {
                        "description": "Inclusive range.",
                        "type": "object",
                        "properties": {"low": {"type": "integer", "minimum": 1}, "high": {"type": "integer"}},
                        "required": ["low"],
                    },
                    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                },
                "required": ["query", "mode"],
            },
        }
    ]
    text = json.dumps(declared(stack))
    for word in (
        "title",
        "default",
        "additionalProperties",
        "anyOf",
        "$ref",
        "$defs",
        "const",
        "examples",
        "$schema",
        "uniqueItems",
        "exclusiveMinimum",
        "ghost",
    ):
        assert f'"{word}"' not in text, word
    # the simulator made up arguments from the cleaned schema and they came back
    call = last_request(stack)["response"]["calls"][0]
    assert call["name"] == "search_docs"


def test_parallel_calls_all_survive_with_distinct_ids(client: openai.OpenAI, stack: Stack):
    """Two calls in one answer come back as two tool_calls, in order, with distinct call_ ids."""
    prompt = (
        "Weather and time "
        + call_directive("get_weather", {"city": "Oslo"})
        + " "
        + call_directive("get_time", {"zone": "Europe/Oslo"})
        + " "
        + call_directive("get_weather", {"city": "Oslo"})
    )
    done = client.chat.completions.create(model=MODEL, messages=user(prompt), tools=[WEATHER, TIME])
    message = done.choices[0].message
    assert arguments_of(message) == [
        ("get_weather", {"city": "Oslo"}),
        ("get_time", {"zone": "Europe/Oslo"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    ids = [c.id for c in message.tool_calls]
    assert len(set(ids)) == 3 and all(i.startswith("call_") for i in ids)
    assert done.choices[0].finish_reason == "tool_calls"


def test_streamed_parallel_calls_are_deltas_with_distinct_index_and_id(client: openai.OpenAI, stack: Stack):
    """Streaming: each call is a delta with its own index and id; the SDK's stream helper assembles both. The
    wire delivers each call whole, so each call is one delta whose arguments are the whole JSON (issue 13.9)."""
    prompt = (
        "Both "
        + call_directive("get_weather", {"city": "Lima", "unit": "fahrenheit"})
        + " "
        + call_directive("get_time", {"zone": "America/Lima"})
    )
    strict_tools = [
        function(t["function"]["name"], t["function"]["parameters"], strict=True) for t in (WEATHER, TIME)
    ]
    deltas = []
    with client.chat.completions.stream(model=MODEL, messages=user(prompt), tools=strict_tools) as stream:
        for event in stream:
            if event.type == "chunk" and event.chunk.choices:
                deltas.extend(event.chunk.choices[0].delta.tool_calls or [])
        final = stream.get_final_completion()
    assert sorted(d.index for d in deltas) == [0, 1]
    assert [json.loads(d.function.arguments) for d in sorted(deltas, key=lambda d: d.index)] == [
        {"city": "Lima", "unit": "fahrenheit"},
        {"zone": "America/Lima"},
    ]
    assert len({d.id for d in deltas}) == 2 and all(d.id.startswith("call_") for d in deltas)
    message = final.choices[0].message
    assert arguments_of(message) == [
        ("get_weather", {"city": "Lima", "unit": "fahrenheit"}),
        ("get_time", {"zone": "America/Lima"}),
    ]
    assert [c.function.parsed_arguments for c in message.tool_calls] == [
        {"city": "Lima", "unit": "fahrenheit"},
        {"zone": "America/Lima"},
    ]
    assert [c.id for c in message.tool_calls] == [d.id for d in sorted(deltas, key=lambda d: d.index)]
    assert final.choices[0].finish_reason == "tool_calls"


def test_every_argument_type_of_the_fixtures_comes_back_exactly(client: openai.OpenAI, stack: Stack):
    """The fixture calls and all 13 argument cases, each wire variant in turn, decode to the same JSON."""
    cases = json.loads((FIXTURES_DIR / "function_call_args_variants.json").read_text())["cases"]
    wanted = [("book_flight", BOOK_FLIGHT_ARGS), ("get_forecast", GET_WEATHER_ARGS)]
    wanted += [("record_case", case["expected"]) for case in cases]
    prompt = "Replay " + " ".join(call_directive(name, args) for name, args in wanted)
    done = client.chat.completions.create(
        model=MODEL, messages=user(prompt), tools=[BOOK_FLIGHT, FORECAST, RECORD]
    )
    planned = last_request(stack)["response"]["calls"]
    assert len(planned) == len(wanted) and not last_request(stack)["directives"]["problems"]
    assert len({c["variant"] for c in planned}) >= 6  # canonical, bare_pairs, ... null_as_zero
    message = done.choices[0].message
    assert arguments_of(message) == wanted
    # integers stay integers, 1234.5 stays a float, key order follows the wire
    raw = message.tool_calls[0].function.arguments
    assert '"passengers": 2,' in raw and '"max_price": 1234.5' in raw and '"promo_code": null' in raw
    assert list(json.loads(raw)) == list(BOOK_FLIGHT_ARGS)
    assert (
        message.tool_calls[1].function.arguments == '{"city": "Tokyo", "unit": "celsius", "days": [1, 2, 3]}'
    )


def test_a_tool_less_request_switches_function_calling_off(client: openai.OpenAI, stack: Stack):
    """After a request with tools, the next one without tools reaches AI Studio with no declarations."""
    client.chat.completions.create(
        model=MODEL, messages=user("Time? " + call_directive("get_time")), tools=[TIME]
    )
    assert [d["name"] for d in declared(stack)] == ["get_time"]
    done = client.chat.completions.create(model=MODEL, messages=user("Just talk"))
    assert declared(stack) == []
    assert done.choices[0].message.tool_calls is None
    assert done.choices[0].message.content == last_request(stack)["response"]["answer_text"]


def test_same_declarations_twice_are_set_once_and_still_sent(client: openai.OpenAI, stack: Stack):
    """Two requests with identical tools: both reach AI Studio with the declarations (dialog may be skipped)."""
    for city in ("Rome", "Bern"):
        done = client.chat.completions.create(
            model=MODEL,
            messages=user("Weather " + call_directive("get_weather", {"city": city})),
            tools=[WEATHER],
        )
        assert arguments_of(done.choices[0].message) == [("get_weather", {"city": city})]
        assert [d["name"] for d in declared(stack)] == ["get_weather"]


# --------------------------------------------------------------------------- tool_choice


def test_tool_choice_none_sends_no_declarations(client: openai.OpenAI, stack: Stack):
    """tool_choice none: function calling is off, so no declarations reach AI Studio and no call comes back."""
    done = client.chat.completions.create(
        model=MODEL, messages=user("No tools please"), tools=[WEATHER], tool_choice="none"
    )
    assert declared(stack) == []
    assert done.choices[0].message.tool_calls is None
    assert done.choices[0].finish_reason == "stop"


def test_tool_choice_auto_and_required_return_the_call(client: openai.OpenAI, stack: Stack):
    """auto and required both declare the tools; a called function comes back as a tool call."""
    for choice in ("auto", "required"):
        done = client.chat.completions.create(
            model=MODEL,
            messages=user(f"{choice} " + call_directive("get_weather", {"city": "Kyiv"})),
            tools=[WEATHER, TIME],
            tool_choice=choice,
        )
        assert arguments_of(done.choices[0].message) == [("get_weather", {"city": "Kyiv"})]
        assert [d["name"] for d in declared(stack)] == ["get_weather", "get_time"]


def test_named_tool_choice_returns_that_function(client: openai.OpenAI, stack: Stack):
    """tool_choice naming get_time: the tools are declared and the named call comes back."""
    done = client.chat.completions.create(
        model=MODEL,
        messages=user("Time " + call_directive("get_time", {"zone": "UTC"})),
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert arguments_of(done.choices[0].message) == [("get_time", {"zone": "UTC"})]
    assert {d["name"] for d in declared(stack)} >= {"get_time"}


def test_named_tool_choice_for_an_unknown_function_is_refused(client: openai.OpenAI, stack: Stack):
    """A tool_choice naming a function that is not in tools: 400 on tool_choice, nothing sent upstream."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=user("x"),
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
    assert caught.value.body["param"] == "tool_choice"
    assert stack.sim_requests() == []


def test_required_tool_choice_without_a_call_is_an_upstream_error(stack: Stack):
    """The page cannot force a call; an answer without one under required is a 502-class error."""
    status, body = post_chat(
        stack, {"model": MODEL, "messages": user("Just chat"), "tools": [WEATHER], "tool_choice": "required"}
    )
    assert status >= 500, body
    assert "tool_choice" in body["error"]["message"]


def test_named_tool_choice_answered_with_another_function_is_an_upstream_error(stack: Stack):
    """The page cannot force the named function; a call to another one is a 502-class error."""
    status, body = post_chat(
        stack,
        {
            "model": MODEL,
            "messages": user("Time " + call_directive("get_weather", {"city": "Oslo"})),
            "tools": [WEATHER, TIME],
            "tool_choice": {"type": "function", "function": {"name": "get_time"}},
        },
    )
    assert status >= 500, body
    assert "get_time" in body["error"]["message"]


# --------------------------------------------------------------------------- emulated fallback and leaks

#: The function-declarations dialog refuses names that start with a digit (the API accepts them), so a
#: request carrying this tool cannot use native function calling and falls back to the text protocol.
UNPASTABLE = function("7zip_list", {"type": "object", "properties": {"archive": {"type": "string"}}})
READ_FILE = function(
    "read_file",
    {
        "type": "object",
        "properties": {
            "files": {
                "type": "array",
                "items": {"type": "object", "properties": {"path": {"type": "string"}}},
            }
        },
    },
)


def test_emulated_fallback_parses_request_function_call_text(client: openai.OpenAI, stack: Stack):
    """Declarations the dialog refuses: tools go into the prompt catalog and a written call becomes tool_calls."""
    written = 'Request function call: get_weather\nParameters:\n{"city": "Oslo", "unit": "celsius"}'
    done = client.chat.completions.create(
        model=MODEL, messages=user(f"#sim:echo\n{written}"), tools=[WEATHER, UNPASTABLE]
    )
    recorded = last_request(stack)
    assert declared(stack) == []
    assert recorded["prompt"].startswith("Available Tools Catalog:\n- Function: get_weather\n")
    assert "- Function: 7zip_list" in recorded["prompt"]
    message = done.choices[0].message
    assert arguments_of(message) == [("get_weather", {"city": "Oslo", "unit": "celsius"})]
    assert message.tool_calls[0].id.startswith("call_")
    assert "Request function call" not in (message.content or "")
    assert done.choices[0].finish_reason == "tool_calls"


def test_emulated_fallback_parses_a_ctrl_token_leak_into_a_call(client: openai.OpenAI, stack: Stack):
    """#sim:ctrl_tokens in emulated mode: read_file{files:[{path:<ctrl46>temp.txt<ctrl46>}]} is a call."""
    done = client.chat.completions.create(
        model=MODEL, messages=user("Read it #sim:ctrl_tokens"), tools=[READ_FILE, UNPASTABLE]
    )
    message = done.choices[0].message
    assert arguments_of(message) == [("read_file", {"files": [{"path": "temp.txt"}]})]
    assert "<ctrl" not in (message.content or "")
    assert message.content == "I will read the file first."
    assert done.choices[0].finish_reason == "tool_calls"


def test_emulated_fallback_streams_the_call_as_a_delta(client: openai.OpenAI, stack: Stack):
    """The emulated call is streamed as a tool_calls delta with index 0 and a call_ id."""
    stream = client.chat.completions.create(
        model=MODEL, messages=user("Read it #sim:ctrl_tokens"), tools=[READ_FILE, UNPASTABLE], stream=True
    )
    chunks = [c for c in stream if c.choices]
    deltas = [d for c in chunks for d in c.choices[0].delta.tool_calls or []]
    assert [(d.index, d.function.name, json.loads(d.function.arguments)) for d in deltas] == [
        (0, "read_file", {"files": [{"path": "temp.txt"}]})
    ]
    assert deltas[0].id.startswith("call_")
    assert "<ctrl" not in "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_emulated_named_tool_choice_recommends_that_function(client: openai.OpenAI, stack: Stack):
    """Emulated mode, tool_choice naming a function: the catalog ends with a recommendation for it."""
    written = 'Request function call: get_weather\nParameters:\n{"city": "Oslo"}'
    done = client.chat.completions.create(
        model=MODEL,
        messages=user(f"#sim:echo\n{written}"),
        tools=[WEATHER, UNPASTABLE],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert [c.function.name for c in done.choices[0].message.tool_calls] == ["get_weather"]
    catalog = last_request(stack)["prompt"].split("\n---\n")[0]
    assert catalog.splitlines()[0] == "Available Tools Catalog:"
    assert catalog.splitlines()[-1] == "Recommended function to use: get_weather"


def test_ctrl_token_leak_with_native_function_calling_is_not_passed_through(
    client: openai.OpenAI, stack: Stack
):
    """Native mode, a call leaked as text (docs/aistudio.md §4.7): no <ctrl46> reaches the client; the call is parsed."""
    done = client.chat.completions.create(
        model=MODEL, messages=user("Read it #sim:ctrl_tokens"), tools=[READ_FILE]
    )
    assert [d["name"] for d in declared(stack)] == ["read_file"]
    message = done.choices[0].message
    assert "<ctrl" not in (message.content or "")
    assert arguments_of(message) == [("read_file", {"files": [{"path": "temp.txt"}]})]


# --------------------------------------------------------------------------- DOM tier


def test_dom_tier_returns_parallel_tool_calls(stack_dom: Stack):
    """STREAM_PORT=0: the calls are read from ms-function-call-chunk elements and still become tool_calls."""
    prompt = (
        "Both "
        + call_directive("get_weather", {"city": "Quito", "unit": "celsius"})
        + " "
        + call_directive("get_time", {"zone": "America/Guayaquil"})
    )
    with make_client(stack_dom) as dom_client:
        done = dom_client.chat.completions.create(model=MODEL, messages=user(prompt), tools=[WEATHER, TIME])
    message = done.choices[0].message
    assert arguments_of(message) == [
        ("get_weather", {"city": "Quito", "unit": "celsius"}),
        ("get_time", {"zone": "America/Guayaquil"}),
    ]
    assert len({c.id for c in message.tool_calls}) == 2
    assert done.choices[0].finish_reason == "tool_calls"
    assert [d["name"] for d in declared(stack_dom)] == ["get_weather", "get_time"]
