"""Emulated function calls parsed from answer text (docs/aistudio.md §3.7, §4.7)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from browser_worker.mapping.emulated import (
    LeakFilter,
    ParsedCall,
    RelaxedSyntaxError,
    parse_relaxed,
    parse_tool_calls,
    strip_control_tokens,
)


def test_catalog_format_call_is_extracted():
    """The format the catalog teaches is parsed and removed from the text."""
    text = 'I will look that up.\nRequest function call: search_flights\nParameters:\n{\n  "to": "NRT",\n  "passengers": 2\n}\n'
    assert parse_tool_calls(text) == (
        "I will look that up.",
        [ParsedCall("search_flights", {"to": "NRT", "passengers": 2})],
    )


def test_several_calls_keep_their_order_and_surrounding_text():
    """Every block is removed; calls come back in order; text between them stays."""
    text = (
        "First.\n"
        "Request function call: book_flight\nParameters:\n"
        '{"destination": "Tokyo", "dates": ["2026-05-01"], "traveler": {"age": 36}}\n'
        "Then.\n"
        "Request function call: get_weather\nParameters:\n"
        '{"city": "Tokyo", "days": [1, 2, 3]}'
    )
    rest, calls = parse_tool_calls(text)
    assert rest == "First.\n\nThen."
    assert calls == [
        ParsedCall("book_flight", {"destination": "Tokyo", "dates": ["2026-05-01"], "traveler": {"age": 36}}),
        ParsedCall("get_weather", {"city": "Tokyo", "days": [1, 2, 3]}),
    ]


@pytest.mark.parametrize("prefix", ["default_api:", "functions.", "tools.", ""])
def test_name_prefixes_are_dropped(prefix):
    """``default_api:``, ``functions.`` and ``tools.`` are not part of the name."""
    text = f'Request function call: {prefix}get_weather\nParameters:\n{{"city": "Oslo"}}'
    assert parse_tool_calls(text) == ("", [ParsedCall("get_weather", {"city": "Oslo"})])


def test_spec_inline_ctrl46_call():
    """docs/aistudio.md §4.7's example: ``<ctrl46>`` is the string quote in the inline form."""
    text = "Request function call: read_file{files:[{path:<ctrl46>temp.txt<ctrl46>}]}"
    assert parse_tool_calls(text) == ("", [ParsedCall("read_file", {"files": [{"path": "temp.txt"}]})])


def test_inline_call_with_every_value_kind():
    """Bare keys, numbers, booleans, null, nested objects, lists and quoted strings."""
    text = (
        "Sure.\nRequest function call: default_api:book{dest:<ctrl46>Tokyo, Japan<ctrl46>, n:2, price:12.5, "
        "ok:true, no:false, code:null, who:{name:<ctrl46>Ada<ctrl46>, tags:[<ctrl46>a<ctrl46>, 3, -1e2]}, "
        'q:"say \\"hi\\"", empty:{}, none:[],}\nDone.'
    )
    rest, calls = parse_tool_calls(text)
    assert rest == "Sure.\n\nDone."
    assert calls == [
        ParsedCall(
            "book",
            {
                "dest": "Tokyo, Japan",
                "n": 2,
                "price": 12.5,
                "ok": True,
                "no": False,
                "code": None,
                "who": {"name": "Ada", "tags": ["a", 3, -100.0]},
                "q": 'say "hi"',
                "empty": {},
                "none": [],
            },
        )
    ]


def test_standalone_default_api_inline_call_is_found():
    """A leaked ``default_api:name{...}`` without the lead-in still counts."""
    text = "Let me read it. call:default_api:read_file{path:<ctrl46>a.txt<ctrl46>}"
    assert parse_tool_calls(text) == ("Let me read it.", [ParsedCall("read_file", {"path": "a.txt"})])


def test_json_code_fence_after_parameters():
    """Arguments in a ```json fence are read and the fence removed."""
    text = 'Request function call: f\nParameters:\n```json\n{"a": [1, {"b": null}]}\n```\nAfter.'
    assert parse_tool_calls(text) == ("After.", [ParsedCall("f", {"a": [1, {"b": None}]})])


