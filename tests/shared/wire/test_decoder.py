"""Tests for the pure GenerateContent response decoder (shared/wire/decoder.py) and its codecs."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import brotli
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import protocol
from shared.wire.codecs import ContentDecoder, DecodingError
from shared.wire.decoder import (
    Event,
    ResponseDecoder,
    decode_args,
    decode_value,
    finish_reason,
    grounding_metadata,
)
from tests.fixtures import FIXTURES_DIR
from tests.shared.wire.events import Content, Done, Error, Finish, Reasoning, ToolCall, Usage, make_decoder

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = FIXTURES_DIR

TEXT = "generate_content_text.stream"
THINKING = "generate_content_thinking.stream"
FUNCTION_CALL = "generate_content_function_call.stream"

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

# The decoded results stated in fixtures/README.md, as the exact event sequence.
EXPECTED: dict[str, list[Event]] = {
    TEXT: [
        Content("Hello! "),
        Content("The capital of France is **Paris**.\n"),
        Content('Fun fact: the café "Le Procope" opened in 1686 — it still serves coffee ☕.'),
        Finish("stop"),
        Usage(prompt_tokens=12, completion_tokens=30, reasoning_tokens=None, total_tokens=42),
        Done(),
    ],
    THINKING: [
        Reasoning("**Breaking down the multiplication**\n\nThe user wants 17 × 23. "),
        Reasoning("I'll split it: 17 × 20 = 340 and 17 × 3 = 51, so the total is 391.\n"),
        Content("17 × 23 = "),
        Content("**391**."),
        Finish("stop"),
        Usage(prompt_tokens=14, completion_tokens=9, reasoning_tokens=120, total_tokens=143),
        Done(),
    ],
    FUNCTION_CALL: [
        Reasoning(
            "The user wants a refundable flight to Tokyo for two people; "
            "I will call book_flight, then check the weather.\n"
        ),
        ToolCall("book_flight", BOOK_FLIGHT_ARGS),
        ToolCall("get_weather", GET_WEATHER_ARGS),
        Finish("tool_calls"),
        Usage(prompt_tokens=88, completion_tokens=71, reasoning_tokens=43, total_tokens=202),
        Done(),
    ],
}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def chunk_boundaries(name: str) -> list[int]:
    return json.loads((FIXTURES / "chunk_boundaries.json").read_text())[name]


def split(data: bytes, offsets: Iterable[int]) -> list[bytes]:
    cuts = [0, *sorted(set(offsets)), len(data)]
    return [data[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def decode(pieces: Iterable[bytes], status: int = 200, encoding: str | None = None) -> list[Event]:
    decoder = make_decoder(status=status, content_encoding=encoding)
    events: list[Event] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events + decoder.close()


def typed(value: Any) -> str:
    """A rendering that tells key order, int/float/bool and null apart (plain == does not)."""
    return json.dumps(value)


def assert_same_events(actual: list[Event], expected: list[Event]) -> None:
    assert actual == expected
    for a, e in zip(actual, expected, strict=True):
        if isinstance(e, protocol.ToolCall):
            assert typed(a.arguments) == typed(e.arguments)


def event(parts: list[list[Any]], finish: int | None = None, usage: list[Any] | None = None) -> list[Any]:
    candidate: list[Any] = [[parts, "model"]]
    if finish is not None:
        candidate.append(finish)
    return [[candidate], None, usage] if usage is not None else [[candidate]]


def body(*events: list[Any], tail: str = "") -> bytes:
    return ("[[" + ",".join(json.dumps(e, ensure_ascii=False) for e in events) + "]" + tail + "]").encode()


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}

FEEDS: dict[str, Callable[[str], tuple[list[bytes], str | None]]] = {
    "whole": lambda name: ([fixture_bytes(name)], None),
    "chunk_boundaries": lambda name: (split(fixture_bytes(name), chunk_boundaries(name)), None),
    "one_byte_at_a_time": lambda name: (every(fixture_bytes(name), 1), None),
    **{
        f"{codec}_pieces_of_{size}": (
            lambda name, codec=codec, size=size: (every(COMPRESSORS[codec](fixture_bytes(name)), size), codec)
        )
        for codec in COMPRESSORS
        for size in (1, 7, 64)
    },
}


# --- the fixtures --------------------------------------------------------------------------------


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("name", [TEXT, THINKING, FUNCTION_CALL])
def test_fixture_decodes_to_the_readme_results_however_it_is_fed(name: str, feed: str) -> None:
    """Every fixture gives the README's events whole, split, byte by byte and compressed."""
    pieces, encoding = FEEDS[feed](name)
    assert_same_events(decode(pieces, encoding=encoding), EXPECTED[name])


def test_text_fixture_yields_three_content_deltas_and_no_reasoning() -> None:
    """The text fixture's answer arrives as the three deltas the README lists."""
    events = decode([fixture_bytes(TEXT)])
    deltas = [e.text for e in events if isinstance(e, protocol.Content)]
    assert deltas[:2] == ["Hello! ", "The capital of France is **Paris**.\n"]
    assert "".join(deltas) == (
        "Hello! The capital of France is **Paris**.\n"
        'Fun fact: the café "Le Procope" opened in 1686 — it still serves coffee ☕.'
    )
    assert not [e for e in events if isinstance(e, protocol.Reasoning | protocol.ToolCall)]


