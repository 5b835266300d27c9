"""End-to-end fixtures: the real stack under supervisord against the AI Studio simulator.

Starting a stack costs 10 to 20 s, so ``shared_stack`` (stream capture) and ``shared_stack_dom``
(``STREAM_PORT=0``, answers read from the page) are shared by every test of this package and stopped
(with the clean-exit checks of ``Stack.stop``) when the package is done; ``stack`` / ``stack_dom`` hand
a test the shared stack, healthy, with the simulator's records and config reset (a test that must see
the stack as earlier tests left it asks for ``shared_stack``). Tests leave the stacks healthy: faults they inject
(restarts, a killed browser) are ones the stack recovers from by itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from aistudio_sim.stack import Stack
from tests.requirements import CHROMIUM, skip_unless

#: A model with thinking controls (budget family) and one without any.
THINKING_MODEL = "gemini-2.5-flash"
PLAIN_MODEL = "gemini-2.0-flash"
LEVEL_MODEL = "gemini-3-flash-preview"

#: Settings of the shared stacks: a stalled upstream answer gives up after 8 s instead of 60 s.
SHARED_ENV = {"SILENCE_TIMEOUT_MS": "8000"}
#: The main shared stack has admin routes on (no client keys exist unless a test adds one).
ADMIN_KEY = "e2e-admin-key-0123456789"


def doctor_process(
    stack: Stack, out: Path, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m browser_worker doctor --out OUT`` with the stack's settings (``env`` adds to them)."""
    return subprocess.run(
        [sys.executable, "-m", "browser_worker", "doctor", "--out", str(out), *flags],
        env={**stack.env, **(env or {})},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="package")
def shared_stack() -> Iterator[Stack]:
    """The shared demo stack: stream proxy on, ``ADMIN_KEY`` set, an ``ATTACHMENTS_DIR``."""
    with Stack(env={**SHARED_ENV, "ADMIN_KEY": ADMIN_KEY}, attachments=True) as running:
        yield running


@pytest.fixture(scope="package")
def shared_stack_dom() -> Iterator[Stack]:
    """A shared demo stack with ``STREAM_PORT=0`` (answers from the page) and default security settings."""
    with Stack(stream_port_enabled=False, env=SHARED_ENV) as running:
        yield running


@pytest.fixture
def stack(shared_stack: Stack) -> Stack:
    """The shared stack, healthy, with the simulator's records and config reset for this test."""
    return shared_stack.for_test()


@pytest.fixture
def stack_dom(shared_stack_dom: Stack) -> Stack:
    """The shared DOM-tier stack, healthy, with the simulator reset."""
    return shared_stack_dom.for_test()


@pytest.fixture(scope="session")
def node_bin() -> str:
    path = shutil.which("node")
    skip_unless(path is not None, "node (for the openai npm package)")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for the tests that drive the dashboard's pages (one per module)."""
    skip_unless(CHROMIUM.exists(), str(CHROMIUM))
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (nothing kept from another test: session storage included)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    opened = context.new_page()
    yield opened
    context.close()
