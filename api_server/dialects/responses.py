"""OpenAI's Responses API: the request as a ``JobSpec`` (sans-IO).

``to_spec(body, history)`` checks a ``POST /v1/responses`` body and translates it into the engine's
canonical (OpenAI chat) messages; every refusal is an ``InvalidRequest`` naming the parameter
(``input.2.content.0.image_url``). ``history`` is the stored conversation a ``previous_response_id``
continues (its canonical messages, without its ``instructions``: OpenAI does not carry them over).

* ``input``: a string (one user message) or items: messages (roles user/assistant/system/developer, a
  string or ``input_text``/``input_image``/``input_file`` parts; ``output_text``/``refusal`` in the
  assistant's history), ``function_call`` and ``function_call_output`` items; ``reasoning`` items that
  clients send back and ``item_reference``s are dropped (the page cannot take them back).
* ``instructions`` become the system message.
* ``tools``: function tools (the flat Responses shape) become functions; ``web_search`` /
  ``web_search_preview`` turn Google Search on; other tool types (Codex's ``namespace``, ``local_shell``,
  ``file_search``…) are ignored with a log line.
* ``tool_choice``: ``auto``, ``none``, ``required``, ``{"type": "function", "name"}``.
* ``text.format``: ``json_schema``, ``json_object``, ``text``. ``reasoning.effort`` sets the thinking
  level; ``reasoning.summary`` asks for the reasoning text as a ``summary_text``.
* ``max_output_tokens``, ``temperature``, ``top_p``, ``stream`` are honoured; ``parallel_tool_calls``,
  ``metadata``, ``include``, ``prompt_cache_key``, ``truncation``, ``user``, ``service_tier`` and other
  fields are accepted (``metadata`` is echoed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from api_server.dialects.inputs import GOOGLE_SEARCH_TOOL, FunctionTools, is_a
from api_server.engine import JobSpec
from api_server.json_schemas import check_schema
from shared.errors import InvalidRequest

log = logging.getLogger(__name__)

EFFORTS = {"none": "none", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}
EFFORTS["xhigh"] = "high"
IGNORED_ITEMS = ("reasoning", "item_reference", "web_search_call", "file_search_call")


def _fail(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid '{param}': {message}", param=param, code="invalid_value")


def _expect(value: Any, kind: type | tuple[type, ...], param: str, what: str) -> Any:
    if not is_a(value, kind):
        raise _fail(param, f"expected {what}.")
    return value


@dataclass
class ResponsesRequest:
    """What the answer echoes back besides the spec."""

    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)
    tools: list[Any] = field(default_factory=list)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    text_format: dict[str, Any] = field(default_factory=lambda: {"type": "text"})
    reasoning: dict[str, Any] = field(default_factory=lambda: {"effort": None, "summary": None})
    summary: bool = False
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    #: The input as items (a string becomes one user message), for ``input_items``.
    input_items: list[dict[str, Any]] = field(default_factory=list)
    #: How many of the spec's messages are the instructions (not carried to a next response).
    instruction_messages: int = 0


def _part(part: Any, param: str) -> dict[str, Any]:
    _expect(part, dict, param, "a content part object")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _expect(part.get("text"), str, f"{param}.text", "a string")}
    if kind == "refusal":
        return {"type": "text", "text": _expect(part.get("refusal"), str, f"{param}.refusal", "a string")}
    if kind == "input_image":
        url = part.get("image_url")
        if url is None:
            raise _fail(
                f"{param}.image_url", "an image URL or data URL is required (file_id is not supported)."
            )
        return {"type": "image_url", "image_url": {"url": _expect(url, str, f"{param}.image_url", "a URL")}}
    if kind == "input_file":
        if part.get("file_data") is not None:
            data = _expect(part.get("file_data"), str, f"{param}.file_data", "a data URL")
            name = str(part.get("filename") or "document.pdf")
            if not data.startswith("data:"):
                data = f"data:application/pdf;base64,{data}"
            return {"type": "file", "file": {"file_data": data, "filename": name}}
        if part.get("file_url") is not None:
            url = _expect(part.get("file_url"), str, f"{param}.file_url", "a URL")
            return {"type": "image_url", "image_url": {"url": url}}
        raise _fail(param, "an input_file needs file_data or file_url (file_id is not supported).")
    raise _fail(f"{param}.type", f"unsupported content part {str(kind)[:40]!r}.")


def _content(content: Any, param: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    _expect(content, list, param, "a string or a list of content parts")
    return [_part(p, f"{param}.{i}") for i, p in enumerate(content)]


def _text(parts: str | list[dict[str, Any]]) -> str:
    if isinstance(parts, str):
        return parts
    return "".join(str(p.get("text", "")) for p in parts)


def _items(raw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(canonical messages, input items)`` of ``input``."""
    if isinstance(raw, str):
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}
        return [{"role": "user", "content": raw}], [item]
    _expect(raw, list, "input", "a string or a list of input items")
    messages: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        param = f"input.{i}"
        _expect(item, dict, param, "an input item object")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise _fail(f"{param}.role", "must be one of user, assistant, system, developer.")
            content = _content(item.get("content"), f"{param}.content")
            if role == "assistant":
                messages.append({"role": "assistant", "content": _text(content)})
            else:
                messages.append({"role": role, "content": content})
            raw_content = item.get("content")
            if isinstance(raw_content, str):
                kind_of_text = "output_text" if role == "assistant" else "input_text"
                raw_content = [{"type": kind_of_text, "text": raw_content}]
            item = {"type": "message", "role": role, "content": raw_content, "status": "completed"}
        elif kind == "function_call":
            call_id = _expect(item.get("call_id"), str, f"{param}.call_id", "a string")
            name = _expect(item.get("name"), str, f"{param}.name", "a string")
            args = _expect(item.get("arguments", "{}"), str, f"{param}.arguments", "a JSON string")
            call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            call_id = _expect(item.get("call_id"), str, f"{param}.call_id", "a string")
            output = item.get("output")
            text = output if isinstance(output, str) else _text(_content(output, f"{param}.output"))
            messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
        elif kind in IGNORED_ITEMS:
            log.info("input item %d: a %s item is not passed on", i, kind)
            continue
        else:
            raise _fail(f"{param}.type", f"unsupported input item type {str(kind)[:40]!r}.")
        items.append(item)
    return messages, items


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    _expect(tools, list, "tools", "a list of tools")
    out = FunctionTools(_fail)
    for i, tool in enumerate(tools):
        _expect(tool, dict, f"tools.{i}", "a tool object")
        kind = _expect(tool.get("type"), str, f"tools.{i}.type", "a string")
        if kind.startswith("web_search"):
            out.search()
            continue
        if kind != "function":
            log.info("ignoring the tool type %r: AI Studio has no such tool", kind[:40])
            continue
        spec = tool["function"] if isinstance(tool.get("function"), dict) else tool  # the chat shape too
        name = _expect(spec.get("name"), str, f"tools.{i}.name", "a string")
        params = spec.get("parameters")
        if params is not None:
            _expect(params, dict, f"tools.{i}.parameters", "a JSON schema object")
        out.function(f"tools.{i}", name, params, spec.get("description"))
    return out.result()


