"""The doctor's report and summary (``browser_worker/doctor.py``) without a browser; the doctor on the real
stack and each simulator DOM variant is tested in ``tests/e2e/test_ui_changes.py``."""

from __future__ import annotations

import json

from browser_worker.doctor import Report


def test_the_summary_names_each_broken_control_its_selector_and_what_was_not_checked() -> None:
    report = Report()
    report.add("page_opens", True, "signed in")
    report.add("run_button", False, "found 0, not visible (essential)", "RUN_BUTTON")
    report.skipped = "the generation probes: an essential control is broken, so no prompt can run"
    summary = report.summary().splitlines()
    assert summary[0] == "doctor: 1 of 2 checks hold"
    skipped = "  not run: the generation probes: an essential control is broken, so no prompt can run"
    assert summary[1] == skipped
    assert summary[2].startswith("  BROKEN run_button (selector RUN_BUTTON = 'ms-run-button ")
    assert summary[2].endswith("): found 0, not visible (essential)")
    assert "SELECTORS_FILE" in summary[3]
    assert report.ok is False and json.loads(json.dumps(report.to_json()))["ok"] is False


def test_a_report_whose_checks_all_hold_is_ok_and_its_summary_is_one_line() -> None:
    report = Report()
    report.add("page_opens", True, "signed in")
    assert report.ok and report.summary() == "doctor: 1 of 1 checks hold"