def test_thinking_fixture_emits_reasoning_before_content_and_skips_the_signature_part() -> None:
    """Both thought deltas precede the answer deltas; the empty signature text emits nothing."""
    events = decode([fixture_bytes(THINKING)])
    kinds = [e.type for e in events]
    assert kinds == ["reasoning", "reasoning", "content", "content", "finish", "usage", "done"]
    assert "".join(e.text for e in events if isinstance(e, protocol.Reasoning)) == (
        "**Breaking down the multiplication**\n\nThe user wants 17 × 23. "
        "I'll split it: 17 × 20 = 340 and 17 × 3 = 51, so the total is 391.\n"
    )
    assert "".join(e.text for e in events if isinstance(e, protocol.Content)) == "17 × 23 = **391**."


def test_function_call_fixture_keeps_both_calls_with_key_order_and_number_types() -> None:
    """Both calls are emitted once, in order, with wire key order, ints as ints and floats as floats."""
    calls = [e for e in decode(every(fixture_bytes(FUNCTION_CALL), 3)) if isinstance(e, protocol.ToolCall)]
    assert [c.name for c in calls] == ["book_flight", "get_weather"]
    args = calls[0].arguments
    assert list(args) == list(BOOK_FLIGHT_ARGS)
    assert type(args["passengers"]) is int and type(args["traveler"]["age"]) is int
    assert type(args["max_price"]) is float
    assert args["refundable"] is True and args["window_seat"] is False and args["promo_code"] is None
    assert json.dumps(calls[1].arguments) == '{"city": "Tokyo", "unit": "celsius", "days": [1, 2, 3]}'


# --- argument decoding -----------------------------------------------------------------------------

ARG_CASES = json.loads((FIXTURES / "function_call_args_variants.json").read_text())["cases"]


@pytest.mark.parametrize("case", ARG_CASES, ids=[c["id"] for c in ARG_CASES])
def test_argument_variant_decodes_to_expected(case: dict[str, Any]) -> None:
    """Each of the 13 type-length argument variants decodes to its expected object."""
    assert typed(decode_args(case["args"])) == typed(case["expected"])


def test_argument_variants_count_is_thirteen() -> None:
    """The variants file still holds the 13 cases docs/aistudio.md §4.5 refers to."""
    assert len(ARG_CASES) == 13


@pytest.mark.parametrize("container", [None, [], [[]]])
def test_missing_or_empty_argument_container_decodes_to_empty_object(container: Any) -> None:
    """A call whose argument slot is null, [] or [[]] has {} as arguments."""
    assert decode_args(container) == {}


def test_value_list_of_unknown_length_is_a_decoding_error() -> None:
    """A value list longer than the six protobuf Value kinds is rejected."""
    with pytest.raises(DecodingError):
        decode_value([None] * 7)


def test_undecodable_call_arguments_end_the_response_with_a_protocol_error() -> None:
    """A function call with impossible arguments becomes a protocol error, not an exception."""
    call = [None] * 10 + [["f", [[["k", [None] * 8]]]]]
    events = decode([body(event([call]))])
    assert [e.type for e in events] == ["error", "done"]
    assert isinstance(events[0], protocol.Error) and events[0].kind == "protocol"


def test_integer_beyond_64_bits_in_arguments_survives() -> None:
    """Numbers orjson cannot hold still decode (through the json fallback)."""
    call = [None] * 10 + [["f", [[["n", [None, 2**70]]]]]]
    events = decode([body(event([call]))])
    assert events[0] == ToolCall("f", {"n": 2**70})


def test_arguments_nested_deeper_than_the_fast_path_still_decode() -> None:
    """Objects nested 40 deep (beyond the whole-event regex) decode through the byte scanner."""
    value: Any = {"leaf": 1}
    for i in range(40):
        value = {f"k{i}": value}
    call = [None] * 10 + [["deep", [encode_pairs(value)]]]
    data = body(event([call]), event([[None, "after"]], finish=1))
    for pieces in ([data], every(data, 5)):
        events = decode(pieces)
        assert events[0] == ToolCall("deep", value)
        assert events[1:] == [Content("after"), Finish("tool_calls"), Done()]


# --- parts, candidates, finish and usage -----------------------------------------------------------


def test_every_part_of_every_candidate_is_read_in_order() -> None:
    """Several parts per content and several candidates per event are all decoded, in wire order."""
    thought = [None, "t1", *([None] * 10), 1]
    call = [None] * 10 + [["f", [[["a", [None, 1]]]]]]
    ev = [[[[[thought, [None, "c1"], call], "model"]], [[[[None, "c2"]], "model"], 1]]]
    events = decode([body(ev)])
    assert events == [
        Reasoning("t1"),
        Content("c1"),
        ToolCall("f", {"a": 1}),
        Content("c2"),
        Finish("tool_calls"),
        Done(),
    ]


def test_function_call_is_recognised_by_slot_ten_whatever_the_part_length() -> None:
    """A part with a list at index 10 is a call even when it has extra trailing slots."""
    call = [None] * 10 + [["g", []], None, None, None, "sig"]
    assert decode([body(event([call]))])[0] == ToolCall("g", {})


