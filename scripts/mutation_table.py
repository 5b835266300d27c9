"""Per-module mutation scores from the last ``mutmut run`` (``make mutation``), as a Markdown table.

mutmut keeps each mutated file's results in ``mutants/<path>.meta`` (exit code by mutant). A mutant
counts as killed when a test failed (or timed out, or the type checker refused it); "no tests"
means no selected test reached the function, which counts against the score like a survivor.

    python scripts/mutation_table.py              # the table
    python scripts/mutation_table.py --survivors  # also every surviving mutant's name, by module
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 24, -24, 36, 152, 255, 37}
SURVIVED = {0}
NO_TESTS = {5, 33}
SKIPPED = {34}


def outcome(code: int | None) -> str:
    if code is None:
        return "not checked"
    if code in KILLED:
        return "killed"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    if code in SKIPPED:
        return "skipped"
    return "suspicious"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("mutants"))
    parser.add_argument("--survivors", action="store_true", help="list surviving mutants by module")
    args = parser.parse_args()
    # Only the files the configuration mutates today (a moved module leaves its old results behind).
    config = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["mutmut"]
    wanted = set(config["only_mutate"])
    metas = sorted(
        m for m in args.root.rglob("*.py.meta") if m.relative_to(args.root).as_posix()[:-5] in wanted
    )
    if not metas:
        print(f"no mutmut results under {args.root}/: run `make mutation` first", file=sys.stderr)
        return 1
    print("| module | mutants | killed | survived | no tests | score |")
    print("|---|---:|---:|---:|---:|---:|")
    survivors: dict[str, list[str]] = {}
    for meta in metas:
        module = meta.relative_to(args.root).as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(outcome(code) for code in codes.values())
        tested = len(codes) - counts["skipped"] - counts["not checked"]
        score = 100 * counts["killed"] / tested if tested else 0.0
        print(
            f"| `{module}` | {len(codes)} | {counts['killed']} | {counts['survived']} | "
            f"{counts['no tests']} | {score:.1f} % |"
        )
        survivors[module] = sorted(
            name for name, code in codes.items() if outcome(code) in ("survived", "no tests")
        )
    if args.survivors:
        for module, names in survivors.items():
            print(f"\n## {module}: {len(names)}")
            print("\n".join(names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
