"""OpenAI ``messages`` → the one prompt text typed into AI Studio (docs/aistudio.md §3.5).

Pure: no page, no I/O. ``build_prompt`` returns the text; image, audio and file
parts are the job's attachments (the API server made them so), uploaded beside it.

The format (docs/aistudio.md §3.5):

* an optional tool catalog (emulated function calling only, non-empty tools);
* ``System Instructions:`` from the first ``system`` **or** ``developer``
  message. ``developer`` is OpenAI's newer name for the system role, so it is
  treated as an alias: whichever of the two comes first supplies the
  instructions, and every later ``system``/``developer`` message is dropped;
* every other message as ``<Role>:\\n<body>``, sections joined by ``\\n---\\n``;
* one trailing ``\\n``.

Differences from the reference (quirks fixed on purpose):

* a tool message's content is printed once, under
  ``Tool result (tool_call_id=<id>):`` (the reference prints it twice);
* a message with nothing to show is skipped entirely, separator included (the
  reference leaves an empty ``\\n---\\n`` section);
* list content in the system message contributes its text items (the
  reference ignores it);
* the catalog is followed by exactly one separator even when no system
  message follows;
* Google Search tools (``declarations.is_google_search_tool``, including a
  function named ``googleSearch``) are left out of the catalog: they switch
  the page's grounding toggle instead of being imitated as text.

An empty conversation gives the empty string; the caller decides what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from browser_worker.mapping.declarations import function_of, is_google_search_tool

SEPARATOR = "\n---\n"
CATALOG_HEADER = "Available Tools Catalog:"
SYSTEM_ROLES = frozenset({"system", "developer"})
#: ``tool_choice`` strings that do not name a function.
GENERIC_TOOL_CHOICES = frozenset({"auto", "none", "no", "off", "required", "any"})
ROLE_LABELS = {"user": "User", "assistant": "Assistant", "tool": "Tool"}


@dataclass(frozen=True)
class PromptPlan:
    """The prompt text to type (the job's attachments are uploaded beside it, not referred to in it)."""

    text: str


def build_prompt(
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: str | dict[str, Any] | None = None,
    emulated_tools: bool = False,
) -> PromptPlan:
    """Serialise ``messages`` into one prompt (docs/aistudio.md §3.5)."""
    catalog = tool_catalog(tools, tool_choice) if emulated_tools and tools else ""
    system: str | None = None
    turns: list[str] = []
    for message in messages:
        role = str(message.get("role") or "user")
        content = message.get("content")
        texts = _read_content(content)
        if role in SYSTEM_ROLES:
            if system is None:
                system = "\n".join(texts).strip()
            continue
        body = _message_body(role, message, content, texts)
        if body:
            turns.append(f"{role_label(role)}:\n{body}")

    sections = [catalog] if catalog else []
    if system:
        sections.append(f"System Instructions:\n{system}")
    sections.extend(turns)
    text = SEPARATOR.join(sections) + "\n" if sections else ""
    return PromptPlan(text)


def tool_catalog(tools: list[dict[str, Any]], tool_choice: str | dict[str, Any] | None = None) -> str:
    """The ``Available Tools Catalog:`` block; empty without function tools (Google Search ones skipped)."""
    lines = [CATALOG_HEADER]
    for tool in tools:
        function = function_of(tool)
        if function is None or is_google_search_tool(tool):
            continue
        lines.append(f"- Function: {function['name']}")
        parameters = function.get("parameters")
        if parameters:
            lines.append(f"  Parameter Schema: {json.dumps(parameters, ensure_ascii=False)}")
    if len(lines) == 1:
        return ""
    chosen = chosen_function(tool_choice)
    if chosen:
        lines.append(f"Recommended function to use: {chosen}")
    return "\n".join(lines)


def chosen_function(tool_choice: str | dict[str, Any] | None) -> str | None:
    """The function name ``tool_choice`` forces, or None for auto/none/required and the like."""
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, dict) else tool_choice.get("name")
        return name if isinstance(name, str) and name else None
    if (
        isinstance(tool_choice, str)
        and tool_choice.strip()
        and tool_choice.strip().lower() not in GENERIC_TOOL_CHOICES
    ):
        return tool_choice.strip()
    return None


def role_label(role: str) -> str:
    """``User``, ``Assistant``, ``Tool``, or the role with a capital first letter."""
    return ROLE_LABELS.get(role, role[:1].upper() + role[1:])


def _message_body(role: str, message: dict[str, Any], content: Any, texts: list[str]) -> str:
    """The text under a message's role header; empty when it has nothing to show."""
    if role == "tool":
        return _tool_body(message, content, texts)
    text = "\n".join(texts).strip()
    calls = message.get("tool_calls") if role == "assistant" else None
    if calls:
        rendered = "\n".join(_render_call(call) for call in calls if isinstance(call, dict))
        if rendered:
            text = f"{text}\n{rendered}" if text else rendered
    return text


def _tool_body(message: dict[str, Any], content: Any, texts: list[str]) -> str:
    """A tool result, printed once; string content stays raw."""
    if isinstance(content, str):
        raw = content
    elif isinstance(content, list) or content is None:
        raw = "\n".join(texts)
    else:
        raw = json.dumps(content, ensure_ascii=False)
    call_id = message.get("tool_call_id")
    if call_id:
        return f"Tool result (tool_call_id={call_id}):\n{raw}"
    return raw.strip()


def _render_call(call: dict[str, Any]) -> str:
    """``Request function call: <name>\\nParameters:\\n<indented JSON>`` for one assistant tool call."""
    function: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else call
    name = function.get("name", "")
    arguments = function.get("arguments", "{}")
    if isinstance(arguments, str) and not arguments.strip():
        arguments = {}
    if isinstance(arguments, str):
        try:
            pretty = json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
        except ValueError:
            pretty = arguments
    else:
        pretty = json.dumps(arguments, indent=2, ensure_ascii=False)
    return f"Request function call: {name}\nParameters:\n{pretty}"


def _read_content(content: Any) -> list[str]:
    """The text pieces of one message's content: its text parts and each image's detail line.

    Image, audio and file parts carry no text: the API server turned them into the job's
    attachments, which the page uploads beside the prompt.
    """
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    texts: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if isinstance(text, str):
                texts.append(text)
        elif kind == "image_url":
            image = part.get("image_url")
            detail = image.get("detail") if isinstance(image, dict) else None
            if detail:
                texts.append(f"[Image Details: detail={detail}]")
    return texts
