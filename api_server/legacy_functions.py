"""OpenAI's deprecated ``functions`` / ``function_call`` parameters, as ``tools`` / ``tool_choice``.

A request that declares ``functions`` is rewritten before validation: each function becomes a function
tool, ``function_call`` becomes ``tool_choice`` (``"none"``, ``"auto"``, ``{"name": …}``), and its history
(assistant ``function_call`` messages, ``role: "function"`` results) becomes tool calls and tool results
paired by id, so the page sees one vocabulary. The answer is then rendered the legacy way
(``message.function_call``, ``finish_reason: "function_call"``, at most one call) by ``CompletionBuilder``.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from api_server.schemas import FunctionDef
from shared.errors import InvalidRequest

_FUNCTIONS = TypeAdapter(list[FunctionDef])


def to_tools(body: Any) -> tuple[Any, bool]:
    """``(body, True)`` with the legacy parameters rewritten, or ``(body, False)`` when it has none."""
    if not isinstance(body, dict) or ("functions" not in body and "function_call" not in body):
        return body, False
    if "functions" in body and "tools" in body:
        raise InvalidRequest(
            "Give either 'tools' or the deprecated 'functions', not both.",
            param="functions",
            code="invalid_value",
        )
    if "function_call" in body and "tool_choice" in body:
        raise InvalidRequest(
            "Give either 'tool_choice' or the deprecated 'function_call', not both.",
            param="function_call",
            code="invalid_value",
        )
    out = {k: v for k, v in body.items() if k not in ("functions", "function_call")}
    functions = body.get("functions")
    if functions is not None:
        _check_functions(functions)
        out["tools"] = [{"type": "function", "function": f} for f in functions]
    if "function_call" in body:
        out["tool_choice"] = _tool_choice(body["function_call"], functions)
    if isinstance(body.get("messages"), list):
        out["messages"] = _messages(body["messages"])
    return out, functions is not None


def _check_functions(functions: Any) -> None:
    if not isinstance(functions, list) or not functions:
        raise InvalidRequest(
            "'functions' must be a non-empty array of function definitions.",
            param="functions",
            code="invalid_value",
        )
    try:
        _FUNCTIONS.validate_python(functions, strict=True)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        param = ".".join(["functions", *(str(p) for p in err.get("loc", ()))])
        raise InvalidRequest(
            f"Invalid value for '{param}': {err.get('msg')}.", param=param, code="invalid_value"
        ) from None


def _tool_choice(function_call: Any, functions: list[dict[str, Any]] | None) -> Any:
    if function_call in ("none", "auto"):
        return function_call
    name = function_call.get("name") if isinstance(function_call, dict) else None
    if not isinstance(name, str) or not name:
        raise InvalidRequest(
            '\'function_call\' must be "none", "auto" or {"name": "<function>"}.',
            param="function_call",
            code="invalid_value",
        )
    if name not in {f.get("name") for f in functions or [] if isinstance(f, dict)}:
        raise InvalidRequest(
            f"function_call names function {name!r}, which is not in functions.",
            param="function_call",
            code="invalid_value",
        )
    return {"type": "function", "function": {"name": name}}


def _messages(messages: list[Any]) -> list[Any]:
    """Assistant ``function_call`` → one tool call; a ``function`` message → the result of the latest
    call of that name."""
    out: list[Any] = []
    open_calls: dict[str, str] = {}
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            out.append(message)
            continue
        call = message.get("function_call")
        if message.get("role") == "assistant" and isinstance(call, dict) and not message.get("tool_calls"):
            call_id = f"call_legacy_{i}"
            open_calls[str(call.get("name"))] = call_id
            rest = {k: v for k, v in message.items() if k != "function_call"}
            out.append({**rest, "tool_calls": [{"id": call_id, "type": "function", "function": call}]})
        elif message.get("role") == "function" and isinstance(message.get("name"), str):
            call_id = open_calls.pop(message["name"], f"call_legacy_{i}")
            out.append({"role": "tool", "tool_call_id": call_id, "content": message.get("content") or ""})
        else:
            out.append(message)
    return out