def test_empty_text_parts_emit_nothing() -> None:
    """Empty answer and thought texts (signature parts) produce no events."""
    parts = [[None, ""], [None, "", *([None] * 10), 1], [None, "", *([None] * 12), "c2ln"]]
    assert decode([body(event(parts, finish=1))]) == [Finish("stop"), Done()]


@pytest.mark.parametrize(
    ("code", "reason"),
    [(1, "stop"), (2, "length"), (3, "content_filter"), (4, "content_filter"), (5, "stop"), (None, "stop")],
)
def test_wire_finish_reason_maps_to_openai_reason(code: int | None, reason: str) -> None:
    """finishReason codes map to OpenAI finish reasons; no finishReason means stop."""
    assert decode([body(event([[None, "x"]], finish=code))])[1] == Finish(reason)


def test_any_tool_call_turns_the_finish_reason_into_tool_calls() -> None:
    """A response with a function call finishes with tool_calls even on MAX_TOKENS."""
    assert finish_reason(2, tool_calls=True) == "tool_calls"
    call = [None] * 10 + [["f", []]]
    events = decode([body(event([call]), event([[None, "x"]], finish=2))])
    assert Finish("tool_calls") in events


def test_finish_waits_for_the_end_of_the_body() -> None:
    """finishReason is not reported until close(): the trailer may still follow."""
    data = fixture_bytes(TEXT)
    decoder = make_decoder()
    events = decoder.feed(data)
    assert [e.type for e in events] == ["content"] * 3
    assert decoder.complete and not decoder.done
    assert [e.type for e in decoder.close()] == ["finish", "usage", "done"]
    assert decoder.done and decoder.close() == [] and decoder.feed(b"[") == []


def test_usage_is_the_last_one_seen_and_reported_once() -> None:
    """Usage comes once, after Finish, from the last event that carried one."""
    data = body(
        event([[None, "a"]], usage=[5, None, 7, None, [[1, 5]], None, None, None, None, 2]),
        event([[None, "b"]], finish=1, usage=[5, 3, 10]),
        [None, None, None, ["1234567890123456", 1, 2]],
    )
    events = decode([data])
    assert events[-3:] == [
        Finish("stop"),
        Usage(prompt_tokens=5, completion_tokens=3, reasoning_tokens=None, total_tokens=10),
        Done(),
    ]
    assert sum(isinstance(e, protocol.Usage) for e in events) == 1


def test_no_usage_on_the_wire_means_no_usage_event() -> None:
    """A body without any usage slot ends with Finish and Done only."""
    assert decode([body(event([[None, "a"]], finish=1))]) == [Content("a"), Finish("stop"), Done()]


def test_text_that_looks_like_wire_syntax_is_kept_verbatim() -> None:
    """Brackets, quotes, backslashes and the reference's regex markers inside strings do not confuse it."""
    text = 'a]]],"model"]]] [[[null,"x"]] \\" \\\\ "quoted" \\'
    data = body(event([[None, text], [None, "]", *([None] * 10), 1]], finish=1))
    for pieces in ([data], every(data, 1), every(data, 2)):
        assert decode(pieces)[:2] == [Content(text), Reasoning("]")]


def test_whitespace_between_tokens_is_tolerated() -> None:
    """A pretty-printed body decodes like the compact one."""
    for name in (TEXT, THINKING, FUNCTION_CALL):
        pretty = json.dumps(json.loads(fixture_bytes(name)), indent=2, ensure_ascii=False).encode()
        pretty = b"\n  " + pretty.replace(b"[", b"[ \r\n\t") + b"\n\n"
        assert_same_events(decode([pretty]), EXPECTED[name])
        assert_same_events(decode(every(pretty, 3)), EXPECTED[name])


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_anti_xssi_prefix_is_tolerated(size: int) -> None:
    """A leading )]}' line is skipped, whatever the read sizes."""
    data = b")]}'\n" + fixture_bytes(THINKING)
    assert_same_events(decode(every(data, size)), EXPECTED[THINKING])


def test_events_are_protocol_messages_keyed_to_the_stream_and_stamped_by_the_clock() -> None:
    """Every event is the protocol's own message, with the decoder's stream id and its clock's time."""
    ticks = iter(range(100))
    decoder = ResponseDecoder(stream_id="flow-1", clock=lambda: float(next(ticks)))
    events = decoder.feed(fixture_bytes(TEXT)) + decoder.close()
    assert [type(e) for e in events] == [
        protocol.Content,
        protocol.Content,
        protocol.Content,
        protocol.Finish,
        protocol.Usage,
        protocol.Done,
    ]
    assert [(e.id, e.ts) for e in events] == [("flow-1", float(i)) for i in range(6)]
    for e in events:  # each survives a trip through the socket protocol unchanged
        assert protocol.decode_body(protocol.encode(e)[protocol.HEADER.size :]) == e


