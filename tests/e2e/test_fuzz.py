"""Schemathesis over the live stack's /openapi.json: no 5xx, every 4xx an OpenAI error object.

The schema is fetched from the running api_server. Cheap operations get 50 examples each; chat
completions, which drive the real page for every valid case, get fewer, with a valid model id so
cases reach the deeper validation and the generation path.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL

CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def live_schema(shared_stack: Stack) -> Any:
    """The OpenAPI document the running api_server serves."""
    shared_stack.wait_healthy(90)
    return schemathesis.openapi.from_url(shared_stack.base_url + "/openapi.json")


def operations(schema: Any, chat: bool) -> list[Any]:
    ops = [result.ok() for result in schema.get_all_operations()]
    return [op for op in ops if (op.path == CHAT) == chat]


def check_openai_shape(response: Any, path: str = "") -> None:
    """No 5xx; a 4xx in OpenAI's error shape (Google's on the Gemini ``path``s, Anthropic's on ``/v1/messages``)."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        body = response.json()
        if isinstance(body, list) and ":streamGenerateContent" in path:
            [body] = body  # the JSON-array stream's error is an array too, as Google sends it
        if path.startswith("/v1/messages"):
            assert set(body) == {"type", "error"} and set(body["error"]) == {"type", "message"}, body
            assert isinstance(body["error"]["message"], str) and body["error"]["message"]
            return
        assert set(body) == {"error"}, body
        if path.startswith("/v1beta"):
            assert (
                {"code", "message", "status"}
                <= set(body["error"])
                <= {"code", "message", "status", "details"}
            )
            assert body["error"]["code"] == response.status_code, body
        else:
            assert set(body["error"]) == {"message", "type", "param", "code"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def fuzz(op: Any, stack: Stack, examples: int, prepare=None) -> None:
    """Run ``examples`` generated cases of one operation against the stack."""

    @given(case=op.as_strategy())
    # No shrinking: every chat case drives the real page, and the failing case is printed as curl.
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        if prepare is not None:
            prepare(case)
        response = case.call(base_url=stack.base_url, timeout=120)
        try:
            check_openai_shape(response, op.path)
        except AssertionError as exc:
            raise AssertionError(f"{op.method.upper()} {op.path}: {exc}\n{case.as_curl_command()}") from None

    run()


def test_fuzzed_requests_never_5xx_and_errors_are_openai_shaped(
    live_schema: Any, shared_stack: Stack
) -> None:
    """Every operation but chat, 50 cases each: no 5xx; 4xx bodies are OpenAI errors."""
    ops = operations(live_schema, chat=False)
    assert {"/v1/models", "/v1/queue", "/health", "/api/keys"} <= {op.path for op in ops}
    for op in ops:
        fuzz(op, shared_stack, 50)
    shared_stack.wait_healthy(30)


def small_chat(case: Any) -> None:
    """A valid model (so the request can run) and a small token limit."""
    if isinstance(case.body, dict):
        case.body["model"] = PLAIN_MODEL
        for key in ("max_tokens", "max_completion_tokens"):
            if isinstance(case.body.get(key), int) and case.body[key] > 16:
                case.body[key] = 16


@pytest.mark.timeout(900)
def test_fuzzed_chat_completions_never_5xx_and_errors_are_openai_shaped(
    live_schema: Any, shared_stack: Stack
) -> None:
    """Chat completions, 30 cases with a valid model: no 5xx; 4xx bodies are OpenAI errors; still healthy."""
    [op] = operations(live_schema, chat=True)
    fuzz(op, shared_stack, 30, small_chat)
    shared_stack.wait_healthy(30)
