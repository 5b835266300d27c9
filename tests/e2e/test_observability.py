"""Issue 19 on the real stack: a request of each dialect through the real page and proxy shows up in the
usage ledger, in its timeline (the worker's stages, the page and the capture tier that served it) and
in ``/metrics`` as Prometheus' parser reads it."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from aistudio_sim.stack import Stack
from tests.e2e.conftest import ADMIN_KEY, PLAIN_MODEL

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
USER = [{"role": "user", "content": "#sim:words=4 hi"}]
REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"model": PLAIN_MODEL, "messages": USER}),
    "anthropic": (
        "/v1/messages",
        {"model": PLAIN_MODEL, "max_tokens": 100, "messages": USER, "stream": True},
    ),
    "responses": ("/v1/responses", {"model": PLAIN_MODEL, "input": "#sim:words=4 hi"}),
    "gemini": (
        f"/v1beta/models/{PLAIN_MODEL}:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "#sim:words=4 hi"}]}]},
    ),
}


def counters(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    page = requests.get(stack.base_url + "/metrics", headers=ADMIN, timeout=10)
    assert page.status_code == 200, page.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page.text)
        for s in family.samples
    }


def test_each_dialect_is_recorded_with_its_page_tier_and_timeline(stack: Stack) -> None:
    before = counters(stack)
    since = time.time()
    ids = {}
    for dialect, (path, body) in REQUESTS.items():
        sent = time.time()
        resp = requests.post(
            stack.base_url + path, json=body, headers={"anthropic-version": "2023-06-01"}, timeout=120
        )
        assert resp.status_code == 200, (dialect, resp.text)
        timing = resp.headers["server-timing"]
        assert "first-token;dur=" in timing and "settings;dur=" in timing and "submit;dur=" in timing, timing
        ids[dialect] = resp.headers["x-request-id"]
        timeline = requests.get(
            f"{stack.base_url}/api/requests/{ids[dialect]}", headers=ADMIN, timeout=10
        ).json()
        assert timeline["dialect"] == dialect and timeline["tier"] == "stream"
        assert timeline["slot"] and timeline["account"]
        assert {"settings", "submit", "first_event"} <= set(timeline["worker"])
        assert timeline["stages"]["finished"] / 1000 <= time.time() - sent
    export = requests.get(
        f"{stack.base_url}/api/usage/export", params={"since": since}, headers=ADMIN, timeout=10
    )
    rows = {r["request_id"]: r for r in csv.DictReader(io.StringIO(export.text))}
    for dialect, request_id in ids.items():
        row = rows[request_id]
        assert (row["dialect"], row["model"], row["status"], row["outcome"]) == (
            dialect,
            PLAIN_MODEL,
            "200",
            "ok",
        )
        assert int(row["completion_tokens"]) > 0 and int(row["prompt_tokens"]) > 0
    after = counters(stack)
    for dialect in REQUESTS:
        key = (
            "aistudio_proxy_requests_total",
            (("dialect", dialect), ("model", PLAIN_MODEL), ("status", "200")),
        )
        assert after[key] - before.get(key, 0) == 1, dialect
    tier = ("aistudio_proxy_capture_tier_requests_total", (("tier", "stream"),))
    assert after[tier] - before.get(tier, 0) == 4
    streams = ("aistudio_proxy_stream_proxy_messages_total", (("kind", "stream"),))
    assert after[streams] - before.get(streams, 0) >= 4  # each answer's intercepted flow
    events = ("aistudio_proxy_stream_proxy_messages_total", (("kind", "event"),))
    assert after[events] - before.get(events, 0) >= 4 * 3
    assert after[("aistudio_proxy_worker_up", ())] == 1
    memory = "aistudio_proxy_process_resident_memory_bytes"
    for process in ("api_server", "browser_worker", "stream_proxy"):
        assert after[(memory, (("process", process),))] > 10 * 2**20, process
