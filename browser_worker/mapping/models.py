"""ListModels response body → ``ModelInfo`` list, with the exclusion file (docs/aistudio.md §4.8).

Pure apart from ``load_excluded_models``, which reads the file path it is given.

Accepted bodies (text, bytes, or already-parsed JSON), an optional ``)]}'``
anti-XSSI prefix stripped first:

* JSPB ``[[model, model, …]]`` (the real shape) or ``[model, …]``, where a model
  is a list: ``[0]`` ``"models/<id>"``, ``[3]`` display name, ``[4]``
  description, ``[5]`` input token limit, ``[6]`` output token limit, ``[9]``
  default top_p (clamped to [0, 1]);
* defensive dict shapes: a list of dicts, ``{"data": […]}`` or
  ``{"models": […]}``, each dict naming the id as ``id``/``model_id``/``modelId``
  (or ``name: "models/<id>"``), the display name as ``displayName``/
  ``display_name``/``name``, the output limit as ``maxOutputTokens``/
  ``defaultMaxOutputTokens``/``outputTokenLimit``, top_p as ``topP``/
  ``defaultTopP`` and temperature as ``temperature``/``defaultTemperature``.

Choices: token limits may be ints or digit strings (JSPB int64); the JSPB
temperature is not read (always 1.0, docs/aistudio.md §4.8); a missing description stays
``""`` (the reference shows ``"N/A"``; rendering is the API's business); a
missing display name becomes the id with ``-`` → space in Title Case;
duplicate ids keep the first entry; the result is sorted by lower-cased
display name, then id. An empty result is an empty list: the API decides on a
placeholder.

Exclusion file: one bare id per line, compared case-insensitively; blank
lines and ``#`` comments (whole-line or trailing) ignored; a ``models/``
prefix is allowed; ``*`` matches any run of characters (no other glob syntax).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from typing import Any

from browser_worker.mapping.thinking import family
from shared.protocol import ModelInfo

log = logging.getLogger(__name__)

XSSI_PREFIX = ")]}'"


def load_excluded_models(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The exclusion patterns in the file at ``path``; none when the file does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_excluded_models(handle.read())
    except FileNotFoundError:
        return ()


def parse_excluded_models(text: str) -> tuple[str, ...]:
    """Exclusion patterns from the file's text (comments and blank lines dropped, lower-cased)."""
    patterns = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry:
            patterns.append(entry.removeprefix("models/"))
    return tuple(dict.fromkeys(patterns))


def is_excluded(model_id: str, patterns: Iterable[str]) -> bool:
    """True when the bare ``model_id`` matches one of the exclusion patterns."""
    bare = model_id.strip().lower().rsplit("/", 1)[-1]
    return any(_pattern(pattern).fullmatch(bare) for pattern in patterns)


def parse_list_models(body: Any, *, excluded: Iterable[str] = ()) -> list[ModelInfo]:
    """The models in a ListModels body, excluded ones left out, sorted by display name."""
    data = _load(body)
    patterns = tuple(excluded)
    models: dict[str, ModelInfo] = {}
    for entry in _entries(data):
        info = _from_list(entry) if isinstance(entry, list) else _from_dict(entry)
        if info is None or info.id in models or is_excluded(info.id, patterns):
            continue
        models[info.id] = info
    return sorted(models.values(), key=lambda info: (info.display_name.lower(), info.id))


def display_name_for(model_id: str) -> str:
    """Fallback display name: ``gemini-2.5-pro`` → ``Gemini 2.5 Pro``."""
    return model_id.replace("-", " ").title()


def _pattern(pattern: str) -> re.Pattern[str]:
    """A regex for one exclusion pattern, where only ``*`` is special."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def _load(body: Any) -> Any:
    """Parsed JSON from text/bytes (XSSI prefix stripped) or the object itself."""
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8-sig")
    if not isinstance(body, str):
        return body
    text = body.strip()
    if text.startswith(XSSI_PREFIX):
        text = text[len(XSSI_PREFIX) :].lstrip()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"ListModels body is not JSON: {exc}") from None


def _entries(data: Any) -> list[Any]:
    """The model entries (lists or dicts) of any accepted body shape."""
    if isinstance(data, dict):
        for key in ("models", "data"):
            if isinstance(data.get(key), list):
                return _entries(data[key])
        return []
    if not isinstance(data, list) or not data:
        return []
    first = data[0]
    if isinstance(first, list) and first and isinstance(first[0], (list, dict)):
        return [entry for entry in first if isinstance(entry, (list, dict))]
    return [entry for entry in data if isinstance(entry, (list, dict))]


def _from_list(entry: list[Any]) -> ModelInfo | None:
    """A ``ModelInfo`` from one JSPB model list, or None without a usable name."""
    path = entry[0] if entry and isinstance(entry[0], str) else ""
    model_id = path.rsplit("/", 1)[-1].strip()
    if not model_id:
        return None
    display = _at(entry, 3)
    description = _at(entry, 4)
    return ModelInfo(
        id=model_id,
        display_name=display.strip()
        if isinstance(display, str) and display.strip()
        else display_name_for(model_id),
        description=description if isinstance(description, str) else "",
        raw_model_path=path,
        input_token_limit=_limit(_at(entry, 5)),
        output_token_limit=_limit(_at(entry, 6)),
        default_top_p=_clamped(_at(entry, 9), 1.0, model_id, "top_p"),
        thinking=family(model_id),
    )


def _from_dict(entry: dict[str, Any]) -> ModelInfo | None:
    """A ``ModelInfo`` from one defensive dict entry, or None without an id."""
    name: str = entry["name"] if isinstance(entry.get("name"), str) else ""
    raw_id = _first(entry, "id", "model_id", "modelId")
    if not isinstance(raw_id, str) or not raw_id.strip():
        raw_id = name if name.startswith("models/") else ""
    model_id = raw_id.strip().rsplit("/", 1)[-1]
    if not model_id:
        return None
    display = _first(entry, "displayName", "display_name")
    if not isinstance(display, str) or not display.strip():
        display = name if name and not name.startswith("models/") else ""
    temperature = _clamped(_first(entry, "temperature", "defaultTemperature"), 2.0, model_id, "temperature")
    description = entry.get("description")
    return ModelInfo(
        id=model_id,
        display_name=display.strip() or display_name_for(model_id),
        description=description if isinstance(description, str) else "",
        raw_model_path=name if name.startswith("models/") else f"models/{model_id}",
        input_token_limit=_limit(_first(entry, "inputTokenLimit", "input_token_limit")),
        output_token_limit=_limit(
            _first(entry, "maxOutputTokens", "defaultMaxOutputTokens", "outputTokenLimit")
        ),
        default_temperature=1.0 if temperature is None else temperature,
        default_top_p=_clamped(_first(entry, "topP", "defaultTopP"), 1.0, model_id, "top_p"),
        thinking=family(model_id),
    )


def _at(entry: list[Any], index: int) -> Any:
    """``entry[index]`` or None when the list is shorter."""
    return entry[index] if len(entry) > index else None


def _first(entry: dict[str, Any], *keys: str) -> Any:
    """The value of the first key present and not None."""
    for key in keys:
        if entry.get(key) is not None:
            return entry[key]
    return None


def _limit(value: Any) -> int | None:
    """A positive token limit from an int or a digit string, else None."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _clamped(value: Any, upper: float, model_id: str, what: str) -> float | None:
    """A number clamped to [0, upper] (warning when clamped), or None when not a number."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    clamped = min(max(float(value), 0.0), upper)
    if clamped != value:
        log.warning("model %s: default %s %r clamped to %s", model_id, what, value, clamped)
    return clamped
