"""The run-settings diff: what to change on the page, given what it shows and what the job wants.

Pure. ``wanted_settings`` turns a job (and its model's defaults) into ``WantedSettings``;
``settings_diff`` compares them with the page's ``RunSettings`` (read in one round trip) and
returns only the ``Change``s whose control differs, in the order the page applies them. A
control the page does not show (``None``) is left alone, and so is one that already holds the
wanted value within the control's precision. ``tests/browser_worker/test_settings_diff.py``
checks it; the job's settings stage (``runner.py``) applies the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from browser_worker.mapping import declarations, thinking
from browser_worker.page.run_settings import RunSettings
from shared import protocol
from shared.errors import InvalidRequest
from shared.settings import Settings

#: A model's output limit when the model list gives none.
DEFAULT_OUTPUT_LIMIT = 65536

Control = Literal[
    "temperature",
    "max_output_tokens",
    "stop_sequences",
    "top_p",
    "structured_output",
    "url_context",
    "thinking",
    "google_search",
]


@dataclass(frozen=True)
class Change:
    """One control to set, with the value its setter takes (``structured_output``: a
    ``(on, schema, schema_digest)`` triple; ``thinking``: the ``ThinkingPlan``)."""

    control: Control
    value: Any


@dataclass(frozen=True)
class WantedSettings:
    """What the job wants the page's run settings to be (``search`` None: leave it as it is)."""

    temperature: float
    top_p: float
    max_tokens: int
    stops: tuple[str, ...]
    structured: bool
    schema: dict[str, Any] | None
    url_context: bool
    thinking: thinking.ThinkingPlan
    search: bool | None

    @property
    def schema_digest(self) -> str | None:
        return declarations.declarations_digest(self.schema) if self.schema is not None else None


def output_limit(info: protocol.ModelInfo | None) -> int:
    """The model's output-token limit (``DEFAULT_OUTPUT_LIMIT`` when the model list has none)."""
    return (info.output_token_limit if info and info.output_token_limit else None) or DEFAULT_OUTPUT_LIMIT


def wanted_settings(
    job: protocol.Job, model: str, info: protocol.ModelInfo | None, settings: Settings, *, native_tools: bool
) -> WantedSettings:
    """The settings ``job`` runs with on ``model`` (``native_tools``: native function calling is on,
    which rules out URL context and Google Search)."""
    temperature = (
        job.temperature if job.temperature is not None else (info.default_temperature if info else 1.0)
    )
    top_p = job.top_p if job.top_p is not None else ((info.default_top_p if info else None) or 0.95)
    limit = output_limit(info)
    structured, schema = structured_output(job.response_format)
    try:
        plan = thinking.plan_thinking(model, job.reasoning_effort)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="reasoning_effort") from None
    search: bool | None = None
    if "gemini-2.0" not in model.lower() and not native_tools:
        if job.tools:
            search = any(declarations.is_google_search_tool(t) for t in job.tools)
        else:
            search = settings.enable_google_search
    return WantedSettings(
        temperature=temperature,
        top_p=top_p,
        max_tokens=min(max(1, job.max_output_tokens or limit), limit),
        stops=tuple(settings.default_stop_sequences if job.stop is None else job.stop),
        structured=structured,
        schema=schema,
        # Decided for every request, never left as an earlier request set it.
        url_context=not native_tools and (wants_url_context(job.tools) or settings.enable_url_context),
        thinking=plan,
        search=search,
    )


def settings_diff(current: RunSettings, wanted: WantedSettings, *, schema_saved: bool) -> list[Change]:
    """The controls to set, in order (``schema_saved``: the page holds ``wanted.schema`` already)."""
    changes: list[Change] = []
    if not _close(current.temperature, min(max(wanted.temperature, 0.0), 2.0), 1e-3):
        changes.append(Change("temperature", wanted.temperature))
    if not _close(current.max_tokens, int(wanted.max_tokens), 0.5):
        changes.append(Change("max_output_tokens", wanted.max_tokens))
    if set(current.stops) != {s.strip() for s in wanted.stops if s and s.strip()}:
        changes.append(Change("stop_sequences", list(wanted.stops)))
    if not _close(current.top_p, min(max(wanted.top_p, 0.0), 1.0), 1e-9):
        changes.append(Change("top_p", wanted.top_p))
    if (wanted.schema is not None and not schema_saved) or (
        current.structured is not None and current.structured != wanted.structured
    ):
        changes.append(Change("structured_output", (wanted.structured, wanted.schema, wanted.schema_digest)))
    if current.url_context is not None and current.url_context != wanted.url_context:
        changes.append(Change("url_context", wanted.url_context))
    if not thinking_matches(wanted.thinking, current):
        changes.append(Change("thinking", wanted.thinking))
    if wanted.search is not None and current.search is not None and current.search != wanted.search:
        changes.append(Change("google_search", wanted.search))
    return changes


def structured_output(response_format: dict[str, Any] | None) -> tuple[bool, dict[str, Any] | None]:
    """OpenAI ``response_format`` → (structured output on?, cleaned response schema or None)."""
    if not isinstance(response_format, dict):
        return False, None
    kind = response_format.get("type")
    if kind == "json_object":
        return True, None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return True, declarations.clean_schema(schema) if isinstance(schema, dict) else None
    return False, None


def thinking_matches(plan: thinking.ThinkingPlan, current: RunSettings) -> bool:
    """The page already shows what ``plan`` asks for (conservative: unsure means no)."""
    if plan.level:
        return current.level is None or current.level.strip().lower() == str(plan.level).lower()
    if plan.main_toggle is not None and current.thinking_main is not None:
        if current.thinking_main != plan.main_toggle:
            return False
        if plan.main_toggle is False:
            return True
    if plan.manual_budget is None:
        return True
    if current.thinking_manual is None:
        return True
    if current.thinking_manual != plan.manual_budget:
        return False
    return not (plan.manual_budget and plan.budget) or current.budget == str(int(plan.budget))


def wants_url_context(tools: list[dict[str, Any]] | None) -> bool:
    """The request's tools ask for URL context (the ``url_context`` tool or a function of that name)."""
    for tool in tools or []:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "url_context" or "url_context" in tool:
            return True
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else None
        if fn and fn.get("name") in ("urlContext", "url_context"):
            return True
    return False


def _close(current: float | None, wanted: float, tolerance: float) -> bool:
    return current is not None and abs(current - wanted) <= tolerance
