"""Issue 21 on the real stack: AI Studio's page changes (the simulator's DOM variants) and what the product does.

For each variant the worker's page is started on the changed layout (the browser worker restarts; the API and
the stream proxy do not), then: an essential control broken takes the page out of service with the diagnosis in
``/health`` and requests get a 503 naming the control; a secondary control broken serves degraded
(``x-aistudio-degraded``, a metric), a request that sets it gets a 502 naming it, and ``STRICT_SETTINGS=false``
runs it degraded; and in each case a ``SELECTORS_FILE`` override plus ``POST /api/selectors/reload`` restores
full service without restarting the API or the stream proxy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import requests
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL, SHARED_ENV, doctor_process

ADMIN_KEY = "ui-changes-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
USER = [{"role": "user", "content": "#sim:words=3 hi"}]


@pytest.fixture(scope="module")
def overrides(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("selectors") / "selectors.toml"
    path.write_text("# no overrides yet\n")
    return path


@pytest.fixture(scope="module")
def ui_stack(overrides: Path) -> Iterator[Stack]:
    env = {**SHARED_ENV, "ADMIN_KEY": ADMIN_KEY, "SELECTORS_FILE": str(overrides)}
    with Stack(env=env, prefix="aisp-ui-") as running:
        yield running


@pytest.fixture
def variant_stack(ui_stack: Stack, overrides: Path) -> Iterator[Stack]:
    """The stack with the simulator's records reset; back on the normal page, with no overrides, after the test."""
    ui_stack.sim_reset()
    yield ui_stack
    overrides.write_text("# no overrides\n")
    reload(ui_stack)
    ui_stack.sim_inspect("config", method="POST", json={"dom_variant": None})
    restart_worker(ui_stack)
    ui_stack.wait_healthy(120)


def restart_worker(stack: Stack) -> None:
    stack.ctl("restart", "browser_worker")


