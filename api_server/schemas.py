"""Pydantic models of the OpenAI chat request, and its translation into a ``Job``.

``parse_chat_request(body)`` validates a decoded JSON body and raises
``InvalidRequest`` naming the offending parameter as a dotted path
(``messages.0.content``). The models accept the whole OpenAI chat request;
parameters that AI Studio cannot honour are either ignored (penalties,
``logit_bias``, ``user``, ``metadata``, ``store``, ``service_tier``) or refused
with a 400 (``n > 1``, ``logprobs``, ``top_logprobs``).

Output length: ``max_tokens``, ``max_completion_tokens`` and ``max_output_tokens``
are all honoured. When several are given and they differ, the smallest wins
(the client asked for at most each of them). One above the model's output limit is
refused by the engine (it knows the model list), not clamped.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.errors import InvalidRequest

log = logging.getLogger(__name__)


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


# --------------------------------------------------------------------------- content parts


class TextPart(_Model):
    type: Literal["text"]
    text: str


class ImageURL(_Model):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Model):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Model):
    data: str
    format: str = Field(min_length=1, max_length=16)


class AudioPart(_Model):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileData(_Model):
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class FilePart(_Model):
    type: Literal["file"]
    file: FileData


class RefusalPart(_Model):
    type: Literal["refusal"]
    refusal: str


UserPart = Annotated[TextPart | ImagePart | AudioPart | FilePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


# --------------------------------------------------------------------------- messages


class FunctionCallIn(_Model):
    name: str
    arguments: str = ""


class ToolCallIn(_Model):
    id: str = ""
    type: Literal["function"] = "function"
    function: FunctionCallIn


class SystemMessage(_Model):
    role: Literal["system"]
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(_Model):
    role: Literal["developer"]
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Model):
    role: Literal["user"]
    content: str | list[UserPart]
    name: str | None = None


class AssistantMessage(_Model):
    role: Literal["assistant"]
    content: str | list[AssistantPart] | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    function_call: FunctionCallIn | None = None


class ToolMessage(_Model):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str


class FunctionMessage(_Model):
    role: Literal["function"]
    content: str | None = None
    name: str


Message = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage,
    Field(discriminator="role"),
]


# --------------------------------------------------------------------------- tools and formats


class FunctionDef(_Model):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(_Model):
    type: Literal["function"]
    function: FunctionDef


class GoogleSearchTool(_Model):
    type: Literal["google_search"]


Tool = Annotated[FunctionTool | GoogleSearchTool, Field(discriminator="type")]


class NamedFunction(_Model):
    name: str


class NamedToolChoice(_Model):
    type: Literal["function"]
    function: NamedFunction


class TextFormat(_Model):
    type: Literal["text"]


class JsonObjectFormat(_Model):
    type: Literal["json_object"]


class JsonSchemaSpec(_Model):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=True)


class JsonSchemaFormat(_Model):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")]


class StreamOptions(_Model):
    include_usage: bool | None = None


class AttachmentRef(_Model):
    """An extension: a file given by ``url`` (data:/file:), ``path`` or inline ``data``."""

    url: str | None = None
    path: str | None = None
    data: str | None = None
    name: str | None = None
    mime_type: str | None = None


EFFORT_NAMES = ("minimal", "low", "medium", "high", "none")
_NUMERIC = re.compile(r"^-?\d+$")


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat request, plus the ``attachments`` and ``mcp_endpoint`` extensions."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    reasoning_effort: str | int | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    # accepted and ignored
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    # extensions
    attachments: list[str | AttachmentRef] | None = None
    mcp_endpoint: str | None = None

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list):
            if len(value) > 16:
                raise ValueError("at most 16 stop sequences are supported")
            if any(not s for s in value):
                raise ValueError("stop sequences must be non-empty strings")
        elif value == "":
            raise ValueError("a stop sequence must be a non-empty string")
        return value

    @field_validator("reasoning_effort", mode="before")
    @classmethod
    def _check_effort(cls, value: object) -> object:
        if value is None:
            return None
        if isinstance(value, bool):
            raise ValueError("must be one of minimal, low, medium, high, none, or an integer budget")
        if isinstance(value, int):
            if value < -1:
                raise ValueError("an integer budget must be -1 (unlimited), 0 (off) or positive")
            return value
        if isinstance(value, str):
            text = value.strip().lower()
            if text in EFFORT_NAMES:
                return text
            if _NUMERIC.match(text) and int(text) >= -1:
                return int(text)
        raise ValueError("must be one of minimal, low, medium, high, none, or an integer budget")

    @model_validator(mode="after")
    def _check_unsupported(self) -> ChatCompletionRequest:
        if self.n is not None and self.n > 1:
            raise _Refused("n", "n > 1 is not supported: AI Studio returns one choice per request")
        if self.logprobs:
            raise _Refused("logprobs", "logprobs are not supported by AI Studio")
        if self.top_logprobs is not None:
            raise _Refused("top_logprobs", "top_logprobs is not supported by AI Studio")
        names = {t.function.name for t in self.tools or [] if isinstance(t, FunctionTool)}
        if self.tool_choice == "required" and not names:
            raise _Refused("tool_choice", "tool_choice 'required' needs at least one function in tools")
        if isinstance(self.tool_choice, NamedToolChoice):
            if self.tool_choice.function.name not in names:
                raise _Refused(
                    "tool_choice",
                    f"tool_choice names function {self.tool_choice.function.name!r}, which is not in tools",
                )
        return self

    # ---- derived values

    @property
    def max_output(self) -> int | None:
        """The output limit: the smallest of the three spellings given."""
        given = [v for v in (self.max_tokens, self.max_completion_tokens, self.max_output_tokens) if v]
        if len(set(given)) > 1:
            log.info("several output limits given (%s); using the smallest", given)
        return min(given) if given else None

    @property
    def stop_list(self) -> list[str] | None:
        """None when absent or null (the worker's default stops apply); [] = no stops at all.

        Many clients send every unset parameter as null, so null keeps the default
        (``DEFAULT_STOP_SEQUENCES``) instead of switching stops off.
        """
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class _Refused(ValueError):
    """A well-formed but unsupported parameter (raised inside validation)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


# --------------------------------------------------------------------------- parsing


def model_id(requested: str) -> str:
    """``models/x`` / ``aistudio/x`` -> ``x``: the part after the last ``/``."""
    return requested.rpartition("/")[2].strip()


def _param_from_loc(body: Any, loc: tuple[Any, ...], field: str | None) -> str:
    """Turn a pydantic error location into a dotted request path.

    Pydantic puts union tags and member names (``user``, ``str``, ``list[...]``) in
    the location; walking the body alongside it keeps only real keys and indices
    (pydantic's indices are always within their list). ``field`` ends the path: a
    missing field, or the tag field of a tagged union (present or not).
    """
    parts: list[str] = []
    cur: Any = body
    for elem in loc:
        if isinstance(cur, list) and isinstance(elem, int) or isinstance(cur, dict) and elem in cur:
            parts.append(str(elem))
            cur = cur[elem]
    return ".".join([*parts, field] if field else parts)


def _describe(err: dict[str, Any], param: str) -> str:
    if err["type"] == "missing":
        return f"Missing required parameter: '{param}'."
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"Invalid value for '{param}': {msg}."


def parse_chat_request(body: Any) -> ChatCompletionRequest:
    """Validate a decoded JSON body; raise ``InvalidRequest`` naming the parameter."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        errors = cast(list[dict[str, Any]], exc.errors())  # pydantic's TypedDict, read as a dict
        # an unsupported-parameter refusal wins over generic errors
        for err in errors:
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, _Refused):
                raise InvalidRequest(str(cause), param=cause.param, code="unsupported_parameter") from None
        err = _most_specific(errors)
        loc, field = tuple(err["loc"]), None
        if err["type"] == "missing":
            loc, field = loc[:-1], str(loc[-1])
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field = str(err["ctx"]["discriminator"]).strip("'")
        param = _param_from_loc(body, loc, field)  # never empty: every error is under a top-level field
        raise InvalidRequest(_describe(err, param), param=param, code="invalid_value") from None


def _most_specific(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Among union alternatives' errors pick the deepest (the one closest to the bad value)."""
    return max(errors, key=lambda e: (len(e["loc"]), e["type"] != "missing"))
