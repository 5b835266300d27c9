"""Issue 21 on the real stack: a ``SELECTORS_FILE`` whose selector does not parse, met at start-up, is refused
as a whole (logged, named in ``/health``) and the built-in selectors serve, on every page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL, SHARED_ENV
from tests.e2e.test_ui_changes import ADMIN, ADMIN_KEY, USER, worker_health


@pytest.fixture(scope="module")
def bad_file_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    path: Path = tmp_path_factory.mktemp("selectors") / "selectors.toml"
    # the prompt box is what start-up waits for: its selector must be parsed before the page uses it
    path.write_text("[replace]\nPROMPT_TEXTAREA = 'textarea[aria-label='\n")
    env = {**SHARED_ENV, "ADMIN_KEY": ADMIN_KEY, "SELECTORS_FILE": str(path)}
    with Stack(env=env, prefix="aisp-selstart-") as running:
        yield running


def test_an_unparsable_selector_at_start_is_refused_and_the_built_in_ones_serve(
    bad_file_stack: Stack,
) -> None:
    stack = bad_file_stack
    worker = worker_health(stack, lambda w: w.get("state") == "ready", "ready", timeout=60)
    assert all(worker["self_test"].values()), worker
    assert (
        "PROMPT_TEXTAREA" in worker["selectors"]["error"]
        and "is not a valid selector" in worker["selectors"]["error"]
    )
    assert worker["selectors"]["overrides"] == []
    served = requests.post(
        stack.base_url + "/v1/chat/completions",
        json={"model": PLAIN_MODEL, "messages": USER},
        headers=ADMIN,
        timeout=120,
    )
    assert served.status_code == 200, served.text
    assert "x-aistudio-degraded" not in served.headers
