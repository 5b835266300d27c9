"""How long one answer may take: the browser worker's limit for a job and the API server's backstop
both follow from this one formula (docs/aistudio.md §3.1)."""

from __future__ import annotations

from shared.settings import Settings

#: The fixed part of a job's limit; the prompt adds one second per thousand characters.
BASE_S = 5.0


def completion_timeout_s(settings: Settings, prompt_chars: int) -> float:
    """``max(5 + prompt_chars/1000, RESPONSE_COMPLETION_TIMEOUT_MS/1000)`` seconds: a long prompt
    takes the page longer to fill and the model longer to read."""
    return max(BASE_S + prompt_chars / 1000, settings.response_completion_timeout_ms / 1000)
