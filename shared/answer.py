"""Facts about an answer that more than one process decides, each decided here once.

Pure and free of I/O (the stream proxy's sans-IO decoder imports it).
"""

from __future__ import annotations


def finish_reason(reason: str | None, *, tool_calls: bool) -> str:
    """The one rule for an answer's finish reason: ``tool_calls`` whenever the answer holds a
    call, else the model's own reason (``stop`` when it gave none)."""
    return "tool_calls" if tool_calls else (reason or "stop")


def capture_label(*, stream: bool, helper: bool) -> str:
    """The capture tier that serves the answers (``WorkerStatus.capture``, ``/api/info``, a job's log):
    the stream proxy's feed when it is on, else the stream helper when it is on, else the page (DOM)."""
    return "stream" if stream else ("helper" if helper else "dom")
