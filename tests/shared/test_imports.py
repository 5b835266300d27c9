"""Which package may import which: read from the source with ``ast``, function-level imports included."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every absolute ``import``/``from ... import`` in one file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def imports_of(package: str, forbidden: str) -> list[str]:
    """``file:line module`` for each import of ``forbidden`` (or a submodule) anywhere in ``package``."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path):
            if module == forbidden or module.startswith(forbidden + "."):
                found.append(f"{path.relative_to(ROOT)}:{line} {module}")
    return found


def test_the_browser_worker_never_imports_the_stream_proxy() -> None:
    """The wire format, codecs, hosts and CA helpers the worker needs live in ``shared``, not ``stream_proxy``."""
    assert imports_of("browser_worker", "stream_proxy") == []


def test_shared_imports_none_of_the_three_processes() -> None:
    """``shared`` is what the processes import; it imports none of them."""
    assert [hit for process in ("api_server", "browser_worker", "stream_proxy") for hit in imports_of("shared", process)] == []