def test_decoder_module_imports_no_io_library() -> None:
    """The decoder stays a pure module: no asyncio, mitmproxy, aiohttp or Playwright behind it (the
    protocol's messages it yields are sans-IO; the socket side is shared/channel.py)."""
    code = (
        "import sys, shared.wire.decoder;"
        "bad = [m for m in ('asyncio', 'mitmproxy', 'aiohttp', 'playwright') if m in sys.modules];"
        "sys.exit(', '.join(bad) or None)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ([8, "Resource has been exhausted (e.g. check quota)."], Error("quota", 429, "Resource has been exhausted (e.g. check quota).")),
        ([8, "Too Many Requests, slow down", []], Error("rate_limit", 429, "Too Many Requests, slow down")),
        ([7, "The caller does not have permission"], Error("permission", 403, "The caller does not have permission")),
        ([16, "Request had invalid authentication credentials."], Error("permission", 502, "Request had invalid authentication credentials.")),
        (["UNAUTHENTICATED", "no cookie"], Error("permission", 502, "no cookie")),
        ([3, "Request contains an invalid argument."], Error("upstream_status", 400, "Request contains an invalid argument.")),
        ([13, "Internal error encountered."], Error("upstream_status", 502, "Internal error encountered.")),
    ],
)  # fmt: skip
def test_in_stream_error_element_becomes_a_classified_error(element: list[Any], expected: Error) -> None:
    """An error element after the events is mapped from its gRPC code; no Finish follows."""
    data = body(event([[None, "partial"]], usage=[1, None, 1]), tail="," + json.dumps(element))
    for pieces in ([data], every(data, 1)):
        assert decode(pieces) == [Content("partial"), expected, Done()]


def test_error_element_without_events_is_reported() -> None:
    """A body holding only an error element still yields the error."""
    assert decode([b'[[],[8,"quota exceeded"]]']) == [Error("quota", 429, "quota exceeded"), Done()]


def test_input_after_a_fatal_error_is_ignored() -> None:
    """Once Error and Done are out, feed() and close() return nothing."""
    decoder = make_decoder()
    assert decoder.feed(b'[[],[7,"no"]') == [Error("permission", 403, "no"), Done()]
    assert decoder.feed(b'],[[[[[[null,"late"]],"model"]]]]') == []
    assert decoder.close() == []


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (429, b'[8,"Resource has been exhausted (e.g. check quota)."]', Error("quota", 429, "Resource has been exhausted (e.g. check quota).")),
        (429, b"<html><title>429 Too Many Requests</title></html>", Error("rate_limit", 429, "<html><title>429 Too Many Requests</title></html>")),
        (403, b'{"error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}}', Error("permission", 403, "The caller does not have permission")),
        (401, b'[null,[16,"Request had invalid authentication credentials."]]', Error("permission", 401, "Request had invalid authentication credentials.")),
        (500, b")]}'\n[null,[13,\"Internal error encountered.\"]]", Error("upstream_status", 500, "Internal error encountered.")),
        (503, b"  Service\n  Unavailable  ", Error("upstream_status", 503, "Service Unavailable")),
        (500, b"", Error("upstream_status", 500, "HTTP 500")),
    ],
)  # fmt: skip
def test_http_error_status_reports_one_error_at_close(status: int, payload: bytes, expected: Error) -> None:
    """A status >= 400 buffers the body and reports it, classified, when the transport ends."""
    decoder = make_decoder(status=status)
    assert [decoder.feed(p) for p in every(payload, 4)] == [[] for _ in every(payload, 4)]
    assert decoder.close() == [expected, Done()]


def test_http_error_message_is_truncated_to_500_characters() -> None:
    """Long error bodies are cut to 500 characters."""
    events = decode([b"x" * 5000], status=502)
    assert isinstance(events[0], protocol.Error) and events[0].message == "x" * 500


def test_http_error_body_is_content_decoded() -> None:
    """A gzip error body is decompressed before its message is read."""
    payload = gzip.compress(b'{"error": {"message": "Too many requests, try later"}}')
    events = decode(every(payload, 5), status=429, encoding="gzip")
    assert events == [Error("rate_limit", 429, "Too many requests, try later"), Done()]


@pytest.mark.parametrize("cut", [1, 2, 30, -1, -2])
def test_body_that_ends_before_the_top_level_array_closes_is_aborted(cut: int) -> None:
    """A truncated body yields what was complete, then an aborted error instead of Finish."""
    data = fixture_bytes(TEXT)
    events = decode(every(data[:cut], 7))
    assert events[-2].kind == "aborted" and events[-2].status is None  # type: ignore[union-attr]
    assert events[-1] == Done()
    assert not [e for e in events if isinstance(e, protocol.Finish | protocol.Usage)]
    if cut < 0:
        assert [e.type for e in events] == ["content"] * 3 + ["error", "done"]


def test_empty_body_is_aborted() -> None:
    """No body at all is an aborted response."""
    events = decode([])
    assert [e.type for e in events] == ["error", "done"] and events[0].kind == "aborted"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "data",
    [
        b'[[[[[[[null,"a" "b"]],"model"]]]]]',
        b'[[[[[[[null,tru]],"model"]]]]]',
        b'[[[[[[[null,"a"]],"model"]]],null,[1,2}]]]',
        b'[[[[[[[null,"\xff"]],"model"]]]]]',
        b'{"error": 1}',
        b"[[[1] [2]]]",
        b"[[[1],]]",
        b"[[,[1]]]",
        b"[nul1]",
        b"[[],]",
    ],
)
def test_malformed_body_is_a_protocol_error(data: bytes) -> None:
    """Invalid JSON inside an event or in the outer structure ends the response with a protocol error."""
    for pieces in ([data], every(data, 1)):
        events = decode(pieces)
        assert [e.type for e in events][-2:] == ["error", "done"]
        assert events[-2].kind == "protocol" and events[-2].status is None  # type: ignore[union-attr]


