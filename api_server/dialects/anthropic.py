"""Anthropic's Messages API: the request as a ``JobSpec`` (sans-IO).

``to_spec(body)`` checks the body as Anthropic's reference describes it and translates it into the
engine's canonical (OpenAI chat) messages; every refusal is an ``InvalidRequest`` naming the field as a
dotted path (``messages.1.content.0.source``), which the Anthropic error shape turns into an
``invalid_request_error``.

* ``system`` (a string or text blocks) becomes the system message; so do messages with the role
  ``system`` that Claude Code sends among the others (appended to it, in order).
* User blocks: ``text``; ``image`` (``base64`` or ``url`` source) as an image part; ``document``
  (``base64`` PDF or ``text`` source, or ``url``) as a file part; ``tool_result`` (a string or blocks,
  ``is_error``) as a tool message answering its ``tool_use_id``, before the rest of the turn.
* Assistant blocks: ``text``; ``tool_use`` as a tool call; ``thinking`` / ``redacted_thinking`` blocks
  that clients send back are dropped (the page cannot take them back).
* ``tools``: custom tools (``input_schema``; a top-level ``$schema`` is dropped) become functions;
  ``web_search_*`` turns Google Search on; other server tools are ignored with a log line.
* ``tool_choice``: ``auto``, ``any`` (a call is required), ``tool`` (that one), ``none``.
* ``thinking``: ``enabled`` with ``budget_tokens`` sets the thinking budget, ``disabled`` turns it off.
* ``max_tokens`` (required), ``stop_sequences``, ``temperature``, ``top_p`` are honoured; ``top_k``,
  ``metadata``, ``service_tier``, ``cache_control`` and fields the reference adds later (Claude Code's
  ``context_management``) are accepted and ignored.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from api_server.dialects.inputs import FunctionTools, is_a
from api_server.engine import JobSpec
from shared.errors import InvalidRequest

log = logging.getLogger(__name__)

#: The function a ``web_search`` server tool becomes (``browser_worker/mapping/declarations.py``).


def _fail(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param, code="invalid_request")


def _expect(value: Any, kind: type | tuple[type, ...], param: str, what: str) -> Any:
    if not is_a(value, kind):
        raise _fail(param, f"expected {what}")
    return value


def _text_of(blocks: Any, param: str) -> str:
    """A string, or the text of a list of text blocks."""
    if isinstance(blocks, str):
        return blocks
    _expect(blocks, list, param, "a string or a list of text blocks")
    parts = []
    for i, block in enumerate(blocks):
        _expect(block, dict, f"{param}.{i}", "a content block")
        if block.get("type") != "text":
            raise _fail(f"{param}.{i}.type", "only text blocks are allowed here")
        parts.append(_expect(block.get("text"), str, f"{param}.{i}.text", "a string"))
    return "\n".join(parts)


def _source_url(source: Any, param: str, default_type: str) -> tuple[str, str | None]:
    """``(url, media type)`` of an image or document source: a data: URL for inline data."""
    _expect(source, dict, param, "a source object")
    kind = source.get("type")
    if kind == "url":
        return _expect(source.get("url"), str, f"{param}.url", "a URL"), None
    if kind in ("base64", "text"):
        media = source.get("media_type") or default_type
        _expect(media, str, f"{param}.media_type", "a media type")
        data = _expect(source.get("data"), str, f"{param}.data", "a string")
        if kind == "text":
            data = base64.b64encode(data.encode()).decode()
        return f"data:{media};base64,{data}", media
    raise _fail(f"{param}.type", f"unsupported source type {kind!r} (use base64, text or url)")


def _user_parts(block: dict[str, Any], param: str) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": _expect(block.get("text"), str, f"{param}.text", "a string")}
    if kind == "image":
        url, _ = _source_url(block.get("source"), f"{param}.source", "image/png")
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "document":
        url, media = _source_url(block.get("source"), f"{param}.source", "application/pdf")
        if not url.startswith("data:"):
            return {"type": "image_url", "image_url": {"url": url}}
        name = str(block.get("title") or ("document.txt" if media == "text/plain" else "document.pdf"))
        return {"type": "file", "file": {"file_data": url, "filename": name}}
    raise _fail(f"{param}.type", f"unsupported content block {kind!r} in a user message")


def _tool_result(block: dict[str, Any], param: str) -> dict[str, Any]:
    call_id = _expect(block.get("tool_use_id"), str, f"{param}.tool_use_id", "the id of a tool_use")
    content = block.get("content", "")
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            _expect(part, dict, f"{param}.content.{i}", "a content block")
            if part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            else:
                log.info("tool_result %s: a %s block is not passed on", call_id, part.get("type"))
        text = "\n".join(texts)
    else:
        text = str(_expect(content, str, f"{param}.content", "a string or a list of blocks"))
    if block.get("is_error"):
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _message(msg: Any, index: int, known_calls: set[str]) -> list[dict[str, Any]]:
    param = f"messages.{index}"
    _expect(msg, dict, param, "a message object")
    role = msg.get("role")
    if role not in ("user", "assistant"):
        raise _fail(f"{param}.role", f"must be 'user' or 'assistant', not {str(role)[:40]!r}")
    content = msg.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    _expect(content, list, f"{param}.content", "a string or a list of content blocks")
    if role == "assistant":
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for i, block in enumerate(content):
            where = f"{param}.content.{i}"
            _expect(block, dict, where, "a content block")
            kind = block.get("type")
            if kind == "text":
                texts.append(_expect(block.get("text"), str, f"{where}.text", "a string"))
            elif kind == "tool_use":
                call_id = _expect(block.get("id"), str, f"{where}.id", "a string")
                name = _expect(block.get("name"), str, f"{where}.name", "a string")
                args = _expect(block.get("input", {}), dict, f"{where}.input", "an object")
                known_calls.add(call_id)
                calls.append(_call(call_id, name, args))
            elif kind not in ("thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result"):
                raise _fail(f"{where}.type", f"unsupported content block {kind!r} in an assistant message")
        out: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
        if calls:
            out["tool_calls"] = calls
        return [out] if texts or calls else []
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        where = f"{param}.content.{i}"
        _expect(block, dict, where, "a content block")
        if block.get("type") == "tool_result":
            result = _tool_result(block, where)
            if result["tool_call_id"] not in known_calls:
                raise _fail(
                    f"{where}.tool_use_id", "does not answer a tool_use of the previous assistant turn"
                )
            results.append(result)
        else:
            parts.append(_user_parts(block, where))
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    _expect(tools, list, "tools", "a list of tools")
    out = FunctionTools(_fail)
    for i, tool in enumerate(tools):
        _expect(tool, dict, f"tools.{i}", "a tool object")
        kind = tool.get("type")
        if kind is not None:
            _expect(kind, str, f"tools.{i}.type", "a string")
        if kind is not None and kind.startswith("web_search"):
            out.search()
            continue
        if kind not in (None, "custom"):
            log.info("ignoring the server tool %r: AI Studio has no such tool", kind)
            continue
        name = _expect(tool.get("name"), str, f"tools.{i}.name", "a string")
        schema = dict(
            _expect(tool.get("input_schema"), dict, f"tools.{i}.input_schema", "a JSON schema object")
        )
        schema.pop("$schema", None)
        out.function(f"tools.{i}", name, schema, tool.get("description"), schema_field="input_schema")
    return out.result()


def _tool_choice(choice: Any, tools: list[dict[str, Any]] | None) -> str | dict[str, Any] | None:
    if choice is None:
        return None
    _expect(choice, dict, "tool_choice", "an object with a type")
    kind = choice.get("type")
    if kind == "auto":
        return "auto"
    if kind == "none":
        return "none"
    names = {t["function"]["name"] for t in tools or [] if t["function"]["name"] != "googleSearch"}
    if kind == "any":
        if not names:
            raise _fail("tool_choice", "'any' needs at least one tool")
        return "required"
    if kind == "tool":
        name = _expect(choice.get("name"), str, "tool_choice.name", "the name of a tool")
        if name not in names:
            raise _fail("tool_choice.name", f"no tool named {name!r} is declared")
        return {"type": "function", "function": {"name": name}}
    raise _fail("tool_choice.type", "must be one of auto, any, tool, none")


def _thinking(thinking: Any, max_tokens: int) -> str | int | None:
    if thinking is None:
        return None
    _expect(thinking, dict, "thinking", "an object with a type")
    kind = thinking.get("type")
    if kind == "disabled":
        return "none"
    if kind == "enabled":
        budget = _expect(thinking.get("budget_tokens"), int, "thinking.budget_tokens", "an integer")
        if budget < 1024:
            raise _fail("thinking.budget_tokens", "must be at least 1024")
        if budget >= max_tokens:
            raise _fail("thinking.budget_tokens", "must be less than max_tokens")
        return int(budget)
    if kind == "adaptive":
        return None
    raise _fail("thinking.type", "must be 'enabled' or 'disabled'")


def to_spec(body: Any) -> JobSpec:
    """Check an Anthropic Messages body and translate it."""
    _expect(body, dict, "body", "a JSON object")
    model = _expect(body.get("model"), str, "model", "a model name")
    max_tokens = _expect(body.get("max_tokens"), int, "max_tokens", "an integer")
    if max_tokens < 1:
        raise _fail("max_tokens", "must be at least 1")
    raw_messages = _expect(body.get("messages"), list, "messages", "a list of messages")
    if not raw_messages:
        raise _fail("messages", "at least one message is required")
    system = [_text_of(body["system"], "system")] if body.get("system") is not None else []
    messages: list[dict[str, Any]] = []
    known_calls: set[str] = set()
    for i, msg in enumerate(raw_messages):
        if isinstance(msg, dict) and msg.get("role") == "system":  # Claude Code sends some: instructions too
            system.append(_text_of(msg.get("content"), f"messages.{i}.content"))
            continue
        messages += _message(msg, i, known_calls)
    if system:
        messages.insert(0, {"role": "system", "content": "\n\n".join(system)})
    stops = body.get("stop_sequences")
    if stops is not None:
        _expect(stops, list, "stop_sequences", "a list of strings")
        for i, stop in enumerate(stops):
            _expect(stop, str, f"stop_sequences.{i}", "a string")
    temperature = body.get("temperature")
    if (
        temperature is not None
        and not 0 <= _expect(temperature, (int, float), "temperature", "a number") <= 1
    ):
        raise _fail("temperature", "must be between 0 and 1")
    top_p = body.get("top_p")
    if top_p is not None and not 0 <= _expect(top_p, (int, float), "top_p", "a number") <= 1:
        raise _fail("top_p", "must be between 0 and 1")
    if body.get("top_k") is not None:
        log.info("top_k is accepted and ignored: AI Studio has no such setting")
    tools = _tools(body.get("tools"))
    stream = body.get("stream", False)
    return JobSpec(
        model=model,
        messages=messages,
        stream=bool(_expect(stream, bool, "stream", "a boolean")),
        temperature=float(temperature) if temperature is not None else None,
        top_p=float(top_p) if top_p is not None else None,
        max_output=max_tokens,
        output_limits={"max_tokens": max_tokens},
        stop=list(stops) if stops is not None else None,
        reasoning_effort=_thinking(body.get("thinking"), max_tokens),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice"), tools),
    )
