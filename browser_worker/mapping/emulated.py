"""Emulated function calling: find the calls the model wrote as text (docs/aistudio.md §3.7, §4.7).

Pure. In emulated mode the prompt carries a tool catalog (``prompt.py``) and
the model imitates::

    Request function call: <name>
    Parameters:
    {json}

``parse_tool_calls`` finds every such block, removes it from the answer and
returns the calls in order. It accepts:

* a ``default_api:``, ``functions.`` or ``tools.`` prefix on the name (and a
  name in backticks);
* the parameters as JSON (on the next line or the same line), inside a
  ```` ``` ```` / ```` ```json ```` fence, or in the relaxed syntax below;
* the inline form ``name{key:<ctrl46>v<ctrl46>, nested:{...}, list:[...]}``
  right after the name, where a ``<ctrlNN>`` token acts as the string quote,
  keys may be bare and values may be numbers, ``true``/``false``/``null``,
  bare words, objects or arrays;
* a call without parameters (``{}``) when the name stands alone on its line.

Outside the ``Request function call:`` lead-in, only ``default_api:name{...}``
(optionally ``call:default_api:…``) counts as a call: the form Gemini leaks,
and specific enough not to match ordinary prose or code. A block whose
parameters cannot be parsed as an object is left in the text, not guessed at.

When no call is found the text is returned unchanged; otherwise the remaining
text is stripped. Control tokens are removed separately by
``strip_control_tokens``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]  # public since 3.x, not in typeshed
from typing import Any

CONTROL_TOKEN = re.compile(r"<ctrl\d+>[}{]?")
_CTRL_QUOTE = re.compile(r"<ctrl\d+>")
_LEAD_IN = re.compile(r"(?:\*\*)?request function call:(?:\*\*)?[ \t]*", re.IGNORECASE)
_STANDALONE = re.compile(r"(?<![\w.:])(?:call:)?default_api:(?=[A-Za-z_][\w\-]*[ \t]*\{)")
_NAME = re.compile(
    r"`?(?:default_api:|functions\.|tools\.)?(?P<name>[A-Za-z_][\w\-]*(?:\.[A-Za-z_][\w\-]*)*)`?"
)
_PARAMETERS = re.compile(r"\s*(?:\*\*)?parameters:(?:\*\*)?[ \t]*", re.IGNORECASE)
_LINE_END = re.compile(r"[ \t]*(?=\r?\n|$)")
_FENCE_OPEN = re.compile(r"\s*```[\w-]*[ \t]*\r?\n")
_FENCE_CLOSE = re.compile(r"\s*```")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_WORDS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
MAX_NESTING = 100


@dataclass(frozen=True)
class ParsedCall:
    """One function call found in the answer text."""

    name: str
    arguments: dict[str, Any]


class RelaxedSyntaxError(ValueError):
    """The text is not an object in the tolerant call syntax."""


def strip_control_tokens(text: str) -> str:
    """Remove leaked ``<ctrlNN>`` tokens, with a ``{`` or ``}`` right after them (docs/aistudio.md §4.7)."""
    return CONTROL_TOKEN.sub("", text)


def parse_tool_calls(text: str) -> tuple[str, list[ParsedCall]]:
    """The answer with every call block removed, and the calls in order."""
    calls: list[ParsedCall] = []
    pieces: list[str] = []
    pos = 0
    search = 0
    while True:
        found = _next_call(text, search)
        if found is None:
            break
        start, end, call = found
        pieces.append(text[pos:start])
        calls.append(call)
        pos = search = end
    if not calls:
        return text, []
    pieces.append(text[pos:])
    return "".join(pieces).strip(), calls


def parse_relaxed(text: str, pos: int = 0) -> tuple[Any, int]:
    """One value in the tolerant syntax starting at ``pos``, and the index after it."""
    return _RelaxedParser(text).value(pos, 0)


def _next_call(text: str, search: int) -> tuple[int, int, ParsedCall] | None:
    """The first parseable call at or after ``search``: (start, end, call)."""
    while search < len(text):
        lead = _LEAD_IN.search(text, search)
        standalone = _STANDALONE.search(text, search)
        candidates = [m for m in (lead, standalone) if m is not None]
        if not candidates:
            return None
        match = min(candidates, key=lambda m: m.start())
        parsed = _call_after(text, match.end(), inline_only=match is standalone)
        if parsed is not None:
            end, call = parsed
            return match.start(), end, call
        search = match.end()
    return None


def _call_after(text: str, pos: int, *, inline_only: bool) -> tuple[int, ParsedCall] | None:
    """Parse ``name`` plus its parameters at ``pos``: (end, call), or None."""
    name = _NAME.match(text, pos)
    if name is None:
        return None
    pos = name.end()
    brace = re.compile(r"[ \t]*\{").match(text, pos)
    if brace is not None:
        arguments, end = _object_at(text, brace.end() - 1)
        return None if arguments is None else (end, ParsedCall(name["name"], arguments))
    if inline_only:
        return None
    params = _PARAMETERS.match(text, pos)
    if params is None:
        # Only a name alone on its line is a call without parameters.
        alone = _LINE_END.match(text, pos)
        return None if alone is None else (pos, ParsedCall(name["name"], {}))
    arguments, end = _parameters_at(text, params.end())
    return None if arguments is None else (end, ParsedCall(name["name"], arguments))


def _parameters_at(text: str, pos: int) -> tuple[dict[str, Any] | None, int]:
    """The arguments after ``Parameters:``: a fenced or bare object, ``{}`` at the end of the text, else None."""
    fence = _FENCE_OPEN.match(text, pos)
    if fence is not None:
        arguments, end = _object_at(text, _skip_space(text, fence.end()))
        if arguments is None:
            return None, pos
        close = _FENCE_CLOSE.match(text, end)
        return arguments, close.end() if close else end
    start = _skip_space(text, pos)
    if start >= len(text):
        return {}, start
    if text[start] == "{":
        return _object_at(text, start)
    return None, pos


def _object_at(text: str, pos: int) -> tuple[dict[str, Any] | None, int]:
    """A JSON object at ``pos`` (strict first, then relaxed), or (None, pos)."""
    try:
        value, end = json.JSONDecoder().raw_decode(text, pos)
    except (ValueError, RecursionError):
        try:
            value, end = parse_relaxed(text, pos)
        except RelaxedSyntaxError:
            return None, pos
    return (value, end) if isinstance(value, dict) else (None, pos)


def _skip_space(text: str, pos: int) -> int:
    """Index of the first non-whitespace character at or after ``pos``."""
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


class _RelaxedParser:
    """Recursive-descent parser for the tolerant object syntax."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, pos: int, what: str) -> RelaxedSyntaxError:
        """The error to raise for ``what`` at ``pos``."""
        return RelaxedSyntaxError(f"{what} at offset {pos}")

    def value(self, pos: int, depth: int) -> tuple[Any, int]:
        """Any value: object, array, string, number, keyword or bare word."""
        if depth > MAX_NESTING:
            raise self.fail(pos, "nesting too deep")
        pos = _skip_space(self.text, pos)
        if pos >= len(self.text):
            raise self.fail(pos, "value expected")
        char = self.text[pos]
        if char == "{":
            return self.object(pos, depth)
        if char == "[":
            return self.array(pos, depth)
        quoted = self.quoted(pos)
        if quoted is not None:
            return quoted
        return self.bare(pos)

    def object(self, pos: int, depth: int) -> tuple[dict[str, Any], int]:
        """``{key: value, ...}`` with bare or quoted keys and an optional trailing comma."""
        result: dict[str, Any] = {}
        pos = _skip_space(self.text, pos + 1)
        while True:
            if pos >= len(self.text):
                raise self.fail(pos, "unclosed object")
            if self.text[pos] == "}":
                return result, pos + 1
            key, pos = self.key(pos)
            pos = _skip_space(self.text, pos)
            if pos >= len(self.text) or self.text[pos] not in ":=":
                raise self.fail(pos, "':' expected")
            result[key], pos = self.value(pos + 1, depth + 1)
            pos = self.after_item(pos, "}")

    def array(self, pos: int, depth: int) -> tuple[list[Any], int]:
        """``[value, ...]`` with an optional trailing comma."""
        result: list[Any] = []
        pos = _skip_space(self.text, pos + 1)
        while True:
            if pos >= len(self.text):
                raise self.fail(pos, "unclosed array")
            if self.text[pos] == "]":
                return result, pos + 1
            item, pos = self.value(pos, depth + 1)
            result.append(item)
            pos = self.after_item(pos, "]")

    def after_item(self, pos: int, closer: str) -> int:
        """Skip the comma after an item; the closer may follow directly."""
        pos = _skip_space(self.text, pos)
        if pos < len(self.text) and self.text[pos] == ",":
            return _skip_space(self.text, pos + 1)
        if pos < len(self.text) and self.text[pos] == closer:
            return pos
        raise self.fail(pos, f"',' or '{closer}' expected")

    def key(self, pos: int) -> tuple[str, int]:
        """A quoted key or a bare one (up to ``:``)."""
        quoted = self.quoted(pos)
        if quoted is not None:
            return str(quoted[0]), quoted[1]
        match = re.compile(r"[^\s:=,{}\[\]\"'<]+").match(self.text, pos)
        if match is None:
            raise self.fail(pos, "key expected")
        return match.group(), match.end()

    def quoted(self, pos: int) -> tuple[str, int] | None:
        """A ``"..."`` (JSON escapes), ``'...'`` or ``<ctrlNN>...<ctrlNN>`` string, or None."""
        char = self.text[pos]
        if char == '"':
            try:
                decoded: tuple[str, int] = scanstring(self.text, pos + 1, False)
                return decoded
            except ValueError:
                raise self.fail(pos, "bad string") from None
        if char == "'":
            end = self.text.find("'", pos + 1)
            if end < 0:
                raise self.fail(pos, "unclosed string")
            return self.text[pos + 1 : end], end + 1
        opening = _CTRL_QUOTE.match(self.text, pos)
        if opening is not None:
            closing = _CTRL_QUOTE.search(self.text, opening.end())
            if closing is None:
                raise self.fail(pos, "unclosed control-token string")
            return self.text[opening.end() : closing.start()], closing.end()
        return None

    def bare(self, pos: int) -> tuple[Any, int]:
        """A number, keyword or bare word running to the next ``,``, ``}``, ``]`` or line end."""
        match = re.compile(r"[^,{}\[\]\r\n]+").match(self.text, pos)
        if match is None:
            raise self.fail(pos, "value expected")
        word = match.group().strip()
        if not word:
            raise self.fail(pos, "value expected")
        if word in _WORDS:
            return _WORDS[word], match.end()
        if _NUMBER.fullmatch(word):
            return (float(word) if any(c in word for c in ".eE") else int(word)), match.end()
        return word, match.end()


