"""``SELECTORS_FILE``: named selectors replaced or prepended without a code change (docs/selectors.md).

The file is TOML with two optional tables, each mapping a name of ``browser_worker/selectors.py`` to a value::

    [replace]            # the value instead of the built-in one
    RUN_BUTTON = 'ms-send-button button[data-test-id="send-button"]'
    [prepend]            # tried before the built-in ones
    MAX_TOKENS_INPUT = 'ms-advanced-panel input.max-tokens-input'
    DIALOG_ACCEPT_TEXTS = ["Start building"]

A name that holds one string takes a string (prepending joins it in front with ``", "``, so either matches);
a name that holds a list takes a string or a list of strings. Texts, labels and XPath steps
(``selectors.TEXTS``) can only be replaced. ``load`` checks names and types, ``check_syntax`` has the page
parse every selector; ``apply`` puts a checked set in place all at once, starting from the built-in values, so
a name removed from the file goes back to its built-in value. Nothing is applied from a file that fails.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from browser_worker import selectors as S

SelectorValue = str | tuple[str, ...]

#: Every name an override may change, with its built-in value (taken once, at import, before any override).
BUILT_IN: dict[str, SelectorValue] = {
    name: value
    for name, value in vars(S).items()
    if name.isupper() and name not in S.FIXED and isinstance(value, str | tuple)
}


class OverrideError(ValueError):
    """A selectors file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Overrides:
    """A checked selectors file: the value each changed name gets."""

    path: Path | None = None
    values: dict[str, SelectorValue] = field(default_factory=dict)


def load(path: Path) -> Overrides:
    """Read and check ``path`` (names, types, tables); ``OverrideError`` naming what is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OverrideError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OverrideError(f"{path}: not valid TOML: {exc}") from None
    return Overrides(path, parse(data, str(path)))


def parse(data: dict[str, Any], source: str = "selectors file") -> dict[str, SelectorValue]:
    """The values a parsed selectors file gives each name it changes."""
    unknown_tables = sorted(set(data) - {"replace", "prepend"})
    if unknown_tables:
        raise OverrideError(f"{source}: unknown table(s) {unknown_tables}; use [replace] and [prepend]")
    values: dict[str, SelectorValue] = {}
    for mode in ("replace", "prepend"):
        table = data.get(mode, {})
        if not isinstance(table, dict):
            raise OverrideError(f"{source}: [{mode}] must be a table of NAME = value")
        for name, value in table.items():
            if name in values:
                raise OverrideError(f"{source}: {name} is both replaced and prepended; choose one")
            values[name] = _value(name, value, mode, source)
    return values


def _value(name: str, value: Any, mode: str, source: str) -> SelectorValue:
    where = f"{source}: [{mode}] {name}"
    if name not in BUILT_IN:
        hint = " (it cannot be overridden)" if name in S.FIXED else ""
        raise OverrideError(
            f"{where}: unknown selector name{hint}; the names are listed in docs/selectors.md"
        )
    built_in = BUILT_IN[name]
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise OverrideError(f"{where}: must be a non-empty string or a list of non-empty strings")
    if isinstance(built_in, str) and len(items) != 1:
        raise OverrideError(f"{where}: holds one string (join several selectors with ', ')")
    if mode == "prepend" and name in S.TEXTS and isinstance(built_in, str):
        raise OverrideError(f"{where}: is a text, label or XPath step: it can only be replaced")
    if isinstance(built_in, tuple):
        return tuple(items) + (built_in if mode == "prepend" else ())
    return f"{items[0]}, {built_in}" if mode == "prepend" else items[0]


async def check_syntax(page: Page, overrides: Overrides) -> None:
    """Have the page's selector engine parse every overriding selector (texts are not selectors)."""
    for name, value in overrides.values.items():
        if name in S.TEXTS:
            continue
        for candidate in (value,) if isinstance(value, str) else value:
            try:
                await page.locator(candidate).count()
            except PlaywrightError as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                source = overrides.path or "selectors file"
                raise OverrideError(
                    f"{source}: {name}: {candidate!r} is not a valid selector: {reason}"
                ) from None


def apply(overrides: Overrides) -> list[str]:
    """Put ``overrides`` in place (every other name back to its built-in value); the names whose value changed."""
    changed = []
    for name, built_in in BUILT_IN.items():
        wanted = overrides.values.get(name, built_in)
        if getattr(S, name) != wanted:
            setattr(S, name, wanted)
            changed.append(name)
    return changed