def test_parameters_on_the_same_line_and_bold_markup():
    """``**Request function call:** `name` Parameters: {…}`` is tolerated."""
    text = '**Request function call:** `lookup` Parameters: {"id": 7}'
    assert parse_tool_calls(text) == ("", [ParsedCall("lookup", {"id": 7})])


def test_call_without_parameters_has_empty_arguments():
    """A name alone on its line, or ``Parameters:`` ending the text, gives ``{}``."""
    assert parse_tool_calls("Request function call: list_files") == ("", [ParsedCall("list_files", {})])
    assert parse_tool_calls("Request function call: a\nRequest function call: b\nParameters:\n") == (
        "",
        [ParsedCall("a", {}), ParsedCall("b", {})],
    )
    assert parse_tool_calls("Request function call: now\nParameters:\n{}\nok") == (
        "ok",
        [ParsedCall("now", {})],
    )


def test_relaxed_parameters_after_parameters_line():
    """Parameters in the relaxed syntax are accepted too."""
    text = "Request function call: f\nParameters:\n{path: <ctrl46>x<ctrl46>, n: 3}"
    assert parse_tool_calls(text)[1] == [ParsedCall("f", {"path": "x", "n": 3})]


def test_unparseable_parameters_leave_the_text_alone():
    """A block whose arguments are not an object is not a call."""
    for text in (
        "Request function call: f\nParameters:\n{broken",
        'Request function call: f\nParameters:\n```json\n["not", "an object"]\n```',
        "Request function call: f{a:<ctrl46>unclosed}",
        "Request function call: f(city='Paris')",
        "Request function call: f is what I would use here.",
        "Request function call: f\nParameters:\n" + '{"a":' * 5000 + "1" + "}" * 5000,
        "Request function call: f\nParameters:\n[1, 2]",
    ):
        assert parse_tool_calls(text) == (text, [])


@pytest.mark.parametrize(
    "text",
    [
        "Plain answer with no calls at all.\n",
        'Parameters:\n{"a": 1}\nare described below.',
        "A function call is requested by the model when it needs data.",
        'Here is JSON: {"name": "x", "arguments": {}}',
        "In Kotlin: tools.apply{ name = x } and functions.map{ it }",
        "The default_api: prefix is used by Gemini.",
        "Use `functions.get_weather` to get the weather {city: Paris}.",
        '```json\n{"a": 1}\n```',
        "",
    ],
)
def test_ordinary_text_has_no_false_positives(text):
    """Text without the call markers is returned unchanged, with no calls."""
    assert parse_tool_calls(text) == (text, [])


def test_strip_control_tokens_removes_ctrl_tokens_and_a_following_brace():
    """``<ctrlNN>`` and ``<ctrlNN>{``/``<ctrlNN>}`` leaks vanish; other text stays."""
    text = "Request function call: read_file{files:[{path:<ctrl46>temp.txt<ctrl46>}]}"
    assert strip_control_tokens(text) == "Request function call: read_file{files:[{path:temp.txt]}"
    assert strip_control_tokens("a<ctrl99>{b<ctrl3>c <ctrl>d") == "abc <ctrl>d"


def test_parse_relaxed_reports_position_errors():
    """Broken relaxed syntax raises ``RelaxedSyntaxError`` (a ``ValueError``)."""
    assert parse_relaxed("{a: [1, 2], 'b': x y}") == ({"a": [1, 2], "b": "x y"}, 21)
    for bad in ("{a 1}", "{a: [1, 2}", "{", "{a: <ctrl46>x}", "{" * 200):
        with pytest.raises(RelaxedSyntaxError):
            parse_relaxed(bad)


_fragments = st.sampled_from(
    [
        "Request function call: ",
        "default_api:",
        "call:",
        "functions.",
        "f",
        "name",
        "\n",
        "Parameters:",
        " ",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        '"',
        "'",
        "<ctrl46>",
        "1",
        "true",
        "```json\n",
        "```",
        "x y",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_fragments, max_size=30).map("".join))
