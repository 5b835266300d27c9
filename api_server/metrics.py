"""``GET /metrics``: the Prometheus text format, every name under ``aistudio_proxy_`` (``prometheus-client``).

Two sources. Each closed request record (``api_server/records.py``; ``Metrics`` is one of its
observers) counts into the request, latency, token and capture-tier metrics. Everything else is read
when Prometheus scrapes: the queue, the worker's last status (accounts, pages, its job counters),
the usage ledger's counters and each process's resident memory (``/proc``). The README's
"Monitoring" section lists every metric.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api_server.queue import RequestQueue
from api_server.records import RequestRecord
from api_server.usage_ledger import UsageLedger
from api_server.worker_client import WorkerClient

PREFIX = "aistudio_proxy_"
#: Seconds; answers from AI Studio take from under a second to minutes.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
QUEUE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300)


def rss_bytes(pid: int | str = "self") -> int | None:
    """Resident memory of a process from ``/proc`` (None when it cannot be read)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class _Live(Collector):
    """The metrics read at scrape time."""

    def __init__(self, worker: WorkerClient, queue: RequestQueue, ledger: UsageLedger) -> None:
        self.worker = worker
        self.queue = queue
        self.ledger = ledger
        #: Other processes' pids by name (the stream proxy's comes from its pong).
        self.pids: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            PREFIX + "queue_length", "Requests waiting or running in the queue.", len(self.queue)
        )
        status = self.worker.status_msg
        up = GaugeMetricFamily(
            PREFIX + "worker_up", "1 while the browser worker is connected and ready or busy."
        )
        up.add_metric([], 1.0 if status is not None and status.state in ("ready", "busy") else 0.0)
        yield up
        accounts = GaugeMetricFamily(
            PREFIX + "account_state", "1 for each account's current state.", labels=["account", "state"]
        )
        cooling = GaugeMetricFamily(
            PREFIX + "account_cooldown_end_timestamp_seconds",
            "When a cooling account is served again (Unix time).",
            labels=["account"],
        )
        pages = GaugeMetricFamily(
            PREFIX + "account_pages", "Pages (slots) of each account.", labels=["account"]
        )
        slots = GaugeMetricFamily(
            PREFIX + "slot_busy", "1 while a page runs a request.", labels=["slot", "account"]
        )
        jobs = CounterMetricFamily(
            PREFIX + "worker_jobs",
            "Jobs the worker ended, by outcome (since it started).",
            labels=["outcome"],
        )
        restarts = GaugeMetricFamily(
            PREFIX + "browser_restarts", "Browser relaunches since the worker started."
        )
        proxy = CounterMetricFamily(
            PREFIX + "stream_proxy_messages",
            "Messages the worker got from the stream proxy (since it started): stream (an intercepted answer "
            "began) or event (a decoded text, reasoning, tool-call, usage or end event).",
            labels=["kind"],
        )
        losses = CounterMetricFamily(
            PREFIX + "stream_proxy_subscription_losses",
            "Times the worker's subscription to the stream proxy dropped (a proxy restart, a slow reader).",
        )
        if status is not None:
            for account in status.accounts:
                accounts.add_metric([account.name, account.state], 1.0)
                pages.add_metric([account.name], float(account.pages))
                if account.cooling_until is not None:
                    cooling.add_metric([account.name], account.cooling_until)
            for slot in status.slots:
                slots.add_metric([slot.id, slot.account or ""], 1.0 if slot.job else 0.0)
            counts = dict(status.counts)
            restarts.add_metric([], float(counts.pop("relaunches", 0)))
            proxy.add_metric(["stream"], float(counts.pop("proxy_streams", 0)))
            proxy.add_metric(["event"], float(counts.pop("proxy_events", 0)))
            losses.add_metric([], float(counts.pop("proxy_subscription_losses", 0)))
            for outcome, count in sorted(counts.items()):
                jobs.add_metric([outcome], float(count))
        yield from (accounts, cooling, pages, slots, jobs, restarts, proxy, losses)
        ledger = CounterMetricFamily(PREFIX + "ledger_rows", "Usage ledger rows, by fate.", labels=["fate"])
        ledger.add_metric(["written"], float(self.ledger.written))
        ledger.add_metric(["dropped"], float(self.ledger.dropped))
        yield ledger
        memory = GaugeMetricFamily(
            PREFIX + "process_resident_memory_bytes", "Resident memory of each process.", labels=["process"]
        )
        for name, pid in [("api_server", os.getpid()), *self.pids.items()]:
            rss = rss_bytes(pid)
            if rss is not None:
                memory.add_metric([name], float(rss))
        yield memory


class Metrics:
    """The registry of ``/metrics``; an ``Observer`` of request records."""

    def __init__(self, worker: WorkerClient, queue: RequestQueue, ledger: UsageLedger) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.live = _Live(worker, queue, ledger)
        self.registry.register(self.live)
        r = self.registry
        self.requests = Counter(
            PREFIX + "requests",
            "Generation requests by dialect, model and status (a stream's in-band failure counts with its error's status).",
            ["dialect", "model", "status"],
            registry=r,
        )
        self.first_token = Histogram(
            PREFIX + "first_token_seconds",
            "Time from a request's arrival to its first answer event.",
            ["dialect"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            PREFIX + "request_duration_seconds",
            "Time from a request's arrival to its end.",
            ["dialect"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            PREFIX + "queue_wait_seconds",
            "Time a request waited in the queue before a page took it.",
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            PREFIX + "tokens",
            "Tokens by kind (prompt, completion, reasoning) and model.",
            ["kind", "model"],
            registry=r,
        )
        self.tiers = Counter(
            PREFIX + "capture_tier_requests",
            "Answers by the capture tier that delivered them (stream, helper, dom, or a takeover such as stream+dom).",
            ["tier"],
            registry=r,
        )
        self.degraded = Counter(
            PREFIX + "degraded_requests",
            "Requests that ran without a run setting the page no longer offers (x-aistudio-degraded), by control.",
            ["control"],
            registry=r,
        )
        self.slot_busy = Counter(
            PREFIX + "slot_busy_seconds", "Time each page spent running requests.", ["slot"], registry=r
        )

    def finished(self, record: RequestRecord) -> None:
        model = record.model or ""
        self.requests.labels(record.dialect, model, str(record.status)).inc()
        stages = record.stages
        if "first_token" in stages:
            self.first_token.labels(record.dialect).observe(stages["first_token"] / 1000)
        self.duration.labels(record.dialect).observe(stages.get("finished", 0.0) / 1000)
        if record.queue_ms is not None:
            self.queue_wait.observe(record.queue_ms / 1000)
        if record.model and "started" in stages:
            self.tokens.labels("prompt", model).inc(record.prompt_tokens)
            self.tokens.labels("completion", model).inc(record.completion_tokens)
            self.tokens.labels("reasoning", model).inc(record.reasoning_tokens)
        if record.tier:
            self.tiers.labels(record.tier).inc()
        for control in record.degraded:
            self.degraded.labels(control).inc()
        if record.slot and "started" in stages:
            self.slot_busy.labels(record.slot).inc(
                max(0.0, stages.get("finished", 0.0) - stages["started"]) / 1000
            )

    def render(self) -> bytes:
        return generate_latest(self.registry)