def test_bytes_after_the_end_of_the_body_are_a_protocol_error() -> None:
    """Non-whitespace after the top-level array closed is reported, with no Finish."""
    data = fixture_bytes(TEXT)
    for pieces in ([data + b" x"], [data, b"  ", b"[1]"]):
        events = decode(pieces)
        assert [e.type for e in events] == ["content"] * 3 + ["error", "done"]
        assert events[3].kind == "protocol"  # type: ignore[union-attr]


def test_whitespace_after_the_end_of_the_body_is_ignored() -> None:
    """Trailing whitespace after the top-level array is harmless."""
    assert_same_events(decode([fixture_bytes(TEXT), b"\r\n \t\n"]), EXPECTED[TEXT])


def test_unknown_content_encoding_is_a_protocol_error() -> None:
    """ContentDecoder rejects an unknown coding; ResponseDecoder reports it as an event."""
    with pytest.raises(DecodingError):
        ContentDecoder("compress")
    assert [e.type for e in decode([b"[[]]"], encoding="gzip, snappy")] == ["error", "done"]


def test_corrupt_compressed_body_is_a_protocol_error() -> None:
    """Bytes that are not gzip under Content-Encoding: gzip end the response with a protocol error."""
    events = decode([fixture_bytes(TEXT)], encoding="gzip")
    assert events[0].kind == "protocol" and events[1] == Done()  # type: ignore[union-attr]


# --- content decoding ----------------------------------------------------------------------------


def raw_deflate(data: bytes) -> bytes:
    obj = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return obj.compress(data) + obj.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        (None, lambda d: d),
        ("identity", lambda d: d),
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("GZip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", raw_deflate),
        ("br", brotli.compress),
        ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
        ("gzip, br", lambda d: brotli.compress(gzip.compress(d))),
        ("br,identity, zstd", lambda d: zstandard.ZstdCompressor().compress(brotli.compress(d))),
    ],
)
def test_content_decoder_undoes_each_coding_incrementally(encoding: str | None, encode: Callable) -> None:
    """Each coding and stacks of codings decode correctly when fed one byte at a time."""
    data = fixture_bytes(FUNCTION_CALL) * 3
    decoder = ContentDecoder(encoding)
    out = b"".join(decoder.decode(p) for p in every(encode(data), 1)) + decoder.flush()
    assert out == data


def test_content_decoder_handles_concatenated_gzip_members_and_zstd_frames() -> None:
    """Several gzip members (or zstd frames) in one body decode as their concatenation."""
    gz = ContentDecoder("gzip")
    assert gz.decode(gzip.compress(b"ab") + gzip.compress(b"cd")) + gz.flush() == b"abcd"
    zc = zstandard.ZstdCompressor()
    zs = ContentDecoder("zstd")
    assert zs.decode(zc.compress(b"ab") + zc.compress(b"cd")) + zs.flush() == b"abcd"


def test_content_decoder_restarts_at_a_member_or_frame_boundary_between_chunks() -> None:
    """A chunk that ends exactly where a gzip member or zstd frame ends is followed by the next one."""
    zc = zstandard.ZstdCompressor()
    for encoding, encode in (("gzip", gzip.compress), ("zstd", zc.compress)):
        decoder = ContentDecoder(encoding)
        assert decoder.decode(encode(b"ab")) + decoder.decode(encode(b"cd")) + decoder.flush() == b"abcd"


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [
        ("gzip", zlib.compress(b"abc"), "corrupt compressed body"),  # a zlib stream is not gzip
        ("gzip", raw_deflate(b"abc"), "corrupt compressed body"),  # nor is raw deflate (no fallback)
        ("br", b"not brotli at all", "corrupt brotli body"),
        ("zstd", b"not zstd at all", "corrupt zstd body"),
    ],
)
def test_corrupt_body_names_what_was_wrong(encoding: str, body: bytes, message: str) -> None:
    """Data that is not in the named coding raises a DecodingError saying which coding failed."""
    with pytest.raises(DecodingError, match=message):
        ContentDecoder(encoding).decode(body)


def test_unknown_content_encoding_is_named_in_the_error() -> None:
    with pytest.raises(DecodingError, match="unsupported Content-Encoding 'compress'"):
        ContentDecoder("gzip, compress")


def test_deflate_falls_back_to_raw_only_before_the_zlib_header_is_checked() -> None:
    """Once two bytes (a valid zlib header) went through, later corruption is an error, not raw deflate."""
    decoder = ContentDecoder("deflate")
    assert decoder.decode(b"\x78\x9c") == b""  # a valid zlib header
    with pytest.raises(DecodingError, match="corrupt compressed body"):
        decoder.decode(b"\x07")  # a final block of the reserved type 3


# --- property: random bodies, random splits -----------------------------------------------------


def encode_value(v: Any) -> list[Any]:
    """The type-length encoding of docs/aistudio.md §4.5 (test-side encoder)."""
    if v is None:
        return [None]
    if isinstance(v, bool):
        return [None, None, None, int(v)]
    if isinstance(v, int | float):
        return [None, v]
    if isinstance(v, str):
        return [None, None, v]
    if isinstance(v, list):
        return [None] * 5 + [[encode_value(item) for item in v]]
    return [None] * 4 + [[encode_pairs(v)] if v else []]


