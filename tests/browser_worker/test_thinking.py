"""Thinking controls per model family and reasoning effort (docs/aistudio.md §2.6, §3.3)."""

from __future__ import annotations

import pytest

from browser_worker.mapping.thinking import ThinkingPlan, family, normalize_effort, plan_thinking

MODEL = {
    "level4": "gemini-3-flash-preview",
    "level2": "gemini-3-pro-preview",
    "budget_pro": "gemini-2.5-pro",
    "budget_flash": "gemini-2.5-flash",
    "none": "gemini-2.0-flash",
}


def _pro(manual, budget=None):
    return ThinkingPlan(manual_budget=manual, budget=budget)


def _flash(main, manual=None, budget=None):
    return ThinkingPlan(main_toggle=main, manual_budget=manual, budget=budget)


# effort, 3 Flash level, 3 Pro level, 2.5 Pro plan, 2.5 Flash plan; models without thinking get ThinkingPlan().
ROWS = [
    (None, "High", "High", _pro(False), _flash(False)),
    # "none" is off where the model allows it (2.5 Flash), else its lowest setting (issue 13).
    ("none", "Minimal", "Low", _pro(True, 1024), _flash(False)),
    ("NONE", "Minimal", "Low", _pro(True, 1024), _flash(False)),
    (-1, "High", "High", _pro(False), _flash(True, False)),
    ("-1", "High", "High", _pro(False), _flash(True, False)),
    (0, "Minimal", "Low", _pro(True, 1024), _flash(False)),
    ("0", "Minimal", "Low", _pro(True, 1024), _flash(False)),
    ("minimal", "Minimal", "Low", _pro(True, 1024), _flash(True, True, 512)),
    ("low", "Low", "Low", _pro(True, 8192), _flash(True, True, 6144)),
    ("medium", "Medium", "High", _pro(True, 16384), _flash(True, True, 12288)),
    ("high", "High", "High", _pro(True, 32768), _flash(True, True, 24576)),
    (100, "Minimal", "Low", _pro(True, 1024), _flash(True, True, 512)),
    (1023, "Minimal", "Low", _pro(True, 1024), _flash(True, True, 1023)),
    (1024, "Low", "Low", _pro(True, 1024), _flash(True, True, 1024)),
    (5000, "Low", "Low", _pro(True, 5000), _flash(True, True, 5000)),
    (7999, "Low", "Low", _pro(True, 7999), _flash(True, True, 7999)),
    (8000, "Medium", "High", _pro(True, 8000), _flash(True, True, 8000)),
    (15999, "Medium", "High", _pro(True, 15999), _flash(True, True, 15999)),
    (16000, "High", "High", _pro(True, 16000), _flash(True, True, 16000)),
    (30000, "High", "High", _pro(True, 30000), _flash(True, True, 24576)),
    (50000, "High", "High", _pro(True, 32768), _flash(True, True, 24576)),
    ("2048", "Low", "Low", _pro(True, 2048), _flash(True, True, 2048)),
]

TABLE = [
    (kind, row[0], expected)
    for row in ROWS
    for kind, expected in zip(
        MODEL,
        (ThinkingPlan(level=row[1]), ThinkingPlan(level=row[2]), row[3], row[4], ThinkingPlan()),
        strict=True,
    )
]


