"""OpenAI tools → AI Studio function declarations (docs/aistudio.md §2.7)."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from browser_worker.mapping.declarations import (
    ALLOWED_KEYS,
    MAX_DEPTH,
    MAX_REF_DEPTH,
    clean_schema,
    declarations_digest,
    declarations_json,
    is_google_search_tool,
    to_declarations,
)

REJECTED_KEYS = [
    "title",
    "default",
    "additionalProperties",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "$schema",
    "$id",
    "$ref",
    "$defs",
    "definitions",
    "examples",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "uniqueItems",
    "strict",
]


def _schema_nodes(schema):
    """Every schema node in a cleaned tree (property names are not schema keys)."""
    yield schema
    for sub in schema.get("properties", {}).values():
        yield from _schema_nodes(sub)
    if isinstance(schema.get("items"), dict):
        yield from _schema_nodes(schema["items"])


def test_whitelisted_keys_survive_unchanged():
    """Every whitelisted key with a sensible value passes through."""
    schema = {
        "type": "object",
        "description": "d",
        "minProperties": 1,
        "maxProperties": 3,
        "properties": {
            "s": {"type": "string", "format": "date-time", "minLength": 1, "maxLength": 9, "pattern": "^a"},
            "n": {"type": "number", "minimum": 0.5, "maximum": 9.5, "nullable": True},
            "l": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 4},
            "e": {"type": "string", "enum": ["x", "y"]},
        },
        "required": ["s"],
        "propertyOrdering": ["s", "n", "l", "e"],
    }
    assert clean_schema(schema) == schema


@pytest.mark.parametrize("key", REJECTED_KEYS)
def test_rejected_key_is_removed(key):
    """Each key the dialog rejects is gone from the output."""
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, key: {"type": "string"}}
    cleaned = clean_schema(schema)
    assert key not in cleaned
    assert set(cleaned) <= set(ALLOWED_KEYS)


def test_types_are_lower_case():
    """``STRING``/``Object`` become ``string``/``object``."""
    cleaned = clean_schema({"type": "OBJECT", "properties": {"a": {"type": "String"}}})
    assert cleaned == {"type": "object", "properties": {"a": {"type": "string"}}}


def test_const_becomes_single_value_enum():
    """``const: v`` → ``enum: [v]`` with a string type."""
    assert clean_schema({"const": "fast"}) == {"type": "string", "enum": ["fast"]}


def test_type_with_null_becomes_nullable():
    """``["integer", "null"]`` → ``integer`` + ``nullable``."""
    assert clean_schema({"type": ["integer", "null"]}) == {"type": "integer", "nullable": True}
    assert clean_schema({"type": ["null", "string", "number"]}) == {"type": "string", "nullable": True}


@pytest.mark.parametrize("combinator", ["anyOf", "oneOf"])
def test_any_of_takes_first_non_null_branch(combinator):
    """The first non-null branch wins; a null branch adds ``nullable``; outer keys override."""
    schema = {
        "description": "outer",
        combinator: [{"type": "null"}, {"type": "string", "description": "inner"}, {"type": "integer"}],
    }
    assert clean_schema(schema) == {"type": "string", "description": "outer", "nullable": True}


def test_any_of_without_null_branch_is_not_nullable():
    """No null branch, no ``nullable``."""
    assert clean_schema({"anyOf": [{"type": "integer"}, {"type": "string"}]}) == {"type": "integer"}


def test_all_of_merges_branches():
    """allOf branches are merged: properties and required united, first branch wins elsewhere."""
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"type": "string", "properties": {"b": {"type": "boolean"}}, "required": ["b"]},
        ]
    }
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}},
        "required": ["a", "b"],
    }


def test_refs_are_resolved_inline_with_sibling_keys():
    """``$ref`` into ``$defs``/``definitions`` is inlined; a sibling description wins."""
    schema = {
        "type": "object",
        "$defs": {"Unit": {"type": "string", "enum": ["c", "f"], "description": "unit"}},
        "definitions": {"Day": {"type": "integer", "minimum": 1}},
        "properties": {
            "unit": {"$ref": "#/$defs/Unit", "description": "temperature unit"},
            "day": {"$ref": "#/definitions/Day"},
        },
    }
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "description": "temperature unit", "enum": ["c", "f"]},
            "day": {"type": "integer", "minimum": 1},
        },
    }


def test_pydantic_style_optional_ref():
    """``anyOf: [{$ref}, {type: null}]`` resolves the ref and marks it nullable."""
    schema = {
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
        "type": "object",
        "properties": {"p": {"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}], "default": None}},
    }
    assert clean_schema(schema)["properties"]["p"] == {
        "type": "object",
        "nullable": True,
        "properties": {"x": {"type": "number"}},
        "required": ["x"],
    }


def test_recursive_ref_is_cut_to_object():
    """A cycle through ``$ref`` ends in ``{"type": "object"}``."""
    schema = {
        "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node",
    }
    assert clean_schema(schema) == {"type": "object", "properties": {"child": {"type": "object"}}}


def test_unresolvable_ref_becomes_object():
    """A ref to nowhere (or to another document) becomes an object."""
    assert clean_schema({"$ref": "#/$defs/Missing"}) == {"type": "object"}
    assert clean_schema({"$ref": "other.json#/x"}) == {"type": "object"}


def test_deep_ref_chain_is_bounded():
    """A long non-cyclic chain of refs is cut after ``MAX_REF_DEPTH`` expansions."""
    defs = {f"D{i}": {"$ref": f"#/$defs/D{i + 1}"} for i in range(50)}
    defs["D50"] = {"type": "string"}
    assert clean_schema({"$defs": defs, "$ref": "#/$defs/D0"}) == {"type": "object"}


def test_exclusive_bounds_become_inclusive():
    """Exclusive number bounds map to minimum/maximum; integers step by one."""
    assert clean_schema({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1.5}) == {
        "type": "number",
        "minimum": 0,
        "maximum": 1.5,
    }
    assert clean_schema({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10}) == {
        "type": "integer",
        "minimum": 1,
        "maximum": 9,
    }
    assert clean_schema({"type": "integer", "minimum": 5, "exclusiveMinimum": 2}) == {
        "type": "integer",
        "minimum": 5,
    }
    assert clean_schema({"type": "integer", "minimum": 0, "exclusiveMinimum": True}) == {
        "type": "integer",
        "minimum": 1,
    }


def test_required_is_filtered_to_existing_properties():
    """Names in ``required`` without a property are dropped; an empty list disappears."""
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b", "a"]}
    assert clean_schema(schema)["required"] == ["a"]
    assert "required" not in clean_schema({"type": "object", "required": ["x"]})


def test_enum_is_kept_only_on_strings():
    """AI Studio enums are strings: non-string enums are dropped, mixed string enums stringified."""
    assert clean_schema({"type": "integer", "enum": [1, 2, 3]}) == {"type": "integer"}
    assert clean_schema({"type": "boolean", "const": True}) == {"type": "boolean"}
    assert clean_schema({"type": "string", "enum": ["a", 1, True, None]}) == {
        "type": "string",
        "nullable": True,
        "enum": ["a", "1", "true"],
    }
    assert clean_schema({"enum": [1, 2]}) == {}


def test_missing_type_is_inferred():
    """Properties imply object, items imply array, string enums imply string."""
    assert clean_schema({"properties": {"a": {}}}) == {"type": "object", "properties": {"a": {}}}
    assert clean_schema({"items": {"type": "string"}}) == {"type": "array", "items": {"type": "string"}}


def test_tuple_items_and_boolean_schemas():
    """List-form ``items`` keeps its first schema; ``true`` schemas become ``{}``."""
    assert clean_schema({"type": "array", "items": [{"type": "string"}, {"type": "integer"}]}) == {
        "type": "array",
        "items": {"type": "string"},
    }
    assert clean_schema({"type": "object", "properties": {"any": True}}) == {
        "type": "object",
        "properties": {"any": {}},
    }


def test_property_names_that_look_like_keywords_are_kept():
    """A property called ``title`` or ``$ref`` is a name, not a schema key."""
    schema = {"type": "object", "properties": {"title": {"type": "string"}, "default": {"type": "integer"}}}
    assert clean_schema(schema) == schema


CLINE_STYLE_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "write_to_file",
            "description": "Write content to a file at the specified path.",
            "strict": True,
            "parameters": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "title": "WriteToFileArgs",
                "additionalProperties": False,
                "properties": {
                    "path": {
                        "type": "string",
                        "description": "Path relative to the workspace",
                        "examples": ["a.txt"],
                    },
                    "content": {"type": "string"},
                    "line_count": {"type": ["integer", "null"], "exclusiveMinimum": 0, "default": None},
                    "mode": {"anyOf": [{"const": "overwrite"}, {"const": "append"}], "default": "overwrite"},
                    "options": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "properties": {
                            "encoding": {"type": "string", "enum": ["utf-8", "latin-1"], "default": "utf-8"},
                            "backup": {"type": "boolean", "default": False},
                        },
                    },
                    "tags": {"type": "array", "uniqueItems": True, "items": {"$ref": "#/definitions/Tag"}},
                },
                "required": ["path", "content", "line_count"],
                "definitions": {"Tag": {"type": "string", "title": "Tag", "maxLength": 32}},
            },
        },
    },
    {
        "type": "function",
        "function": {"name": "attempt_completion", "description": "Finish.", "parameters": {}},
    },
    {"type": "function", "function": {"name": "googleSearch", "parameters": {"type": "object"}}},
    {"type": "google_search"},
]


def test_cline_style_tools_convert_to_clean_declarations():
    """A realistic agent tool list converts to dialog-safe declarations."""
    assert to_declarations(CLINE_STYLE_TOOLS) == [
        {
            "name": "write_to_file",
            "description": "Write content to a file at the specified path.",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Path relative to the workspace"},
                    "content": {"type": "string"},
                    "line_count": {"type": "integer", "nullable": True, "minimum": 1},
                    "mode": {"type": "string", "enum": ["overwrite"]},
                    "options": {
                        "type": "object",
                        "properties": {
                            "encoding": {"type": "string", "enum": ["utf-8", "latin-1"]},
                            "backup": {"type": "boolean"},
                        },
                    },
                    "tags": {"type": "array", "items": {"type": "string", "maxLength": 32}},
                },
                "required": ["path", "content", "line_count"],
            },
        },
        {"name": "attempt_completion", "description": "Finish."},
    ]


def test_declarations_json_is_an_indented_array():
    """The dialog text is a JSON array with indent 2."""
    text = declarations_json(to_declarations(CLINE_STYLE_TOOLS))
    assert text.startswith('[\n  {\n    "name": "write_to_file"')
    assert json.loads(text) == to_declarations(CLINE_STYLE_TOOLS)


def test_to_declarations_handles_missing_and_bare_tools():
    """None gives []; a bare function dict is accepted; missing description is empty."""
    assert to_declarations(None) == []
    assert to_declarations(
        [{"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}]
    ) == [
        {
            "name": "f",
            "description": "",
            "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
        }
    ]


def test_digest_is_stable_and_sensitive():
    """Same declarations (any key order) → same digest; any change → a different one."""
    first = to_declarations(CLINE_STYLE_TOOLS)
    reordered = json.loads(json.dumps(first, sort_keys=True))
    assert declarations_digest(first) == declarations_digest(reordered)
    assert len(declarations_digest(first)) == 64
    changed = json.loads(json.dumps(first))
    changed[1]["description"] = "Done."
    assert declarations_digest(changed) != declarations_digest(first)
    assert declarations_digest([]) != declarations_digest(first)


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        ({"type": "google_search"}, True),
        ({"google_search": {}}, True),
        ({"google_search_retrieval": {"dynamic_retrieval_config": {}}}, True),
        ({"type": "function", "function": {"name": "googleSearch"}}, True),
        ({"type": "function", "function": {"name": "google_search"}}, True),
        ({"type": "function", "function": {"name": "web_search"}}, False),
        ({"type": "code_interpreter"}, False),
        ("google_search", False),
    ],
)
def test_google_search_tool_detection(tool, expected):
    """The Google Search tool shapes are recognised, ordinary functions are not."""
    assert is_google_search_tool(tool) is expected


_keys = st.sampled_from([*ALLOWED_KEYS, *REJECTED_KEYS, "x-extra", "Type", "$comment"])
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["string", "NUMBER", "integer", "null", "object", "array", "boolean", "#/$defs/a", "#", "a"]
    ),
)
_json_like = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(_keys, st.sampled_from(["a", "b", "$defs"])), children, max_size=5),
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(_json_like)
def test_output_never_contains_a_non_whitelisted_key(schema):
    """Whatever goes in, every schema node that comes out uses whitelisted keys only."""
    cleaned = clean_schema(schema)
    json.dumps(cleaned, allow_nan=True)
    for node in _schema_nodes(cleaned):
        assert set(node) <= set(ALLOWED_KEYS)
        assert node.get("type", "string") in {"string", "number", "integer", "boolean", "array", "object"}
        if "enum" in node:
            assert node["type"] == "string" and all(isinstance(v, str) for v in node["enum"])
        for key in ("required", "propertyOrdering"):
            if key in node:
                assert set(node[key]) <= set(node["properties"])


def test_keys_beside_a_ref_are_merged_with_its_target():
    """Sibling ``properties``/``required``/``propertyOrdering`` unite with the target's; other keys win."""
    defs = {
        "A": {
            "type": "object",
            "description": "target",
            "properties": {"a": {"type": "string"}},
            "required": ["a"],
            "propertyOrdering": ["a"],
        },
        "B": {"type": "integer"},
        "Plain": {"type": "object", "properties": {"a": {"type": "string"}}},
    }
    sibling = {
        "description": "beside",
        "properties": {"b": {"$ref": "#/$defs/B"}},
        "required": ["b"],
        "propertyOrdering": ["b"],
    }
    assert clean_schema({"$defs": defs, "$ref": "#/$defs/A", **sibling}) == {
        "type": "object",
        "description": "beside",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "propertyOrdering": ["a", "b"],
    }
    assert clean_schema({"$defs": defs, "$ref": "#/$defs/Plain", **sibling}) == {
        "type": "object",
        "description": "beside",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["b"],
        "propertyOrdering": ["b"],
    }


