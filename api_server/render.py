"""Worker stream events -> OpenAI ``chat.completion`` / ``chat.completion.chunk`` objects (sans-IO).

``CompletionBuilder.feed(event)`` returns the chunks to stream for one event
and accumulates the whole answer for ``completion()``. Reasoning is never
merged into ``content``; tool calls get stable ``call_<24 hex>`` ids when the
worker has none.

Google Search sources (``grounding`` events) become OpenAI ``url_citation``
``annotations`` (no text span is known, so ``start_index``/``end_index`` are 0)
plus our extension ``grounding: {"sources": [{"uri", "title", "domain"}],
"queries": [...]}`` with the wire data as is; sources are de-duplicated by uri.
A stream carries them all in the delta of its final (``finish_reason``) chunk:
one delta, because the openai SDK's stream accumulator cannot merge a second
list of un-indexed objects (it raises for a second ``annotations`` delta).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import jsonschema

from api_server.answer import FILTERED_FINISHES, Answer, Call
from api_server.json_schemas import lower_case_types
from shared import answer, protocol
from shared.errors import UpstreamError

log = logging.getLogger(__name__)


def finish_reason(raw: str | None, has_tool_calls: bool, legacy_functions: bool = False) -> str:
    """Map a worker/Gemini finish reason to OpenAI's (``function_call`` instead of ``tool_calls`` for a
    request that used the deprecated ``functions``)."""
    reason = answer.finish_reason(raw, tool_calls=has_tool_calls).strip().lower()
    if reason in ("tool_calls", "function_call"):
        return "function_call" if legacy_functions else "tool_calls"
    if reason in ("length", "max_tokens"):
        return "length"
    if reason in FILTERED_FINISHES:
        return "content_filter"
    return "stop"


def tool_call_id(req_id: str, index: int) -> str:
    return "call_" + hashlib.sha256(f"{req_id}:{index}".encode()).hexdigest()[:24]


def url_citation(source: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI ``url_citation`` annotation for one grounding source (title: else domain, else uri)."""
    uri = str(source["uri"])  # Answer keeps only sources with a uri
    return {
        "type": "url_citation",
        "url_citation": {
            "url": uri,
            "title": str(source.get("title") or source.get("domain") or uri),
            "start_index": 0,
            "end_index": 0,
        },
    }


class CompletionBuilder:
    """``legacy_functions``: the request used ``functions``; the answer has one ``function_call`` (a second
    call from the model is dropped, as the legacy API has no parallel calls) instead of ``tool_calls``."""

    def __init__(
        self,
        *,
        req_id: str,
        model: str,
        created: int,
        fingerprint: str,
        prompt_messages: list[dict[str, Any]],
        legacy_functions: bool = False,
    ) -> None:
        self.id = f"chatcmpl-{req_id}"
        self.req_id = req_id
        self.model = model
        self.created = created
        self.fingerprint = fingerprint
        self.answer = Answer(prompt_messages, max_calls=1 if legacy_functions else None)
        self.legacy_functions = legacy_functions
        self._role_sent = False

    # ---- streaming

    @property
    def role_sent(self) -> bool:
        """A chunk (the first one carries the assistant role) has been made."""
        return self._role_sent

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        if not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        return self._envelope(
            choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        )

    def _envelope(self, **fields: Any) -> dict[str, Any]:
        """The fields every ``chat.completion.chunk`` of this stream shares, plus ``fields``."""
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            **fields,
        }

    def _tool_call(self, call: Call) -> dict[str, Any]:
        return {
            "id": call.id or tool_call_id(self.req_id, call.index),
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments_json},
        }

    def feed(self, event: protocol.Message) -> list[dict[str, Any]]:
        """Accumulate one worker event; return the chunks it produces."""
        piece = self.answer.feed(event)
        if isinstance(piece, protocol.Reasoning):
            return [self._chunk({"reasoning_content": piece.text})]
        if isinstance(piece, protocol.Content):
            return [self._chunk({"content": piece.text})]
        if isinstance(piece, Call):
            call = self._tool_call(piece)
            if self.legacy_functions:
                return [self._chunk({"function_call": call["function"]})]
            return [self._chunk({"tool_calls": [{"index": piece.index, **call}]})]
        return []

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [self._tool_call(c) for c in self.answer.calls]

    def grounding(self) -> dict[str, Any]:
        """``{"annotations": [...], "grounding": {...}}`` for the sources so far, or ``{}`` without any."""
        a = self.answer
        if not a.sources and not a.queries:
            return {}
        return {
            "annotations": [url_citation(s) for s in a.sources],
            "grounding": {"sources": list(a.sources), "queries": list(a.queries)},
        }

    def start_chunk(self) -> dict[str, Any]:
        """The chunk that opens a stream: the assistant role, empty content."""
        return self._chunk({"content": ""})

    def final_chunk(self) -> dict[str, Any]:
        """The chunk with ``finish_reason``; its delta has the grounding sources, if any."""
        return self._chunk(self.grounding(), finish=self.finish_reason)

    def usage_chunk(self) -> dict[str, Any]:
        usage, _ = self.usage()
        return self._envelope(choices=[], usage=usage)

    # ---- whole answer

    @property
    def text(self) -> str:
        return self.answer.text

    @property
    def finish_reason(self) -> str:
        return finish_reason(self.answer.raw_finish, bool(self.answer.calls), self.legacy_functions)

    def usage(self) -> tuple[dict[str, Any], str]:
        """(usage object, ``wire`` | ``estimate``). OpenAI's ``completion_tokens`` include the reasoning
        tokens, which ``completion_tokens_details`` then breaks out."""
        t = self.answer.tokens()
        completion = t.output + t.reasoning
        return {
            "prompt_tokens": t.prompt,
            "completion_tokens": completion,
            "total_tokens": t.prompt + completion,
            # OpenAI's detail objects in full; AI Studio reports no cached, audio or prediction tokens.
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": t.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }, t.source

    def completion(self, content_override: str | None = None) -> dict[str, Any]:
        text = content_override if content_override is not None else self.text
        calls = self.tool_calls
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text if (text or not calls) else None,
            "refusal": None,
        }
        if self.answer.reasoning_parts:
            message["reasoning_content"] = self.answer.reasoning
        if calls and self.legacy_functions:
            message["function_call"] = calls[0]["function"]
        elif calls:
            message["tool_calls"] = calls
        message.update(self.grounding())
        usage, _ = self.usage()
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}
            ],
            "usage": usage,
        }


