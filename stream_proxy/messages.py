"""Decoder events as protocol messages: the one bridge from ``decoder`` to ``shared.protocol``.

Used by the proxy's addon (events of a sniffed flow) and by the worker's helper
tier (events of a body fetched from ``HELPER_ENDPOINT``).
"""

from __future__ import annotations

import time
from typing import Any

from shared import protocol
from stream_proxy import decoder

MESSAGE_TYPES: dict[str, type[protocol.Message]] = {
    "reasoning": protocol.Reasoning,
    "content": protocol.Content,
    "tool_call": protocol.ToolCall,
    "grounding": protocol.Grounding,
    "usage": protocol.Usage,
    "finish": protocol.Finish,
    "error": protocol.Error,
    "done": protocol.Done,
}


def to_message(event: decoder.Event, stream_id: str, ts: float | None = None, **extra: Any) -> protocol.Message:
    """The protocol message for ``event``, keyed to ``stream_id`` (a flow id or a request id)."""
    fields = event.to_dict()
    kind = fields.pop("type")
    return MESSAGE_TYPES[kind].model_validate(dict(id=stream_id, ts=time.time() if ts is None else ts, **fields, **extra))