def encode_pairs(d: dict[str, Any]) -> list[list[Any]]:
    return [[k, encode_value(x)] for k, x in d.items()]


SPECIALS = ['"', "\\", '\\"', "[[[null,", "]]", ']],"model"]', "\n", "\t", "☕", "𝄞", "é", "\x00", "\u2028"]
texts = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(SPECIALS)), max_size=6).map("".join)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
parts = st.one_of(
    st.tuples(st.just("content"), texts),
    st.tuples(st.just("reasoning"), texts),
    st.tuples(
        st.just("tool_call"), st.text(min_size=1, max_size=10), st.dictionaries(texts, values, max_size=4)
    ),
)
usages = st.one_of(
    st.none(),
    st.lists(st.one_of(st.none(), st.integers(0, 10**6)), min_size=3, max_size=10),
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, list[Event], list[dict[str, Any]]]:
    """A random well-formed body, its expected events and the encoded arguments in order."""
    wire_events: list[Any] = []
    expected: list[Event] = []
    arguments: list[dict[str, Any]] = []
    usage: list[Any] | None = None
    finish: int | None = None
    n_events = draw(st.integers(0, 5))
    for index in range(n_events):
        wire_parts = []
        for part in draw(st.lists(parts, min_size=1, max_size=3)):
            if part[0] == "tool_call":
                _, name, args = part
                wire_parts.append([None] * 10 + [[name, [encode_pairs(args)] if args else []]])
                expected.append(ToolCall(name, args))
                arguments.append(args)
            elif part[0] == "reasoning":
                wire_parts.append([None, part[1], *([None] * 10), 1])
                if part[1]:
                    expected.append(Reasoning(part[1]))
            else:
                wire_parts.append([None, part[1]])
                if part[1]:
                    expected.append(Content(part[1]))
        finish = draw(st.sampled_from([None, 1, 2, 3, 4, 5])) if index == n_events - 1 else None
        ev_usage = draw(usages)
        usage = ev_usage if ev_usage is not None else usage
        wire_events.append(event(wire_parts, finish=finish, usage=ev_usage))
    if draw(st.booleans()):
        wire_events.append([None, None, None, ["1761955200123456", 482913607, 3051996112]])
    indent = draw(st.sampled_from([None, None, 1]))
    text = json.dumps([wire_events], ensure_ascii=draw(st.booleans()), indent=indent)
    expected.append(Finish(finish_reason(finish, tool_calls=bool(arguments))))
    if usage is not None:
        pad = usage + [None] * 10
        expected.append(Usage(pad[0], pad[1], pad[9], pad[2]))
    expected.append(Done())
    return text.encode(), expected, arguments


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=bodies(), data=st.data())
def test_random_bodies_split_anywhere_decode_like_the_whole_body(
    case: tuple[bytes, list[Event], list[dict[str, Any]]], data: st.DataObject
) -> None:
    """Random bodies give the encoded texts and arguments, whole or cut at random offsets."""
    raw, expected, arguments = case
    whole = decode([raw])
    assert_same_events(whole, expected)
    assert [typed(e.arguments) for e in whole if isinstance(e, protocol.ToolCall)] == [
        typed(a) for a in arguments
    ]
    offsets = data.draw(st.lists(st.integers(0, len(raw)), max_size=20))
    assert_same_events(decode(split(raw, offsets)), expected)
    size = data.draw(st.integers(1, 64))
    assert_same_events(decode(every(gzip.compress(raw), size), encoding="gzip"), expected)


def test_consumed_bytes_are_dropped_so_the_buffer_stays_one_event_long() -> None:
    """A 2,000-event body (~240 KB) fed in 13-byte pieces: every event comes out, and the decoder never holds
    more than about one event (plus one piece), inside a string or between events alike."""
    events = [event([[None, f"word{i:04d} " + "x" * 80]]) for i in range(2000)]
    data = body(*events)
    largest = max(len(json.dumps(e)) for e in events)
    decoder = make_decoder()
    out: list[Event] = []
    peak = 0
    for piece in every(data, 13):
        out += decoder.feed(piece)
        peak = max(peak, decoder.buffered)
    out += decoder.close()
    assert len(data) > 200_000 and sum(isinstance(e, protocol.Content) for e in out) == 2000
    assert peak <= largest + 13 + 8, (peak, largest)


# --- error shapes the wire may send (mutation review) -----------------------------------------------


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ([], Error("upstream_status", 502, "[]")),
        ([8], Error("quota", 429, "[8]")),
        ([13, None, "é"], Error("upstream_status", 502, '[13, null, "é"]')),  # no message: the element, as is
        (["unauthenticated", "no cookie"], Error("permission", 502, "no cookie")),  # names in any case
        (["UNAVAILABLE", "busy"], Error("upstream_status", 502, "busy")),  # a name without a status
        ([[1], "odd"], Error("upstream_status", 502, "odd")),  # a code that is neither
    ],
)
def test_odd_error_elements_are_still_classified(element: list[Any], expected: Error) -> None:
    """Short, message-less or oddly coded error elements become an upstream error, never an exception."""
    assert decode([body(tail="," + json.dumps(element, ensure_ascii=False))]) == [expected, Done()]


