"""Degraded mode: a run setting the page cannot show or set no longer fails every request (docs/selectors.md).

Every run setting is a secondary control: without it the page still runs prompts. When one cannot be found
(the page's read shows no such control) or set (its setter fails), a job that did not ask for that setting runs
without it and the answer names it (``x-aistudio-degraded``). A job that asked for it fails with a 502 naming
the control and its selector, unless ``STRICT_SETTINGS=false``: then it runs degraded too. The essential
controls (prompt box, Run, the answer) are the self-test's business (``selectors.ESSENTIAL``).
"""

from __future__ import annotations

import logging

from browser_worker.job.settings import Control, structured_output, wants_url_context
from browser_worker.mapping import declarations
from browser_worker.page.run_settings import RunSettings
from shared import protocol
from shared.errors import SettingUnavailable

log = logging.getLogger(__name__)

#: Each control's named selector in ``browser_worker/selectors.py`` (what an override would change).
SELECTOR_OF: dict[str, str] = {
    "temperature": "TEMPERATURE_INPUT",
    "max_output_tokens": "MAX_TOKENS_INPUT",
    "stop_sequences": "STOP_INPUT",
    "top_p": "TOP_P_INPUT",
    "structured_output": "STRUCTURED_TOGGLE",
    "url_context": "URL_CONTEXT_TOGGLE",
    "thinking": "THINKING_MAIN_TOGGLE",
    "google_search": "SEARCH_TOGGLE",
    "temporary_chat": "TEMP_CHAT_TOGGLE",
}

#: Controls already warned about: one warning per control, not one per request (``forget`` after a reload).
_warned: set[str] = set()


def asked(control: Control, job: protocol.Job) -> bool:
    """The request itself sets ``control`` (rather than getting the page's default or the server's)."""
    match control:
        case "temperature":
            return job.temperature is not None
        case "top_p":
            return job.top_p is not None
        case "max_output_tokens":
            return job.max_output_tokens is not None
        case "stop_sequences":
            return bool(job.stop)
        case "structured_output":
            return structured_output(job.response_format)[0]
        case "url_context":
            return wants_url_context(job.tools)
        case "google_search":
            return any(declarations.is_google_search_tool(t) for t in job.tools or [])
        case "thinking":
            return job.reasoning_effort is not None
    return False


def absent(control: Control, current: RunSettings) -> bool:
    """The page's read shows no such control (for the numbers: nothing readable), so setting it cannot work."""
    match control:
        case "temperature":
            return current.temperature is None
        case "top_p":
            return current.top_p is None
        case "max_output_tokens":
            return current.max_tokens is None
    return False


def skip(control: Control, reason: str, job: protocol.Job, *, strict: bool) -> str:
    """Go on without ``control`` (returns its name for the answer's header), or raise ``SettingUnavailable``
    when the request asked for it and settings are strict."""
    selector = SELECTOR_OF.get(control, "?")
    if strict and asked(control, job):
        raise SettingUnavailable(
            f"the request sets {control}, but the page's {control} control {reason} (selector {selector}); "
            "run `python -m browser_worker doctor` to see what changed, or set STRICT_SETTINGS=false to run "
            "such requests without it",
            param=control,
        )
    note(control, f"{reason} (selector {selector})")
    return control


def forget() -> None:
    """Warn again about every control: a selector reload may have fixed some and broken others."""
    _warned.clear()


def note(control: str, reason: str) -> None:
    """The one warning (until the selectors are reloaded) that the page serves without ``control``."""
    if control not in _warned:
        _warned.add(control)
        log.warning("degraded: running without %s: %s; see docs/selectors.md", control, reason)
