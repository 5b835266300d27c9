"""The finish stage: the answer's usage (the wire's, else an estimate) and its finish reason."""

from __future__ import annotations

import logging
import time

from browser_worker.job.capture import Emit, Sent
from shared import answer, protocol
from shared.tokens import estimate_tokens

log = logging.getLogger(__name__)


def usage_of(request_id: str, prompt_text: str, sent: Sent) -> protocol.Usage:
    """The wire's usage for the answer when it gave the completion count, else an estimate
    (``shared/tokens.py``) of the prompt and of everything sent: text, reasoning and calls."""
    usage = sent.usage
    if usage is not None and usage.completion_tokens is not None:
        return usage.model_copy(update={"id": request_id, "ts": time.time()})
    completion = estimate_tokens(sent.content + sent.reasoning) + sum(
        estimate_tokens(name + str(args)) for name, args in sent.tool_calls
    )
    prompt_tokens = estimate_tokens(prompt_text)
    return protocol.Usage(
        id=request_id,
        ts=time.time(),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        reasoning_tokens=estimate_tokens(sent.reasoning) if sent.reasoning else None,
        total_tokens=prompt_tokens + completion,
        estimated=True,
    )


async def finish(request_id: str, prompt_text: str, emit: Emit, sent: Sent) -> None:
    """Emit the answer's ``Usage`` and ``Finish`` (with the capture label) and log the answer."""
    await emit(usage_of(request_id, prompt_text, sent))
    reason = answer.finish_reason(sent.finish, tool_calls=bool(sent.tool_calls))
    await emit(protocol.Finish(id=request_id, ts=time.time(), reason=reason, capture=sent.tier))
    log.info(
        "answer complete via %s: %d chars, %d reasoning chars, %d tool calls, finish %s",
        sent.tier,
        len(sent.content),
        len(sent.reasoning),
        len(sent.tool_calls),
        reason,
    )