def worker_health(stack: Stack, until: Any, what: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll ``/health`` (an outside condition, with a deadline) until ``until(worker component)`` holds."""
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        _, body = stack.health()
        worker = body.get("components", {}).get("worker", {}) if isinstance(body, dict) else {}
        if until(worker):
            return worker
        time.sleep(0.25)
    raise AssertionError(f"worker never {what}: {body}")


def chat(stack: Stack, **extra: Any) -> requests.Response:
    body = {"model": PLAIN_MODEL, "messages": USER, **extra}
    return requests.post(stack.base_url + "/v1/chat/completions", json=body, headers=ADMIN, timeout=120)


def reload(stack: Stack) -> requests.Response:
    return requests.post(stack.base_url + "/api/selectors/reload", headers=ADMIN, timeout=60)


def on_variant(stack: Stack, name: str) -> None:
    stack.sim_inspect("config", method="POST", json={"dom_variant": name})
    restart_worker(stack)


def doctor(stack: Stack, out: Path, *flags: str) -> tuple[int, str, dict[str, Any]]:
    """``python -m browser_worker doctor`` with the stack's settings: exit status, output, report."""
    done = doctor_process(stack, out, *flags)
    report = (
        json.loads((out / "doctor-report.json").read_text()) if (out / "doctor-report.json").exists() else {}
    )
    return done.returncode, done.stdout + done.stderr, report


def others(stack: Stack) -> tuple[int, int]:
    return stack.pid("api_server"), stack.pid("stream_proxy")


def test_renamed_run_button_takes_the_page_out_until_an_override_restores_it(
    variant_stack: Stack, overrides: Path, tmp_path: Path
) -> None:
    stack = variant_stack
    on_variant(stack, "renamed_run_button")
    worker = worker_health(
        stack, lambda w: "run_button (RUN_BUTTON)" in w.get("message", ""), "named RUN_BUTTON"
    )
    assert worker["state"] == "down" and worker["self_test"]["run_button"] is False
    assert "doctor" in worker["message"]
    refused = chat(stack)
    assert refused.status_code == 503, refused.text
    assert "run_button (RUN_BUTTON)" in refused.json()["error"]["message"]
    assert stack.sim_requests() == []

    before = others(stack)
    overrides.write_text("[replace]\nRUN_BUTTON = 'ms-send-button button[data-test-id=\"send-button\"]'\n")
    reloaded = reload(stack)
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["changed"] == ["RUN_BUTTON"]
    stack.wait_healthy(60)
    served = chat(stack)
    assert served.status_code == 200, served.text
    assert served.json()["choices"][0]["message"]["content"]
    assert "x-aistudio-degraded" not in served.headers
    assert others(stack) == before
    status, summary, _ = doctor(stack, tmp_path / "fixed")
    assert status == 0, summary


def test_no_top_p_serves_degraded_and_refuses_a_request_that_sets_top_p(variant_stack: Stack) -> None:
    stack = variant_stack
    counted = degraded_count(stack, "top_p")
    on_variant(stack, "no_top_p")
    worker = worker_health(stack, lambda w: w.get("state") == "degraded", "degraded")
    assert "top_p (TOP_P_INPUT)" in worker["message"]
    served = chat(stack)
    assert served.status_code == 200, served.text
    assert served.headers["x-aistudio-degraded"] == "top_p"
    refused = chat(stack, top_p=0.5)
    assert refused.status_code == 502, refused.text
    error = refused.json()["error"]
    assert error["code"] == "setting_unavailable"
    assert "top_p" in error["message"] and "TOP_P_INPUT" in error["message"]
    assert "STRICT_SETTINGS=false" in error["message"]
    assert degraded_count(stack, "top_p") == counted + 1
    assert len(stack.sim_requests()) == 1  # the refused request never reached the page


def test_moved_advanced_settings_degrade_max_tokens_until_a_prepended_selector_finds_it(
    variant_stack: Stack, overrides: Path, tmp_path: Path
) -> None:
    stack = variant_stack
    on_variant(stack, "moved_advanced_settings")
    worker_health(stack, lambda w: "max_output_tokens (MAX_TOKENS_INPUT)" in w.get("message", ""), "degraded")
    status, summary, _ = doctor(stack, tmp_path)
    assert status == 1 and "BROKEN max_output_tokens (selector MAX_TOKENS_INPUT" in summary, summary
    refused = chat(stack, max_tokens=300)
    assert refused.status_code == 502 and "MAX_TOKENS_INPUT" in refused.text, refused.text

    before = others(stack)
    overrides.write_text("[prepend]\nMAX_TOKENS_INPUT = 'ms-advanced-panel input.max-tokens-input'\n")
    assert reload(stack).status_code == 200
    worker_health(stack, lambda w: w.get("state") == "ready", "ready")
    served = chat(stack, max_tokens=300)
    assert served.status_code == 200, served.text
    assert "x-aistudio-degraded" not in served.headers
    assert stack.sim_requests()[-1]["generation_config"]["max_output_tokens"] == 300
    assert others(stack) == before


def test_an_unknown_first_use_dialog_takes_the_page_out_until_its_button_is_named(
    variant_stack: Stack, overrides: Path, tmp_path: Path
) -> None:
    stack = variant_stack
    on_variant(stack, "first_use_dialog")
    worker = worker_health(stack, lambda w: w.get("state") == "down", "out of service")
    assert "page_uncovered" in worker["message"] and "DIALOG_ACCEPT_TEXTS" in worker["message"]
    status, summary, report = doctor(stack, tmp_path)
    assert status == 1 and "BROKEN page_uncovered (selector DIALOG_ACCEPT_TEXTS" in summary, summary
    assert report["skipped"].startswith("the generation probes")
    assert chat(stack).status_code == 503

    before = others(stack)
    overrides.write_text('[prepend]\nDIALOG_ACCEPT_TEXTS = ["Start building"]\n')
    assert reload(stack).status_code == 200
    worker_health(stack, lambda w: w.get("state") == "ready", "ready")
    served = chat(stack)
    assert served.status_code == 200, served.text
    assert "x-aistudio-degraded" not in served.headers
    assert others(stack) == before


def test_a_bad_override_file_is_refused_and_the_selectors_in_use_stay(
    variant_stack: Stack, overrides: Path
) -> None:
    stack = variant_stack
    assert requests.post(stack.base_url + "/api/selectors/reload", timeout=10).status_code == 401
    user_key = {"Authorization": "Bearer not-the-admin-key-0123456789"}
    assert (
        requests.post(stack.base_url + "/api/selectors/reload", headers=user_key, timeout=10).status_code
        == 401
    )
    overrides.write_text('[prepend]\nDIALOG_ACCEPT_TEXTS = ["Start building"]\n')
    assert reload(stack).json()["overrides"] == ["DIALOG_ACCEPT_TEXTS"]
    cases = {
        "[replace]\nRUN_BUTON = 'button'\n": "RUN_BUTON: unknown selector name",
        "[replace]\nRUN_BUTTON = 'button[aria-label='\n": "is not a valid selector",
        "[replace]\nPREFS_KEY = 'x'\n": "cannot be overridden",
        "[prepend]\nEDIT_LABEL = 'Modify'\n": "can only be replaced",
        "[replace\n": "not valid TOML",
    }
    for text, message in cases.items():
        overrides.write_text(text)
        refused = reload(stack)
        assert refused.status_code == 400, (text, refused.text)
        error = refused.json()["error"]
        assert error["code"] == "selectors_refused" and message in error["message"], (text, error)
    _, health = stack.health()
    selectors = health["components"]["worker"]["selectors"]
    assert selectors["overrides"] == ["DIALOG_ACCEPT_TEXTS"] and "not valid TOML" in selectors["error"]
    served = chat(stack)
    assert served.status_code == 200, served.text


def test_the_doctor_on_the_normal_page_holds_everything_and_keeps_no_secret(
    ui_stack: Stack, tmp_path: Path
) -> None:
    done = doctor_process(ui_stack, tmp_path, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)  # --json: stdout is the report alone (the log goes to stderr)
    assert report == json.loads((tmp_path / "doctor-report.json").read_text())
    assert report["ok"] is True and report["skipped"] == ""
    assert "lost" not in done.stderr, done.stderr  # closing its own browser is no loss
    names = {c["name"] for c in report["checks"]}
    assert {"page_opens", "model_list_rpc", "run_button", "page_uncovered", "storage_preferences"} <= names
    assert {"generation_stream", "generation_dom", "wire_decoder", "answer_model_turn_dom"} <= names
    details = {c["name"]: c["detail"] for c in report["checks"]}
    assert details["prompt_textarea"] == "found 1, visible, editable (essential)"
    assert details["top_p"] == "found 1, visible, editable"
    assert details["upload"] == "found 1, visible, enabled"
    assert details["model_name"] == "found 1, visible, named"
    assert details["run_button"] == "found 1, visible (essential)"
    assert (tmp_path / "doctor-page.png").stat().st_size > 1000
    assert (tmp_path / "doctor-report.json").stat().st_mode & 0o777 == 0o600
    text = (tmp_path / "doctor-report.json").read_text()
    cookies = json.loads(Path(ui_stack.env["AUTH_PROFILE"]).read_text())["cookies"]
    assert cookies and not [c["name"] for c in cookies if len(c["value"]) > 6 and c["value"] in text]


def test_the_doctor_names_a_missing_control(variant_stack: Stack, tmp_path: Path) -> None:
    on_variant(variant_stack, "no_top_p")
    worker_health(variant_stack, lambda w: w.get("state") == "degraded", "degraded")
    status, summary, _ = doctor(variant_stack, tmp_path)
    assert status == 1
    assert "BROKEN top_p (selector TOP_P_INPUT" in summary, summary


def test_the_doctor_names_a_control_that_is_not_unique_or_not_in_its_state(
    ui_stack: Stack, tmp_path: Path
) -> None:
    """Selectors that still find something but not the right thing: several elements, or one that cannot do
    what the worker does with it. The override file is the doctor's alone; the service keeps its own."""
    bent = tmp_path / "bent.toml"
    bent.write_text(
        "[replace]\n"
        "STOP_INPUT = 'input'\n"  # every field of the page
        "TEMPERATURE_INPUT = '[data-test-id=\"model-name\"]'\n"  # a label, not a field
        "UPLOAD_TRIGGER = 'button[aria-label=\"New chat\"]'\n"  # disabled while the chat is empty
        "NEW_CHAT = 'button[aria-label=\"Expand or collapse tools\"]'\n"  # found, but it starts no chat
    )
    done = doctor_process(ui_stack, tmp_path / "out", env={"SELECTORS_FILE": str(bent)})
    summary = done.stdout + done.stderr
    assert done.returncode == 1, summary
    assert "BROKEN stop_sequences (selector STOP_INPUT = 'input'): found " in summary, summary
    assert "not unique:" in summary and "the worker acts on the first" in summary
    assert (
        "BROKEN temperature (selector TEMPERATURE_INPUT" in summary and ": found 1: not editable" in summary
    )
    assert "BROKEN upload (selector UPLOAD_TRIGGER" in summary and ": found 1: not enabled" in summary
    report = json.loads((tmp_path / "out" / "doctor-report.json").read_text())
    broken = sorted(c["name"] for c in report["checks"] if not c["ok"])
    # the New chat step that failed during the probes is a broken check, not a crash
    assert broken == ["new_chat_works", "stop_sequences", "temperature", "upload"], broken
    assert "not run: the probes after it" in summary


def _dialect_answers(stack: Stack, **top_p: float) -> dict[str, tuple[int, dict[str, str], Any]]:
    """One request per dialect and mode (official SDKs): status, headers and the answer or error body.

    ``top_p``: ``value=…`` sets top-P in each dialect's own field; without it no request sets it."""
    results: dict[str, tuple[int, dict[str, str], Any]] = {}
    value = top_p.get("value")
    oai = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=ADMIN_KEY, max_retries=0, timeout=120)
    ant = anthropic.Anthropic(base_url=stack.base_url, api_key=ADMIN_KEY, max_retries=0, timeout=120)
    gem = genai.Client(
        api_key=ADMIN_KEY,
        http_options=genai_types.HttpOptions(base_url=stack.base_url + "/", timeout=120_000),
    )
    oai_p: dict[str, Any] = {"top_p": value} if value is not None else {}
    messages: Any = USER
    # this anthropic SDK no longer lists top_p (newer Claude models refuse it); the Messages API still has it
    ant_p: dict[str, Any] = {"extra_body": oai_p}
    calls: dict[str, Any] = {
        "chat": lambda: oai.chat.completions.with_raw_response.create(
            model=PLAIN_MODEL, messages=messages, **oai_p
        ),
        "chat_stream": lambda: oai.chat.completions.with_streaming_response.create(
            model=PLAIN_MODEL, messages=messages, stream=True, **oai_p
        ),
        "responses": lambda: oai.responses.with_raw_response.create(
            model=PLAIN_MODEL, input=USER[0]["content"], **oai_p
        ),
        "responses_stream": lambda: oai.responses.with_streaming_response.create(
            model=PLAIN_MODEL, input=USER[0]["content"], stream=True, **oai_p
        ),
        "anthropic": lambda: ant.messages.with_raw_response.create(
            model=PLAIN_MODEL, max_tokens=100, messages=messages, **ant_p
        ),
        "anthropic_stream": lambda: ant.messages.with_streaming_response.create(
            model=PLAIN_MODEL, max_tokens=100, messages=messages, stream=True, **ant_p
        ),
    }
    for name, call in calls.items():
        try:
            made = call()
            if name.endswith("_stream"):
                with made as streamed:
                    body = streamed.read().decode()
                    results[name] = (streamed.status_code, dict(streamed.headers), body)
            else:
                results[name] = (made.status_code, dict(made.headers), made.text)
        except (openai.APIStatusError, anthropic.APIStatusError) as exc:
            results[name] = (exc.status_code, dict(exc.response.headers), exc.response.json())
    config = genai_types.GenerateContentConfig(top_p=value) if value is not None else None
    for name in ("gemini", "gemini_stream"):
        try:
            if name == "gemini":
                done = gem.models.generate_content(
                    model=PLAIN_MODEL, contents=USER[0]["content"], config=config
                )
                chunks = [done]
            else:
                chunks = list(
                    gem.models.generate_content_stream(
                        model=PLAIN_MODEL, contents=USER[0]["content"], config=config
                    )
                )
            http = chunks[0].sdk_http_response
            headers = dict(http.headers or {}) if http else {}
            results[name] = (200, headers, "".join(c.text or "" for c in chunks))
        except genai_errors.APIError as exc:
            results[name] = (exc.code, {}, exc.details)
    oai.close()
    ant.close()
    return results