@pytest.mark.parametrize(
    ("status", "payload", "message"),
    [
        (500, b'{"error": "Backend error"}', "Backend error"),
        (500, b'{"message": "Backend unavailable"}', "Backend unavailable"),
        (500, b'{"error": {"code": 500}}', '{"error": {"code": 500}}'),  # no message anywhere: the body
        (500, b'{"message": 5}', '{"message": 5}'),
        (500, b"[]", "[]"),
        (500, b"[5]", "[5]"),
        (500, b'["note", "not a status"]', '["note", "not a status"]'),
        (429, b'["RESOURCE_EXHAUSTED", "Quota exceeded"]', "Quota exceeded"),
        (500, b'[[[[13, "deep"]]]]', "deep"),  # a status three lists down is found
        (500, b'[[[[[13, "deeper"]]]]]', '[[[[[13, "deeper"]]]]]'),  # four is too deep
        (500, b')]}\'[null,[13,"Internal"]]', "Internal"),  # the anti-XSSI prefix without a newline
        (502, b"bad \xff gateway", "bad \ufffd gateway"),  # not UTF-8
    ],
)
def test_http_error_message_is_found_in_any_body(status: int, payload: bytes, message: str) -> None:
    """The message is the status's own text when the body has one, else the body's text; never an exception."""
    (error, done) = decode([payload], status=status)
    assert isinstance(error, protocol.Error) and error.message == message and done == Done()


@pytest.mark.parametrize("code", [["x"], 2.0, True, None, "UNKNOWN"])
def test_odd_finish_reasons_mean_stop(code: Any) -> None:
    assert finish_reason(code) == "stop"


@pytest.mark.parametrize("scalar", [None, "s", 5, 1.5])
def test_a_bare_scalar_argument_value_is_kept(scalar: Any) -> None:
    assert decode_value(scalar) == scalar


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": 1}, "cannot decode argument value {'a': 1}"),
        (
            [None, None, None, None, None, 5],
            "array value without an item list: [None, None, None, None, None, 5]",
        ),
        ([None] * 7, "argument value list of unexpected length 7"),
    ],
)
def test_undecodable_argument_values_say_why(value: Any, message: str) -> None:
    with pytest.raises(DecodingError) as caught:
        decode_value(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("container", "message"),
    [
        ("x", "cannot decode object 'x'"),
        ([["a", [None, 1]], [5, [None, 2]]], "malformed key/value pair [5, [None, 2]]"),
        ([["a", [None, 1]], ["b"]], "malformed key/value pair ['b']"),
        ([["a", [None, 1]], 5], "malformed key/value pair 5"),
    ],
)
def test_malformed_argument_objects_say_why(container: Any, message: str) -> None:
    with pytest.raises(DecodingError) as caught:
        decode_args(container)
    assert str(caught.value) == message


# --- odd event shapes (mutation review) --------------------------------------------------------------


def test_parts_and_candidates_of_any_length_are_read_without_error() -> None:
    """Parts one, ten and twelve slots long, empty or non-list candidates and parts, an event two slots
    long: what has text is read, the rest skipped, nothing raises."""
    text = [None, "x"]
    parts = [5, [None], text + [None] * 8, text + [None] * 10, [None, "y"]]  # lengths -, 1, 10, 12, 2
    candidates = [[], 5, [[]], [[parts, "model"]]]
    events = decode([body([candidates, None])])
    assert events == [Content("x"), Content("x"), Content("y"), Finish("stop"), Done()]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (["f"], [ToolCall("f", {}), Finish("tool_calls"), Done()]),  # no argument slot: {}
        (
            [],
            [Error("protocol", None, "undecodable function call: function call without a name: []"), Done()],
        ),
    ],
)
def test_a_short_function_call_slot(call: list[Any], expected: list[Event]) -> None:
    assert decode([body(event([[None] * 10 + [call]]))]) == expected


def test_grounding_slots_of_the_shortest_shapes() -> None:
    """A grounding slot of two (or four) entries and a web source of one (or two) are read; what is missing is
    None, or no queries."""
    two = [None] * 7 + [[None, [[["https://b.example/"]]]]]
    assert grounding_metadata(two) == ([{"uri": "https://b.example/", "title": None, "domain": None}], [])
    four = [None] * 7 + [[None, [[["https://a.example/", "A"]]], None, None]]
    assert grounding_metadata(four) == ([{"uri": "https://a.example/", "title": "A", "domain": None}], [])


def test_an_error_body_that_is_not_in_its_coding_is_kept_raw() -> None:
    """An error body labelled gzip that is plain text is read as it came, over several chunks."""
    assert decode([b"plain ", b"text"], status=500, encoding="gzip") == [
        Error("upstream_status", 500, "plain text"),
        Done(),
    ]


def test_an_error_body_is_buffered_up_to_one_mebibyte() -> None:
    decoder = make_decoder(status=500)
    decoder.feed(b"x" * ((1 << 20) - 1))
    decoder.feed(b"yyyy")
    assert decoder.buffered == 1 << 20
    decoder.feed(b"z" * 100)
    assert decoder.buffered == 1 << 20


def test_an_unknown_content_encoding_is_reported_even_without_a_body() -> None:
    decoder = make_decoder(content_encoding="snappy")
    assert decoder.close() == [Error("protocol", None, "unsupported Content-Encoding 'snappy'"), Done()]


