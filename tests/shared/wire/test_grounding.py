"""Google Search grounding metadata in the pure decoder (docs/aistudio.md §4.4) and the decoder CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from shared.wire.decoder import grounding_metadata
from stream_proxy.decode import event_fields
from tests.shared.wire.events import Content, Done, Finish, Grounding, Reasoning, Usage
from tests.shared.wire.test_decoder import body, decode, every
from tests.stream_proxy.test_decode_cli import lines, run_cli

USAGE = [5, 7, 12]


def meta(*webs: list[Any], queries: list[Any] | None = None) -> list[Any]:
    """Grounding metadata: ``[searchEntryPoint, chunks, supports, null, webSearchQueries]``."""
    supports = [[[0, 0, 5, "Paris"], [i], [0.9]] for i in range(len(webs))]
    return [["<div>search</div>"], [[w] for w in webs], supports, None, queries or []]


def grounded(parts: list[list[Any]], metadata: Any, slot: int = 7, finish: int | None = 1) -> list[Any]:
    """An event whose single candidate carries ``metadata`` at candidate index ``slot``."""
    candidate: list[Any] = [[parts, "model"], finish] + [None] * (slot - 2) + [metadata]
    return [[candidate], None, USAGE]


PARIS = ["https://example.com/paris", "Paris - Example", "example.com"]
FRANCE = ["https://example.org/france", "France facts", "example.org"]
PARIS_SOURCE = {"uri": PARIS[0], "title": PARIS[1], "domain": PARIS[2]}
FRANCE_SOURCE = {"uri": FRANCE[0], "title": FRANCE[1], "domain": FRANCE[2]}


def answer_body(slot: int) -> bytes:
    return body(
        [[[[[[None, "Paris is"]], "model"]]], None, [5, None, 8]],
        grounded([[None, " the capital."]], meta(PARIS, FRANCE, queries=["capital of france"]), slot),
        [None, None, None, ["1234567890123456", 1, 2]],
    )


EXPECTED = [
    Content("Paris is"),
    Content(" the capital."),
    Grounding([PARIS_SOURCE, FRANCE_SOURCE], ["capital of france"]),
    Finish("stop"),
    Usage(prompt_tokens=5, completion_tokens=7, reasoning_tokens=None, total_tokens=12),
    Done(),
]


@pytest.mark.parametrize("slot", [7, 8])
def test_grounding_at_candidate_index_seven_or_eight_is_emitted_after_the_parts(slot: int) -> None:
    """Metadata at index 7 (one project) or 8 (proto numbering) gives one Grounding after the text."""
    assert decode([answer_body(slot)]) == EXPECTED


@pytest.mark.parametrize("slot", [7, 8])
def test_grounding_body_split_at_every_byte_decodes_like_the_whole(slot: int) -> None:
    """Cut in two at every offset, one byte at a time and gzip-compressed: the same events."""
    data = answer_body(slot)
    for cut in range(len(data) + 1):
        assert decode([data[:cut], data[cut:]]) == EXPECTED, cut
    assert decode(every(data, 1)) == EXPECTED
    assert decode(every(gzip.compress(data), 3), encoding="gzip") == EXPECTED


def test_index_seven_wins_and_malformed_seven_falls_back_to_eight() -> None:
    """With both slots filled index 7 is read; when 7 is not grounding-shaped, 8 is."""
    both: list[Any] = [[[[None, "x"]], "model"], 1, None, None, None, None, None, meta(PARIS), meta(FRANCE)]
    assert grounding_metadata(both) == ([PARIS_SOURCE], [])
    both[7] = [None, "not chunks"]
    assert grounding_metadata(both) == ([FRANCE_SOURCE], [])


def test_missing_title_and_domain_are_none() -> None:
    """A web entry with only a uri (or non-string title/domain) keeps the keys with None."""
    found = grounding_metadata(
        grounded([], meta(["https://a.example/"], ["https://b.example/", 3, None]))[0][0]
    )
    assert found == (
        [
            {"uri": "https://a.example/", "title": None, "domain": None},
            {"uri": "https://b.example/", "title": None, "domain": None},
        ],
        [],
    )


def test_queries_alone_are_emitted_without_sources() -> None:
    """Search queries with no chunks still make a Grounding (sources empty)."""
    events = decode([body(grounded([[None, "hi"]], [None, None, None, None, ["weather today"]]))])
    assert events[:2] == [Content("hi"), Grounding([], ["weather today"])]


MALFORMED: dict[str, Any] = {
    "token_count_int": 42,
    "string": "grounding",
    "object": {"chunks": []},
    "empty_list": [],
    "one_element": [["<div/>"]],
    "chunks_not_a_list": [None, "chunks"],
    "chunk_not_a_list": [None, ["https://example.com/"]],
    "web_not_a_list": [None, [["https://example.com/"]]],
    "uri_not_a_string": [None, [[[123, "title", "example.com"]]]],
    "uri_empty": [None, [[["", "title", "example.com"]]]],
    "empty_web": [None, [[[]]]],
    "empty_chunk": [None, [[]]],
    "null_chunks_and_queries": [None, None, None, None, None],
    "queries_not_strings": [None, [], [], None, [1, None, ["q"]]],
    "deeply_nested": [[[[[[[[]]]]]]], [[[[[[[["https://x"]]]]]]]]],
}


@pytest.mark.parametrize("slot", [7, 8])
@pytest.mark.parametrize("metadata", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_grounding_metadata_is_ignored_never_an_error(metadata: Any, slot: int) -> None:
    """Anything not grounding-shaped in slot 7/8 emits no Grounding and leaves the answer intact."""
    events = decode([body(grounded([[None, "answer"]], metadata, slot))])
    assert events == [Content("answer"), Finish("stop"), Usage(5, 7, None, 12), Done()]


def test_malformed_chunks_are_skipped_and_good_ones_kept() -> None:
    """Within one list, bad chunks are dropped and the well-formed sources still come out."""
    metadata = [None, [None, "x", [[1]], [PARIS], [[None, "t"]], [FRANCE]], None, None, ["q", 7]]
    events = decode([body(grounded([[None, "a"]], metadata))])
    assert events[1] == Grounding([PARIS_SOURCE, FRANCE_SOURCE], ["q"])


def test_sources_are_deduplicated_by_uri_within_one_response() -> None:
    """Repeated metadata emits only new sources and queries; nothing new means no event."""
    paris_again = ["https://example.com/paris", "Another title", "example.com"]
    data = body(
        grounded([[None, "one"]], meta(PARIS, queries=["q1"]), finish=None),
        grounded([[None, "two"]], meta(PARIS, queries=["q1"]), finish=None),
        grounded([[None, "three"]], meta(paris_again, FRANCE, FRANCE, queries=["q1", "q2", "q2"])),
    )
    events = decode(every(data, 5))
    assert events[:5] == [
        Content("one"),
        Grounding([PARIS_SOURCE], ["q1"]),
        Content("two"),
        Content("three"),
        Grounding([FRANCE_SOURCE], ["q2"]),
    ]


def test_a_new_response_starts_with_no_seen_sources() -> None:
    """De-duplication is per decoder (per response), not global."""
    data = answer_body(7)
    assert decode([data]) == decode([data]) == EXPECTED


def test_grounding_on_a_thought_only_candidate_is_still_read() -> None:
    """The metadata does not depend on the kind of parts in its candidate."""
    thought = [None, "hmm", *[None] * 10, 1]
    events = decode([body(grounded([thought], meta(PARIS)))])
    assert events[:2] == [Reasoning("hmm"), Grounding([PARIS_SOURCE], [])]


def test_grounding_line_shape() -> None:
    """The CLI's line for a grounding event: the type, the sources and the queries."""
    assert event_fields(Grounding([PARIS_SOURCE], ["q"])) == {
        "type": "grounding",
        "sources": [PARIS_SOURCE],
        "queries": ["q"],
    }


# --- the CLI ------------------------------------------------------------------------------------


def test_cli_prints_only_the_seven_original_types_by_default(tmp_path: Path) -> None:
    """Without --grounding the grounding event is left out of the JSON lines."""
    path = tmp_path / "grounded.stream"
    path.write_bytes(answer_body(7))
    result = run_cli(path)
    assert result.returncode == 0, result.stderr
    assert [line["type"] for line in lines(result)] == ["content", "content", "finish", "usage", "done"]


@pytest.mark.parametrize("slot", [7, 8])
def test_cli_grounding_flag_prints_the_sources(tmp_path: Path, slot: int) -> None:
    """--grounding adds the grounding line in wire order, with the exact sources and queries."""
    path = tmp_path / "grounded.stream"
    path.write_bytes(answer_body(slot))
    result = run_cli("--grounding", "--split-at", "17,40", path)
    assert result.returncode == 0, result.stderr
    assert json.dumps(lines(result)) == json.dumps([event_fields(e) for e in EXPECTED])
