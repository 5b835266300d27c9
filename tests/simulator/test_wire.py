"""The simulator's wire encoders, request parser, directive parser and scripted model (no I/O)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from aistudio_sim import model, wire

# ---------------------------------------------------------------------------------------------
# test-local decoders (independent of the code under test)


def decode_value(v: Any) -> Any:
    """docs/aistudio.md §4.5 decoding algorithm."""
    while True:
        if _is_pair_list(v):
            return decode_struct(v)
        if isinstance(v, list) and len(v) == 1 and isinstance(v[0], list):
            v = v[0]
            continue
        break
    n = len(v)
    if n <= 1:
        return None
    if n == 2:
        return v[1]
    if n == 3:
        return v[2]
    if n == 4:
        return bool(v[3])
    if n == 5:
        return decode_struct(v[4])
    return [decode_value(i) for i in v[5]]


def _is_pair_list(v: Any) -> bool:
    return (
        isinstance(v, list)
        and bool(v)
        and isinstance(v[0], list)
        and len(v[0]) >= 2
        and isinstance(v[0][0], str)
    )


def decode_struct(s: Any) -> dict:
    while isinstance(s, list) and len(s) == 1 and isinstance(s[0], list) and not _is_pair_list(s):
        s = s[0]
    if not s:
        return {}
    return {k: decode_value(val) for k, val in s}


def skeleton(value: Any) -> Any:
    """The structure of a JSON value with strings and numbers abstracted away."""
    if isinstance(value, list):
        return [skeleton(v) for v in value]
    if isinstance(value, str):
        return "s"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "n"
    return value


def classify(events: list) -> list[str]:
    """One label per event: thought / text / signature / call / trailer (+ '!' with finishReason)."""
    labels = []
    for ev in events:
        if ev[0] is None:
            labels.append("trailer")
            continue
        cand = ev[0][0]
        part = cand[0][0][0]
        if isinstance(part[10] if len(part) > 10 else None, list):
            label = "call"
        elif len(part) == 15:
            label = "signature"
        elif len(part) == 13 and part[12] == 1:
            label = "thought"
        else:
            label = "text"
        labels.append(label + ("!" if len(cand) > 1 else ""))
    return labels


def body_of(plan: model.Plan) -> bytes:
    framer = wire.BodyFramer()
    pieces = [framer.piece(ev) for ev in plan.events]
    if plan.trailer is not None:
        pieces.append(framer.piece(plan.trailer))
    return b"".join(pieces) + framer.close(plan.inline_error)


def request(
    prompt: str = "hello",
    *,
    model_id: str = "gemini-2.5-pro",
    stops: list | None = None,
    max_tokens: int | None = None,
    thinking: list | None = None,
    mime: str | None = None,
    schema: Any = None,
    tools: list | None = None,
) -> wire.GenerateRequest:
    config = [
        None,
        stops,
        None,
        max_tokens,
        1.0,
        0.95,
        None,
        None,
        None,
        None,
        None,
        None,
        mime,
        None if schema is None else json.dumps(schema),
        None,
        thinking,
    ]
    body = json.dumps(
        [f"models/{model_id}", [[[[None, prompt]], "user"]], None, config, "!t", tools]
    ).encode()
    return wire.parse_generate_request(body)


def plan(req: wire.GenerateRequest, **kw: Any) -> model.Plan:
    kw.setdefault("request_id", "req-0001")
    kw.setdefault("chunk_delay_ms", 0)
    return model.plan_response(req, model.parse_directives(req.prompt), **kw)


def load(fixtures_dir: Path, name: str) -> Any:
    return json.loads((fixtures_dir / name).read_bytes())


# ---------------------------------------------------------------------------------------------
# bodies vs fixtures


@pytest.mark.parametrize(
    "name",
    [
        "generate_content_text.stream",
        "generate_content_thinking.stream",
        "generate_content_function_call.stream",
    ],
)
def test_framer_reproduces_fixture_bodies_byte_for_byte(fixtures_dir: Path, name: str) -> None:
    """Re-encoding a fixture's events with the framer gives the identical body."""
    raw = (fixtures_dir / name).read_bytes()
    framer = wire.BodyFramer()
    body = b"".join(framer.piece(ev) for ev in json.loads(raw)[0]) + framer.close()
    assert body == raw


