"""The official openai npm package (pinned in node/package-lock.json) against the demo stack."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL, THINKING_MODEL

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="module")
def node_project(node_bin: str) -> Path:
    """The node folder with its locked dependencies installed (``npm ci`` when node_modules is missing)."""
    if not (NODE_DIR / "node_modules" / "openai" / "package.json").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("node is installed but npm is not: cannot install the locked openai package")
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, f"npm ci failed:\n{proc.stdout}\n{proc.stderr}"
    locked = json.loads((NODE_DIR / "package-lock.json").read_text())["packages"]["node_modules/openai"]
    installed = json.loads((NODE_DIR / "node_modules" / "openai" / "package.json").read_text())
    assert installed["version"] == locked["version"]
    return NODE_DIR


def run_node(
    node_bin: str,
    project: Path,
    script: str,
    stack: Stack,
    prompt: str,
    model: str = PLAIN_MODEL,
    **params: Any,
) -> dict[str, Any]:
    args = {"baseURL": stack.base_url + "/v1", "model": model, "prompt": prompt, "params": params}
    proc = subprocess.run(
        [node_bin, script, json.dumps(args)], cwd=project, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, f"node {script} failed ({proc.returncode}):\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_node_non_stream_completion_and_models(node_bin: str, node_project: Path, stack: Stack):
    """complete.mjs: models are the simulator's, the answer and reasoning are what the simulator planned."""
    out = run_node(
        node_bin,
        node_project,
        "complete.mjs",
        stack,
        "From node #sim:think=12",
        THINKING_MODEL,
        reasoning_effort="low",
        temperature=0.4,
    )
    assert out["ok"], out
    recorded = stack.sim_inspect("requests/last")
    assert out["models"] and all(m["description"].startswith("[simulated]") for m in out["models"])
    assert THINKING_MODEL in {m["id"] for m in out["models"]}
    assert out["object"] == "chat.completion" and out["role"] == "assistant"
    assert out["content"] == recorded["response"]["answer_text"]
    assert out["reasoning"].strip() == recorded["response"]["thought_text"].strip()
    assert out["finish_reason"] == "stop"
    assert out["fingerprint"].startswith("fp_aistudio_sim")
    assert recorded["generation_config"]["temperature"] == pytest.approx(0.4)
    assert out["usage"]["completion_tokens"] > 0


def test_node_stream_deltas_join_to_the_answer(node_bin: str, node_project: Path, stack: Stack):
    """stream.mjs with include_usage: role first, one id, deltas join to the answer, usage chunk last."""
    out = run_node(
        node_bin,
        node_project,
        "stream.mjs",
        stack,
        "Node stream #sim:words=25 #sim:chunks=5",
        stream_options={"include_usage": True},
    )
    assert out["ok"], out
    chunks = out["chunks"]
    planned = stack.sim_inspect("requests/last")["response"]["answer_text"]
    assert "".join(c["content"] or "" for c in chunks) == planned
    assert chunks[0]["role"] == "assistant"
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert [c["finish_reason"] for c in chunks if c["has_choice"]][-1] == "stop"
    assert not chunks[-1]["has_choice"] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_node_errors_are_typed(node_bin: str, node_project: Path, stack: Stack):
    """Quota → RateLimitError (429), unknown model → NotFoundError, bad temperature → BadRequestError."""
    quota = run_node(node_bin, node_project, "complete.mjs", stack, "Spend #sim:error=quota")
    assert (quota["ok"], quota["name"], quota["status"], quota["code"]) == (
        False,
        "RateLimitError",
        429,
        "insufficient_quota",
    )
    unknown = run_node(node_bin, node_project, "complete.mjs", stack, "Hi", "gemini-0-imaginary")
    assert (unknown["name"], unknown["status"], unknown["code"]) == ("NotFoundError", 404, "model_not_found")
    bad = run_node(node_bin, node_project, "complete.mjs", stack, "Hi", temperature=9)
    assert (bad["name"], bad["status"], bad["param"]) == ("BadRequestError", 400, "temperature")


def test_node_stream_failure_before_output_is_typed(node_bin: str, node_project: Path, stack: Stack):
    """A streamed quota failure before any output reaches the npm client as RateLimitError with its status."""
    out = run_node(node_bin, node_project, "stream.mjs", stack, "Spend #sim:error=quota")
    assert (out["ok"], out["name"], out["status"], out["chunks"]) == (False, "RateLimitError", 429, [])
    assert out["code"] == "insufficient_quota" and out["type"] == "rate_limit_error"


def test_node_stream_failure_after_output_is_an_api_error(node_bin: str, node_project: Path, stack: Stack):
    """After output started, the failure is an in-band error event the npm client raises as an APIError."""
    out = run_node(node_bin, node_project, "stream.mjs", stack, "Fail #sim:error=cut #sim:words=40")
    assert not out["ok"] and out["chunks"] and out["code"] == "upstream_error"
