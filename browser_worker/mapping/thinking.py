"""What the thinking controls should show for a model and a ``reasoning_effort`` (docs/aistudio.md §2.6, §3.3).

Pure: ``plan_thinking`` returns a ``ThinkingPlan``; the page object applies it.
A field that is ``None`` means "this model has no such control, or leave it
alone" (e.g. the budget toggle is hidden while 2.5 Flash's main toggle is off).

Accepted efforts: absent (``None``), ``"none"``, ``"minimal"``, ``"low"``,
``"medium"``, ``"high"``, ``-1``, ``0``, a positive int, and the same numbers
as strings. Anything else raises ``ValueError`` (the API answers 400).

Families (by lower-cased id, docs/aistudio.md §2.6):

* ``level4``: ``gemini-3`` + ``flash``; level select Minimal/Low/Medium/High.
* ``level2``: ``gemini-3`` + ``pro``; level select Low/High.
* ``budget_pro``: ``gemini-2.5-pro``; manual-budget toggle + budget 1024…32768, no main toggle.
* ``budget_flash``: ``gemini-2.5-flash*``, ``gemini-flash-latest``, ``gemini-flash-lite-latest``;
  main toggle, then manual-budget toggle + budget 512…24576.
* ``none``: everything else; nothing to set.

``"none"`` means reasoning off, as in OpenAI's API: off where the model has a
switch (2.5 Flash), otherwise the model's lowest setting (2.5 Pro: the minimum
budget; Gemini 3: its lowest level), exactly like ``0``. ``-1`` stays "on, no
limit" (the reference treats ``none`` like ``-1``).

Budget families, effort → plan. This deliberately improves on the reference,
which turns ``low``/``medium``/``high`` into "auto":

=========================  =====================================  =====================================
effort                     2.5 Pro (no main toggle)               2.5 Flash
=========================  =====================================  =====================================
``-1``                     manual off (auto, no limit)            main on, manual off (auto)
``none`` / ``0``           manual on, 1024 (Pro cannot turn off)  main off (budget toggle hidden)
``minimal``                manual on, 1024 (the minimum)          main on, manual on, 512 (the minimum)
``low`` (25 % of max)      manual on, 8192                        main on, manual on, 6144
``medium`` (50 % of max)   manual on, 16384                       main on, manual on, 12288
``high`` (the max)         manual on, 32768                       main on, manual on, 24576
positive int ``n``         manual on, ``n`` clamped to 1024…32768 main on, manual on, ``n`` clamped to 512…24576
absent                     ``enable_budget_by_default``: manual   ``enable_budget_by_default``: main on,
                           on with ``default_budget`` (clamped);  manual on, ``default_budget`` (clamped);
                           otherwise manual off (auto)            otherwise main off
=========================  =====================================  =====================================

Level families (docs/aistudio.md §3.3): 4-level names map
directly, ``-1`` → High, ``none`` → Minimal, integers ≥16000 High, ≥8000
Medium, ≥1024 Low, else Minimal; 2-level ``low``/``minimal``/``none`` → Low,
``medium``/``high``/``-1`` → High, integers ≥8000 High, else Low. Absent →
``default_level`` mapped the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, overload

Family = Literal["level4", "level2", "budget_pro", "budget_flash", "none"]
Level = Literal["Minimal", "Low", "Medium", "High"]

NAMED_EFFORTS = ("none", "minimal", "low", "medium", "high")

#: (minimum, maximum) of the thinking budget input, per budget family (docs/aistudio.md §2.6 page ``max``).
BUDGET_RANGES: dict[str, tuple[int, int]] = {
    "budget_pro": (1024, 32768),
    "budget_flash": (512, 24576),
}
#: Share of the family maximum used for the named efforts on budget models.
NAMED_BUDGET_SHARE = {"low": 0.25, "medium": 0.5, "high": 1.0}

#: Integer effort → level: the first (floor, level) with effort ≥ floor.
LEVEL4_THRESHOLDS: tuple[tuple[int, Level], ...] = (
    (16000, "High"),
    (8000, "Medium"),
    (1024, "Low"),
    (0, "Minimal"),
)
LEVEL2_THRESHOLDS: tuple[tuple[int, Level], ...] = ((8000, "High"), (0, "Low"))
LEVEL_NAMES: dict[str, Level] = {"minimal": "Minimal", "low": "Low", "medium": "Medium", "high": "High"}

_FLASH_LATEST_IDS = frozenset({"gemini-flash-latest", "gemini-flash-lite-latest"})


@dataclass(frozen=True)
class ThinkingPlan:
    """Target state of the thinking controls; ``None`` = the model has no such control or leave it."""

    main_toggle: bool | None = None
    manual_budget: bool | None = None
    budget: int | None = None
    level: Level | None = None


def family(model_id: str) -> Family:
    """The thinking-control family of a model, from its id alone (docs/aistudio.md §2.6)."""
    model = model_id.strip().lower().rsplit("/", 1)[-1]
    if "gemini-3" in model and "flash" in model:
        return "level4"
    if "gemini-3" in model and "pro" in model:
        return "level2"
    if "gemini-2.5-pro" in model:
        return "budget_pro"
    if "gemini-2.5-flash" in model or model in _FLASH_LATEST_IDS:
        return "budget_flash"
    return "none"


@overload
def normalize_effort(effort: str | int) -> str | int: ...
@overload
def normalize_effort(effort: None) -> None: ...
@overload
def normalize_effort(effort: str | int | None) -> str | int | None: ...
def normalize_effort(effort: str | int | None) -> str | int | None:
    """``None``, a named effort (lower-case) or an int ≥ -1 (``-1``: on, no limit); raises
    ``ValueError`` otherwise."""
    if effort is None:
        return None
    if isinstance(effort, bool):
        raise ValueError(_invalid(effort))
    if isinstance(effort, int):
        value = effort
    elif isinstance(effort, str):
        text = effort.strip().lower()
        if text in NAMED_EFFORTS:
            return text
        try:
            value = int(text)
        except ValueError:
            raise ValueError(_invalid(effort)) from None
    else:
        raise ValueError(_invalid(effort))
    if value < -1:
        raise ValueError(_invalid(effort))
    return value


def plan_thinking(
    model_id: str,
    reasoning_effort: str | int | None,
    *,
    enable_budget_by_default: bool = False,
    default_budget: int = 8192,
    default_level: str = "high",
) -> ThinkingPlan:
    """The thinking controls' target for ``model_id`` and ``reasoning_effort`` (see the module table)."""
    effort = normalize_effort(reasoning_effort)
    kind = family(model_id)
    if kind == "none":
        return ThinkingPlan()
    if kind in ("level4", "level2"):
        if effort is None:
            effort = normalize_effort(default_level)
        return ThinkingPlan(level=_level(kind, effort))
    return _budget_plan(kind, effort, enable_budget_by_default, default_budget)


