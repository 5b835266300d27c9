"""What the suite needs on the machine (Chromium, curl, node), and how a test asks for it.

Outside CI a missing tool skips the tests that need it (a developer without Node can still run the rest).
Under ``CI=true`` nothing is skipped for a missing tool: the run fails, so a broken install step can never
pass CI by skipping hundreds of tests.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_tools() -> list[str]:
    """The tools the whole suite needs that this machine lacks."""
    found = {
        "Chromium (/usr/bin/chromium)": CHROMIUM.exists(),
        "curl": shutil.which("curl") is not None,
        "node": shutil.which("node") is not None,
    }
    return [name for name, ok in found.items() if not ok]


def skip_unless(present: bool, what: str) -> None:
    """In a test or fixture: skip when ``what`` is missing; under CI fail instead."""
    if present:
        return
    if IN_CI:
        pytest.fail(f"{what} is not installed: under CI=true every test must run", pytrace=False)
    pytest.skip(f"{what} is not installed")


def needs(present: bool, what: str) -> pytest.MarkDecorator:
    """The marker form of ``skip_unless``: skip outside CI; under CI the test runs (and fails without it)."""
    return pytest.mark.skipif(not present and not IN_CI, reason=f"{what} is not installed")
