"""OpenAI Chat Completions: the request as a ``JobSpec``, the answer as ``chat.completion`` objects.

The request's models are ``api_server/schemas.py``, the deprecated ``functions`` are rewritten by
``api_server/legacy_functions.py`` and the objects are built by ``api_server/render.py``'s
``CompletionBuilder``; this module ties them to the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from api_server import legacy_functions
from api_server.answer import Answer
from api_server.engine import JobSpec
from api_server.json_schemas import check_schema
from api_server.render import CompletionBuilder, check_response_format, check_tool_choice
from api_server.schemas import ChatCompletionRequest, FunctionTool, parse_chat_request
from api_server.sse import DONE, encode_comment, encode_event
from shared import protocol
from shared.errors import InvalidRequest, ServiceError

log = logging.getLogger(__name__)


def to_spec(raw: Any) -> tuple[JobSpec, ChatCompletionRequest, dict[str, Any], bool]:
    """``(spec, parsed request, body, legacy)``: ``body`` is the request with the deprecated ``functions``
    rewritten as tools, ``legacy`` whether it had them."""
    body, legacy = legacy_functions.to_tools(raw)
    creq = parse_chat_request(body)
    _check_schema(creq)
    _check_tools(creq)
    if creq.mcp_endpoint:
        log.info("ignoring mcp_endpoint %r: MCP is not supported", creq.mcp_endpoint)
    limits = {
        name: value
        for name in ("max_tokens", "max_completion_tokens", "max_output_tokens")
        if (value := getattr(creq, name)) is not None
    }
    spec = JobSpec(
        model=creq.model,
        messages=body["messages"],
        stream=bool(creq.stream),
        temperature=creq.temperature,
        top_p=creq.top_p,
        max_output=creq.max_output,
        output_limits=limits,
        stop=creq.stop_list,
        reasoning_effort=creq.reasoning_effort,
        tools=body.get("tools"),
        tool_choice=body.get("tool_choice"),
        response_format=body.get("response_format"),
        attachments=body.get("attachments"),
    )
    return spec, creq, body, legacy


def _check_schema(creq: ChatCompletionRequest) -> None:
    fmt = creq.response_format
    schema = getattr(getattr(fmt, "json_schema", None), "schema_", None)
    if schema is not None:
        check_schema(schema, "response_format.json_schema.schema", "'response_format.json_schema.schema'")


def _check_tools(creq: ChatCompletionRequest) -> None:
    """Every function's parameters are a usable schema and no name is declared twice."""
    seen: set[str] = set()
    for i, tool in enumerate(creq.tools or []):
        if not isinstance(tool, FunctionTool):
            continue
        name = tool.function.name
        if name in seen:
            raise InvalidRequest(
                f"Function {name!r} is declared more than once in tools.",
                param=f"tools.{i}.function.name",
                code="invalid_value",
            )
        seen.add(name)
        if tool.function.parameters:
            check_schema(
                tool.function.parameters,
                f"tools.{i}.function.parameters",
                f"the parameters of function {name!r}",
            )


class ChatRenderer:
    """The ``Renderer`` of chat completions: ``data:`` chunks, ``: keep-alive`` comments, ``[DONE]``."""

    media_type = "text/event-stream; charset=utf-8"

    def __init__(
        self,
        builder: CompletionBuilder,
        *,
        include_usage: bool,
        tool_choice: Any,
        response_format: dict[str, Any] | None,
    ) -> None:
        self.builder = builder
        self.include_usage = include_usage
        self.tool_choice = tool_choice
        self.response_format = response_format

    @property
    def answer(self) -> Answer:
        return self.builder.answer

    def feed(self, event: protocol.Message) -> bytes:
        return b"".join(encode_event(chunk) for chunk in self.builder.feed(event))

    def keepalive(self) -> bytes:
        return encode_comment("keep-alive")

    def _check(self) -> str | None:
        check_tool_choice(self.tool_choice, self.builder.tool_calls)
        return check_response_format(self.response_format, self.builder.text)

    def end(self) -> bytes:
        self._check()
        frames = [] if self.builder.role_sent else [encode_event(self.builder.start_chunk())]
        frames.append(encode_event(self.builder.final_chunk()))
        if self.include_usage:
            frames.append(encode_event(self.builder.usage_chunk()))
        frames.append(DONE)
        return b"".join(frames)

    def failure(self, err: ServiceError) -> bytes:
        return encode_event(err.to_openai()) + DONE

    def body(self) -> tuple[Any, Mapping[str, str]]:
        unfenced = self._check()
        _, source = self.builder.usage()
        return self.builder.completion(unfenced), {"x-usage-source": source}
