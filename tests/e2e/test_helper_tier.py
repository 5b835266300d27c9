"""The second capture tier end to end: ``STREAM_PORT=0`` and the simulator as ``HELPER_ENDPOINT``.

The whole stack under supervisord (the simulator started with its ``--helper-port`` from
``supervisord.conf``), the official openai SDK as the client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from aistudio_sim.stack import Stack
from tests.e2e.conftest import SHARED_ENV, THINKING_MODEL, doctor_process
from tests.features.test_search import check_grounded_message


@pytest.fixture(scope="module")
def shared_stack_helper() -> Iterator[Stack]:
    with Stack(stream_port_enabled=False, helper=True, env=SHARED_ENV) as running:
        yield running


@pytest.fixture
def stack_helper(shared_stack_helper: Stack) -> Stack:
    return shared_stack_helper.for_test()


@pytest.fixture
def client(stack_helper: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=stack_helper.base_url + "/v1", api_key="e2e-unused", max_retries=0, timeout=120
    ) as c:
        yield c


def served(stack: Stack) -> list[str]:
    return [e["request"] for e in stack.sim_inspect("events") if e["kind"] == "helper_serve"]


def test_health_and_info_name_the_helper(stack_helper: Stack):
    status, health = stack_helper.health()
    assert status == 200 and health["components"]["worker"]["capture"] == "helper"
    assert "stream helper" in health["components"]["stream_proxy"]["message"]
    assert stack_helper.get("/api/info")[1]["capture_mode"] == "helper"


def test_streamed_answer_with_reasoning_and_wire_usage_comes_from_the_helper(
    client: openai.OpenAI, stack_helper: Stack
):
    """Reasoning and text stream in order; the usage is the wire's, not an estimate."""
    kinds: list[str] = []
    text = reasoning = ""
    usage = None
    for chunk in client.chat.completions.create(
        model=THINKING_MODEL,
        stream=True,
        stream_options={"include_usage": True},
        reasoning_effort="low",
        messages=[{"role": "user", "content": "Helper #sim:think=10 #sim:words=60 #sim:chunks=10"}],
    ):
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            extra = choice.delta.model_extra or {}
            if extra.get("reasoning_content"):
                reasoning += extra["reasoning_content"]
                kinds.append("reasoning")
            if choice.delta.content:
                text += choice.delta.content
                kinds.append("content")
    planned = stack_helper.sim_inspect("requests/last")
    assert text == planned["response"]["answer_text"]
    assert reasoning == planned["response"]["thought_text"]
    assert kinds.index("content") > kinds.index("reasoning") and kinds.count("content") >= 2
    assert served(stack_helper) == [planned["id"]]
    # The simulator counts tokens as words (an estimate would count characters / 4); OpenAI's completion_tokens
    # include the reasoning tokens.
    thought_words = len(planned["response"]["thought_text"].split())
    assert usage is not None and usage.completion_tokens_details.reasoning_tokens == thought_words
    assert usage.completion_tokens == 60 + thought_words
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_search_sources_come_through_the_helper(client: openai.OpenAI, stack_helper: Stack):
    """Grounding is part of the body, so the helper tier returns it too."""
    done = client.chat.completions.create(
        model=THINKING_MODEL,
        tools=[{"type": "google_search"}],
        messages=[{"role": "user", "content": "Capital of Chile? #sim:search=2"}],
    )
    planned = stack_helper.sim_inspect("requests/last")
    check_grounded_message(
        done.choices[0].message, planned["response"]["grounding"]["sources"], "Capital of Chile?"
    )
    assert done.choices[0].message.content == planned["response"]["answer_text"]


def test_a_quota_error_from_the_helper_is_a_429(client: openai.OpenAI, stack_helper: Stack):
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model=THINKING_MODEL, messages=[{"role": "user", "content": "x #sim:error=quota"}]
        )
    assert info.value.response.headers.get("retry-after")
    ok = client.chat.completions.create(model=THINKING_MODEL, messages=[{"role": "user", "content": "fine"}])
    assert (
        ok.choices[0].message.content == stack_helper.sim_inspect("requests/last")["response"]["answer_text"]
    )


def test_the_doctor_probes_the_helper_tier(stack_helper: Stack, tmp_path: Path) -> None:
    """With a stream helper configured the doctor runs one generation through it, beside the page's."""
    done = doctor_process(stack_helper, tmp_path, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["generation_helper"]["ok"] and checks["generation_helper"]["detail"].startswith(
        "served by helper"
    )
    assert checks["generation_dom"]["ok"] and "generation_stream" not in checks
    # without the stream proxy only the browser maps AI Studio's host to the simulator: the doctor says why it
    # could not check the decoder on the page's answer instead of failing the page tier
    assert "wire_decoder" not in checks and report["skipped"].startswith(
        "the wire decoder: the doctor could not"
    )
    assert "helper_serve" in {e["kind"] for e in stack_helper.sim_inspect("events")}