def _tool_choice(choice: Any, tools: list[dict[str, Any]] | None) -> str | dict[str, Any] | None:
    if choice == "required" and all(t is GOOGLE_SEARCH_TOOL for t in tools or []):
        raise _fail("tool_choice", "'required' needs at least one function in tools.")
    if choice is None or choice in ("auto", "none", "required"):
        return choice  # type: ignore[no-any-return]
    _expect(choice, dict, "tool_choice", "'auto', 'none', 'required' or an object")
    kind = _expect(choice.get("type"), str, "tool_choice.type", "a string")
    if kind == "function":
        name = _expect(choice.get("name"), str, "tool_choice.name", "the name of a function")
        names = {t["function"]["name"] for t in tools or []}
        if name not in names:
            raise _fail("tool_choice.name", f"no function named {name!r} is declared in tools.")
        return {"type": "function", "function": {"name": name}}
    log.info("tool_choice of type %r is taken as 'auto'", str(kind)[:40])
    return "auto"


def _text_format(text: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(the format echoed, the chat response_format)``."""
    if text is None:
        return {"type": "text"}, None
    _expect(text, dict, "text", "an object")
    fmt = text.get("format")
    if fmt is None:
        return {"type": "text"}, None
    _expect(fmt, dict, "text.format", "an object with a type")
    kind = fmt.get("type")
    if kind == "text":
        return fmt, None
    if kind == "json_object":
        return fmt, {"type": "json_object"}
    if kind == "json_schema":
        name = _expect(fmt.get("name"), str, "text.format.name", "a string")
        schema = _expect(fmt.get("schema"), dict, "text.format.schema", "a JSON schema object")
        check_schema(schema, "text.format.schema", "'text.format.schema'")
        inner = {"name": name, "schema": schema, "strict": bool(fmt.get("strict"))}
        return fmt, {"type": "json_schema", "json_schema": inner}
    raise _fail("text.format.type", "must be one of text, json_object, json_schema.")


def _reasoning(reasoning: Any) -> tuple[dict[str, Any], str | None, bool]:
    """``(the reasoning echoed, the effort for the page, whether a summary is asked)``."""
    if reasoning is None:
        return {"effort": None, "summary": None}, None, False
    _expect(reasoning, dict, "reasoning", "an object")
    effort = reasoning.get("effort")
    if effort is not None and (not isinstance(effort, str) or effort not in EFFORTS):
        raise _fail("reasoning.effort", f"must be one of {', '.join(EFFORTS)}.")
    summary = reasoning.get("summary", reasoning.get("generate_summary"))
    if summary is not None and (
        not isinstance(summary, str) or summary not in ("auto", "concise", "detailed")
    ):
        raise _fail("reasoning.summary", "must be one of auto, concise, detailed.")
    echoed = {"effort": effort, "summary": summary}
    return echoed, EFFORTS[effort] if effort else None, summary is not None


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not low <= _expect(value, (int, float), name, "a number") <= high:
        raise _fail(name, f"must be between {low:g} and {high:g}.")
    return float(value)


def to_spec(body: Any, history: list[dict[str, Any]] | None = None) -> tuple[JobSpec, ResponsesRequest]:
    """Check a Responses body and translate it (``history``: the conversation a previous response left)."""
    _expect(body, dict, "body", "a JSON object")
    model = _expect(body.get("model"), str, "model", "a model name")
    if body.get("input") is None:
        raise _fail("input", "the input is required.")
    messages, items = _items(body["input"])
    if not messages:
        raise _fail("input", "at least one message or function call output is required.")
    instructions = body.get("instructions")
    if instructions is not None:
        _expect(instructions, str, "instructions", "a string")
    limit = body.get("max_output_tokens")
    if limit is not None and _expect(limit, int, "max_output_tokens", "an integer") < 1:
        raise _fail("max_output_tokens", "must be at least 1.")
    tools = _tools(body.get("tools"))
    echoed_format, response_format = _text_format(body.get("text"))
    echoed_reasoning, effort, summary = _reasoning(body.get("reasoning"))
    metadata = body.get("metadata") or {}
    _expect(metadata, dict, "metadata", "an object")
    previous = body.get("previous_response_id")
    if previous is not None:
        _expect(previous, str, "previous_response_id", "a string")
    stream = _expect(body.get("stream", False) or False, bool, "stream", "a boolean")
    store = _expect(body.get("store", True) is not False, bool, "store", "a boolean")
    parallel = body.get("parallel_tool_calls", True) is not False
    tool_choice = _tool_choice(body.get("tool_choice"), tools)
    system = [{"role": "system", "content": instructions}] if instructions else []
    spec = JobSpec(
        model=model,
        messages=system + list(history or []) + messages,
        stream=stream,
        temperature=_number(body, "temperature", 0, 2),
        top_p=_number(body, "top_p", 0, 1),
        max_output=limit,
        output_limits={"max_output_tokens": limit} if limit is not None else {},
        reasoning_effort=effort,
        tools=tools,
        tool_choice=tool_choice,
        response_format=response_format,
        messages_param="input",
    )
    req = ResponsesRequest(
        instructions=instructions,
        previous_response_id=previous,
        store=store,
        metadata=metadata,
        tools=list(body.get("tools") or []),
        tool_choice=body.get("tool_choice") or "auto",
        parallel_tool_calls=parallel,
        text_format=echoed_format,
        reasoning=echoed_reasoning,
        summary=summary,
        max_output_tokens=limit,
        temperature=spec.temperature,
        top_p=spec.top_p,
        input_items=items,
        instruction_messages=len(system),
    )
    return spec, req


def conversation(spec: JobSpec, req: ResponsesRequest, answer: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The canonical conversation a response leaves for ``previous_response_id``: its messages without the
    instructions, and the answer's message."""
    return spec.messages[req.instruction_messages :] + ([answer] if answer else [])
