"""Prompt serialisation (docs/aistudio.md §3.5)."""

from __future__ import annotations

import json

import pytest

from browser_worker.mapping.prompt import build_prompt, chosen_function, tool_catalog
from tests.fixtures import FIXTURES_DIR

CASES = json.loads((FIXTURES_DIR / "prompt_serialization.json").read_text(encoding="utf-8"))["cases"]

SEARCH_TOOL = {
    "type": "function",
    "function": {"name": "search", "description": "Search", "parameters": {"type": "object"}},
}


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_fixture_case_matches_recommended_text_byte_for_byte(case):
    """Every fixture case serialises exactly to ``expected_recommended``."""
    plan = build_prompt(
        case["messages"], tools=case.get("tools"), tool_choice=case.get("tool_choice"), emulated_tools=True
    )
    assert plan.text == case["expected_recommended"]


def test_tool_result_is_printed_once():
    """The tool content appears once, under its ``Tool result`` line."""
    plan = build_prompt([{"role": "tool", "tool_call_id": "c1", "content": "42"}])
    assert plan.text == "Tool:\nTool result (tool_call_id=c1):\n42\n"


def test_tool_result_without_id_is_just_the_content():
    """A tool message without ``tool_call_id`` shows only its content."""
    assert build_prompt([{"role": "tool", "content": " ok "}]).text == "Tool:\nok\n"


def test_catalog_is_left_out_without_emulation():
    """Native mode (``emulated_tools=False``) never injects the catalog."""
    case = CASES[0]
    plan = build_prompt(case["messages"], tools=case["tools"], tool_choice="auto")
    assert not plan.text.startswith("Available Tools Catalog:")
    assert plan.text.startswith("System Instructions:\n")


def test_catalog_is_left_out_for_empty_tools():
    """Emulated mode with no tools adds no catalog."""
    plan = build_prompt([{"role": "user", "content": "hi"}], tools=[], emulated_tools=True)
    assert plan.text == "User:\nhi\n"


def test_catalog_without_system_has_one_separator():
    """Catalog followed directly by a turn is joined by a single separator."""
    plan = build_prompt([{"role": "user", "content": "hi"}], tools=[SEARCH_TOOL], emulated_tools=True)
    assert plan.text == (
        'Available Tools Catalog:\n- Function: search\n  Parameter Schema: {"type": "object"}\n---\nUser:\nhi\n'
    )


def test_catalog_names_the_forced_function():
    """A ``tool_choice`` naming a function adds the recommendation line."""
    choice = {"type": "function", "function": {"name": "search"}}
    catalog = tool_catalog([SEARCH_TOOL], choice)
    assert catalog.endswith("\nRecommended function to use: search")


@pytest.mark.parametrize("choice", ["auto", "none", "no", "off", "required", "any", "AUTO", None, "", {}])
def test_generic_tool_choice_names_no_function(choice):
    """auto/none/required and friends do not force a function."""
    assert chosen_function(choice) is None


def test_catalog_skips_tools_without_parameters_schema_line():
    """A function without parameters gets only its ``- Function:`` line; search and non-function tools are skipped."""
    tools = [
        {"type": "function", "function": {"name": "ping"}},
        {"type": "google_search"},
        {"type": "function", "function": {"name": "googleSearch", "parameters": {"type": "object"}}},
    ]
    assert tool_catalog(tools) == "Available Tools Catalog:\n- Function: ping"
    assert tool_catalog([{"type": "google_search"}]) == ""


def test_catalog_keeps_non_ascii_characters():
    """Schemas are dumped with ``ensure_ascii=False``."""
    tool = {"type": "function", "function": {"name": "f", "parameters": {"description": "café ☕"}}}
    assert '{"description": "café ☕"}' in tool_catalog([tool])


def test_only_the_first_system_message_counts_and_comes_first():
    """Later system messages are dropped; the first one leads even if it is not message 0."""
    plan = build_prompt(
        [
            {"role": "user", "content": "q"},
            {"role": "system", "content": "  be brief  "},
            {"role": "system", "content": "ignored"},
        ]
    )
    assert plan.text == "System Instructions:\nbe brief\n---\nUser:\nq\n"


def test_developer_message_acts_as_system_when_first():
    """A ``developer`` message with no system before it supplies the instructions."""
    plan = build_prompt([{"role": "developer", "content": "rules"}, {"role": "user", "content": "q"}])
    assert plan.text == "System Instructions:\nrules\n---\nUser:\nq\n"


def test_developer_message_after_system_is_dropped():
    """Once a system message was seen, a developer message is a later system message and is dropped."""
    plan = build_prompt(
        [
            {"role": "system", "content": "sys"},
            {"role": "developer", "content": "dev"},
            {"role": "user", "content": "q"},
        ]
    )
    assert plan.text == "System Instructions:\nsys\n---\nUser:\nq\n"


def test_system_after_developer_is_dropped():
    """A developer message first wins over a later system message."""
    plan = build_prompt([{"role": "developer", "content": "dev"}, {"role": "system", "content": "sys"}])
    assert plan.text == "System Instructions:\ndev\n"


