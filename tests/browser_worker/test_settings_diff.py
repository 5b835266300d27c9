"""The run-settings diff (``browser_worker/job/settings.py``): pure, no browser.

What the job's settings stage changes on the page, given what the page shows and what the job wants:
only the controls that differ, in the page's order; controls the page does not show are left alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from browser_worker.job.settings import (
    DEFAULT_OUTPUT_LIMIT,
    Change,
    WantedSettings,
    settings_diff,
    thinking_matches,
    wanted_settings,
    wants_url_context,
)
from browser_worker.mapping.thinking import ThinkingPlan
from browser_worker.page.run_settings import RunSettings
from shared import protocol
from shared.errors import InvalidRequest
from shared.settings import Settings

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}

PAGE = RunSettings(
    model="gemini-2.5-flash",
    temperature=0.6,
    top_p=0.85,
    max_tokens=777.0,
    stops=("<X>",),
    tools_open=True,
    structured=False,
    url_context=False,
    search=False,
    fc=False,
    thinking_main=False,
    thinking_manual=None,
    budget=None,
    level=None,
)
WANTED = WantedSettings(
    temperature=0.6,
    top_p=0.85,
    max_tokens=777,
    stops=("<X>",),
    structured=False,
    schema=None,
    url_context=False,
    thinking=ThinkingPlan(main_toggle=False),
    search=False,
)


def diff(
    page: dict[str, Any] | None = None, wanted: dict[str, Any] | None = None, *, schema_saved: bool = False
) -> list[Change]:
    return settings_diff(
        dataclasses.replace(PAGE, **(page or {})),
        dataclasses.replace(WANTED, **(wanted or {})),
        schema_saved=schema_saved,
    )


def controls(changes: list[Change]) -> list[str]:
    return [c.control for c in changes]


def test_a_page_that_shows_the_job_settings_needs_no_change() -> None:
    assert diff() == []


@pytest.mark.parametrize(
    ("page", "wanted", "expected"),
    [
        ({"temperature": 0.6004}, {}, []),  # within the slider's precision
        ({}, {"temperature": 1.25}, [Change("temperature", 1.25)]),
        ({"temperature": 2.0}, {"temperature": 2.5}, []),  # compared as the page clamps it
        ({"temperature": None}, {}, [Change("temperature", 0.6)]),  # unreadable: set it
        ({"max_tokens": 777.4}, {}, []),
        ({}, {"max_tokens": 778}, [Change("max_output_tokens", 778)]),
        ({}, {"stops": ("<X>", " ", "")}, []),  # blank stops are not stops
        ({"stops": ("<X>", "<Y>")}, {}, [Change("stop_sequences", ["<X>"])]),
        ({}, {"top_p": 0.9}, [Change("top_p", 0.9)]),
        ({"top_p": 1.0}, {"top_p": 1.5}, []),
        ({"url_context": None}, {"url_context": True}, []),  # the page has no such switch
        ({}, {"url_context": True}, [Change("url_context", True)]),
        ({"search": True}, {"search": None}, []),  # the job leaves Google Search alone
        ({"search": True}, {"search": False}, [Change("google_search", False)]),
        ({"search": None}, {"search": True}, []),
    ],
)
def test_only_the_controls_that_differ_change(
    page: dict[str, Any], wanted: dict[str, Any], expected: list[Change]
) -> None:
    assert diff(page, wanted) == expected


def test_structured_output_changes_when_the_switch_or_the_saved_schema_differs() -> None:
    on = {"structured": True, "schema": SCHEMA}
    wanted = dataclasses.replace(WANTED, **on)
    assert diff(wanted=on) == [Change("structured_output", (True, SCHEMA, wanted.schema_digest))]
    assert diff({"structured": True}, on, schema_saved=True) == []
    assert diff({"structured": True}, on, schema_saved=False) == [
        Change("structured_output", (True, SCHEMA, wanted.schema_digest))
    ]
    assert diff({"structured": True}) == [Change("structured_output", (False, None, None))]
    assert diff({"structured": True}, {"structured": True}) == []  # json_object: no schema to save
    assert diff({"structured": None}) == []


def test_thinking_changes_only_when_the_page_shows_another_plan() -> None:
    budget = ThinkingPlan(main_toggle=True, manual_budget=True, budget=6144)
    assert diff(wanted={"thinking": budget}) == [Change("thinking", budget)]
    same = {"thinking_main": True, "thinking_manual": True, "budget": "6144"}
    assert diff(same, {"thinking": budget}) == []
    assert diff({**same, "budget": "1024"}, {"thinking": budget}) == [Change("thinking", budget)]
    level = ThinkingPlan(level="High")
    assert thinking_matches(level, dataclasses.replace(PAGE, level=" high "))
    assert not thinking_matches(level, dataclasses.replace(PAGE, level="Low"))
    assert thinking_matches(level, dataclasses.replace(PAGE, level=None))  # no level control shown


def test_every_change_comes_in_the_page_order() -> None:
    everything = diff(
        {
            "temperature": 0.1,
            "max_tokens": 1.0,
            "stops": (),
            "top_p": 0.1,
            "structured": True,
            "url_context": True,
            "thinking_main": True,
            "search": True,
        },
    )
    assert controls(everything) == [
        "temperature",
        "max_output_tokens",
        "stop_sequences",
        "top_p",
        "structured_output",
        "url_context",
        "thinking",
        "google_search",
    ]


# ------------------------------------------------------------------ what the job wants


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def job(**fields: Any) -> protocol.Job:
    return protocol.Job(model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}], **fields)


INFO = protocol.ModelInfo(
    id="gemini-2.5-flash",
    display_name="Flash",
    output_token_limit=8192,
    default_temperature=0.7,
    default_top_p=0.9,
)


def test_the_job_values_win_over_the_model_defaults_and_max_tokens_is_capped() -> None:
    wanted = wanted_settings(
        job(temperature=0.2, top_p=0.5, max_output_tokens=100_000, stop=["END"]),
        "gemini-2.5-flash",
        INFO,
        settings(),
        native_tools=False,
    )
    assert (wanted.temperature, wanted.top_p, wanted.max_tokens, wanted.stops) == (0.2, 0.5, 8192, ("END",))
    defaults = wanted_settings(
        job(), "gemini-2.5-flash", INFO, settings(default_stop_sequences=["##"]), native_tools=False
    )
    assert (defaults.temperature, defaults.top_p, defaults.max_tokens, defaults.stops) == (
        0.7,
        0.9,
        8192,
        ("##",),
    )
    unknown = wanted_settings(job(), "gemini-2.5-flash", None, settings(), native_tools=False)
    assert (unknown.temperature, unknown.top_p, unknown.max_tokens) == (1.0, 0.95, DEFAULT_OUTPUT_LIMIT)


def test_response_format_asks_for_structured_output_with_its_cleaned_schema() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}
    wanted = wanted_settings(
        job(response_format=fmt), "gemini-2.5-flash", INFO, settings(), native_tools=False
    )
    assert wanted.structured and wanted.schema is not None and "city" in wanted.schema["properties"]
    plain = wanted_settings(
        job(response_format={"type": "json_object"}), "gemini-2.5-flash", INFO, settings(), native_tools=False
    )
    assert plain.structured and plain.schema is None and plain.schema_digest is None


def test_native_function_calling_rules_out_url_context_and_search() -> None:
    tools = [{"type": "url_context"}]
    assert wants_url_context(tools)
    assert wanted_settings(
        job(tools=tools), "gemini-2.5-flash", INFO, settings(), native_tools=False
    ).url_context
    native = wanted_settings(
        job(tools=tools), "gemini-2.5-flash", INFO, settings(enable_google_search=True), native_tools=True
    )
    assert (native.url_context, native.search) == (False, None)
    assert (
        wanted_settings(
            job(), "gemini-2.5-flash", INFO, settings(enable_google_search=True), native_tools=False
        ).search
        is True
    )
    assert (
        wanted_settings(
            job(), "gemini-2.0-flash", INFO, settings(enable_google_search=True), native_tools=False
        ).search
        is None
    )


def test_a_bad_reasoning_effort_is_the_clients_error() -> None:
    with pytest.raises(InvalidRequest) as caught:
        wanted_settings(
            job(reasoning_effort="bogus"), "gemini-2.5-flash", INFO, settings(), native_tools=False
        )
    assert caught.value.param == "reasoning_effort"