def test_every_dialect_names_what_it_ran_without_and_refuses_top_p_in_its_own_shape(
    variant_stack: Stack,
) -> None:
    """``no_top_p``: every dialect, streaming or not, answers with ``x-aistudio-degraded: top_p``; a request
    that sets top-P gets a 502 in its dialect's error shape naming the control; the log warns once."""
    stack = variant_stack
    log_path = stack.log_dir / "browser_worker.log"
    log_start = log_path.stat().st_size if log_path.exists() else 0
    counted = degraded_count(stack, "top_p")
    on_variant(stack, "no_top_p")
    worker_health(stack, lambda w: w.get("state") == "degraded", "degraded")

    served = _dialect_answers(stack)
    for name, (status, headers, body) in served.items():
        assert status == 200, (name, body)
        lower = {k.lower(): v for k, v in headers.items()}
        assert lower["x-aistudio-degraded"] == "top_p", (name, headers)
        assert body, name
    assert len(stack.sim_requests()) == len(served)  # each answer came from the page

    refused = _dialect_answers(stack, value=0.5)
    for name, (status, _, body) in refused.items():
        assert status == 502, (name, body)
        if name.startswith("anthropic"):
            assert body["type"] == "error" and body["error"]["type"] == "api_error", body
            message = body["error"]["message"]
        elif name.startswith("gemini"):
            assert body["error"]["code"] == 502 and body["error"]["status"] == "UNAVAILABLE", body
            info = body["error"]["details"][0]
            assert info["reason"] == "SETTING_UNAVAILABLE" and info["metadata"] == {"param": "top_p"}, body
            message = body["error"]["message"]
        else:
            assert body["error"]["code"] == "setting_unavailable", body
            assert body["error"]["param"] == "top_p", body
            message = body["error"]["message"]
        assert "top_p" in message and "TOP_P_INPUT" in message, (name, message)
    assert len(stack.sim_requests()) == len(served)  # none of the refused requests reached the page

    assert degraded_count(stack, "top_p") == counted + len(served)
    with log_path.open("rb") as log:
        log.seek(log_start)
        lines = log.read().decode(errors="replace")
    assert lines.count("degraded: running without top_p") == 1, stack.log_tail("browser_worker")


def degraded_count(stack: Stack, control: str) -> float:
    """``aistudio_proxy_degraded_requests_total`` for ``control`` (0 before its first request)."""
    metrics = requests.get(stack.base_url + "/metrics", headers=ADMIN, timeout=10).text
    prefix = f'aistudio_proxy_degraded_requests_total{{control="{control}"}} '
    return next((float(line[len(prefix) :]) for line in metrics.splitlines() if line.startswith(prefix)), 0.0)