# --------------------------------------------------------------------------- response_format


def _unfence(text: str) -> str:
    """Strip one surrounding Markdown code fence (```json ... ```), which models often add."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```") and len(stripped) >= 6:
        body = stripped[3:-3]
        first, _, rest = body.partition("\n")
        return (rest if first.strip().isalpha() or not first.strip() else body).strip()
    return stripped


def check_tool_choice(tool_choice: Any, tool_calls: list[dict[str, Any]]) -> None:
    """Enforce what the page cannot: ``required`` needs a call, a named choice only that function.

    Raises ``UpstreamError`` (502) naming ``tool_choice``; ``auto``/``none``/absent pass.
    """
    if tool_choice == "required":
        if not tool_calls:
            raise UpstreamError(
                "tool_choice is 'required' but the model answered without calling a function.",
                param="tool_choice",
                code="tool_choice_not_followed",
            )
        return
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name")
        called = [c["function"]["name"] for c in tool_calls]
        if wanted and (not called or any(name != wanted for name in called)):
            got = ", ".join(called) if called else "no function"
            raise UpstreamError(
                f"tool_choice names function {wanted!r} but the model called {got}.",
                param="tool_choice",
                code="tool_choice_not_followed",
            )


def check_response_format(response_format: dict[str, Any] | None, text: str) -> str | None:
    """Validate the answer against ``response_format``; returns the JSON text (unfenced).

    Returns None when there is nothing to check; raises ``UpstreamError`` with
    code ``invalid_json_output`` on a violation.
    """
    kind = (response_format or {}).get("type")
    if kind not in ("json_object", "json_schema"):
        return None
    candidate = _unfence(text)
    try:
        value = json.loads(candidate)
    except ValueError as exc:
        raise UpstreamError(
            f"The model's answer is not valid JSON ({exc}).", code="invalid_json_output"
        ) from None
    if kind == "json_object":
        if not isinstance(value, dict):
            raise UpstreamError("The model's answer is JSON but not an object.", code="invalid_json_output")
        return candidate
    schema = ((response_format or {}).get("json_schema") or {}).get("schema")
    if schema:
        # The request's check_schema (a 400) accepted the schema with its type names in lower case.
        schema = lower_case_types(schema)
        try:
            jsonschema.validators.validator_for(schema)(schema).validate(value)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise UpstreamError(
                f"The model's answer violates the JSON schema at {where}: {exc.message}",
                code="invalid_json_output",
            ) from None
    return candidate
