"""Gemini ``generateContent``: the request body as a ``JobSpec`` (the answer is ``gemini_render.py``).

The body is read as Google's REST reference describes it (camelCase, and the snake_case
spelling proto JSON also accepts), every error naming the field the way Google does
(``contents[0].parts[1].inlineData.data``):

* ``contents`` (roles ``user``/``model``; ``function`` is a user turn) become canonical chat
  messages: ``text`` parts, ``inlineData`` (standard or URL-safe base64, padded or not) and
  ``fileData`` (a URL, fetched under the ``REMOTE_ATTACHMENTS`` rules) attachments;
  ``functionCall`` parts become the assistant's ``tool_calls`` and ``functionResponse`` parts
  tool results paired with them (by ``id``, else by name; a response to no call of the
  model's previous turn is refused, as Google does); ``thought`` parts sent back are dropped.
* ``systemInstruction`` is the system message; ``generationConfig`` gives temperature, topP,
  maxOutputTokens, stopSequences, the JSON output (``responseMimeType``,
  ``responseSchema`` in Google's OpenAPI subset, ``responseJsonSchema``) and thinking
  (``thinkingBudget``/``thinkingLevel``; ``includeThoughts`` only decides what the answer shows);
  ``topK``, penalties, ``seed`` and ``safetySettings`` are accepted and ignored.
* ``tools``: ``functionDeclarations`` (``parameters`` or ``parametersJsonSchema``),
  ``googleSearch``/``googleSearchRetrieval`` (grounding), ``urlContext``; ``toolConfig``'s
  ``functionCallingConfig`` modes AUTO, ANY (with ``allowedFunctionNames``), NONE.
"""

from __future__ import annotations

import binascii
import json
import logging
import mimetypes
import re
from dataclasses import dataclass, field
from typing import Any

from api_server.attachments import decode_base64
from api_server.engine import JobSpec
from api_server.json_schemas import check_schema, lower_case_types
from shared.errors import InvalidRequest

log = logging.getLogger(__name__)

#: Google's limit on ``stopSequences``.
MAX_STOPS = 5
THINKING_LEVELS = {"minimal", "low", "medium", "high"}
#: The ``generateContent`` tools this server cannot offer.
UNSUPPORTED_TOOLS = ("codeExecution", "computerUse", "fileSearch", "googleMaps", "retrieval", "mcpServers")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def get(obj: dict[str, Any], name: str) -> Any:
    """A field by its camelCase ``name`` or its snake_case spelling (proto JSON accepts both)."""
    if name in obj:
        return obj[name]
    return obj.get(snake(name))