def test_text_answer_is_shaped_like_the_text_fixture(fixtures_dir: Path) -> None:
    """Three text deltas, finish on the last, then the trailer; same skeleton as the fixture."""
    p = plan(request("What is the capital? #sim:chunks=3"))
    ours = json.loads(body_of(p))[0]
    theirs = load(fixtures_dir, "generate_content_text.stream")[0]
    assert classify(ours) == classify(theirs) == ["text", "text", "text!", "trailer"]
    assert skeleton(ours) == skeleton(theirs)
    assert ours[-2][2][1] == sum(len(e[0][0][0][0][0][1].split()) for e in ours[:-1])
    assert [e[2][1] for e in ours[:-2]] == [None, None]


def test_thinking_answer_is_shaped_like_the_thinking_fixture(fixtures_dir: Path) -> None:
    """Thoughts, answer deltas, signature carrying finishReason, trailer; usage has 10 slots."""
    p = plan(request("Multiply #sim:think=24 #sim:chunks=2"))
    ours = json.loads(body_of(p))[0]
    theirs = load(fixtures_dir, "generate_content_thinking.stream")[0]
    assert (
        classify(ours) == classify(theirs) == ["thought", "thought", "text", "text", "signature!", "trailer"]
    )
    assert skeleton(ours) == skeleton(theirs)
    final_usage = ours[-2][2]
    assert final_usage[2] == final_usage[0] + final_usage[1] + final_usage[9]
    assert final_usage[9] == 24


def test_function_call_answer_is_shaped_like_the_function_call_fixture(fixtures_dir: Path) -> None:
    """Canonical encoding of the fixture's decoded arguments equals the fixture's wire args."""
    theirs = load(fixtures_dir, "generate_content_function_call.stream")[0]
    book = theirs[1][0][0][0][0][0][10]
    weather = theirs[2][0][0][0][0][0][10]
    book_args = decode_struct(book[1])
    weather_args = decode_struct(weather[1])
    assert wire.encode_args(book_args) == book[1]
    assert wire.encode_args(weather_args) == weather[1]
    tools = [
        [
            [
                ["book_flight", "Book", json.dumps({"type": "object"})],
                ["get_weather", "Weather", json.dumps({"type": "object"})],
            ]
        ]
    ]
    prompt = (
        "go #sim:think=10 #sim:variant=canonical "
        f"#sim:tool=book_flight #sim:args={json.dumps(book_args)} "
        f"#sim:tool=get_weather #sim:args={json.dumps(weather_args)}"
    )
    ours = json.loads(body_of(plan(request(prompt, tools=tools))))[0]
    assert classify(ours) == classify(theirs) == ["thought", "call", "call!", "trailer"]
    assert skeleton(ours) == skeleton(theirs)
    assert ours[1][0][0][0][0][0][10] == book
    assert ours[2][0][0][0][0][0][10] == weather


def test_error_element_follows_the_events() -> None:
    """`inline` ends the body with a google.rpc.Status element and no trailer."""
    p = plan(request("x #sim:error=inline #sim:words=30"))
    data = json.loads(body_of(p))
    assert len(data) == 2 and data[1] == [8, "Resource has been exhausted (e.g. check quota)."]
    assert 1 <= len(data[0]) <= 2 and all(ev[0] is not None for ev in data[0])


def test_empty_body_closes_as_empty_event_list() -> None:
    framer = wire.BodyFramer()
    assert framer.close() == b"[[]]"
    assert wire.BodyFramer().close((13, "x")) == b'[[],[13,"x"]]'


def test_trailer_is_deterministic_with_sixteen_digits() -> None:
    a, b = wire.trailer("seed"), wire.trailer("seed")
    assert a == b and a[:3] == [None, None, None]
    assert len(a[3][0]) == 16 and a[3][0].isdigit()
    assert all(isinstance(x, int) for x in a[3][1:])


