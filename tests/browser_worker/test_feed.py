"""``FlowWatch`` (browser_worker/feed.py): which proxy events reach a job."""

from __future__ import annotations

from browser_worker.feed import FlowWatch
from shared import protocol

URL = "https://alkalimakersuite-pa.clients6.google.com/$rpc/google.internal.alkali.applications.makersuite.v1.MakerSuiteService/GenerateContent"


def started(flow: str, slot: str | None, ts: float = 10.0) -> protocol.StreamStarted:
    return protocol.StreamStarted(id=flow, ts=ts, url=URL, model="gemini-2.5-pro", slot=slot)


def drain(watch: FlowWatch) -> list[protocol.Message]:
    out = []
    while not watch.queue.empty():
        item = watch.queue.get_nowait()
        assert isinstance(item, protocol.Message)
        out.append(item)
    return out


def test_a_watch_takes_only_the_flow_of_its_own_slot() -> None:
    """Several pages generate at once: another slot's flow (started first) never reaches this job."""
    watch = FlowWatch(since=9.0, slot="s2")
    watch.offer(started("other", "s1"))
    watch.offer(protocol.Content(id="other", ts=10.1, text="not mine"))
    watch.offer(started("mine", "s2"))
    watch.offer(protocol.Content(id="mine", ts=10.2, text="mine"))
    watch.offer(protocol.Content(id="other", ts=10.3, text="still not mine"))
    assert [getattr(m, "text", m.type) for m in drain(watch)] == ["stream_started", "mine"]
    assert watch.flow_id == "mine"


def test_quota_signals_of_another_slot_are_not_this_job_s() -> None:
    watch = FlowWatch(since=9.0, slot="s2")
    watch.offer(protocol.QuotaSignal(ts=10.0, message="quota", slot="s1"))
    watch.offer(protocol.QuotaSignal(ts=10.0, message="mine", slot="s2"))
    assert [q.message for q in watch.quota] == ["mine"]


def test_without_slots_the_first_flow_after_submit_is_taken() -> None:
    """A watch (or a flow) without a slot keeps the one-page rule: the first GenerateContent after submit."""
    watch = FlowWatch(since=9.0)
    watch.offer(started("early", None, ts=1.0))
    watch.offer(started("any", "s7"))
    assert watch.flow_id == "any"
    unnamed = FlowWatch(since=9.0, slot="s1")
    unnamed.offer(started("anon", None))
    assert unnamed.flow_id == "anon"