@pytest.mark.parametrize(("kind", "effort", "expected"), TABLE, ids=[f"{k}-{e!r}" for k, e, _ in TABLE])
def test_plan_for_every_family_and_effort(kind, effort, expected):
    """Each family maps each effort value to the documented controls."""
    assert plan_thinking(MODEL[kind], effort) == expected


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("gemini-3-flash-preview", "level4"),
        ("models/gemini-3-pro-preview", "level2"),
        ("gemini-3.1-pro-preview", "level2"),
        ("Gemini-2.5-Pro", "budget_pro"),
        ("gemini-2.5-pro-preview-06-05", "budget_pro"),
        ("gemini-2.5-flash", "budget_flash"),
        ("gemini-2.5-flash-lite", "budget_flash"),
        ("gemini-flash-latest", "budget_flash"),
        ("gemini-flash-lite-latest", "budget_flash"),
        ("models/gemini-flash-latest", "budget_flash"),
        ("gemini-2.0-flash", "none"),
        ("gemma-3-27b-it", "none"),
        ("gemini-robotics-er-1.5-preview", "none"),
    ],
)
def test_family_is_derived_from_the_id(model_id, expected):
    """Families follow the docs/aistudio.md §2.6 id rules, case-insensitively and without ``models/``."""
    assert family(model_id) == expected


def test_named_efforts_are_case_insensitive():
    """``HIGH`` and `` Low `` are accepted like their lower-case forms."""
    assert plan_thinking("gemini-2.5-pro", "HIGH") == plan_thinking("gemini-2.5-pro", "high")
    assert plan_thinking("gemini-3-flash", " Low ") == ThinkingPlan(level="Low")


@pytest.mark.parametrize("effort", ["extreme", "", "1.5", "-2", -5, True, 2.0, [], "auto"])
def test_invalid_effort_raises_value_error(effort):
    """Unknown words, negatives below -1, floats and booleans are refused with a clear message."""
    with pytest.raises(ValueError, match="invalid reasoning_effort"):
        plan_thinking("gemini-2.5-flash", effort)


def test_invalid_effort_raises_even_for_models_without_thinking():
    """Validation does not depend on the model."""
    with pytest.raises(ValueError):
        plan_thinking("gemma-3-27b-it", "lots")


def test_normalize_effort_keeps_minus_one_apart_from_none():
    """``-1`` and ``"-1"`` mean on with no limit; ``"none"`` means reasoning off (not the same)."""
    assert normalize_effort(-1) == normalize_effort("-1") == -1
    assert normalize_effort("none") == "none"
    assert normalize_effort("0") == 0


def test_absent_effort_uses_the_default_budget_when_enabled():
    """With ``enable_budget_by_default`` an absent effort gets the default budget, clamped."""
    assert plan_thinking("gemini-2.5-pro", None, enable_budget_by_default=True) == _pro(True, 8192)
    assert plan_thinking("gemini-2.5-flash", None, enable_budget_by_default=True) == _flash(True, True, 8192)
    assert plan_thinking(
        "gemini-2.5-flash", None, enable_budget_by_default=True, default_budget=99999
    ) == _flash(True, True, 24576)
    assert plan_thinking("gemini-2.5-pro", None, enable_budget_by_default=True, default_budget=10) == _pro(
        True, 1024
    )


def test_absent_effort_on_level_models_uses_the_default_level():
    """The configured default level applies, mapped through the family's rules."""
    assert plan_thinking("gemini-3-flash", None, default_level="medium") == ThinkingPlan(level="Medium")
    assert plan_thinking("gemini-3-pro", None, default_level="medium") == ThinkingPlan(level="High")
    assert plan_thinking("gemini-3-pro", None, default_level="low") == ThinkingPlan(level="Low")


def test_plans_are_hashable_for_caching():
    """A plan can key the page object's settings cache."""
    assert len({plan_thinking("gemini-2.5-pro", "high"), plan_thinking("gemini-2.5-pro", 32768)}) == 1


@pytest.mark.parametrize("effort", ["extreme", True, 2.0, -5])
def test_invalid_effort_message_names_the_value_and_what_is_accepted(effort):
    """The 400's message quotes the refused value and lists the accepted ones."""
    with pytest.raises(ValueError) as caught:
        normalize_effort(effort)
    assert str(caught.value) == (
        f"invalid reasoning_effort {effort!r}: expected one of none, minimal, low, medium, high, "
        "-1 (no limit), 0 (off) or a positive integer budget"
    )