def test_parser_never_raises_and_loses_no_text_without_calls(text):
    """Any mix of call-like fragments parses without error; with no calls the text is untouched."""
    rest, calls = parse_tool_calls(text)
    assert all(isinstance(call.arguments, dict) for call in calls)
    if not calls:
        assert rest == text
    assert "<ctrl" not in strip_control_tokens(text).replace("<ctrl>", "")


# ------------------------------------------------------------------ LeakFilter (native mode, streaming)


LEAKED = (
    "I will read the file first. Request function call: read_file{files:[{path:<ctrl46>temp.txt<ctrl46>}]}"
)
LEAKED_CALL = [ParsedCall("read_file", {"files": [{"path": "temp.txt"}]})]


def run_filter(pieces: list[str]) -> tuple[list[str], str, list[ParsedCall]]:
    leak = LeakFilter()
    forwarded = [leak.feed(p) for p in pieces]
    rest, calls = leak.close()
    return forwarded, rest, calls


@pytest.mark.parametrize("cut", range(len(LEAKED) + 1))
def test_leaked_call_split_at_every_position_is_parsed_and_never_forwarded(cut):
    """Split anywhere, even inside the marker: the text before it is forwarded, the call parsed."""
    forwarded, rest, calls = run_filter([LEAKED[:cut], LEAKED[cut:]])
    assert "".join(forwarded) + rest == "I will read the file first."
    assert not any("<ctrl" in f.lower() or "request function" in f.lower() for f in forwarded)
    assert calls == LEAKED_CALL


def test_leaked_call_fed_one_character_at_a_time():
    """Character by character: the same result, and the prose before the marker flows as it arrives."""
    forwarded, rest, calls = run_filter(list(LEAKED))
    assert "".join(forwarded) + rest == "I will read the file first."
    assert "".join(forwarded[:20]) == LEAKED[:20]  # prose is forwarded as it arrives
    assert calls == LEAKED_CALL


@pytest.mark.parametrize("marker", ["Request function call", "<ctrl", "call:default_api:", "default_api:"])
def test_every_prefix_of_a_marker_is_held_back_until_resolved(marker):
    """A chunk ending in any beginning of a marker forwards nothing of it yet; ordinary text releases it."""
    for k in range(1, len(marker)):
        leak = LeakFilter()
        assert leak.feed("Hello " + marker[:k]) == "Hello"
        assert not leak.tripped
        assert leak.feed("zzz done ") == " " + marker[:k] + "zzz done"
        assert leak.close() == (" ", [])


def test_plain_answer_passes_through_unchanged_and_incrementally():
    """No marker: every chunk is forwarded (less a trailing space or ``**``), the total is exact."""
    text = "A plain **answer** with *emphasis*, numbers 1.5 and a call: nothing here.\n\nDone."
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
    forwarded, rest, calls = run_filter(pieces)
    assert "".join(forwarded) + rest == text
    assert calls == []
    assert sum(1 for f in forwarded if f) >= len(pieces) - 2


def test_stray_control_tokens_without_a_call_are_removed():
    """A control token that starts no call is removed at the end; the text around it stays."""
    forwarded, rest, calls = run_filter(["Hello <ctrl46>world<ctrl46>", " and more."])
    assert "".join(forwarded) + rest == "Hello world and more."
    assert calls == []


def test_bold_lead_in_and_text_after_the_call_are_handled():
    """``**Request function call:**`` is removed with its stars; text after the call is kept."""
    text = 'Checking.\n**Request function call:** get_weather\nParameters:\n{"city": "Oslo"}\nThen I answer.'
    forwarded, rest, calls = run_filter([text[:15], text[15:]])
    assert calls == [ParsedCall("get_weather", {"city": "Oslo"})]
    assert "".join(forwarded) == "Checking."
    assert rest == "\nThen I answer."


def test_unparseable_marker_text_is_returned_at_the_end():
    """Prose that mentions the marker but holds no call is not lost: it is forwarded at close."""
    forwarded, rest, calls = run_filter(["Say request function call to ", "ask for one."])
    assert "".join(forwarded) + rest == "Say request function call to ask for one."
    assert calls == []