def test_usage_counts_that_are_not_integers_are_left_out() -> None:
    events = decode([body(event([[None, "x"]], usage=[1, "2", 3.5, None]))])
    assert Usage(prompt_tokens=1, completion_tokens=None, reasoning_tokens=None, total_tokens=None) in events


# --- the decoder's own state (mutation review, 2026-12-05) -------------------------------------------


def test_a_400_is_an_http_error_and_a_decoder_s_defaults_are_a_200_with_no_stream_id() -> None:
    decoder = make_decoder(status=400)
    assert decoder.feed(b'{"error": {"message": "bad field"}}') == []
    assert decoder.close() == [Error("upstream_status", 400, "bad field"), Done()]
    plain = ResponseDecoder()
    events = [*plain.feed(body(event([[None, "hi"]]))), *plain.close()]
    assert [e.type for e in events] == ["content", "finish", "done"]
    assert {e.id for e in events} == {""}


def test_a_cut_body_says_how_many_bytes_came() -> None:
    decoder = make_decoder()
    pieces = every(body(event([[None, "hello"]]))[:-1], 7)
    for piece in pieces:
        decoder.feed(piece)
    closing = decoder.close()
    received = sum(len(p) for p in pieces)
    assert isinstance(closing[0], protocol.Error)
    assert f"({received} bytes received)" in closing[0].message


def test_a_finished_decoder_holds_nothing_and_ignores_more_input() -> None:
    decoder = make_decoder()
    decoder.feed(body(event([[None, "x" * 500]])))
    decoder.close()
    assert decoder.done and decoder.buffered == 0
    assert decoder.feed(b"[[more]]") == [] and decoder.close() == []


def test_a_body_that_does_not_decompress_says_why() -> None:
    events = make_decoder(content_encoding="gzip").feed(b"this is not gzip at all")
    assert isinstance(events[0], protocol.Error) and events[0].kind == "protocol"
    assert (
        events[0].message
        == "corrupt compressed body: Error -3 while decompressing data: incorrect header check"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"this is not a JSON array at all", "body does not start with '[': b'this is not a JSON a'"),
        (b"[[1],]", "unexpected ']' after ','"),
        (b"[,", "unexpected ','"),
        (b"[1 2]", "missing ',' at depth 1"),
        (b'[1 "a"]', "missing ',' at depth 1"),
        (b"[[1] [2]]", "missing ',' before '[' at depth 1"),
        (b"[@]", "unexpected byte b'@' at depth 1"),
        (b"[truthfullynotaliteralatall]", "invalid literal b'truthfullynotalitera'"),
        (
            b"[[1]] and then some trailing garbage",
            "unexpected data after the end of the body: b'and then some traili'",
        ),
    ],
)
def test_a_malformed_body_is_one_protocol_error_that_says_where(raw: bytes, message: str) -> None:
    """The decoder's own words for each way a body can break its grammar (mutation review): an operator reads
    them in the error snapshot and the log."""
    assert decode([raw]) == [Error("protocol", None, message), Done()]


@pytest.mark.parametrize("prefix", [b")]}'\n", b")]}'"])
def test_the_xssi_prefix_is_skipped_however_the_body_is_cut(prefix: bytes) -> None:
    data = prefix + body(event([[None, "hello"]]), event([[None, " world"]], finish=1))
    whole = decode([data])
    assert [e for e in whole if isinstance(e, protocol.Content)] == [Content("hello"), Content(" world")]
    for size in (1, 2, 3, 5):
        assert decode(every(data, size)) == whole, size


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 8])
def test_strings_between_the_events_are_skipped_whole_however_they_are_cut(cut: int) -> None:
    """The grammar allows scalars beside the events (an array there is an error element); a string may hold
    quotes, escapes and brackets and may be cut anywhere, also after the decoder has dropped what it consumed (mutation review)."""
    events = (event([[None, "hello"]]), event([[None, " world"]], finish=1))
    tail = ',"a \\"quoted\\" [bracket] \\\\","",null,7'
    data = body(*events, tail=tail)
    expected = decode([body(*events)])
    assert decode([data]) == expected
    assert decode(every(data, cut)) == expected
    decoder = make_decoder()
    decoder.feed(data[: data.index(b"[bracket]")])
    assert decoder.buffered < 20  # the string is held from its opening quote, the events are gone
    assert [e for e in decoder.feed(data[data.index(b"[bracket]") :]) if isinstance(e, protocol.Error)] == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'[[1],"a" 2]', "missing ',' at depth 1"),
        (b'[[1],"a" "b"]', "missing ',' at depth 1"),
        (b'[[1],"a",]', "unexpected ']' after ','"),
    ],
)
def test_a_string_between_the_events_must_be_followed_by_a_separator(raw: bytes, message: str) -> None:
    assert decode([raw]) == [Error("protocol", None, message), Done()]
    assert decode(every(raw, 3)) == [Error("protocol", None, message), Done()]


def test_a_body_that_cannot_be_the_xssi_prefix_is_refused_at_its_first_bytes() -> None:
    """Only a beginning of ``)]}'`` is waited for; any other first bytes are refused as they arrive."""
    assert make_decoder().feed(b")x") == [
        Error("protocol", None, "body does not start with '[': b')x'"),
        Done(),
    ]
    assert make_decoder().feed(b")]") == []
