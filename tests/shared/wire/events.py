"""The decoder's expected events, written short.

Each helper builds the ``shared.protocol`` message the decoder yields under the tests' fixed
identity: ``stream_id=""`` and a clock that always says ``0.0`` (``decoder()`` makes one). The
positional arguments follow the wire: ``Error(kind, status, message)``.
"""

from __future__ import annotations

from typing import Any

from shared import protocol
from shared.wire.decoder import ResponseDecoder

ID = ""
TS = 0.0


def make_decoder(status: int = 200, content_encoding: str | None = None) -> ResponseDecoder:
    """A decoder whose events compare equal to the helpers below."""
    return ResponseDecoder(status=status, content_encoding=content_encoding, stream_id=ID, clock=lambda: TS)


def Reasoning(text: str) -> protocol.Reasoning:
    return protocol.Reasoning(id=ID, ts=TS, text=text)


def Content(text: str) -> protocol.Content:
    return protocol.Content(id=ID, ts=TS, text=text)


def ToolCall(name: str, arguments: dict[str, Any]) -> protocol.ToolCall:
    return protocol.ToolCall(id=ID, ts=TS, name=name, arguments=arguments)


def Grounding(sources: list[dict[str, Any]], queries: list[str]) -> protocol.Grounding:
    return protocol.Grounding(id=ID, ts=TS, sources=sources, queries=queries)


def Usage(
    prompt_tokens: int | None,
    completion_tokens: int | None,
    reasoning_tokens: int | None,
    total_tokens: int | None,
) -> protocol.Usage:
    return protocol.Usage(
        id=ID,
        ts=TS,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        reasoning_tokens=reasoning_tokens,
        total_tokens=total_tokens,
    )


def Finish(reason: str) -> protocol.Finish:
    return protocol.Finish(id=ID, ts=TS, reason=reason)


def Error(kind: str, status: int | None, message: str) -> protocol.Error:
    return protocol.Error(id=ID, ts=TS, kind=kind, status=status, message=message)


def Done() -> protocol.Done:
    return protocol.Done(id=ID, ts=TS)
