"""Benchmark of the incremental GenerateContent decoder (``shared/wire/decoder.py``).

Run ``python -m bench.decoder`` (``--quick`` for a short run, ``--json FILE`` to save the rows).

Bodies of 1 MB and 10 MB made of realistic events (thoughts, then many short answer deltas with
running usage, a finishReason and the trailer) are gzip-compressed and fed to
``ResponseDecoder(content_encoding="gzip")`` in 4 KiB pieces of the compressed stream, as a proxy
receives them. Throughput is measured on the decompressed size. A naive baseline, modelled on the
reference interceptor described in docs/aistudio.md §4.6 (on every read: gunzip everything received so far,
regex-match every ``content`` array in the whole plaintext and ``json.loads`` each one), runs on
smaller bodies only because its cost grows with the square of the body size.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from shared.protocol import Content, Reasoning
from shared.wire.decoder import ResponseDecoder

MB = 1_000_000
PIECE = 4096

_WORDS = (
    "the model answer token stream Gemini studio proxy request response event delta usage chunk "
    "browser page selector network cache latency throughput function arguments object array value "
    "naïve café résumé 東京 データ ✓ ☕ — “quoted” emoji 🚀 λ x² ≤ ≥"
).split()
_DECOR = ["**", "`", "\n", "\n\n- ", '"', "\\", "\t", ", ", ". ", "[[[null,", "]]"]


def _text(rng: random.Random, min_words: int, max_words: int) -> str:
    out = []
    for _ in range(rng.randint(min_words, max_words)):
        out.append(rng.choice(_WORDS))
        if rng.random() < 0.15:
            out.append(rng.choice(_DECOR))
    return " ".join(out)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def build_body(size: int, seed: int = 1) -> tuple[bytes, int]:
    """Return a well-formed response body of about ``size`` bytes and its number of text events."""
    rng = random.Random(seed)
    prompt, thoughts, candidates = 1234, 0, 0
    events: list[str] = []
    total = 2
    n_text = 0
    while total < size - 200:
        thinking = n_text < 20
        text = _text(rng, 8, 60)
        if thinking:
            part: list[object] = [None, text, *([None] * 10), 1]
            thoughts += len(text) // 4
        else:
            part = [None, text]
            candidates += len(text) // 4
        total_tokens = prompt + thoughts + candidates
        usage = [prompt, None, total_tokens, None, [[1, prompt]], *([None] * 4), thoughts]
        event = _dumps([[[[[part], "model"]]], None, usage])
        events.append(event)
        total += len(event.encode()) + 1
        n_text += 1
    last = [[[[[[None, "."]], "model"], 1]], None, [prompt, candidates, prompt + candidates + thoughts]]
    events.append(_dumps(last))
    events.append(_dumps([None, None, None, ["1761955200123456", 482913607, 3051996112]]))
    return ("[[" + ",".join(events) + "]]").encode(), n_text + 1


def _pieces(data: bytes, size: int = PIECE) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def decode_incremental(pieces: list[bytes]) -> int:
    """Feed the pieces to the real decoder; return the number of text events."""
    decoder = ResponseDecoder(content_encoding="gzip")
    count = 0
    for piece in pieces:
        for event in decoder.feed(piece):
            if type(event) is Content or type(event) is Reasoning:
                count += 1
    for event in decoder.close():
        if type(event) is Content or type(event) is Reasoning:
            count += 1
    return count


_NAIVE_CONTENT = re.compile(rb'\[\[\[null,.*?]],"model"]')


def decode_naive(pieces: list[bytes]) -> int:
    """Baseline: re-gunzip and re-parse everything received so far on every read (docs/aistudio.md §4.6)."""
    received = b""
    texts: list[str] = []
    for piece in pieces:
        received += piece
        plain = zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(received)
        texts = []  # every read yields a new snapshot of the whole answer
        for m in _NAIVE_CONTENT.finditer(plain):
            part = json.loads(m.group())[0][0]
            if len(part) > 1 and isinstance(part[1], str):
                texts.append(part[1])
    return len(texts)


def _measure(
    name: str, decode: Callable[[list[bytes]], int], size: int, repeats: int, note: str = ""
) -> dict[str, object]:
    body, n_text = build_body(size)
    compressed = gzip.compress(body, compresslevel=6, mtime=0)
    pieces = _pieces(compressed)
    if decode(pieces) != n_text:  # warm-up run, also a correctness check
        raise AssertionError(f"{name}: wrong number of text events")
    times, cpu_times = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        decode(pieces)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    speeds = [len(body) / MB / t for t in times]
    return {
        "decoder": name,
        "size_bytes": len(body),
        "compressed_bytes": len(compressed),
        "pieces": len(pieces),
        "text_events": n_text,
        "repeats": repeats,
        "median_s": statistics.median(times),
        "median_cpu_s": statistics.median(cpu_times),
        "median_cpu_mb_s": len(body) / MB / statistics.median(cpu_times),
        "median_mb_s": statistics.median(speeds),
        "min_mb_s": min(speeds),
        "max_mb_s": max(speeds),
        "note": note,
    }


def run(quick: bool = False) -> list[dict[str, object]]:
    """Run the benchmark and return one row per (decoder, size).

    ``time_ratio`` (``cpu_ratio``) is the row's median wall-clock (CPU) time divided by that of the
    same decoder's smallest body: 10 MB / 1 MB for the incremental decoder. CPU time is less
    disturbed by other processes on a busy machine.
    """
    if quick:
        plan = [
            ("incremental", decode_incremental, 1 * MB, 5, ""),
            ("incremental", decode_incremental, 10 * MB, 1, ""),
            ("naive", decode_naive, MB // 4, 1, "reference-style baseline, small bodies only"),
            ("naive", decode_naive, MB // 2, 1, "reference-style baseline, small bodies only"),
        ]
    else:
        plan = [
            ("incremental", decode_incremental, 1 * MB, 15, ""),
            ("incremental", decode_incremental, 10 * MB, 5, ""),
            ("naive", decode_naive, 1 * MB, 3, "reference-style baseline, 1-2 MB only"),
            ("naive", decode_naive, 2 * MB, 2, "reference-style baseline, 1-2 MB only"),
        ]
    rows = [_measure(name, fn, size, repeats, note) for name, fn, size, repeats, note in plan]
    first: dict[str, dict[str, object]] = {}
    for row in rows:
        base = first.setdefault(str(row["decoder"]), row)
        row["time_ratio"] = float(row["median_s"]) / float(base["median_s"])  # type: ignore[arg-type]
        row["cpu_ratio"] = float(row["median_cpu_s"]) / float(base["median_cpu_s"])  # type: ignore[arg-type]
    return rows


def format_table(rows: list[dict[str, object]]) -> str:
    head = (
        f"{'decoder':<12} {'size':>8} {'gzip':>8} {'pieces':>7} {'median MB/s':>12} {'min':>7} {'max':>7}"
        f" {'cpu MB/s':>9} {'ratio':>6} {'cpu ratio':>9}  note"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['decoder']:<12} {r['size_bytes'] / MB:>6.1f}MB {r['compressed_bytes'] / MB:>6.2f}MB "
            f"{r['pieces']:>7} {r['median_mb_s']:>12.1f} {r['min_mb_s']:>7.1f} {r['max_mb_s']:>7.1f} "
            f"{r['median_cpu_mb_s']:>9.1f} {r['time_ratio']:>6.2f} {r['cpu_ratio']:>9.2f}  {r['note']}"
        )
    lines.append(
        "MB/s of the decompressed body (1 MB = 10^6 bytes), fed as 4 KiB pieces of gzip; "
        "ratio = median time / that of the same decoder's smallest body"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decoder", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller naive bodies")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick)
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