def test_json_pointer_refs_follow_escapes_and_list_indices():
    """``~1`` is ``/``, ``~0`` is ``~``, digits index lists; anything unresolvable is an object."""
    root = {
        "Xdefs": {"a/b~c": {"type": "string"}, "list": [{"type": "integer"}, {"type": "boolean"}]},
        "properties": {
            "escaped": {"$ref": "#/Xdefs/a~1b~0c"},
            "first": {"$ref": "#/Xdefs/list/0"},
            "second": {"$ref": "#/Xdefs/list/1"},
            "past_end": {"$ref": "#/Xdefs/list/2"},
            "not_an_index": {"$ref": "#/Xdefs/list/x"},
            "not_a_schema": {"$ref": "#/Xdefs/a~1b~0c/type"},
            "itself": {"$ref": "#"},
            "itself_slash": {"$ref": "#/"},
        },
    }
    properties = clean_schema(root)["properties"]
    assert properties["escaped"] == {"type": "string"}
    assert properties["first"] == {"type": "integer"}
    assert properties["second"] == {"type": "boolean"}
    for name in ("past_end", "not_an_index", "not_a_schema"):
        assert properties[name] == {"type": "object"}, name
    # "#" is the root itself: expanded once, then its own "#" is a cycle cut to an object.
    for name in ("itself", "itself_slash"):
        assert properties[name]["type"] == "object"
        assert properties[name]["properties"]["escaped"] == {"type": "string"}
        assert properties[name]["properties"][name] == {"type": "object"}


