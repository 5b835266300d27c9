"""Anthropic's Messages answers (sans-IO): the ``message`` object, its event stream, and its errors.

``AnthropicRenderer`` is the ``Renderer`` (``api_server/delivery.py``) of ``POST /v1/messages``. A stream
is named SSE events as Anthropic sends them: ``message_start`` (before anything else, a ``ping`` too),
then per content block ``content_block_start``, its deltas (``thinking_delta`` and a closing
``signature_delta``, ``text_delta``, one ``input_json_delta`` per tool call), ``content_block_stop``;
then ``message_delta`` (``stop_reason``, ``usage``) and ``message_stop``. Keep-alives are ``ping``
events; an error after the stream started is an ``error`` event.

``stop_reason``: ``end_turn``, ``max_tokens``, ``tool_use``, ``refusal`` (a safety stop).
``usage.output_tokens`` counts the thinking too, as Anthropic's does; cache counts are 0.

``error_body``/``shape``: ``{"type": "error", "error": {"type", "message"}, "request_id"}`` with
Anthropic's status for each error: 400 ``invalid_request_error``, 401 ``authentication_error``, 403
``permission_error``, 404 ``not_found_error``, 413 ``request_too_large``, 429 ``rate_limit_error``,
500 ``api_error``, 504 ``timeout_error`` and 529 ``overloaded_error`` when the service cannot take
the request (the worker unavailable, the queue full).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from api_server.answer import Answer, Call
from api_server.render import check_tool_choice
from api_server.sse import encode_named_event
from shared import protocol
from shared.errors import QueueFull, ServiceError, WorkerUnavailable
from shared.tokens import estimate_tokens

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}

STOP_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
}


def status_of(err: ServiceError) -> int:
    """Anthropic's status: 529 when the service is overloaded (no worker, a full queue), else ours."""
    if isinstance(err, QueueFull) or (isinstance(err, WorkerUnavailable) and err.status == 503):
        return 529
    return err.status


def error_body(err: ServiceError, request_id: str | None = None) -> dict[str, Any]:
    status = status_of(err)
    kind = ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": err.message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def shape(err: ServiceError) -> tuple[int, dict[str, Any]]:
    """The error shape of the Anthropic paths (``api_server/dialects/errors.py``)."""
    return status_of(err), error_body(err)


def tool_use_id(req_id: str, index: int) -> str:
    return "toolu_" + hashlib.sha256(f"{req_id}:{index}".encode()).hexdigest()[:24]


def signature(req_id: str, thinking: str) -> str:
    """An opaque signature for a thinking block (clients send it back; nothing checks it)."""
    return base64.b64encode(hashlib.sha256(f"{req_id}:{thinking}".encode()).digest()).decode()


class AnthropicRenderer:
    media_type = "text/event-stream; charset=utf-8"

    def __init__(
        self,
        *,
        req_id: str,
        model: str,
        prompt_messages: list[dict[str, Any]],
        tool_choice: Any,
    ) -> None:
        self.req_id = req_id
        self.id = f"msg_{req_id.removeprefix('req_')}"
        self.model = model
        self.tool_choice = tool_choice
        self.answer = Answer(prompt_messages)
        self.input_estimate = estimate_tokens("".join(str(m.get("content") or "") for m in prompt_messages))
        self._started = False
        self._open: str | None = None  # the type of the block being streamed
        self._index = -1

    # ---- objects

    def _message(
        self, content: list[dict[str, Any]], stop_reason: str | None, usage: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }

    def _tool_use(self, call: Call) -> dict[str, Any]:
        return {
            "type": "tool_use",
            "id": call.id or tool_use_id(self.req_id, call.index),
            "name": call.name,
            "input": call.arguments,
        }

    @property
    def stop_reason(self) -> str:
        finish = self.answer.finish
        if self.answer.filtered:
            return "refusal"
        return STOP_REASONS.get(finish, "end_turn")

    def usage(self) -> dict[str, Any]:
        t = self.answer.tokens()
        return {
            "input_tokens": t.prompt,
            "output_tokens": t.output + t.reasoning,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }

    def _check(self) -> None:
        calls = [{"function": {"name": c.name}} for c in self.answer.calls]
        check_tool_choice(self.tool_choice, calls)

    def body(self) -> tuple[Any, Mapping[str, str]]:
        self._check()
        a = self.answer
        content: list[dict[str, Any]] = []
        if a.reasoning_parts:
            content.append(
                {
                    "type": "thinking",
                    "thinking": a.reasoning,
                    "signature": signature(self.req_id, a.reasoning),
                }
            )
        if a.text or not a.calls:
            content.append({"type": "text", "text": a.text})
        content += [self._tool_use(c) for c in a.calls]
        return self._message(content, self.stop_reason, self.usage()), {"request-id": self.req_id}

    # ---- stream

    def _event(self, name: str, data: dict[str, Any]) -> bytes:
        return encode_named_event(name, {"type": name, **data})

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        usage = {
            "input_tokens": self.input_estimate,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        return self._event("message_start", {"message": self._message([], None, usage)}) + self._event(
            "ping", {}
        )

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        out = b""
        if self._open == "thinking":
            sig = signature(self.req_id, self.answer.reasoning)
            out += self._event(
                "content_block_delta",
                {"index": self._index, "delta": {"type": "signature_delta", "signature": sig}},
            )
        self._open = None
        return out + self._event("content_block_stop", {"index": self._index})

    def _open_block(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close_block()
        self._index += 1
        self._open = kind
        return out + self._event("content_block_start", {"index": self._index, "content_block": block})

    def feed(self, event: protocol.Message) -> bytes:
        piece = self.answer.feed(event)
        if piece is None:
            return b""
        out = self._start()
        if isinstance(piece, protocol.Reasoning):
            if self._open != "thinking":
                out += self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            delta = {"type": "thinking_delta", "thinking": piece.text}
        elif isinstance(piece, protocol.Content):
            if self._open != "text":
                out += self._open_block("text", {"type": "text", "text": ""})
            delta = {"type": "text_delta", "text": piece.text}
        else:
            out += self._open_block("tool_use", {**self._tool_use(piece), "input": {}})
            delta = {"type": "input_json_delta", "partial_json": piece.arguments_json}
        return out + self._event("content_block_delta", {"index": self._index, "delta": delta})

    def keepalive(self) -> bytes:
        return self._start() or self._event("ping", {})

    def end(self) -> bytes:
        self._check()
        out = self._start()
        if self._index < 0:  # an empty answer still has one (empty) text block
            out += self._open_block("text", {"type": "text", "text": ""})
        out += self._close_block()
        usage = self.usage()
        delta = {"delta": {"stop_reason": self.stop_reason, "stop_sequence": None}, "usage": usage}
        return out + self._event("message_delta", delta) + self._event("message_stop", {})

    def failure(self, err: ServiceError) -> bytes:
        return encode_named_event("error", error_body(err, self.req_id))