def test_count_tokens_and_list_models_bodies() -> None:
    assert json.loads(wire.count_tokens_body(7)) == [7, [], [[[3], 1]], None, None, [[1, 7]]]
    models = json.loads(wire.list_models_body(model.MODELS))[0]
    assert {m[0] for m in models} >= {"models/gemini-2.5-pro", "models/gemini-3-flash-preview"}


# ---------------------------------------------------------------------------------------------
# argument encoding


def test_local_decoder_accepts_every_fixture_variant(fixtures_dir: Path) -> None:
    """Sanity check of the test's own decoder against the 13 fixture cases."""
    for case in load(fixtures_dir, "function_call_args_variants.json")["cases"]:
        assert decode_struct(case["args"]) == case["expected"], case["id"]


@pytest.mark.parametrize(
    ("case_id", "variant"),
    [
        ("scalars", "canonical"),
        ("empty_string_and_zero", "canonical"),
        ("string_array", "canonical"),
        ("nested_object", "canonical"),
        ("array_of_objects_canonical", "canonical"),
        ("mixed_array", "canonical"),
        ("empty_containers", "canonical"),
        ("no_arguments", "canonical"),
        ("array_of_objects_extra_wrapping", "extra_wrapping"),
        ("array_of_objects_bare_pairs", "bare_pairs"),
        ("single_pair_object_deeply_wrapped", "deep_wrapping"),
        ("extra_outer_wrapper", "outer_wrapper"),
        ("null_as_zero", "null_as_zero"),
    ],
)
def test_encoder_variants_produce_the_fixture_structures(
    fixtures_dir: Path, case_id: str, variant: str
) -> None:
    """Each variant reproduces the structure the fixture documents for it."""
    case = next(
        c for c in load(fixtures_dir, "function_call_args_variants.json")["cases"] if c["id"] == case_id
    )
    assert wire.encode_args(case["expected"], variant) == case["args"]


RICH_ARGS = {
    "s": "naïve 東京 ✓",
    "empty": "",
    "i": 0,
    "neg": -3,
    "f": 1234.5,
    "t": True,
    "fa": False,
    "n": None,
    "obj": {"a": {"b": [1, {"c": None}]}, "one": {"k": "v"}},
    "objs": [{"row": 12, "letter": "A"}, {"only": True}, {}, {"deep": [{"x": [{"y": 1}]}]}],
    "mixed": ["x", 7, False, None, [], {}, [[1, 2], []]],
    "eo": {},
    "ea": [],
}


@pytest.mark.parametrize("variant", wire.ARG_VARIANTS)
def test_every_variant_round_trips(fixtures_dir: Path, variant: str) -> None:
    """decode(encode(x, variant)) == x for every fixture value and a value with every type."""
    cases = load(fixtures_dir, "function_call_args_variants.json")["cases"]
    for expected in [c["expected"] for c in cases] + [RICH_ARGS]:
        encoded = wire.encode_args(expected, variant)
        decoded = decode_struct(encoded)
        assert decoded == expected
        assert list(decoded) == list(expected)
        assert json.loads(json.dumps(encoded)) == encoded


def test_variants_differ_where_they_should() -> None:
    args = {"items": [{"a": 1}], "z": None}
    encoded = {v: wire.encode_args(args, v) for v in wire.ARG_VARIANTS}
    assert len({json.dumps(e) for e in encoded.values()}) == len(wire.ARG_VARIANTS)


def test_encoder_rejects_unknown_types_and_variants() -> None:
    with pytest.raises(TypeError):
        wire.encode_value(object())
    with pytest.raises(ValueError):
        wire.encode_value(1, "bogus")


# ---------------------------------------------------------------------------------------------
# request parser