def invalid(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value at '{param}': {message}", param=param, code="invalid_argument")


def need_dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(param, "expected an object.")
    return value


def need_list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(param, "expected a list.")
    return value


def opt_dict(obj: dict[str, Any], name: str, param: str) -> dict[str, Any]:
    value = get(obj, name)
    return {} if value is None else need_dict(value, f"{param}{name}")


def opt_number(obj: dict[str, Any], name: str, param: str, low: float, high: float) -> float | None:
    value = get(obj, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise invalid(f"{param}{name}", f"must be a number from {low:g} to {high:g}, got {value!r}.")
    return float(value)


def opt_int(obj: dict[str, Any], name: str, param: str, low: int) -> int | None:
    value = get(obj, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise invalid(f"{param}{name}", f"must be an integer of at least {low}, got {value!r}.")
    return value


def opt_str(obj: dict[str, Any], name: str, param: str) -> str | None:
    value = get(obj, name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{param}{name}", "expected a string.")
    return value


# --------------------------------------------------------------------------- schemas


def openapi_to_json_schema(node: Any) -> Any:
    """Google's OpenAPI schema subset as JSON Schema: lower-case types, ``nullable`` as a ``null`` type."""
    node = lower_case_types(node)
    return _nullable_as_type(node)


def _nullable_as_type(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable_as_type(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_as_type(v) if k != "enum" else v for k, v in node.items()}
    if out.pop("nullable", False) is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


# --------------------------------------------------------------------------- contents


@dataclass
class _Pending:
    """The calls of the model's latest turn that no ``functionResponse`` answered yet: (id, name)."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def answer(self, call_id: str | None, name: str, param: str) -> str:
        for i, (cid, cname) in enumerate(self.calls):
            if (call_id and cid == call_id) or (not call_id and cname == name):
                del self.calls[i]
                return cid
        for i, (cid, cname) in enumerate(self.calls):  # an id of the client's own: pair by name
            if cname == name:
                del self.calls[i]
                return cid
        raise invalid(
            param,
            f"functionResponse {name!r} answers no functionCall of the model's previous turn: a function "
            "response turn must come right after the model turn that called the function.",
        )


def _blob_data(data: Any, param: str) -> str:
    """Base64 text (standard or URL-safe, padded or not) as standard, padded base64; refused when invalid."""
    if not isinstance(data, str) or not data.strip():
        raise invalid(param, "expected base64 data.")
    text = re.sub(r"\s+", "", data).translate(str.maketrans("-_", "+/")).rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        decode_base64(text, param)
    except (InvalidRequest, binascii.Error):
        raise invalid(param, "not valid base64 data.") from None
    return text


def _media_part(mime: str, url: str) -> dict[str, Any]:
    if mime.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": url}}
    ext = mimetypes.guess_extension(mime) or ".bin"
    return {"type": "file", "file": {"file_data": url, "filename": f"attachment{ext}"}}


class _Contents:
    """Turns ``contents`` into canonical messages (and remote files into ``attachments``)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.attachments: list[dict[str, Any]] = []
        self.pending = _Pending()

    def add(self, contents: Any) -> None:
        items = need_list(contents, "contents")
        if not items:
            raise invalid("contents", "contents is not specified.")
        for i, item in enumerate(items):
            param = f"contents[{i}]"
            item = need_dict(item, param)
            role = get(item, "role") or "user"
            parts = need_list(get(item, "parts"), f"{param}.parts")
            if not parts:
                raise invalid(f"{param}.parts", "must contain at least one part.")
            if role == "model":
                self._model_turn(i, parts)
            elif role in ("user", "function"):
                self._user_turn(parts, param)
            else:
                raise invalid(f"{param}.role", f"role must be 'user' or 'model', got {role!r}.")

    def _model_turn(self, turn: int, parts: list[Any]) -> None:
        text: list[str] = []
        calls: list[dict[str, Any]] = []
        for j, raw in enumerate(parts):
            param = f"contents[{turn}].parts[{j}]"
            part = need_dict(raw, param)
            call = get(part, "functionCall")
            if call is not None:
                call = need_dict(call, f"{param}.functionCall")
                name = opt_str(call, "name", f"{param}.functionCall.")
                if not name:
                    raise invalid(f"{param}.functionCall.name", "a function call needs a name.")
                args = opt_dict(call, "args", f"{param}.functionCall.")
                call_id = opt_str(call, "id", f"{param}.functionCall.") or f"call_{turn}_{len(calls)}"
                calls.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)},
                    }
                )
            elif get(part, "thought") is True:
                continue  # the model's own thoughts sent back: not part of the conversation
            elif "text" in part:
                text.append(_text(part, param))
            elif get(part, "thoughtSignature") is not None:
                continue
            else:
                raise invalid(param, "a model turn holds text and functionCall parts only.")
        message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
        if calls:
            message["tool_calls"] = calls
        self.messages.append(message)
        self.pending.calls = [(c["id"], c["function"]["name"]) for c in calls]

    def _user_turn(self, parts: list[Any], turn_param: str) -> None:
        content: list[dict[str, Any]] = []
        for j, raw in enumerate(parts):
            param = f"{turn_param}.parts[{j}]"
            part = need_dict(raw, param)
            response = get(part, "functionResponse")
            if response is not None:
                self._tool_result(
                    need_dict(response, f"{param}.functionResponse"), f"{param}.functionResponse"
                )
            elif "text" in part:
                if get(part, "thought") is not True:
                    content.append({"type": "text", "text": _text(part, param)})
            elif get(part, "inlineData") is not None:
                blob = need_dict(get(part, "inlineData"), f"{param}.inlineData")
                mime = opt_str(blob, "mimeType", f"{param}.inlineData.") or "application/octet-stream"
                data = _blob_data(get(blob, "data"), f"{param}.inlineData.data")
                content.append(_media_part(mime, f"data:{mime};base64,{data}"))
            elif get(part, "fileData") is not None:
                self._file(
                    need_dict(get(part, "fileData"), f"{param}.fileData"), f"{param}.fileData", content
                )
            elif get(part, "functionCall") is not None:
                raise invalid(param, "a functionCall part belongs in a model turn.")
            else:
                raise invalid(param, "a part needs one of text, inlineData, fileData or functionResponse.")
        if content:
            self.messages.append({"role": "user", "content": content})

    def _tool_result(self, response: dict[str, Any], param: str) -> None:
        name = opt_str(response, "name", f"{param}.")
        if not name:
            raise invalid(f"{param}.name", "a function response needs the function's name.")
        call_id = self.pending.answer(opt_str(response, "id", f"{param}."), name, param)
        body = opt_dict(response, "response", f"{param}.")
        self.messages.append(
            {"role": "tool", "tool_call_id": call_id, "content": json.dumps(body, ensure_ascii=False)}
        )

    def _file(self, data: dict[str, Any], param: str, content: list[dict[str, Any]]) -> None:
        uri = opt_str(data, "fileUri", f"{param}.")
        if not uri:
            raise invalid(f"{param}.fileUri", "a fileData part needs a fileUri.")
        if not uri.startswith(("http://", "https://")):
            raise invalid(
                f"{param}.fileUri",
                "only http(s) URLs are supported (uploaded files are not): send inlineData.",
            )
        mime = opt_str(data, "mimeType", f"{param}.") or ""
        if mime.startswith("image/"):
            content.append(_media_part(mime, uri))
        else:
            self.attachments.append({"url": uri, "mime_type": mime or None})


def _text(part: dict[str, Any], param: str) -> str:
    text = part["text"]
    if not isinstance(text, str):
        raise invalid(f"{param}.text", "expected a string.")
    return text


def system_text(value: Any) -> str:
    """``systemInstruction``: a Content of text parts (a bare string is taken too)."""
    if isinstance(value, str):
        return value
    content = need_dict(value, "systemInstruction")
    pieces = []
    for j, raw in enumerate(need_list(get(content, "parts"), "systemInstruction.parts")):
        part = need_dict(raw, f"systemInstruction.parts[{j}]")
        if "text" not in part:
            raise invalid(f"systemInstruction.parts[{j}]", "system instructions hold text parts only.")
        pieces.append(_text(part, f"systemInstruction.parts[{j}]"))
    return "\n".join(pieces)


def to_messages(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(canonical messages, remote file attachments)`` of ``systemInstruction`` and ``contents``."""
    converted = _Contents()
    system = get(body, "systemInstruction")
    if system is not None and (text := system_text(system)):
        converted.messages.append({"role": "system", "content": text})
    contents = get(body, "contents")
    if contents is None:
        raise invalid("contents", "contents is not specified.")
    converted.add(contents)
    return converted.messages, converted.attachments


# --------------------------------------------------------------------------- tools


@dataclass
class Tools:
    tools: list[dict[str, Any]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


def to_tools(raw: Any) -> Tools:
    out = Tools()
    if raw is None:
        return out
    for i, item in enumerate(need_list(raw, "tools")):
        param = f"tools[{i}]"
        tool = need_dict(item, param)
        for key in UNSUPPORTED_TOOLS:
            if get(tool, key) is not None:
                raise InvalidRequest(
                    f"The tool '{param}.{key}' is not supported by this server (AI Studio's page offers "
                    "function declarations, Google Search and URL context).",
                    param=f"{param}.{key}",
                    code="unsupported_tool",
                )
        if get(tool, "googleSearch") is not None or get(tool, "googleSearchRetrieval") is not None:
            out.tools.append({"type": "google_search"})
        if get(tool, "urlContext") is not None:
            out.tools.append({"type": "url_context"})
        declarations = get(tool, "functionDeclarations")
        for j, decl in enumerate(
            need_list(declarations, f"{param}.functionDeclarations") if declarations else []
        ):
            out.tools.append(
                _function(
                    need_dict(decl, f"{param}.functionDeclarations[{j}]"),
                    out.names,
                    f"{param}.functionDeclarations[{j}]",
                )
            )
    return out


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


def _function(decl: dict[str, Any], names: list[str], param: str) -> dict[str, Any]:
    name = opt_str(decl, "name", f"{param}.")
    if not name or not _NAME.match(name):
        raise invalid(
            f"{param}.name",
            "a function name starts with a letter or underscore and has at most 64 letters, digits, "
            "underscores, dots or dashes.",
        )
    if name in names:
        raise invalid(f"{param}.name", f"function {name!r} is declared more than once.")
    names.append(name)
    function: dict[str, Any] = {"name": name, "description": opt_str(decl, "description", f"{param}.") or ""}
    schema = get(decl, "parametersJsonSchema")
    where = f"{param}.parametersJsonSchema"
    if schema is None:
        schema = get(decl, "parameters")
        where = f"{param}.parameters"
        if schema is not None:
            schema = openapi_to_json_schema(schema)
    if schema is not None:
        check_schema(schema, where, f"the parameters of function {name!r}")
        function["parameters"] = schema
    return {"type": "function", "function": function}


def tool_choice(config: Any, names: list[str]) -> tuple[str | dict[str, Any] | None, list[str] | None]:
    """``toolConfig`` -> (OpenAI ``tool_choice``, the only functions to declare or None for all)."""
    if config is None:
        return None, None
    fcc = opt_dict(need_dict(config, "toolConfig"), "functionCallingConfig", "toolConfig.")
    param = "toolConfig.functionCallingConfig."
    mode = (opt_str(fcc, "mode", param) or "AUTO").upper()
    allowed = get(fcc, "allowedFunctionNames")
    if allowed is not None:
        allowed = need_list(allowed, f"{param}allowedFunctionNames")
        for k, name in enumerate(allowed):
            if name not in names:
                raise invalid(
                    f"{param}allowedFunctionNames[{k}]", f"function {name!r} is not declared in tools."
                )
        if mode != "ANY":
            raise invalid(f"{param}allowedFunctionNames", "allowedFunctionNames needs mode ANY.")
    if mode in ("AUTO", "MODE_UNSPECIFIED", "VALIDATED"):
        return ("auto" if names else None), None
    if mode == "NONE":
        return "none", None
    if mode == "ANY":
        if not names:
            raise invalid(f"{param}mode", "mode ANY needs at least one function in tools.")
        if allowed and len(allowed) == 1:
            return {"type": "function", "function": {"name": allowed[0]}}, list(allowed)
        return "required", (list(allowed) if allowed else None)
    raise invalid(f"{param}mode", f"mode must be AUTO, ANY, NONE or VALIDATED, got {mode!r}.")


# --------------------------------------------------------------------------- generationConfig


@dataclass
class Generation:
    temperature: float | None = None
    top_p: float | None = None
    max_output: int | None = None
    stop: list[str] | None = None
    effort: str | int | None = None
    include_thoughts: bool = False
    response_format: dict[str, Any] | None = None


def to_generation(raw: Any) -> Generation:
    if raw is None:
        return Generation()
    config = need_dict(raw, "generationConfig")
    p = "generationConfig."
    count = opt_int(config, "candidateCount", p, 1)
    if count is not None and count > 1:
        raise InvalidRequest(
            "candidateCount > 1 is not supported: AI Studio returns one candidate per request.",
            param=f"{p}candidateCount",
            code="unsupported_parameter",
        )
    if get(config, "responseLogprobs") is True:
        raise InvalidRequest(
            "responseLogprobs is not supported by AI Studio.",
            param=f"{p}responseLogprobs",
            code="unsupported_parameter",
        )
    modalities = get(config, "responseModalities")
    if modalities is not None and any(
        str(m).upper() != "TEXT" for m in need_list(modalities, f"{p}responseModalities")
    ):
        raise InvalidRequest(
            "Only TEXT responseModalities are supported.",
            param=f"{p}responseModalities",
            code="unsupported_parameter",
        )
    opt_number(config, "topK", p, 0, 1_000_000)  # accepted and ignored: the page has no top-k control
    gen = Generation(
        temperature=opt_number(config, "temperature", p, 0, 2),
        top_p=opt_number(config, "topP", p, 0, 1),
        max_output=opt_int(config, "maxOutputTokens", p, 1),
        stop=_stops(get(config, "stopSequences"), f"{p}stopSequences"),
        response_format=_response_format(config),
    )
    _thinking(opt_dict(config, "thinkingConfig", p), gen)
    return gen


def _stops(value: Any, param: str) -> list[str] | None:
    if value is None:
        return None
    stops = need_list(value, param)
    if len(stops) > MAX_STOPS:
        raise invalid(param, f"at most {MAX_STOPS} stop sequences are supported.")
    if any(not isinstance(s, str) or not s for s in stops):
        raise invalid(param, "stop sequences must be non-empty strings.")
    return list(stops)


def _response_format(config: dict[str, Any]) -> dict[str, Any] | None:
    p = "generationConfig."
    mime = opt_str(config, "responseMimeType", p) or "text/plain"
    json_schema = get(config, "responseJsonSchema")
    where = f"{p}responseJsonSchema"
    if json_schema is None:
        json_schema = get(config, "responseSchema")
        where = f"{p}responseSchema"
        if json_schema is not None:
            json_schema = openapi_to_json_schema(json_schema)
    if mime == "text/plain":
        if json_schema is not None:
            raise invalid(where, "a response schema needs responseMimeType 'application/json'.")
        return None
    if mime != "application/json":
        raise InvalidRequest(
            f"responseMimeType {mime!r} is not supported: use 'text/plain' or 'application/json'.",
            param=f"{p}responseMimeType",
            code="unsupported_parameter",
        )
    if json_schema is None:
        return {"type": "json_object"}
    check_schema(json_schema, where, f"'{where}'")
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": json_schema}}


def _thinking(config: dict[str, Any], gen: Generation) -> None:
    p = "generationConfig.thinkingConfig."
    include = get(config, "includeThoughts")
    if include is not None and not isinstance(include, bool):
        raise invalid(f"{p}includeThoughts", "expected true or false.")
    gen.include_thoughts = bool(include)
    budget = opt_int(config, "thinkingBudget", p, -1)
    level = opt_str(config, "thinkingLevel", p)
    if budget is not None and level is not None:
        raise invalid(f"{p}thinkingLevel", "thinkingBudget and thinkingLevel cannot be used together.")
    if level is not None and level.upper() != "THINKING_LEVEL_UNSPECIFIED":
        if level.lower() not in THINKING_LEVELS:
            raise invalid(f"{p}thinkingLevel", f"must be MINIMAL, LOW, MEDIUM or HIGH, got {level!r}.")
        gen.effort = level.lower()
    elif budget is not None:
        gen.effort = budget


# --------------------------------------------------------------------------- the request


@dataclass
class GeminiRequest:
    spec: JobSpec
    include_thoughts: bool


def to_spec(model: str, raw: Any, *, stream: bool) -> GeminiRequest:
    if not isinstance(raw, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    if get(raw, "cachedContent") is not None:
        raise InvalidRequest(
            "cachedContent is not supported by this server.",
            param="cachedContent",
            code="unsupported_parameter",
        )
    messages, remote_files = to_messages(raw)
    gen = to_generation(get(raw, "generationConfig"))
    tools = to_tools(get(raw, "tools"))
    choice, only = tool_choice(get(raw, "toolConfig"), tools.names)
    declared = tools.tools
    if only is not None:
        declared = [t for t in declared if t.get("type") != "function" or t["function"]["name"] in only]
    if get(raw, "safetySettings") is not None:
        need_list(get(raw, "safetySettings"), "safetySettings")  # accepted: the page's own settings apply
    spec = JobSpec(
        model=model,
        messages=messages,
        stream=stream,
        temperature=gen.temperature,
        top_p=gen.top_p,
        max_output=gen.max_output,
        output_limits={"generationConfig.maxOutputTokens": gen.max_output} if gen.max_output else {},
        stop=gen.stop,
        reasoning_effort=gen.effort,
        tools=declared or None,
        tool_choice=choice,
        response_format=gen.response_format,
        attachments=list(remote_files) or None,
        model_param="model",
        messages_param="contents",
    )
    return GeminiRequest(spec, gen.include_thoughts)


def count_request(raw: Any) -> dict[str, Any]:
    """The ``generateContent`` body inside a ``countTokens`` request (its ``contents`` alone, or its
    ``generateContentRequest``)."""
    if not isinstance(raw, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    inner = get(raw, "generateContentRequest")
    if inner is not None:
        if get(raw, "contents") is not None:
            raise invalid("contents", "give either contents or generateContentRequest, not both.")
        return need_dict(inner, "generateContentRequest")
    return raw
