"""No request inherits another request's page settings (issue 13, item 2).

The page keeps its run settings between chats (docs/aistudio.md §2.6), so each request must set every control it
depends on, also back to the default when it says nothing. The matrix runs request B after request A for
pairs of page state a request can set and checks, in the GenerateContent request the simulator
recorded, that each of them got exactly its own settings: model, thinking (toggle, budget, level),
temperature, top-P, max tokens, stop sequences, function declarations (on/off and their content),
structured output (on/off and its schema), Google Search, attachments and system instructions. URL
context cannot be asked for through the API (only ``ENABLE_URL_CONTEXT``), so it must simply stay off.

Every pair is two requests on the one shared stack; the variants of one dimension are paired both ways.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from aistudio_sim.stack import Stack
from tests.features.conftest import MODEL, last_request, make_client

#: A 1×1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
COLOR_SCHEMA = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
SIZE_SCHEMA = {"type": "object", "properties": {"size": {"type": "integer"}}, "required": ["size"]}
#: Two declarations with the same name and different content.
LOOKUP_CITY = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a city up.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
LOOKUP_CODE = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a postal code up.",
        "parameters": {"type": "object", "properties": {"code": {"type": "integer"}}, "required": ["code"]},
    },
}
OUTPUT_LIMIT = {"gemini-2.0-flash": 8192}
#: What a request that says nothing about thinking gets, per model (browser_worker/mapping/thinking.py).
THINKING_DEFAULT: dict[str, dict[str, Any] | None] = {
    "gemini-2.5-flash": {"include_thoughts": False, "budget": 0, "level": None},
    "gemini-2.5-pro": {"include_thoughts": True, "budget": None, "level": None},
    "gemini-3-flash-preview": {"include_thoughts": True, "budget": None, "level": "HIGH"},
    "gemini-2.0-flash": None,
}


@dataclass(frozen=True)
class Variant:
    """One request: what it adds to the body, and what the page must then send besides the defaults."""

    name: str
    body: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


def thinking(include: bool, budget: int | None, level: str | None) -> dict[str, Any]:
    return {"thinking": {"include_thoughts": include, "budget": budget, "level": level}}


def json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}


FLASH, PRO, LEVEL, OLD = "gemini-2.5-flash", "gemini-2.5-pro", "gemini-3-flash-preview", "gemini-2.0-flash"
DEFAULT = Variant("default")

DIMENSIONS: dict[str, list[Variant]] = {
    "model": [DEFAULT, Variant("pro", {"model": PRO}), Variant("2.0", {"model": OLD})],
    "thinking-budget": [
        DEFAULT,
        Variant("effort-low", {"reasoning_effort": "low"}, thinking(True, 6144, None)),
        Variant("effort-auto", {"reasoning_effort": -1}, thinking(True, None, None)),
    ],
    "thinking-budget-pro": [
        Variant("pro", {"model": PRO}),
        Variant("pro-2000", {"model": PRO, "reasoning_effort": 2000}, thinking(True, 2000, None)),
    ],
    "thinking-level": [
        Variant("g3", {"model": LEVEL}),
        Variant(
            "g3-minimal", {"model": LEVEL, "reasoning_effort": "minimal"}, thinking(True, None, "MINIMAL")
        ),
        Variant("g3-low", {"model": LEVEL, "reasoning_effort": "low"}, thinking(True, None, "LOW")),
    ],
    "temperature": [DEFAULT, Variant("t0.3", {"temperature": 0.3}, {"temperature": 0.3})],
    "top-p": [DEFAULT, Variant("p0.5", {"top_p": 0.5}, {"top_p": 0.5})],
    "max-tokens": [DEFAULT, Variant("max100", {"max_tokens": 100}, {"max_output_tokens": 100})],
    "stop": [
        DEFAULT,
        Variant("stop-list", {"stop": ["END", "HALT"]}, {"stop_sequences": ["END", "HALT"]}),
        Variant("stop-one", {"stop": "zzz"}, {"stop_sequences": ["zzz"]}),
    ],
    "functions": [
        DEFAULT,
        Variant("fn-city", {"tools": [LOOKUP_CITY]}, {"functions": {"lookup": ["city"]}}),
        Variant("fn-code", {"tools": [LOOKUP_CODE]}, {"functions": {"lookup": ["code"]}}),
    ],
    "structured": [
        DEFAULT,
        Variant(
            "json-object",
            {"response_format": {"type": "json_object"}},
            {"response_mime_type": "application/json"},
        ),
        Variant(
            "schema-color",
            {"response_format": json_schema(COLOR_SCHEMA)},
            {"response_mime_type": "application/json", "response_schema": COLOR_SCHEMA},
        ),
        Variant(
            "schema-size",
            {"response_format": json_schema(SIZE_SCHEMA)},
            {"response_mime_type": "application/json", "response_schema": SIZE_SCHEMA},
        ),
    ],
    "search": [DEFAULT, Variant("search", {"tools": [{"type": "google_search"}]}, {"google_search": True})],
    "attachments": [DEFAULT, Variant("image", {"image": True}, {"attachments": ["image/png"]})],
    "system": [
        DEFAULT,
        Variant("system-pirate", {"system": "Talk like a pirate."}, {"system": "Talk like a pirate."}),
        Variant("system-poet", {"system": "Answer in verse."}, {"system": "Answer in verse."}),
    ],
}
#: Every system text a variant may send: a request must carry its own and no other.
SYSTEM_TEXTS = {v.body["system"] for variants in DIMENSIONS.values() for v in variants if "system" in v.body}

PAIRS = [
    pytest.param(a, b, id=f"{dimension}:{a}->{b}")
    for dimension, variants in DIMENSIONS.items()
    for a, b in itertools.permutations(variants, 2)
]


def request(client: openai.OpenAI, variant: Variant) -> None:
    """Send the variant's request (a short answer)."""
    body = dict(variant.body)
    model = body.pop("model", MODEL)
    text = f"Settings check {variant.name} #sim:words=2"
    content: Any = text
    if body.pop("image", False):
        content = [
            {"type": "text", "text": text},
            {
                "type": "image_url",
                "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
            },
        ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
    system = body.pop("system", None)
    if system:
        messages.insert(0, {"role": "system", "content": system})
    client.chat.completions.create(model=model, messages=messages, extra_body=body)  # type: ignore[arg-type]


def page_settings(recorded: dict[str, Any]) -> dict[str, Any]:
    """The settings a recorded GenerateContent request carried, in the shape of ``expected``."""
    config, tools = recorded["generation_config"], recorded["tools"]
    schema = config["response_schema"]
    return {
        "model": recorded["model"],
        "temperature": config["temperature"],
        "top_p": config["top_p"],
        "max_output_tokens": config["max_output_tokens"],
        "stop_sequences": sorted(config["stop_sequences"] or []),
        "thinking": config["thinking"],
        "response_mime_type": config["response_mime_type"],
        "response_schema": json.loads(schema) if isinstance(schema, str) else schema,
        "functions": {
            d["name"]: sorted((_parameters(d) or {}).get("properties", {}))
            for d in tools["function_declarations"]
        },
        "google_search": tools["google_search"],
        "url_context": tools["url_context"],
        "attachments": [a["mime_type"] for a in recorded["attachments"]],
        "system": [text for text in SYSTEM_TEXTS if text in recorded["prompt"]],
    }


def _parameters(declaration: dict[str, Any]) -> dict[str, Any] | None:
    params = declaration["parameters"]
    return json.loads(params) if isinstance(params, str) else params


def expected(variant: Variant) -> dict[str, Any]:
    """The defaults of the variant's model with the variant's own settings on top."""
    model = variant.body.get("model", MODEL)
    settings: dict[str, Any] = {
        "model": model,
        "temperature": 1.0,
        "top_p": 0.95,
        "max_output_tokens": OUTPUT_LIMIT.get(model, 65536),
        "stop_sequences": [],
        "thinking": THINKING_DEFAULT[model],
        "response_mime_type": None,
        "response_schema": None,
        "functions": {},
        "google_search": False,
        "url_context": False,
        "attachments": [],
        "system": [],
    }
    for key, value in variant.expect.items():
        settings[key] = [value] if key == "system" else value
    return settings


def assert_own_settings(stack: Stack, variant: Variant, after: Variant | None) -> None:
    got = page_settings(last_request(stack))
    want = expected(variant)
    wrong = {k: {"sent": got[k], "asked": want[k]} for k in want if got[k] != want[k]}
    context = f" (after {after})" if after else ""
    assert not wrong, f"{variant}{context} went out with settings it did not ask for: {wrong}"


@pytest.fixture(scope="module")
def matrix_client(shared_stack: Stack) -> Any:
    shared_stack.for_test()
    with make_client(shared_stack) as client:
        yield client


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_request_b_gets_its_own_settings_after_request_a(
    matrix_client: openai.OpenAI, shared_stack: Stack, a: Variant, b: Variant
):
    """B after A: each of the two went out with exactly its own settings, nothing of the other."""
    request(matrix_client, a)
    assert_own_settings(shared_stack, a, None)
    request(matrix_client, b)
    assert_own_settings(shared_stack, b, a)


def test_json_object_after_a_schema_and_a_plain_request_has_no_schema(
    matrix_client: openai.OpenAI, shared_stack: Stack
):
    """The schema a request saved in the page's dialog stays there while structured output is off; a later
    ``json_object`` request must still go out without it."""
    schema, plain, json_object = DIMENSIONS["structured"][2], DEFAULT, DIMENSIONS["structured"][1]
    for variant, after in ((schema, None), (plain, schema), (json_object, plain)):
        request(matrix_client, variant)
        assert_own_settings(shared_stack, variant, after)
