"""Decode a saved GenerateContent response body and print its events as JSON lines.

Usage::

    python -m stream_proxy.decode [--split-at N,N,...] [--gzip] [--grounding] FILE

``--gzip``: FILE holds the body gzip-compressed (it is decoded with ``Content-Encoding: gzip``).
``--split-at``: feed the FILE bytes to the decoder in pieces cut at these byte offsets of the file.
``--grounding``: also print ``grounding`` events (Google Search sources). Without it only the seven
original types are printed: ``reasoning``, ``content``, ``tool_call``, ``usage``, ``finish``,
``error`` and ``done``.

Each line is the ``shared.protocol`` message the decoder yields (``shared/wire/decoder.py``), the one
the stream proxy publishes, with its ``type`` and the fields the decoder set: not its ``id`` and
``ts``, nor the protocol's defaults the decoder leaves alone (``call_id``, ``timings``, ...).

Exit status: 0 for a well-formed body, 1 when the decoder reported an error (the error line is
printed), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import orjson

from shared import protocol
from shared.wire.decoder import Event, ResponseDecoder

_PROG = "python -m stream_proxy.decode"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _usage_error(message)


def _usage_error(message: str) -> NoReturn:
    sys.stderr.write(f"{_PROG}: error: {message}\n")
    raise SystemExit(2)


def _parse_offsets(text: str, size: int) -> list[int]:
    offsets: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            offset = int(item)
        except ValueError:
            _usage_error(f"--split-at: {item!r} is not an integer byte offset")
        if not 0 <= offset <= size:
            _usage_error(f"--split-at: offset {offset} is outside the file (0..{size})")
        offsets.append(offset)
    return sorted(set(offsets))


def _pieces(data: bytes, offsets: Sequence[int]) -> list[bytes]:
    cuts = [0, *offsets, len(data)]
    return [data[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def decode_file(data: bytes, offsets: Sequence[int] = (), gzip: bool = False) -> list[Event]:
    """Decode a whole body (cut at ``offsets``) and return every event, ``Done`` included."""
    decoder = ResponseDecoder(content_encoding="gzip" if gzip else None)
    events: list[Event] = []
    for piece in _pieces(data, offsets):
        events += decoder.feed(piece)
    events += decoder.close()
    return events


def event_fields(event: Event) -> dict[str, Any]:
    """One output line's object: the event's ``type`` and the fields the decoder set, but ``id`` and ``ts``."""
    return {"type": event.type, **event.model_dump(exclude_unset=True, exclude={"id", "ts"})}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog=_PROG, description="Decode a GenerateContent response body into JSON lines.")
    parser.add_argument("--split-at", metavar="N,N,...", default="", help="byte offsets of FILE to cut at")
    parser.add_argument("--gzip", action="store_true", help="FILE is gzip-compressed")
    parser.add_argument(
        "--grounding", action="store_true", help="also print grounding events (Google Search sources)"
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="the response body")
    args = parser.parse_args(argv)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        _usage_error(f"cannot read {str(args.file)!r}: {exc.strerror or exc}")
    offsets = _parse_offsets(args.split_at, len(data))
    events = decode_file(data, offsets, gzip=args.gzip)
    out = sys.stdout.buffer
    for event in events:
        if isinstance(event, protocol.Grounding) and not args.grounding:
            continue
        out.write(orjson.dumps(event_fields(event)) + b"\n")
    out.flush()
    return 1 if any(isinstance(e, protocol.Error) for e in events) else 0


if __name__ == "__main__":
    sys.exit(main())