def test_null_branches_are_recognised_in_every_form():
    """``{"type": "null"}`` and ``{"type": ["null"]}`` are null branches; ``true`` and a nullable type are not."""
    assert clean_schema({"anyOf": [{"type": ["null"]}, {"type": "string"}]}) == {
        "type": "string",
        "nullable": True,
    }
    assert clean_schema({"anyOf": [{"type": ["string", "null"]}, {"type": "integer"}]}) == {
        "type": "string",
        "nullable": True,
    }
    assert clean_schema({"anyOf": [True, {"type": "string"}]}) == {}


def test_all_of_unites_property_ordering_and_drops_enums_on_non_strings():
    """allOf merges ``propertyOrdering``; an enum merged onto a non-string type is dropped."""
    merged = clean_schema(
        {
            "allOf": [
                {"properties": {"a": {"type": "string"}}, "propertyOrdering": ["a"]},
                {"properties": {"b": {"type": "string"}}, "propertyOrdering": ["b"]},
            ]
        }
    )
    assert merged["propertyOrdering"] == ["a", "b"]
    assert clean_schema({"allOf": [{"type": "integer"}, {"enum": ["a", "b"]}]}) == {"type": "integer"}


def test_counts_and_bounds_are_checked_exactly():
    """Counts are non-negative integers (0 kept); infinite bounds are dropped; draft-4 steps by one."""
    assert clean_schema({"type": "array", "minItems": 0, "maxItems": -1}) == {"type": "array", "minItems": 0}
    assert clean_schema({"type": "string", "minLength": 1.5, "maxLength": 2.0}) == {
        "type": "string",
        "maxLength": 2,
    }
    assert clean_schema({"type": "number", "maximum": float("inf"), "minimum": -2.5}) == {
        "type": "number",
        "minimum": -2.5,
    }
    assert clean_schema(
        {"type": "integer", "minimum": 5, "exclusiveMinimum": True, "maximum": 9, "exclusiveMaximum": True}
    ) == {"type": "integer", "minimum": 6, "maximum": 8}


