"""One answer as the worker's events build it: the dialect-neutral half of every renderer (sans-IO).

``Answer.feed(event)`` keeps what the client will see (reasoning, text, function calls,
Google Search sources, the finish reason, the wire's token counts) and returns the part of
the event a stream should send now: a ``protocol.Reasoning`` or ``protocol.Content`` with
text, or a ``Call`` (its index fixed, in arrival order), else ``None``. Each dialect
(OpenAI chat, Responses, Anthropic, Gemini) turns these into its own objects and ids;
nothing here knows any of their shapes.

``tokens()`` counts the answer: the wire's numbers when AI Studio sent them (flagged
``wire``), else an estimate from the text (``estimate``). ``output`` is the answer's own
tokens without the reasoning, which ``reasoning`` counts apart: each dialect adds them up
its own way (OpenAI and Anthropic include reasoning in the output count, Gemini does not).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from shared import answer, protocol
from shared.tokens import estimate_tokens

log = logging.getLogger(__name__)

#: Neutral finish reasons that mean a filter stopped the answer: OpenAI's ``content_filter``,
#: Anthropic's ``refusal``, the Responses API's ``incomplete`` for ``content_filter``.
FILTERED_FINISHES = frozenset(
    {
        "safety",
        "recitation",
        "blocklist",
        "prohibited_content",
        "spii",
        "image_safety",
        "content_filter",
        "language",
    }
)


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The text of a conversation (canonical messages), for estimating prompt tokens."""
    pieces: list[str] = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            pieces.append(content)
        elif isinstance(content, list):
            pieces.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        for call in m.get("tool_calls") or []:
            fn = call.get("function") or {}
            pieces.append(f"{fn.get('name', '')} {fn.get('arguments', '')}")
    return "\n".join(pieces)


@dataclass(frozen=True)
class Call:
    """One function call of the answer; ``id`` is the wire's own, if it gave one."""

    index: int
    name: str
    arguments: dict[str, Any]
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False)


@dataclass(frozen=True)
class Tokens:
    prompt: int
    #: The answer's own tokens (text and calls), reasoning excluded.
    output: int
    reasoning: int
    source: Literal["wire", "estimate"]


Piece = protocol.Reasoning | protocol.Content | Call


class Answer:
    """``max_calls``: keep at most this many calls (the legacy ``functions`` API has one); later ones
    are dropped with a log line."""

    def __init__(self, prompt_messages: list[dict[str, Any]], *, max_calls: int | None = None) -> None:
        self.prompt_messages = prompt_messages
        self.max_calls = max_calls
        self.reasoning_parts: list[str] = []
        self.content_parts: list[str] = []
        self.calls: list[Call] = []
        self.raw_finish: str | None = None
        self.wire_usage: protocol.Usage | None = None
        self.sources: list[dict[str, Any]] = []
        self.queries: list[str] = []

    def feed(self, event: protocol.Message) -> Piece | None:
        """Keep one worker event; return what a stream should send for it now."""
        if isinstance(event, protocol.Reasoning) and event.text:
            self.reasoning_parts.append(event.text)
            return event
        if isinstance(event, protocol.Content) and event.text:
            self.content_parts.append(event.text)
            return event
        if isinstance(event, protocol.ToolCall):
            index = len(self.calls)
            if self.max_calls is not None and index >= self.max_calls:
                log.info("dropping call %d (%s): at most %d allowed", index, event.name, self.max_calls)
                return None
            call = Call(index, event.name, dict(event.arguments), event.call_id)
            self.calls.append(call)
            return call
        if isinstance(event, protocol.Grounding):
            self._grounding(event)
        elif isinstance(event, protocol.Usage):
            if (
                not event.estimated
                and event.prompt_tokens is not None
                and event.completion_tokens is not None
            ):
                self.wire_usage = event
        elif isinstance(event, protocol.Finish):
            self.raw_finish = event.reason
        return None

    def _grounding(self, event: protocol.Grounding) -> None:
        known = {s.get("uri") for s in self.sources}
        for source in event.sources:
            uri = source.get("uri")
            if isinstance(uri, str) and uri and uri not in known:
                known.add(uri)
                self.sources.append(dict(source))
        self.queries += [q for q in dict.fromkeys(event.queries) if q not in self.queries]

    @property
    def text(self) -> str:
        return "".join(self.content_parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    @property
    def finish(self) -> str:
        """The neutral finish reason (``shared/answer.py``): stop, length, tool_calls, safety…"""
        return answer.finish_reason(self.raw_finish, tool_calls=bool(self.calls)).strip().lower()

    @property
    def filtered(self) -> bool:
        """A filter stopped the answer (``FILTERED_FINISHES``)."""
        return self.finish in FILTERED_FINISHES

    def tokens(self) -> Tokens:
        w = self.wire_usage
        if w is not None:
            reasoning = (
                w.reasoning_tokens if w.reasoning_tokens is not None else estimate_tokens(self.reasoning)
            )
            return Tokens(w.prompt_tokens or 0, w.completion_tokens or 0, reasoning, "wire")
        args = "".join(c.name + c.arguments_json for c in self.calls)
        return Tokens(
            estimate_tokens(prompt_text(self.prompt_messages)),
            estimate_tokens(self.text) + estimate_tokens(args),
            estimate_tokens(self.reasoning),
            "estimate",
        )