def test_request_parser_reads_every_field() -> None:
    """Prompt, attachments, generation config, thinking and all tool kinds come out."""
    png = b"\x89PNG\r\n\x1a\nfake"
    body = json.dumps(
        [
            "models/gemini-3-flash-preview",
            [
                [
                    [
                        [None, "first "],
                        [None, None, ["image/png", base64.b64encode(png).decode(), "a.png"]],
                        [None, "second"],
                    ],
                    "user",
                ]
            ],
            None,
            [
                None,
                ["User:", "END"],
                None,
                1024,
                0.7,
                0.5,
                None,
                None,
                None,
                None,
                None,
                None,
                "application/json",
                json.dumps({"type": "object"}),
                None,
                [1, None, "LOW"],
            ],
            "!token",
            [
                [[["get_weather", "Weather", json.dumps({"type": "object", "properties": {}})]]],
                [None, None, None, []],
                [None, None, None, None, None, None, None, []],
            ],
        ]
    ).encode()
    req = wire.parse_generate_request(body)
    assert req.model == "models/gemini-3-flash-preview" and req.model_id == "gemini-3-flash-preview"
    assert req.prompt == "first second"
    assert [a.to_json() for a in req.attachments] == [
        {
            "name": "a.png",
            "mime_type": "image/png",
            "size": len(png),
            "sha256": hashlib.sha256(png).hexdigest(),
        }
    ]
    gc = req.generation_config.to_json()
    assert gc == {
        "temperature": 0.7,
        "top_p": 0.5,
        "max_output_tokens": 1024,
        "stop_sequences": ["User:", "END"],
        "thinking": {"include_thoughts": True, "budget": None, "level": "LOW"},
        "response_mime_type": "application/json",
        "response_schema": {"type": "object"},
    }
    tools = req.tools.to_json()
    assert tools["google_search"] and tools["url_context"]
    assert tools["function_declarations"] == [
        {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {}}}
    ]


def test_request_parser_uses_the_last_user_content_and_defaults() -> None:
    body = json.dumps(
        [
            "models/gemma-3-27b-it",
            [[[[None, "old"]], "user"], [[[None, "answer"]], "model"], [[[None, "new\n"]], "user"]],
        ]
    ).encode()
    req = wire.parse_generate_request(body)
    assert req.prompt == "new\n"
    assert req.generation_config.to_json()["thinking"] is None
    assert req.tools.to_json() == {"function_declarations": [], "google_search": False, "url_context": False}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b"[]",
        b"[1]",
        b'["models/x", "nope"]',
        b'["models/x", [[[[null, "a"], [null, null, ["text/plain", "***"]]], "user"]]]',
        b'["models/x", [[[[null, "a"]], "user"]], null, [null, null, null, null, "hot"]]',
        b'["models/x", [[[[null, "a"]], "user"]], null, null, "!", [[[[1]]]]]',
    ],
)
def test_request_parser_rejects_malformed_bodies(body: bytes) -> None:
    with pytest.raises(wire.RequestParseError):
        wire.parse_generate_request(body)


# ---------------------------------------------------------------------------------------------
# directives


def test_directives_with_values_and_json_args() -> None:
    d = model.parse_directives(
        'hi #sim:think=5 #sim:chunks=3\n#sim:tool=a #sim:args={"x": [1, 2], "s": "two words"}'
        " #sim:tool=b #sim:error=cut #sim:echo #sim:json=invalid #sim:delay_ms=7 #sim:ttfb_ms=9"
    )
    assert (d.think, d.chunks, d.delay_ms, d.ttfb_ms) == (5, 3, 7, 9)
    assert d.tools == [{"name": "a", "args": {"x": [1, 2], "s": "two words"}}, {"name": "b", "args": None}]
    assert d.error == "cut" and d.echo and d.json == "invalid"
    assert d.problems == []


def test_bad_directives_are_reported_not_fatal() -> None:
    d = model.parse_directives("#sim:think=lots #sim:error=boom #sim:args={bad #sim:nope #sim:words=4")
    assert d.think is None and d.error is None and d.words == 4
    assert len(d.problems) == 4


SEARCH_TOOL = [[None, None, None, []]]


@pytest.mark.parametrize(
    ("prompt", "count", "problems"),
    [
        ("q #sim:search", 2, 0),
        ("q #sim:search=5", 5, 0),
        ("q #sim:search=0", 0, 0),
        ("q #sim:search=many", None, 1),
        ("q #sim:search=99", None, 1),
        ("q", None, 0),
    ],
)
def test_search_directive_counts_sources(prompt: str, count: int | None, problems: int) -> None:
    """#sim:search means 2 sources, =N means N (0..20); anything else is a reported problem."""
    d = model.parse_directives(prompt)
    assert d.search == count and len(d.problems) == problems
    assert d.to_json()["search"] == count


