"""What a failed self-test check means, in words an operator can act on (the slot's state, ``/health`` and
the doctor's report): each check names the selector it looks for (``selectors.SELF_TEST``)."""

from __future__ import annotations

from browser_worker import selectors as S

#: How to go on from a broken control: the doctor to see what changed, an override to fix it.
NEXT_STEP = "run `python -m browser_worker doctor`; a SELECTORS_FILE override can fix it (docs/selectors.md)"


def check_label(check: str) -> str:
    """``run_button (RUN_BUTTON)``: a self-test check with the named selector it looks for."""
    if check == "page_uncovered":
        return "page_uncovered (a dialog the worker does not know covers the page: DIALOG_ACCEPT_TEXTS)"
    const = S.SELF_TEST.get(check)
    return f"{check} ({const})" if const else check


def out_of_service(broken: list[str]) -> str:
    """The state message of a page whose essential controls fail."""
    return f"out of service: essential controls not found: {', '.join(map(check_label, broken))}; {NEXT_STEP}"


def degraded(missing: list[str]) -> str:
    """The state message of a page that serves without some secondary controls."""
    return f"degraded: controls not found: {', '.join(map(check_label, missing))}; requests that set them fail (STRICT_SETTINGS)"
