"""Issue 21 on the real stack with ``STRICT_SETTINGS=false``: a request that sets a run setting the page no
longer offers runs without it, and its answer names what was skipped (``x-aistudio-degraded``)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL, SHARED_ENV
from tests.e2e.test_ui_changes import ADMIN_KEY, degraded_count, on_variant, worker_health

PROMPT = "#sim:words=3 hi"


@pytest.fixture(scope="module")
def lax_stack() -> Iterator[Stack]:
    env = {**SHARED_ENV, "ADMIN_KEY": ADMIN_KEY, "STRICT_SETTINGS": "false"}
    with Stack(env=env, prefix="aisp-lax-") as running:
        yield running


@pytest.fixture
def client(lax_stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=lax_stack.base_url + "/v1", api_key=ADMIN_KEY, max_retries=0, timeout=120
    ) as c:
        yield c


def test_a_request_setting_a_missing_control_runs_without_it_and_says_so(
    lax_stack: Stack, client: openai.OpenAI
) -> None:
    """``no_top_p``: ``top_p`` set runs degraded (not 502), streaming or not, and counts in the metric."""
    stack = lax_stack
    stack.sim_reset()  # (a reset also puts the normal page back, so it comes first)
    on_variant(stack, "no_top_p")
    worker_health(stack, lambda w: w.get("state") == "degraded", "degraded")
    counted = degraded_count(stack, "top_p")

    raw = client.chat.completions.with_raw_response.create(
        model=PLAIN_MODEL, messages=[{"role": "user", "content": PROMPT}], top_p=0.5, max_tokens=50
    )
    assert raw.status_code == 200 and raw.headers["x-aistudio-degraded"] == "top_p"
    assert raw.parse().choices[0].message.content
    with client.responses.with_streaming_response.create(
        model=PLAIN_MODEL, input=PROMPT, top_p=0.5, stream=True
    ) as streamed:
        assert streamed.status_code == 200 and streamed.headers["x-aistudio-degraded"] == "top_p"
        assert "response.completed" in streamed.read().decode()

    sent = stack.sim_requests()
    assert len(sent) == 2
    # what the page could set still reached AI Studio; top-P was the page's own (the simulator's default)
    assert sent[0]["generation_config"]["max_output_tokens"] == 50
    assert sent[0]["generation_config"].get("top_p") != 0.5
    assert degraded_count(stack, "top_p") == counted + 2
