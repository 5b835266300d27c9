"""Schemathesis over the live stack's /openapi.json: no 5xx, every 4xx an OpenAI error object.

The schema is fetched from the running api_server. Every operation gets 50 examples as generated
(models are mostly unknown, so generation requests end early); then each dialect's generation operations
(chat completions, Anthropic messages, Responses, Gemini generateContent and its stream), which drive the
real page for every valid case, get fewer cases again with a valid model id, so they reach the deeper
validation and the generation path.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL

CHAT = "/v1/chat/completions"
#: Each dialect's generation operations, fuzzed again with a valid model (see ``with_valid_model``).
GENERATION = {
    "chat": (CHAT,),
    "anthropic": ("/v1/messages",),
    "responses": ("/v1/responses",),
    "gemini": ("/v1beta/models/{model}:generateContent", "/v1beta/models/{model}:streamGenerateContent"),
}


@pytest.fixture(scope="module")
def live_schema(shared_stack: Stack) -> Any:
    """The OpenAPI document the running api_server serves."""
    shared_stack.wait_healthy(90)
    return schemathesis.openapi.from_url(shared_stack.base_url + "/openapi.json")


def operations(schema: Any, paths: tuple[str, ...] | None = None) -> list[Any]:
    """Every operation, or those of ``paths``."""
    ops = [result.ok() for result in schema.get_all_operations()]
    return [op for op in ops if paths is None or op.path in paths]


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


def test_fuzzed_requests_never_5xx_and_errors_are_in_their_dialect_s_shape(
    live_schema: Any, shared_stack: Stack
) -> None:
    """Every operation, 50 cases each: no 5xx; 4xx bodies are errors in the path's dialect."""
    ops = operations(live_schema)
    every_generation = {path for paths in GENERATION.values() for path in paths}
    assert {"/v1/models", "/v1/queue", "/health", "/api/keys"} | every_generation <= {op.path for op in ops}
    for op in ops:
        fuzz(op, shared_stack, 50)
    shared_stack.wait_healthy(30)


def with_valid_model(case: Any) -> None:
    """A valid model (so the request can run) and a small token limit, in every dialect's spelling."""
    if "model" in (case.path_parameters or {}):
        case.path_parameters["model"] = PLAIN_MODEL
    if isinstance(case.body, dict):
        if "model" in case.body or case.operation.path in (CHAT, "/v1/messages", "/v1/responses"):
            case.body["model"] = PLAIN_MODEL
        for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
            if isinstance(case.body.get(key), int) and case.body[key] > 16:
                case.body[key] = 16
        config = case.body.get("generationConfig")
        if isinstance(config, dict) and isinstance(config.get("maxOutputTokens"), int):
            config["maxOutputTokens"] = min(config["maxOutputTokens"], 16)


#: Cases per generation operation with a valid model: chat, the oldest dialect, gets more.
VALID_MODEL_CASES = {"chat": 30, "anthropic": 15, "responses": 15, "gemini": 8}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("dialect", sorted(GENERATION))
def test_fuzzed_generation_with_a_valid_model_never_5xx_and_errors_are_in_the_dialect_s_shape(
    dialect: str, live_schema: Any, shared_stack: Stack
) -> None:
    """Each dialect's generation operations with a valid model: no 5xx, 4xx in the dialect's error
    shape, the stack still healthy afterwards, and some of the cases did reach the page."""
    ops = operations(live_schema, GENERATION[dialect])
    assert {op.path for op in ops} == set(GENERATION[dialect])
    generated_before = len(shared_stack.sim_requests())
    for op in ops:
        fuzz(op, shared_stack, VALID_MODEL_CASES[dialect], with_valid_model)
    shared_stack.wait_healthy(30)
    assert len(shared_stack.sim_requests()) > generated_before, "no fuzzed case reached the page"
