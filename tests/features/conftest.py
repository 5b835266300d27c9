"""Fixtures for the issue-8 acceptance tests: the real stack against the AI Studio simulator.

One stack (stream tier on), ``shared_stack``, is shared by every test in ``tests/features``;
``ATTACHMENTS_DIR`` points at a private temp folder that ``attachments_dir`` hands to the tests.
``stack`` hands a test that stack with the simulator's records reset. ``stack_dom`` (``STREAM_PORT=0``:
answers read from the page; ``shared_stack_dom`` underneath) starts only when a DOM-tier test asks for it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from aistudio_sim.stack import Stack

#: A model with Google Search and thinking controls; the tests ask for no thoughts.
MODEL = "gemini-2.5-flash"
#: A stalled answer gives up after 8 s instead of 60 s.
SHARED_ENV = {"SILENCE_TIMEOUT_MS": "8000"}


@pytest.fixture(scope="session")
def attachments_dir() -> Iterator[Path]:
    """The folder the stack accepts local attachment paths from (``ATTACHMENTS_DIR``)."""
    path = Path(tempfile.mkdtemp(prefix="aisp-att-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_stack(attachments_dir: Path) -> Iterator[Stack]:
    """The shared demo stack, stream proxy on, local attachments confined to ``attachments_dir``."""
    with Stack(env={**SHARED_ENV, "ATTACHMENTS_DIR": str(attachments_dir)}) as running:
        yield running


@pytest.fixture(scope="session")
def shared_stack_dom() -> Iterator[Stack]:
    """A demo stack with ``STREAM_PORT=0``: answers and tool calls come from the page (DOM tier)."""
    with Stack(stream_port_enabled=False, env=SHARED_ENV) as running:
        yield running


@pytest.fixture
def stack(shared_stack: Stack) -> Stack:
    """The shared stack, healthy, with the simulator's records and config reset."""
    return shared_stack.for_test()


@pytest.fixture
def stack_dom(shared_stack_dom: Stack) -> Stack:
    """The DOM-tier stack, healthy, with the simulator reset."""
    return shared_stack_dom.for_test()


def make_client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.base_url + "/v1", api_key="features-unused", max_retries=0, timeout=120
    )


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with make_client(stack) as c:
        yield c


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def last_request(stack: Stack) -> dict[str, Any]:
    """The newest GenerateContent request the simulator recorded."""
    return stack.sim_inspect("requests/last")