#: Where a call leaked as text (or a stray control token) may begin, lower-case (docs/aistudio.md §4.7).
LEAK_MARKERS = ("request function call", "<ctrl", "call:default_api:", "default_api:")


class LeakFilter:
    """Native function calling: keep a call the model leaked as text away from the client, streaming.

    Pure, like a decoder: ``feed(text)`` returns what may be forwarded now, ``close()`` the rest and
    the calls parsed from it. Content passes through at once except a held-back tail that could be
    the start of a marker (``LEAK_MARKERS``, case-insensitive, plus the whitespace and ``**`` before
    it), resolved when more text arrives. From the first complete marker on, everything is held
    until ``close``, which parses the held text with ``parse_tool_calls``, removes the call blocks
    and control tokens, and returns the calls.
    """

    def __init__(self) -> None:
        self._held = ""
        self._tail: str | None = None

    @property
    def tripped(self) -> bool:
        """A marker was seen: the rest of the answer is held until ``close``."""
        return self._tail is not None

    def feed(self, text: str) -> str:
        if self._tail is not None:
            self._tail += text
            return ""
        data = self._held + text
        low = data.lower()
        hits = [i for marker in LEAK_MARKERS if (i := low.find(marker)) >= 0]
        if hits:
            cut = _lead_start(data, min(hits))
            self._tail, self._held = data[cut:], ""
            return data[:cut]
        cut = _lead_start(data, len(data) - _partial_marker(low))
        self._held = data[cut:]
        return data[:cut]

    def close(self) -> tuple[str, list[ParsedCall]]:
        """The text still to forward (call blocks and control tokens removed) and the parsed calls."""
        held, tail = self._held, self._tail
        self._held, self._tail = "", None
        if tail is None:
            return held, []
        rest, calls = parse_tool_calls(tail)
        if not calls:
            return strip_control_tokens(tail), []
        rest = strip_control_tokens(rest)
        lead = tail[: len(tail) - len(tail.lstrip())]
        return (lead + rest if rest else ""), calls


def _partial_marker(low: str) -> int:
    """Length of the longest end of ``low`` that begins a marker (a marker not yet complete)."""
    best = 0
    for marker in LEAK_MARKERS:
        for k in range(min(len(marker) - 1, len(low)), best, -1):
            if low.endswith(marker[:k]):
                best = k
                break
    return best


def _lead_start(data: str, pos: int) -> int:
    """Move ``pos`` back over the ``**`` and whitespace that belong to a marker starting there."""
    while pos > 0 and (data[pos - 1] == "*" or data[pos - 1].isspace()):
        pos -= 1
    return pos