def test_empty_or_false_items_give_no_items():
    """``items: []`` and ``items: false`` say nothing usable about the elements."""
    assert clean_schema({"type": "array", "items": []}) == {"type": "array"}
    assert clean_schema({"type": "array", "items": False}) == {"type": "array"}
    assert clean_schema({"items": False}) == {}


def _chain(levels, leaf):
    """``levels`` nested objects, each holding the next under property ``p``; ``leaf`` at the bottom."""
    node = leaf
    for _ in range(levels):
        node = {"type": "object", "properties": {"p": node}}
    return node


def _leaf(schema):
    while "properties" in schema:
        schema = schema["properties"]["p"]
    return schema


@pytest.mark.parametrize(
    ("wrap", "extra"),
    [
        (lambda chain: chain, 0),
        (lambda chain: {"type": "array", "items": chain}, 1),
        (lambda chain: {"anyOf": [chain]}, 1),
        (lambda chain: {"allOf": [chain]}, 1),
        (lambda chain: {"$defs": {"C": chain}, "$ref": "#/$defs/C"}, 1),
        (lambda chain: {"anyOf": [{"type": "object"}], "properties": {"p": chain}}, 2),
        (
            lambda chain: {
                "$defs": {"O": {"type": "object"}},
                "$ref": "#/$defs/O",
                "properties": {"p": chain},
            },
            2,
        ),
    ],
)
def test_nesting_is_cut_exactly_beyond_max_depth(wrap, extra):
    """A node at depth ``MAX_DEPTH`` is kept, one deeper is cut to an object (every way of nesting counts one)."""
    kept = clean_schema(wrap(_chain(MAX_DEPTH - extra, {"type": "string"})))
    cut = clean_schema(wrap(_chain(MAX_DEPTH - extra + 1, {"type": "string"})))
    inner = (lambda s: s["items"]) if extra == 1 and "items" in kept else (lambda s: s)
    assert _leaf(inner(kept)) == {"type": "string"}
    assert _leaf(inner(cut)) == {"type": "object"}


