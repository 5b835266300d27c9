"""Google Search grounding: the ``google_search`` tool (and the ``googleSearch`` function alias) on the page."""

from __future__ import annotations

from typing import Any

import openai

from aistudio_sim.stack import Stack
from tests.features.conftest import MODEL, last_request, user

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def tools_of(stack: Stack) -> dict[str, Any]:
    return last_request(stack).get("tools") or {}


def test_google_search_tool_turns_grounding_on(client: openai.OpenAI, stack: Stack):
    """tools: [{"type": "google_search"}] reaches AI Studio as the Google Search tool, no declarations."""
    done = client.chat.completions.create(
        model=MODEL, messages=user("Latest news?"), tools=[{"type": "google_search"}]
    )
    tools = tools_of(stack)
    assert tools.get("google_search") is True
    assert not tools.get("function_declarations")
    assert done.choices[0].message.content == last_request(stack)["response"]["answer_text"]
    assert done.choices[0].finish_reason == "stop"


def test_google_search_function_alias_turns_grounding_on(client: openai.OpenAI, stack: Stack):
    """A function tool named googleSearch is the same switch, not a declaration."""
    alias = {
        "type": "function",
        "function": {
            "name": "googleSearch",
            "description": "Search the web.",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    client.chat.completions.create(model=MODEL, messages=user("Search it"), tools=[alias])
    tools = tools_of(stack)
    assert tools.get("google_search") is True
    assert not tools.get("function_declarations")


def test_a_request_without_search_turns_grounding_off_again(client: openai.OpenAI, stack: Stack):
    """Search on for one request, then a plain request: the toggle is off again."""
    client.chat.completions.create(model=MODEL, messages=user("Search"), tools=[{"type": "google_search"}])
    assert tools_of(stack).get("google_search") is True
    client.chat.completions.create(model=MODEL, messages=user("No search"))
    assert not tools_of(stack).get("google_search")


def test_functions_switch_google_search_and_url_context_off(client: openai.OpenAI, stack: Stack):
    """Search first, then a request with functions: declarations go out and grounding is off."""
    client.chat.completions.create(model=MODEL, messages=user("Search"), tools=[{"type": "google_search"}])
    assert tools_of(stack).get("google_search") is True
    client.chat.completions.create(
        model=MODEL,
        messages=user("Weather #sim:tool=get_weather"),
        tools=[WEATHER, {"type": "google_search"}],
    )
    tools = tools_of(stack)
    assert [d["name"] for d in tools["function_declarations"]] == ["get_weather"]
    assert not tools.get("google_search")
    assert not tools.get("url_context")


def test_search_stays_on_when_the_functions_are_emulated(client: openai.OpenAI, stack: Stack):
    """Functions the dialog refuses are emulated, so the page's search toggle is free and turns on."""
    unpastable = {
        "type": "function",
        "function": {
            "name": "7zip_list",
            "description": "List an archive.",
            "parameters": {"type": "object", "properties": {"archive": {"type": "string"}}},
        },
    }
    client.chat.completions.create(
        model=MODEL, messages=user("Search and list"), tools=[unpastable, {"type": "google_search"}]
    )
    tools = tools_of(stack)
    assert tools.get("google_search") is True
    assert not tools.get("function_declarations")
    assert last_request(stack)["prompt"].startswith("Available Tools Catalog:\n- Function: 7zip_list")


#: The stream proxy already publishes ``grounding`` for these answers (checked on proxy.sock); the
#: browser worker still has to pass it on to the API server.
def expected_sources(stack: Stack) -> list[dict[str, Any]]:
    grounding = last_request(stack)["response"]["grounding"]
    assert grounding is not None and grounding["index"] == 7
    return grounding["sources"]


def check_grounded_message(message: Any, sources: list[dict[str, Any]], query: str) -> None:
    annotations = message.annotations or []
    assert [a.type for a in annotations] == ["url_citation", "url_citation"]
    assert [(a.url_citation.url, a.url_citation.title) for a in annotations] == [
        (s["uri"], s["title"]) for s in sources
    ]
    grounding = (message.model_extra or {})["grounding"]
    assert grounding == {"sources": sources, "queries": [query]}


def test_google_search_sources_come_back_as_annotations_and_grounding(client: openai.OpenAI, stack: Stack):
    """#sim:search=2 with the search tool: 2 url_citation annotations and the exact sources on the message."""
    done = client.chat.completions.create(
        model=MODEL, messages=user("Capital of France? #sim:search=2"), tools=[{"type": "google_search"}]
    )
    sources = expected_sources(stack)
    assert len(sources) == 2 and all(s["uri"].startswith("https://example.com/") for s in sources)
    check_grounded_message(done.choices[0].message, sources, "Capital of France?")
    assert done.choices[0].message.content == last_request(stack)["response"]["answer_text"]


def test_streamed_google_search_sources_reach_the_final_message(client: openai.OpenAI, stack: Stack):
    """Streaming: the SDK's accumulated message has the same annotations and grounding."""
    with client.chat.completions.stream(
        model=MODEL, messages=user("Capital of Spain? #sim:search=2"), tools=[{"type": "google_search"}]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    check_grounded_message(final.choices[0].message, expected_sources(stack), "Capital of Spain?")
    assert final.choices[0].finish_reason == "stop"


def test_an_answer_without_search_has_no_annotations(client: openai.OpenAI, stack: Stack):
    """Without the search tool the directive does nothing and the message has no sources."""
    done = client.chat.completions.create(model=MODEL, messages=user("Plain #sim:search=2"))
    assert last_request(stack)["response"]["grounding"] is None
    assert not done.choices[0].message.annotations
    assert "grounding" not in (done.choices[0].message.model_extra or {})
