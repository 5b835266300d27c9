"""Client JSON schemas (``response_format`` and tool parameters) checked before any generation.

``check_schema(schema, param, what)`` refuses with a 400 naming ``param``:
a schema that is not valid against its meta-schema, a ``$ref`` that does not
resolve inside the schema (no remote lookups: nothing is fetched), and a
``$ref`` loop, i.e. a chain of refs that comes back to itself without
descending into the instance (``{"$ref": "#"}``; ``a -> b -> a``), which no
validator can ever finish. A ref back to the root under ``properties`` or
``items`` is an ordinary recursive schema and is accepted. Type names are
taken in any case (``"STRING"``, as Gemini writes them, is ``"string"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema

from shared.errors import InvalidRequest

#: Keywords whose subschemas apply to the same instance (no descent): a ref cycle through them never ends.
IN_PLACE_LIST = ("allOf", "anyOf", "oneOf")
IN_PLACE_ONE = ("not", "if", "then", "else")


def check_schema(schema: Any, param: str, what: str) -> None:
    """Raise ``InvalidRequest`` (param ``param``) unless ``schema`` is usable; ``what`` names it in the text."""

    def refuse(reason: str) -> InvalidRequest:
        return InvalidRequest(f"Invalid JSON schema in {what}: {reason}", param=param, code="invalid_value")

    if not isinstance(schema, dict):
        raise refuse("a schema must be a JSON object.")
    schema = lower_case_types(schema)
    validator_cls = jsonschema.validators.validator_for(schema)
    try:
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise refuse(exc.message) from None
    spec = referencing.jsonschema.specification_with(
        validator_cls.META_SCHEMA.get("$schema", ""), default=referencing.jsonschema.DRAFT202012
    )
    resolver = referencing.Registry().with_resource("", spec.create_resource(schema)).resolver()
    for ref in _refs(schema):
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable:
            raise refuse(f"'$ref' {ref!r} does not resolve to a definition inside the schema.") from None
        except Exception:  # malformed pointers and the like
            raise refuse(f"'$ref' {ref!r} cannot be resolved.") from None
    loop = _ref_loop(schema, resolver)
    if loop:
        raise refuse(f"'$ref' loop {' -> '.join(loop)} never reaches a value.")


_TYPE_NAMES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})


def lower_case_types(node: Any) -> Any:
    """A copy with Gemini/OpenAPI's upper-case type names (``"STRING"``) in JSON Schema's lower case: the page's
    declarations accept them (the worker normalises them), so the check does not refuse them either."""
    if isinstance(node, list):
        return [lower_case_types(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: lower_case_types(v) for k, v in node.items()}
    kind = node.get("type")
    if isinstance(kind, str) and kind.lower() in _TYPE_NAMES:
        out["type"] = kind.lower()
    elif isinstance(kind, list):
        out["type"] = [t.lower() if isinstance(t, str) and t.lower() in _TYPE_NAMES else t for t in kind]
    return out


def _refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` string anywhere in the schema."""
    for sub in _subschemas(node):
        ref = sub.get("$ref")
        if isinstance(ref, str):
            yield ref


def _in_place_refs(node: Any) -> Iterator[str]:
    """The refs that apply to the same instance as ``node`` (its own, and those inside its combinators)."""
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        yield ref
    for key in IN_PLACE_LIST:
        for branch in node.get(key) or []:
            yield from _in_place_refs(branch)
    for key in IN_PLACE_ONE:
        yield from _in_place_refs(node.get(key))


def _ref_loop(schema: dict[str, Any], resolver: Any) -> list[str]:
    """A ref chain that returns to a node already on it without descending, or [].

    ``resolver`` is a ``referencing`` Resolver (the class is not exported publicly)."""
    clear: set[int] = set()  # nodes whose chains are known to end

    def walk(node: Any, path: list[str], seen: list[int]) -> list[str]:
        for ref in _in_place_refs(node):
            target = resolver.lookup(ref).contents
            if id(target) in seen:
                return [*path, ref]
            if id(target) not in clear:
                found = walk(target, [*path, ref], [*seen, id(target)])
                if found:
                    return found
        clear.add(id(node))
        return []

    for start in _subschemas(schema):
        found = walk(start, [], [id(start)])
        if found:
            return found
    return []


def _subschemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in the schema (each is a possible start of a ref chain)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _subschemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _subschemas(value)
