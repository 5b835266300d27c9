"""Google Search grounding: the ``google_search`` tool (and the ``googleSearch`` function alias) on the page."""

from __future__ import annotations

from typing import Any

import openai

from tests.e2e.stack import Stack
from tests.features.conftest import MODEL, last_request, user

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


def tools_of(stack: Stack) -> dict[str, Any]:
    return last_request(stack).get("tools") or {}


def test_google_search_tool_turns_grounding_on(client: openai.OpenAI, sim: Stack):
    """tools: [{"type": "google_search"}] reaches AI Studio as the Google Search tool, no declarations."""
    done = client.chat.completions.create(model=MODEL, messages=user("Latest news?"),
                                          tools=[{"type": "google_search"}])
    tools = tools_of(sim)
    assert tools.get("google_search") is True
    assert not tools.get("function_declarations")
    assert done.choices[0].message.content == last_request(sim)["response"]["answer_text"]
    assert done.choices[0].finish_reason == "stop"


def test_google_search_function_alias_turns_grounding_on(client: openai.OpenAI, sim: Stack):
    """A function tool named googleSearch is the same switch, not a declaration."""
    alias = {"type": "function", "function": {"name": "googleSearch", "description": "Search the web.",
                                              "parameters": {"type": "object", "properties": {}}}}
    client.chat.completions.create(model=MODEL, messages=user("Search it"), tools=[alias])
    tools = tools_of(sim)
    assert tools.get("google_search") is True
    assert not tools.get("function_declarations")


def test_a_request_without_search_turns_grounding_off_again(client: openai.OpenAI, sim: Stack):
    """Search on for one request, then a plain request: the toggle is off again."""
    client.chat.completions.create(model=MODEL, messages=user("Search"), tools=[{"type": "google_search"}])
    assert tools_of(sim).get("google_search") is True
    client.chat.completions.create(model=MODEL, messages=user("No search"))
    assert not tools_of(sim).get("google_search")


def test_functions_switch_google_search_and_url_context_off(client: openai.OpenAI, sim: Stack):
    """Search first, then a request with functions: declarations go out and grounding is off."""
    client.chat.completions.create(model=MODEL, messages=user("Search"), tools=[{"type": "google_search"}])
    assert tools_of(sim).get("google_search") is True
    client.chat.completions.create(model=MODEL, messages=user("Weather #sim:tool=get_weather"),
                                   tools=[WEATHER, {"type": "google_search"}])
    tools = tools_of(sim)
    assert [d["name"] for d in tools["function_declarations"]] == ["get_weather"]
    assert not tools.get("google_search")
    assert not tools.get("url_context")


def test_search_stays_on_when_the_functions_are_emulated(client: openai.OpenAI, sim: Stack):
    """Functions the dialog refuses are emulated, so the page's search toggle is free and turns on."""
    unpastable = {"type": "function", "function": {"name": "7zip_list", "description": "List an archive.",
                                                   "parameters": {"type": "object",
                                                                  "properties": {"archive": {"type": "string"}}}}}
    client.chat.completions.create(model=MODEL, messages=user("Search and list"),
                                   tools=[unpastable, {"type": "google_search"}])
    tools = tools_of(sim)
    assert tools.get("google_search") is True
    assert not tools.get("function_declarations")
    assert last_request(sim)["prompt"].startswith("Available Tools Catalog:\n- Function: 7zip_list")