@pytest.mark.parametrize(("refs", "expected"), [(MAX_REF_DEPTH, "string"), (MAX_REF_DEPTH + 1, "object")])
def test_ref_chain_is_cut_exactly_beyond_max_ref_depth(refs, expected):
    """``MAX_REF_DEPTH`` nested refs are expanded; one more is cut to an object."""
    defs = {f"D{i}": {"$ref": f"#/$defs/D{i + 1}"} for i in range(refs - 1)}
    defs[f"D{refs - 1}"] = {"type": "string"}
    assert clean_schema({"$defs": defs, "$ref": "#/$defs/D0"}) == {"type": expected}


def test_to_declarations_skips_other_tools_and_keeps_going():
    """Google Search and non-function tools are skipped without ending the list; typed shapes decide."""
    function = {"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}
    assert to_declarations(
        [{"type": "google_search"}, {"type": "custom", "name": "c"}, {"type": "code_interpreter"}, function]
    ) == [{"name": "f", "description": "", "parameters": {"type": "string"}}]
    no_parameters = {
        "type": "function",
        "function": {"name": "g", "parameters": {"type": "object", "properties": {}}},
    }
    assert to_declarations([no_parameters]) == [{"name": "g", "description": ""}]


def test_digest_and_dialog_text_keep_non_ascii_text():
    """The digest hashes compact, sorted, UTF-8 JSON; the dialog text keeps non-ASCII characters as is."""
    declarations = [{"name": "f", "description": "Grüße"}]
    expected = hashlib.sha256('[{"description":"Grüße","name":"f"}]'.encode()).hexdigest()
    assert declarations_digest(declarations) == expected
    assert '"Grüße"' in declarations_json(declarations)


def test_any_of_ignores_every_branch_after_the_first():
    """anyOf/oneOf take the first non-null branch only; later branches add nothing."""
    branches = [{"type": "null"}, {"type": "string"}, {"type": "integer", "description": "later"}]
    for combinator in ("anyOf", "oneOf"):
        assert clean_schema({combinator: branches}) == {"type": "string", "nullable": True}


def test_property_ordering_names_only_existing_properties():
    """``propertyOrdering`` loses names that are not properties, like ``required``."""
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "propertyOrdering": ["a", "zzz"]}
    assert clean_schema(schema)["propertyOrdering"] == ["a"]


def test_keys_beside_a_combinator_resolve_their_own_refs():
    """Properties next to ``anyOf`` may use ``$ref`` like any other."""
    schema = {
        "$defs": {"B": {"type": "integer"}},
        "anyOf": [{"type": "object"}],
        "properties": {"b": {"$ref": "#/$defs/B"}},
    }
    assert clean_schema(schema) == {"type": "object", "properties": {"b": {"type": "integer"}}}
