"""OpenAI ``tools`` → AI Studio function declarations (docs/aistudio.md §2.7).

Pure. The function-declarations dialog accepts only a whitelist of schema keys
and answers anything else with "Unknown key", so every schema is rewritten:

* only ``ALLOWED_KEYS`` survive, at every depth (property *names* are kept);
* types are lower-case; ``["T", "null"]`` → ``T`` + ``nullable: true``; a type
  list with several non-null types keeps the first; unknown types are dropped;
  a missing type is inferred from ``properties`` (object), ``items`` (array) or
  an all-string ``enum`` (string);
* ``const`` → ``enum: [v]``;
* ``enum`` is kept **only on string schemas** (AI Studio enums are strings):
  non-string values in a string enum are JSON-stringified (``1`` → ``"1"``,
  ``true`` → ``"true"``), ``null`` values become ``nullable: true``, and an
  enum on a number/integer/boolean/object/array schema is dropped;
* ``anyOf``/``oneOf`` → the first non-null branch, ``nullable`` when a null
  branch existed; ``allOf`` → all non-null branches merged (properties and
  ``required`` united, otherwise the first branch wins), which equals "first
  branch" in the common one-branch case. Keys beside the combinator (e.g.
  ``description``) override the branch's;
* ``$ref`` (JSON pointers into the root schema: ``#/$defs/X``,
  ``#/definitions/X``, …) is resolved inline, keys beside it overriding the
  target's; a cycle, more than ``MAX_REF_DEPTH`` nested refs or an unresolvable
  ref becomes ``{"type": "object"}``;
* ``exclusiveMinimum``/``exclusiveMaximum`` numbers → ``minimum``/``maximum``
  (±1 for integer schemas with integer bounds); the draft-4 boolean form
  tightens an integer ``minimum``/``maximum`` by one;
* ``required`` and ``propertyOrdering`` are filtered to existing properties;
* a boolean schema ``true`` becomes ``{}``.

``to_declarations`` skips non-function tools and Google Search tools, and
omits ``parameters`` when the function takes none (an object without
properties), since an empty object schema is not useful to the dialog.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

ALLOWED_KEYS = (
    "type",
    "format",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "items",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "propertyOrdering",
)
TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
COUNT_KEYS = ("maxItems", "minItems", "minProperties", "maxProperties", "minLength", "maxLength")
COMBINATORS = ("anyOf", "oneOf", "allOf")
#: Nested ``$ref`` expansions allowed along one path before cutting to an object.
MAX_REF_DEPTH = 8
#: Schema nesting beyond which a subtree is cut to an object.
MAX_DEPTH = 48
CUT = {"type": "object"}
GOOGLE_SEARCH_NAMES = frozenset({"googleSearch", "google_search"})


def to_declarations(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """``[{"name", "description", "parameters"?}]`` for the function tools (Google Search excluded)."""
    declarations = []
    for tool in tools or []:
        if is_google_search_tool(tool):
            continue
        function = function_of(tool)
        if function is None:
            continue
        declaration: dict[str, Any] = {
            "name": function["name"],
            "description": function.get("description")
            if isinstance(function.get("description"), str)
            else "",
        }
        parameters = function.get("parameters")
        if isinstance(parameters, dict):
            cleaned = clean_schema(parameters)
            if not (cleaned.get("type") in (None, "object") and not cleaned.get("properties")):
                declaration["parameters"] = cleaned
        declarations.append(declaration)
    return declarations


def clean_schema(schema: Any) -> dict[str, Any]:
    """A JSON schema rewritten to the AI Studio whitelist (see the module docstring)."""
    return _finalize(_SchemaCleaner(schema).clean(schema, (), 0))


def declarations_digest(declarations: list[dict[str, Any]] | dict[str, Any]) -> str:
    """Stable sha256 hex of the declarations' (or a response schema's) canonical JSON (sorted keys,
    no spaces): what a dialog was last saved with."""
    canonical = json.dumps(declarations, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def declarations_json(declarations: list[dict[str, Any]]) -> str:
    """The text pasted into the dialog's code editor: a JSON array, indent 2."""
    return json.dumps(declarations, indent=2, ensure_ascii=False)