@pytest.mark.parametrize("index", [7, 8])
def test_search_puts_grounding_metadata_on_the_last_content_event(index: int) -> None:
    """With the Search tool on, the finishing event's candidate carries §4.4 metadata at the index."""
    p = plan(request("Who won?\nLatest news #sim:search=3", tools=SEARCH_TOOL), grounding_index=index)
    candidate = p.events[-1][0][0]
    assert candidate[1] == wire.FINISH_STOP and len(candidate) == index + 1
    assert all(slot is None for slot in candidate[2:index])
    entry, chunks, supports, empty, queries = candidate[index]
    assert queries == ["Latest news"] and empty is None
    assert "Latest news" in entry[0]
    assert [c[0] for c in chunks] == [
        [
            f"https://example.com/search/latest-news/{i}",
            f"Simulated result {i} for Latest news",
            "example.com",
        ]
        for i in (1, 2, 3)
    ]
    assert supports == [[[0, 0, len(p.answer_text), p.answer_text], [0, 1, 2], [0.9, 0.9, 0.9]]]
    assert all(len(ev[0][0]) <= 2 for ev in p.events[:-1])
    assert p.summary()["grounding"] == {
        "index": index,
        "queries": ["Latest news"],
        "sources": [{"uri": c[0][0], "title": c[0][1], "domain": c[0][2]} for c in chunks],
    }


def test_search_metadata_is_deterministic_and_follows_a_thought_signature() -> None:
    """The same request gives the same metadata; with thinking it sits on the signature event."""
    req = request("news #sim:search #sim:think=5", tools=SEARCH_TOOL)
    first, second = plan(req), plan(req)
    assert first.events == second.events
    assert classify(first.events)[-1] == "signature!"
    assert len(first.events[-1][0][0][7][1]) == 2


@pytest.mark.parametrize("prompt", ["news #sim:search", "news"])
def test_no_grounding_without_both_the_search_tool_and_the_directive(prompt: str) -> None:
    """The directive alone (tool off) or the tool alone gives a plain answer."""
    tools = None if "#sim" in prompt else SEARCH_TOOL
    p = plan(request(prompt, tools=tools))
    assert all(len(ev[0][0]) <= 2 for ev in p.events)
    assert p.summary()["grounding"] is None


# ---------------------------------------------------------------------------------------------
# scripted model


def test_default_answer_names_the_model_and_last_line() -> None:
    p = plan(request("System: be nice\n\nUser:\nWhat time is it?\n"))
    assert p.answer_text.startswith("[simulated gemini-2.5-pro] You said: What time is it?. ")
    assert p.finish_reason == 1
    assert p.answer_text == plan(request("System: be nice\n\nUser:\nWhat time is it?\n")).answer_text


def test_echo_is_byte_exact_and_ignores_stops() -> None:
    prompt = "User:\n  spaced \t tabs\n---\nünï ☕ #sim:echo #sim:chunks=5\n"
    p = plan(request(prompt, stops=["User:"], max_tokens=1))
    assert p.answer_text == prompt
    assert "".join(ev[0][0][0][0][0][1] for ev in p.events) == prompt
    assert len(p.events) == 5


def test_stop_sequence_cuts_before_the_match() -> None:
    full = plan(request("say #sim:words=10")).answer_text
    stop = full.split()[3]
    p = plan(request("say #sim:words=10", stops=["zzz", stop]))
    assert p.answer_text == full[: full.index(stop)]
    assert p.finish_reason == 1


def test_max_output_tokens_cuts_words_with_max_tokens() -> None:
    p = plan(request("x #sim:words=50", max_tokens=7))
    assert len(p.answer_text.split()) == 7 and p.finish_reason == 2
    assert p.events[-1][0][0][1] == 2