def test_system_list_content_contributes_its_text():
    """List content in a system message is read like any other list content."""
    plan = build_prompt(
        [{"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    )
    assert plan.text == "System Instructions:\na\nb\n"


def test_empty_system_message_adds_no_section():
    """A blank first system message adds nothing."""
    plan = build_prompt([{"role": "system", "content": "   "}, {"role": "user", "content": "q"}])
    assert plan.text == "User:\nq\n"


def test_empty_messages_give_empty_text():
    """No messages (or only empty ones) give an empty prompt."""
    assert build_prompt([]).text == ""
    assert (
        build_prompt([{"role": "user", "content": "  "}, {"role": "assistant", "content": None}]).text == ""
    )


def test_empty_message_in_the_middle_is_skipped_with_its_separator():
    """An empty turn leaves no dangling separator (reference quirk fixed)."""
    plan = build_prompt(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "b"},
        ]
    )
    assert plan.text == "User:\na\n---\nUser:\nb\n"


def test_unknown_role_is_capitalised():
    """A role outside user/assistant/tool is shown with a capital first letter."""
    assert build_prompt([{"role": "function", "content": "x"}]).text == "Function:\nx\n"


def test_list_content_joins_text_items_and_strips():
    """Text items are joined with newlines, then the whole body is stripped."""
    plan = build_prompt(
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "  one"}, "two", {"type": "text", "text": "three  "}],
            }
        ]
    )
    assert plan.text == "User:\none\ntwo\nthree\n"


def test_image_parts_become_refs_with_message_index_and_detail_line():
    """Image parts are collected in order; a ``detail`` adds an ``[Image Details: ...]`` line."""
    messages = [
        {"role": "system", "content": "s"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
                {"type": "image_url", "image_url": "https://example.com/a.jpg"},
            ],
        },
    ]
    plan = build_prompt(messages)
    assert plan.text == "System Instructions:\ns\n---\nUser:\nlook\n[Image Details: detail=high]\n"


def test_audio_and_file_parts_add_no_text():
    """Audio and file parts are attachments, uploaded beside the prompt: they add no text of their own."""
    messages = [
        {
            "role": "user",
            "content": [{"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}],
        },
        {"role": "assistant", "content": "heard"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "and this"},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
                },
            ],
        },
    ]
    plan = build_prompt(messages)
    assert plan.text == "Assistant:\nheard\n---\nUser:\nand this\n"


def test_image_only_message_adds_no_turn():
    """A message with only an image (an attachment, uploaded beside the prompt) adds no text."""
    plan = build_prompt(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "/tmp/x.png"}}]}]
    )
    assert plan.text == ""


def test_assistant_tool_calls_without_text_and_several_calls():
    """Several calls are joined by newlines; arguments are re-indented, non-JSON kept raw."""
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"q":"é"}'}},
            {"id": "b", "type": "function", "function": {"name": "g", "arguments": "not json"}},
            {"id": "c", "type": "function", "function": {"name": "h", "arguments": ""}},
        ],
    }
    assert build_prompt([message]).text == (
        "Assistant:\n"
        'Request function call: f\nParameters:\n{\n  "q": "é"\n}\n'
        "Request function call: g\nParameters:\nnot json\n"
        "Request function call: h\nParameters:\n{}\n"
    )


def test_tool_list_content_is_joined_text():
    """A tool message with list content shows its text items."""
    plan = build_prompt([{"role": "tool", "tool_call_id": "x", "content": [{"type": "text", "text": "r"}]}])
    assert plan.text == "Tool:\nTool result (tool_call_id=x):\nr\n"


def test_catalog_lists_functions_that_follow_a_search_tool():
    """A Google Search tool is skipped without hiding the function tools after it."""
    tools = [{"type": "google_search"}, {"type": "function", "function": {"name": "ping"}}]
    assert tool_catalog(tools) == "Available Tools Catalog:\n- Function: ping"


def test_prompt_catalog_names_the_function_tool_choice_forces():
    """``build_prompt`` passes ``tool_choice`` on: a forced function is recommended in the catalog."""
    plan = build_prompt(
        [{"role": "user", "content": "find it"}],
        tools=[SEARCH_TOOL],
        tool_choice={"type": "function", "function": {"name": "search"}},
        emulated_tools=True,
    )
    assert plan.text == (
        "Available Tools Catalog:\n- Function: search\n"
        '  Parameter Schema: {"type": "object"}\n'
        "Recommended function to use: search\n---\nUser:\nfind it\n"
    )


@pytest.mark.parametrize("name", ["", None, 5])
def test_tool_choice_without_a_usable_name_forces_nothing(name):
    """A named ``tool_choice`` whose name is empty or not a string names no function."""
    assert chosen_function({"type": "function", "function": {"name": name}}) is None


def test_only_assistant_tool_calls_are_rendered():
    """``tool_calls`` belong to assistant messages; on another role they are not printed."""
    call = {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    plan = build_prompt([{"role": "user", "content": "hi", "tool_calls": [call]}])
    assert plan.text == "User:\nhi\n"


def test_tool_call_without_arguments_shows_empty_object():
    """A call whose ``arguments`` are missing shows ``{}``, like empty arguments."""
    message = {
        "role": "assistant",
        "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f"}}],
    }
    assert build_prompt([message]).text == "Assistant:\nRequest function call: f\nParameters:\n{}\n"


def test_tool_list_content_joins_its_text_items_with_newlines():
    """Several text items of a tool result are joined with ``\\n``."""
    content = [{"type": "text", "text": "line 1"}, {"type": "text", "text": "line 2"}]
    plan = build_prompt([{"role": "tool", "tool_call_id": "x", "content": content}])
    assert plan.text == "Tool:\nTool result (tool_call_id=x):\nline 1\nline 2\n"
