"""The page wing keeps its two promises: every selector is spelled in ``browser_worker/selectors.py``
and every piece of in-page JavaScript is a named constant in ``browser_worker/page/scripts.py``.

Source is read, not run: a heuristic over the string literals of ``browser_worker/page/`` (docstrings
aside) that flags what looks like a CSS, XPath, role or label selector, and literal arguments to the
Playwright calls that take a selector or a script.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

PAGE_DIR = Path(__file__).resolve().parents[2] / "browser_worker" / "page"
SCRIPTS = PAGE_DIR / "scripts.py"

#: Pieces of a literal that only a selector (or a page class name) would hold.
SELECTOR_LOOKS = re.compile(
    r"""
      \b(?:ms|mat|mdc|cdk)-[a-z]          # AI Studio and Angular Material element / class names
    | \[(?:role|aria-|data-|type)          # attribute selectors
    | \b(?:button|input|textarea|div|iframe|h2)[\[.#:]   # tag plus attribute, class, id or pseudo-class
    | ^\s*[.#][a-z][\w-]*(?:[.#][\w-]+)*\s*$   # a lone (compound) class or id selector
    | xpath=
    | :has(?:-text)?\(
    """,
    re.VERBOSE,
)
#: Playwright calls whose first argument is a selector, a role, a label or a text.
SELECTOR_CALLS = {
    "locator",
    "query_selector",
    "query_selector_all",
    "wait_for_selector",
    "get_by_role",
    "get_by_label",
    "get_by_text",
    "get_by_placeholder",
    "get_by_title",
    "get_by_test_id",
    "get_by_alt_text",
}
#: Playwright calls whose first argument is in-page JavaScript.
SCRIPT_CALLS = {"evaluate", "evaluate_all", "evaluate_handle", "wait_for_function", "add_init_script"}


def _modules() -> list[Path]:
    files = sorted(PAGE_DIR.glob("*.py"))
    assert files, f"no Python files under {PAGE_DIR}"
    return files


def _docstrings(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _literals(tree: ast.AST) -> Iterator[ast.Constant]:
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node


def _calls(tree: ast.AST, names: set[str]) -> Iterator[tuple[str, ast.expr]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names:
            if node.args:
                yield node.func.attr, node.args[0]


def _is_literal(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr | ast.BinOp) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def test_no_selector_is_spelled_in_the_page_wing() -> None:
    found = []
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _literals(tree):
            for line in node.value.splitlines() or [node.value]:
                if SELECTOR_LOOKS.search(line):
                    found.append(f"{path.name}:{node.lineno}: {line.strip()[:100]}")
        for call, arg in _calls(tree, SELECTOR_CALLS):
            if _is_literal(arg):
                found.append(f"{path.name}:{arg.lineno}: {call}() with a literal")
    assert not found, "selectors belong in browser_worker/selectors.py:\n" + "\n".join(found)


def test_in_page_javascript_lives_in_scripts() -> None:
    found = []
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for call, arg in _calls(tree, SCRIPT_CALLS):
            if _is_literal(arg):
                found.append(f"{path.name}:{arg.lineno}: {call}() with a literal script")
    assert not found, "in-page JavaScript belongs in browser_worker/page/scripts.py:\n" + "\n".join(found)
    assert SCRIPTS.is_file(), "browser_worker/page/scripts.py holds the in-page JavaScript"


def test_the_heuristic_sees_a_selector() -> None:
    """The scan would notice the shapes it is meant to catch (and lets prose through)."""
    for selector in (
        'button[aria-label="Run"]',
        "ms-chat-turn",
        ".cdk-overlay-pane",
        ".chat-turn-container.model",
        "xpath=../..",
        'h2:has-text("Save")',
        "el.closest('[data-test-slider]')",
    ):
        assert SELECTOR_LOOKS.search(selector), selector
    for prose in ("the prompt could not be submitted", "temporary chat", "Stop generating", "Edit"):
        assert not SELECTOR_LOOKS.search(prose), prose
