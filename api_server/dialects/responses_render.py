"""OpenAI's Responses answers (sans-IO): the ``response`` object and its typed event stream.

``ResponsesRenderer`` is the ``Renderer`` (``api_server/delivery.py``) of ``POST /v1/responses``. The
output is a list of items, in the order the answer made them: a ``reasoning`` item (``rs_…``; its
``summary`` holds the reasoning text as a ``summary_text`` when ``reasoning.summary`` asked for it), a
``message`` (``msg_…``, one ``output_text`` part, Google Search sources as ``url_citation``
annotations) and ``function_call`` items (``fc_…``, with the ``call_id`` the client answers).

A stream is named SSE events, each with a ``sequence_number`` counting up from 0:
``response.created``, ``response.in_progress``, then per item ``response.output_item.added``, its parts
and deltas (``response.reasoning_summary_part.added``, ``response.reasoning_summary_text.delta``/
``.done``, ``response.reasoning_summary_part.done``; ``response.content_part.added``,
``response.output_text.delta``/``.done``, ``response.content_part.done``;
``response.function_call_arguments.delta``/``.done``) and ``response.output_item.done``; then
``response.completed`` (or ``response.incomplete`` when the answer was cut by ``max_output_tokens`` or
a safety stop). A failure after the stream started is ``response.failed`` with the error in the
response object. Keep-alives are SSE comments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from api_server.answer import Answer, Call
from api_server.render import check_response_format, check_tool_choice, tool_call_id, url_citation
from api_server.sse import encode_comment, encode_named_event
from shared import protocol
from shared.errors import ServiceError

INCOMPLETE = {"length": "max_output_tokens", "max_tokens": "max_output_tokens"}


def item_id(prefix: str, req_id: str, index: int) -> str:
    return f"{prefix}_" + hashlib.sha256(f"{req_id}:{index}".encode()).hexdigest()[:32]


class ResponsesRenderer:
    media_type = "text/event-stream; charset=utf-8"

    def __init__(
        self,
        *,
        req_id: str,
        model: str,
        created: int,
        prompt_messages: list[dict[str, Any]],
        echo: dict[str, Any],
        summary: bool,
        tool_choice: Any,
        response_format: dict[str, Any] | None,
        on_final: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.req_id = req_id
        self.id = "resp_" + req_id.removeprefix("req_")
        self.model = model
        self.created = created
        self.echo = echo
        self.summary = summary
        self.tool_choice = tool_choice
        self.response_format = response_format
        self.on_final = on_final
        self.answer = Answer(prompt_messages)
        self.items: list[dict[str, Any]] = []  # the output items so far (the last one may be open)
        self._open: str | None = None  # the type of the item being streamed
        self._seq = 0
        self._started = False
        self._reasoning_text = ""  # of the item being streamed
        self._message_text = ""

    # ---- objects

    def response(self, status: str, output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "model": self.model,
            "output": output,
            "usage": None,
            **self.echo,
            **extra,
        }

    def usage(self) -> dict[str, Any]:
        t = self.answer.tokens()
        output = t.output + t.reasoning
        return {
            "input_tokens": t.prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": t.reasoning},
            "total_tokens": t.prompt + output,
        }

    def _reasoning_item(self, index: int, text: str) -> dict[str, Any]:
        summary = [{"type": "summary_text", "text": text}] if self.summary else []
        return {"id": item_id("rs", self.req_id, index), "type": "reasoning", "summary": summary}

    def _output_text(self, text: str) -> dict[str, Any]:
        annotations = [
            {**url_citation(s)["url_citation"], "type": "url_citation"} for s in self.answer.sources
        ]
        return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}

    def _message_item(self, index: int, text: str, status: str = "completed") -> dict[str, Any]:
        content = [self._output_text(text)] if status == "completed" else []
        return {
            "id": item_id("msg", self.req_id, index),
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def _call_item(self, index: int, call: Call, status: str = "completed") -> dict[str, Any]:
        return {
            "id": item_id("fc", self.req_id, index),
            "type": "function_call",
            "status": status,
            "call_id": call.id or tool_call_id(self.req_id, call.index),
            "name": call.name,
            "arguments": call.arguments_json if status == "completed" else "",
        }

    def _status(self) -> tuple[str, dict[str, Any] | None]:
        finish = self.answer.finish
        if finish in INCOMPLETE:
            return "incomplete", {"reason": "max_output_tokens"}
        if self.answer.filtered:
            return "incomplete", {"reason": "content_filter"}
        return "completed", None

    def _check(self) -> None:
        check_tool_choice(self.tool_choice, [{"function": {"name": c.name}} for c in self.answer.calls])
        check_response_format(self.response_format, self.answer.text)

    def final(self) -> dict[str, Any]:
        status, incomplete = self._status()
        body = self.response(status, self.items, incomplete_details=incomplete, usage=self.usage())
        if self.on_final is not None:
            self.on_final(body)
        return body

    def body(self) -> tuple[Any, Mapping[str, str]]:
        self._check()
        a = self.answer
        self.items = []  # feed() built the stream's items; the whole answer builds its own
        if a.reasoning_parts:
            self.items.append(self._reasoning_item(len(self.items), a.reasoning))
        if a.text or not a.calls:
            self.items.append(self._message_item(len(self.items), a.text))
        for call in a.calls:
            self.items.append(self._call_item(len(self.items), call))
        return self.final(), {}

    # ---- stream

    def _event(self, name: str, data: dict[str, Any]) -> bytes:
        frame = encode_named_event(name, {"type": name, "sequence_number": self._seq, **data})
        self._seq += 1
        return frame

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        created = self.response("in_progress", [])
        return self._event("response.created", {"response": created}) + self._event(
            "response.in_progress", {"response": created}
        )

    def _where(self) -> dict[str, Any]:
        index = len(self.items) - 1
        return {"item_id": self.items[index]["id"], "output_index": index}

    def _close_item(self) -> bytes:
        if self._open is None:
            return b""
        kind, self._open = self._open, None
        index = len(self.items) - 1
        where = self._where()
        out = b""
        if kind == "reasoning":
            text = self._reasoning_text
            if self.summary:
                part = {"type": "summary_text", "text": text}
                out += self._event(
                    "response.reasoning_summary_text.done", {**where, "summary_index": 0, "text": text}
                )
                out += self._event(
                    "response.reasoning_summary_part.done", {**where, "summary_index": 0, "part": part}
                )
            self.items[index] = self._reasoning_item(index, text)
        elif kind == "message":
            text = self._message_text
            part = self._output_text(text)
            out += self._event(
                "response.output_text.done", {**where, "content_index": 0, "text": text, "logprobs": []}
            )
            out += self._event("response.content_part.done", {**where, "content_index": 0, "part": part})
            self.items[index] = self._message_item(index, text)
        return out + self._event(
            "response.output_item.done", {"output_index": index, "item": self.items[index]}
        )

    def _open_item(self, kind: str, item: dict[str, Any]) -> bytes:
        out = self._close_item()
        self.items.append(item)
        self._open = kind
        out += self._event("response.output_item.added", {"output_index": len(self.items) - 1, "item": item})
        where = self._where()
        if kind == "reasoning":
            self._reasoning_text = ""
            if self.summary:
                part = {"type": "summary_text", "text": ""}
                out += self._event(
                    "response.reasoning_summary_part.added", {**where, "summary_index": 0, "part": part}
                )
        elif kind == "message":
            self._message_text = ""
            empty: dict[str, Any] = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out += self._event("response.content_part.added", {**where, "content_index": 0, "part": empty})
        return out

    def feed(self, event: protocol.Message) -> bytes:
        piece = self.answer.feed(event)
        if piece is None:
            return b""
        out = self._start()
        index = len(self.items)
        if isinstance(piece, protocol.Reasoning):
            if self._open != "reasoning":
                out += self._open_item("reasoning", self._reasoning_item(index, "") | {"summary": []})
            self._reasoning_text += piece.text
            if not self.summary:
                return out
            delta = {**self._where(), "summary_index": 0, "delta": piece.text}
            return out + self._event("response.reasoning_summary_text.delta", delta)
        if isinstance(piece, protocol.Content):
            if self._open != "message":
                out += self._open_item("message", self._message_item(index, "", "in_progress"))
            self._message_text += piece.text
            delta = {**self._where(), "content_index": 0, "delta": piece.text, "logprobs": []}
            return out + self._event("response.output_text.delta", delta)
        out += self._open_item("function_call", self._call_item(index, piece, "in_progress"))
        where = self._where()
        args = piece.arguments_json
        out += self._event("response.function_call_arguments.delta", {**where, "delta": args})
        out += self._event(
            "response.function_call_arguments.done", {**where, "name": piece.name, "arguments": args}
        )
        self.items[-1] = self._call_item(where["output_index"], piece)
        return out

    def keepalive(self) -> bytes:
        return self._start() or encode_comment("keep-alive")

    def end(self) -> bytes:
        self._check()
        out = self._start()
        if not self.items:  # an empty answer still has one (empty) message
            out += self._open_item("message", self._message_item(0, "", "in_progress"))
        out += self._close_item()
        body = self.final()
        name = "response.completed" if body["status"] == "completed" else "response.incomplete"
        return out + self._event(name, {"response": body})

    def failure(self, err: ServiceError) -> bytes:
        error = {"code": err.code or err.error_type, "message": err.message}
        failed = self.response("failed", self.items, error=error, usage=self.usage())
        return self._start() + self._event("response.failed", {"response": failed})


def answer_message(body: dict[str, Any]) -> dict[str, Any] | None:
    """The canonical assistant message of a response object (for ``previous_response_id``)."""
    text = "".join(
        part.get("text", "")
        for item in body.get("output", [])
        if item.get("type") == "message"
        for part in item.get("content", [])
    )
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"] or json.dumps({})},
        }
        for item in body.get("output", [])
        if item.get("type") == "function_call"
    ]
    if not text and not calls:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message