def is_google_search_tool(tool: Any) -> bool:
    """True for the google_search / google_search_retrieval tool shapes or a function named googleSearch."""
    if not isinstance(tool, dict):
        return False
    if tool.get("type") == "google_search" or "google_search" in tool or "google_search_retrieval" in tool:
        return True
    function = function_of(tool)
    return function is not None and function["name"] in GOOGLE_SEARCH_NAMES


def function_of(tool: Any) -> dict[str, Any] | None:
    """The function object of an OpenAI tool (or a bare function dict); None for other tools."""
    if not isinstance(tool, dict):
        return None
    function = tool.get("function")
    if isinstance(function, dict) and isinstance(function.get("name"), str) and function["name"]:
        return function
    if tool.get("type", "function") == "function" and isinstance(tool.get("name"), str) and tool["name"]:
        return tool
    return None


class _SchemaCleaner:
    """Rewrites one schema tree; holds the root for ``$ref`` resolution."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def clean(self, node: Any, refs: tuple[str, ...], depth: int) -> dict[str, Any]:
        """The cleaned form of ``node``; ``refs`` are the refs being expanded above it."""
        if not isinstance(node, dict):
            return {}
        if depth > MAX_DEPTH:
            return dict(CUT)
        ref = node.get("$ref")
        if isinstance(ref, str):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            target = self.resolve(ref) if ref not in refs and len(refs) < MAX_REF_DEPTH else None
            base = dict(CUT) if target is None else self.clean(target, (*refs, ref), depth + 1)
            return _overlay(base, self.clean(rest, refs, depth + 1))
        for key in COMBINATORS:
            branches = node.get(key)
            if isinstance(branches, list):
                rest = {k: v for k, v in node.items() if k != key}
                return self.combine(key, branches, rest, refs, depth)
        return self.plain(node, refs, depth)

    def combine(
        self, key: str, branches: list[Any], rest: dict[str, Any], refs: tuple[str, ...], depth: int
    ) -> dict[str, Any]:
        """anyOf/oneOf: first non-null branch; allOf: all non-null branches merged; plus ``rest``."""
        real = [branch for branch in branches if not _is_null_schema(branch)]
        cleaned = [self.clean(branch, refs, depth + 1) for branch in (real if key == "allOf" else real[:1])]
        base: dict[str, Any] = {}
        for branch in cleaned:
            base = _merge_all_of(base, branch)
        result = _overlay(base, self.clean(rest, refs, depth + 1))
        if len(real) < len(branches):
            result["nullable"] = True
        return _ordered(result)

    def plain(self, node: dict[str, Any], refs: tuple[str, ...], depth: int) -> dict[str, Any]:
        """Clean a node without ``$ref`` or combinators."""
        out: dict[str, Any] = {}
        nullable = node.get("nullable") is True
        kind, type_nullable = _read_type(node.get("type"))
        nullable = nullable or type_nullable

        for key in ("format", "description", "pattern"):
            if isinstance(node.get(key), str):
                out[key] = node[key]
        for key in COUNT_KEYS:
            count = _count(node.get(key))
            if count is not None:
                out[key] = count

        properties = node.get("properties")
        if isinstance(properties, dict):
            out["properties"] = {
                str(name): self.clean(sub, refs, depth + 1) for name, sub in properties.items()
            }
        items = node.get("items")
        if isinstance(items, list):
            items = items[0] if items else None
        if isinstance(items, dict) or items is True:
            out["items"] = self.clean(items, refs, depth + 1)

        if kind is None:
            if "properties" in out:
                kind = "object"
            elif "items" in out:
                kind = "array"

        enum = node.get("enum")
        if not isinstance(enum, list) and "const" in node:
            enum = [node["const"]]
        if isinstance(enum, list):
            values = [value for value in enum if value is not None]
            nullable = nullable or len(values) < len(enum)
            if kind is None and values and all(isinstance(value, str) for value in values):
                kind = "string"
            if kind == "string" and values:
                out["enum"] = [value if isinstance(value, str) else json.dumps(value) for value in values]

        _bounds(node, kind, out)

        for key in ("required", "propertyOrdering"):
            listed = node.get(key)
            if isinstance(listed, list):
                # Filtered against the properties in ``_finalize``, after merges.
                out[key] = list(dict.fromkeys(name for name in listed if isinstance(name, str)))
        if kind is not None:
            out["type"] = kind
        if nullable:
            out["nullable"] = True
        return _ordered(out)

    def resolve(self, ref: str) -> Any:
        """The node a local JSON pointer (``#/…``) names in the root, or None."""
        if not ref.startswith("#"):
            return None
        node = self.root
        for raw in ref[1:].lstrip("/").split("/") if ref not in ("#", "#/") else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node if isinstance(node, dict) else None


def _read_type(value: Any) -> tuple[str | None, bool]:
    """(lower-case type or None, whether null was allowed) from a ``type`` value."""
    names = value if isinstance(value, list) else [value]
    lowered = [name.lower() for name in names if isinstance(name, str)]
    nullable = "null" in lowered
    real = [name for name in lowered if name in TYPES]
    return (real[0] if real else None), nullable


def _is_null_schema(branch: Any) -> bool:
    """True for ``{"type": "null"}`` (or ``["null"]``) branches."""
    if not isinstance(branch, dict):
        return False
    kind = branch.get("type")
    return kind == "null" or (isinstance(kind, list) and kind == ["null"])


def _number(value: Any) -> int | float | None:
    """A finite int/float (not bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _count(value: Any) -> int | None:
    """A non-negative integer count (int-valued floats accepted), else None."""
    number = _number(value)
    if number is None or number < 0 or number != int(number):
        return None
    return int(number)


def _bounds(node: dict[str, Any], kind: str | None, out: dict[str, Any]) -> None:
    """``minimum``/``maximum`` from the inclusive and exclusive bounds."""
    integer = kind == "integer"
    for inclusive, exclusive, step, tighter in (
        ("minimum", "exclusiveMinimum", 1, max),
        ("maximum", "exclusiveMaximum", -1, min),
    ):
        bound = _number(node.get(inclusive))
        strict = node.get(exclusive)
        if strict is True and bound is not None and integer and isinstance(bound, int):
            bound += step
        strict_bound = _number(strict)
        if strict_bound is not None:
            if integer and isinstance(strict_bound, int):
                strict_bound += step
            bound = strict_bound if bound is None else tighter(bound, strict_bound)
        if bound is not None:
            out[inclusive] = bound


def _overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``top``'s keys winning; an inferred-only ``type`` in ``top`` never hides base's."""
    result = dict(base)
    for key, value in top.items():
        if key == "properties" and isinstance(result.get("properties"), dict):
            result["properties"] = {**result["properties"], **value}
        elif key in ("required", "propertyOrdering") and isinstance(result.get(key), list):
            result[key] = list(dict.fromkeys([*result[key], *value]))
        else:
            result[key] = value
    return _ordered(result)


def _merge_all_of(base: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any]:
    """Merge one cleaned ``allOf`` branch into the accumulated schema; earlier branches win."""
    result = dict(base)
    for key, value in branch.items():
        if key == "properties" and isinstance(result.get("properties"), dict):
            earlier = result["properties"]
            result["properties"] = {**earlier, **{k: v for k, v in value.items() if k not in earlier}}
        elif key in ("required", "propertyOrdering") and isinstance(result.get(key), list):
            result[key] = list(dict.fromkeys([*result[key], *value]))
        elif key not in result:
            result[key] = value
    return result


def _finalize(schema: dict[str, Any]) -> dict[str, Any]:
    """Last pass: ``required``/``propertyOrdering`` only naming existing properties, enums only on strings."""
    out = dict(schema)
    properties = out.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {name: _finalize(sub) for name, sub in properties.items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _finalize(out["items"])
    for key in ("required", "propertyOrdering"):
        if key in out:
            kept = [name for name in out[key] if isinstance(properties, dict) and name in properties]
            if kept:
                out[key] = kept
            else:
                del out[key]
    if "enum" in out and (out.get("type") != "string" or not out["enum"]):
        del out["enum"]
    return out


def _ordered(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema's keys in ``ALLOWED_KEYS`` order (stable output, readable dialog text)."""
    return {key: schema[key] for key in ALLOWED_KEYS if key in schema}