@pytest.mark.parametrize(
    ("model_id", "thinking", "expect"),
    [
        ("gemini-2.5-pro", [1, None, None], True),
        ("gemini-2.5-pro", [0, None, None], False),
        ("gemini-2.5-flash", [1, 0, None], False),
        ("gemini-3-pro-preview", [0, None, "HIGH"], True),
        ("gemini-2.0-flash", [1, None, None], False),
        ("gemini-2.5-pro", None, False),
    ],
)
def test_thoughts_follow_the_thinking_config(model_id: str, thinking: list | None, expect: bool) -> None:
    p = plan(request("hi", model_id=model_id, thinking=thinking))
    assert bool(p.thought_text) is expect
    assert ("signature!" in classify(p.events)) is expect


def test_budget_caps_thought_words() -> None:
    p = plan(request("hi #sim:think=100", thinking=[1, 10, None]))
    assert len(p.thought_text.split()) == 10


def test_tool_calls_need_a_declaration() -> None:
    p = plan(request("#sim:tool=missing"))
    assert p.calls == [] and "missing is not declared" in p.answer_text


SCHEMA = {
    "type": "object",
    "properties": {
        "s": {"type": "string"},
        "d": {"type": "string", "format": "date"},
        "e": {"type": "string", "enum": ["b", "a"]},
        "i": {"type": "integer", "minimum": 3},
        "n": {"type": "number"},
        "b": {"type": "boolean"},
        "z": {"type": "null"},
        "arr": {
            "type": "array",
            "items": {"type": "object", "properties": {"k": {"type": "integer"}}},
            "minItems": 2,
        },
        "o": {"type": "object", "properties": {"deep": {"type": "array", "items": {"type": "string"}}}},
        "short": {"type": "string", "maxLength": 3},
    },
    "required": ["s", "i"],
}


def test_tool_args_are_generated_from_the_schema_with_every_type() -> None:
    tools = [[[["f", "F", json.dumps(SCHEMA)]]]]
    p = plan(request("#sim:tool=f #sim:tool=f", tools=tools), call_offset=1)
    assert [c["variant"] for c in p.calls] == ["bare_pairs", "extra_wrapping"]
    args = p.calls[0]["args"]
    jsonschema.validate(args, SCHEMA)
    assert {type(v).__name__ for v in args.values()} >= {
        "str",
        "int",
        "float",
        "bool",
        "NoneType",
        "list",
        "dict",
    }
    for ev, call in zip(p.events, p.calls, strict=True):
        part = ev[0][0][0][0][0]
        assert part[10][0] == "f" and decode_struct(part[10][1]) == call["args"]


def test_json_directive_follows_the_response_schema() -> None:
    good = plan(request("#sim:json", mime="application/json", schema=SCHEMA))
    jsonschema.validate(json.loads(good.answer_text), SCHEMA)
    bad = plan(request("#sim:json=invalid", mime="application/json", schema=SCHEMA))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(bad.answer_text), SCHEMA)
    implicit = plan(request("plain", mime="application/json", schema=SCHEMA))
    jsonschema.validate(json.loads(implicit.answer_text), SCHEMA)


def test_ctrl_tokens_leak_an_inline_call() -> None:
    p = plan(request("#sim:ctrl_tokens"))
    assert "read_file{files:[{path:<ctrl46>temp.txt<ctrl46>}]}" in p.answer_text


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("quota", 429, 8),
        ("rate_limit", 429, 8),
        ("permission", 403, 7),
        ("internal", 500, 13),
        ("login", 401, 16),
    ],
)
def test_error_directives_plan_http_errors(kind: str, status: int, code: int) -> None:
    p = plan(request(f"#sim:error={kind}"))
    assert p.http_error is not None
    assert (p.http_error.status, p.http_error.code) == (status, code)
    assert p.expire_session is (kind == "login")


def test_exhausted_account_always_gets_quota() -> None:
    p = plan(request("hi"), account_error="quota")
    assert p.http_error == model.QUOTA


def test_unknown_model_is_not_found() -> None:
    p = plan(request("hi", model_id="gemini-9-ultra"))
    assert p.http_error is not None and p.http_error.status == 404