def _budget_plan(
    kind: str, effort: str | int | None, enable_by_default: bool, default_budget: int
) -> ThinkingPlan:
    """Plan for the 2.5 Pro / 2.5 Flash budget controls."""
    low, high = BUDGET_RANGES[kind]
    has_main = kind == "budget_flash"

    def manual(budget: int) -> ThinkingPlan:
        return ThinkingPlan(
            main_toggle=True if has_main else None, manual_budget=True, budget=min(max(budget, low), high)
        )

    if effort is None:
        if enable_by_default:
            return manual(default_budget)
        return ThinkingPlan(main_toggle=False) if has_main else ThinkingPlan(manual_budget=False)
    if effort == -1:
        return ThinkingPlan(main_toggle=True if has_main else None, manual_budget=False)
    if effort in (0, "none"):
        # 2.5 Flash can switch thinking off; 2.5 Pro cannot, so it gets the smallest budget.
        return ThinkingPlan(main_toggle=False) if has_main else manual(low)
    if effort == "minimal":
        return manual(low)
    if isinstance(effort, str):
        return manual(int(high * NAMED_BUDGET_SHARE[effort]))
    return manual(effort)


def _level(kind: str, effort: str | int) -> Level:
    """The level-select option for a Gemini 3 model."""
    if effort == -1:
        return "High"
    if effort == "none":
        effort = 0  # thinking cannot be switched off on Gemini 3: its lowest level
    if isinstance(effort, int):
        thresholds = LEVEL4_THRESHOLDS if kind == "level4" else LEVEL2_THRESHOLDS
        return next(level for floor, level in thresholds if effort >= floor)
    if kind == "level4":
        return LEVEL_NAMES[effort]
    return "Low" if effort in ("low", "minimal") else "High"


def _invalid(effort: object) -> str:
    """The error text for an unusable ``reasoning_effort``."""
    return (
        f"invalid reasoning_effort {effort!r}: expected one of none, minimal, low, medium, high, "
        "-1 (no limit), 0 (off) or a positive integer budget"
    )
