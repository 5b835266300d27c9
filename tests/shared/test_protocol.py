"""The framed socket protocol: encoding, incremental decoding, and a real Unix-socket server."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import channel as c
from shared import protocol as p

EXAMPLES: list[p.Message] = [
    p.Ping(nonce="abc"),
    p.Pong(nonce="abc", process="api_server", pid=1, version="0.1.0"),
    p.Fault(message="bad frame"),
    p.StreamStarted(id="f1", ts=1.5, url="https://x/GenerateContent", model="gemini-2.5-pro", slot="s2"),
    p.Reasoning(id="f1", ts=1.6, text='thinking… «quotes» "and" \\ slashes'),
    p.Content(id="f1", ts=1.7, text="Hello ☕ 世界"),
    p.ToolCall(id="r1", ts=1.8, name="book", arguments={"a": [1, 2.5, None, True], "b": {"c": "d"}}),
    p.Grounding(
        id="r1",
        ts=1.85,
        sources=[{"uri": "https://example.com/a", "title": "A «é»", "domain": None}],
        queries=["capital of france"],
    ),
    p.Usage(id="r1", ts=1.9, prompt_tokens=1, completion_tokens=2, reasoning_tokens=3, total_tokens=6),
    p.Finish(id="r1", ts=2.0, reason="stop"),
    p.Error(id="r1", ts=2.1, kind="quota", message="quota", status=429, retry_after=3600),
    p.Error(id="r1", ts=2.1, kind="setting_unavailable", message="no top-P", status=502, param="top_p"),
    p.Stage(id="r1", ts=2.1, name="submit", ms=80.5),
    p.Stage(id="r1", ts=2.0, name="settings", ms=40.0, degraded=["top_p", "temporary_chat"]),
    p.Done(id="r1", ts=2.2, timings={"total": 12.5}),
    p.QuotaSignal(ts=3.0, message="RESOURCE_EXHAUSTED", slot="s1"),
    p.Subscribe(),
    p.JobSubmit(
        id="r2",
        job=p.Job(
            model="gemini-2.5-pro",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stop=["User:"],
            reasoning_effort="high",
            attachments=[p.Attachment(path="/tmp/a.png", name="a.png", mime_type="image/png", size=3)],
        ),
    ),
    p.JobCancel(id="r2"),
    p.JobAccepted(id="r2", ts=4.0, slot="s1"),
    p.AccountAction(account="second", action="disable"),
    p.SelectorsReload(id="r1"),
    p.LoginStart(id="r2", name="work"),
    p.LoginStarted(id="r2", session="login_ab12", width=1440, height=900),
    p.LoginFrame(
        session="login_ab12", data="/9j/4AAQ", width=1440, height=900, url="https://accounts.google.com/"
    ),
    p.LoginInput(session="login_ab12", kind="click", x=10.5, y=20),
    p.LoginCancel(session="login_ab12"),
    p.LoginEnded(session="login_ab12", ok=True, account="work", message="signed in"),
    p.AccountImport(id="r3", name="work", storage_state={"cookies": [], "origins": []}),
    p.AccountImported(id="r3", ok=False, error="expired"),
    p.SelectorsReloaded(
        id="r1", ok=False, error="selectors.toml: [replace] RUN_BUTON: unknown selector name"
    ),
    p.StatusRequest(),
    p.WorkerStatus(
        state="ready",
        model="gemini-2.5-pro",
        models=[p.ModelInfo(id="gemini-2.5-pro", display_name="Gemini 2.5 Pro", output_token_limit=65536)],
        self_test={"prompt_textarea": True},
        capacity=2,
        slots=[
            p.SlotStatus(id="s1", state="busy", account="me", model="gemini-2.5-pro", job="r2"),
            p.SlotStatus(id="s2", state="cooling", account="second", cooling_until=1800000000.5),
        ],
        accounts=[
            p.AccountStatus(name="me", state="busy", pages=1),
            p.AccountStatus(name="second", state="cooling", pages=1, cooling_until=1800000000.5),
        ],
    ),
]


def frames(messages: list[p.Message]) -> bytes:
    return b"".join(p.encode(m) for m in messages)


def test_every_message_type_is_covered_by_the_examples():
    """Each message class of the protocol appears in the round-trip examples."""
    union_members = set(p.AnyMessage.__args__[0].__args__)
    assert {type(m) for m in EXAMPLES} == union_members


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: m.type)
def test_each_message_round_trips_through_a_frame(msg):
    """encode() then FrameDecoder.feed() gives back an equal message of the same class."""
    (decoded,) = p.FrameDecoder().feed(p.encode(msg))
    assert type(decoded) is type(msg)
    assert decoded == msg


def test_frames_split_at_every_byte_boundary_decode_identically():
    """Feeding the stream in two pieces, cut at any offset, yields the same messages."""
    data = frames(EXAMPLES)
    for cut in range(len(data) + 1):
        decoder = p.FrameDecoder()
        got = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        assert got == EXAMPLES, cut
        assert decoder.pending == 0


def test_one_byte_at_a_time_decodes_every_message():
    """A stream fed byte by byte yields every message exactly once, in order."""
    decoder = p.FrameDecoder()
    got = []
    for byte in frames(EXAMPLES):
        got += decoder.feed(bytes([byte]))
    assert got == EXAMPLES


def test_oversized_frame_is_rejected_before_its_body_arrives():
    """A length prefix above the limit raises FrameError at once."""
    decoder = p.FrameDecoder(max_frame=1024)
    with pytest.raises(p.FrameError, match="exceeds the limit"):
        decoder.feed(p.HEADER.pack(1025))


def test_a_frame_of_exactly_the_limit_is_accepted():
    """The limit is inclusive: a body of max_frame bytes still decodes."""
    frame = p.encode(p.Ping(nonce="x"))
    (msg,) = p.FrameDecoder(max_frame=len(frame) - p.HEADER.size).feed(frame)
    assert msg == p.Ping(nonce="x")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1,2,3]", orjson.dumps({"type": "nope"}), orjson.dumps({"type": "ping", "extra": 1})],
    ids=["garbage", "array", "unknown-type", "extra-field"],
)
def test_malformed_frame_bodies_raise_frame_error(body):
    """Garbage, unknown types and unexpected fields are refused."""
    with pytest.raises(p.FrameError):
        p.FrameDecoder().feed(p.HEADER.pack(len(body)) + body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "invalid message: Invalid JSON: expected ident at line 1 column 2 at top"),
        (b"[1,2,3]", "invalid message: Input should be an object at top"),
        (
            orjson.dumps({"type": "content", "id": "r1", "ts": 1}),
            "invalid message: Field required at content.text",
        ),
        (
            orjson.dumps(
                {"type": "job_submit", "id": "r1", "job": {"model": "m", "messages": [], "attachments": [{}]}}
            ),
            "invalid message: Field required at job_submit.job.attachments.0.path",
        ),
    ],
)
def test_frame_error_says_what_is_wrong_and_where(body, message):
    """The FrameError (logged, and sent to the peer as a Fault) names the first problem and its field path."""
    with pytest.raises(p.FrameError) as caught:
        p.decode_body(body)
    assert str(caught.value) == message


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(st.text(max_size=200), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=12),
)
def test_random_messages_cut_at_random_offsets_round_trip(texts, cuts):
    """Property: any split of any sequence of frames decodes to the original sequence."""
    messages = [p.Content(id=str(i), ts=float(i), text=t) for i, t in enumerate(texts)]
    data = frames(messages)
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    decoder = p.FrameDecoder()
    got = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        got += decoder.feed(data[start:end])
    assert got == messages


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_crash_the_decoder_with_anything_but_frame_error(blob):
    """Property: random input either decodes or raises FrameError, nothing else."""
    try:
        p.FrameDecoder(max_frame=4096).feed(blob)
    except p.FrameError:
        pass


async def echo_handler(conn: c.Connection) -> None:
    async for msg in conn:
        await conn.send(msg)


async def test_server_socket_is_private_and_answers_ping(short_socket_dir: Path):
    """The socket file is 0600 in a 0700 dir, and ping is answered with the process identity."""
    path = short_socket_dir / "run" / "t.sock"
    server = await c.serve(path, echo_handler, process="unit", version="9")
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
        pong = await c.ping(path)
        assert (pong.process, pong.version, pong.pid) == ("unit", "9", os.getpid())
    finally:
        await server.aclose()


async def test_garbage_and_oversized_frames_close_only_that_connection(short_socket_dir: Path):
    """A bad client gets a fault and is dropped; a good client keeps being served."""
    path = short_socket_dir / "t.sock"
    server = await c.serve(path, echo_handler, max_frame=1024, process="unit")
    try:
        good = await c.connect(path)
        for bad_bytes in (p.HEADER.pack(5) + b"junk!", p.HEADER.pack(10**6)):
            reader, writer = await asyncio.open_unix_connection(str(path))
            writer.write(bad_bytes)
            await writer.drain()
            rest = await reader.read()  # until the server closes it
            (fault,) = p.FrameDecoder().feed(rest)
            assert isinstance(fault, p.Fault)
            writer.close()
        await good.send(p.Content(id="x", ts=0.0, text="still here"))
        assert await good.recv() == p.Content(id="x", ts=0.0, text="still here")
        await good.close()
    finally:
        await server.aclose()


async def test_reconnecting_client_comes_back_after_the_server_restarts(short_socket_dir: Path):
    """ReconnectingClient re-runs on_connect and keeps receiving after a server restart."""
    path = short_socket_dir / "t.sock"
    received: asyncio.Queue[p.Message] = asyncio.Queue()
    connects = 0

    async def on_connect(conn: c.Connection) -> None:
        nonlocal connects
        connects += 1
        await conn.send(p.Subscribe())

    async def publisher(conn: c.Connection) -> None:
        msg = await conn.recv()
        assert isinstance(msg, p.Subscribe)
        await conn.send(p.Content(id="e", ts=0.0, text=f"hello {connects}"))
        await conn.recv()  # hold the connection open until one side closes it

    client = c.ReconnectingClient(path, on_message=received.put, on_connect=on_connect, max_backoff=0.1)
    task = asyncio.create_task(client.run())
    try:
        server = await c.serve(path, publisher)
        assert (await asyncio.wait_for(received.get(), 5)).text == "hello 1"
        await asyncio.wait_for(server.aclose(), 5)  # also drops the client's connection
        assert not path.exists()
        server = await c.serve(path, publisher)
        assert (await asyncio.wait_for(received.get(), 5)).text == "hello 2"
        await asyncio.wait_for(server.aclose(), 5)
    finally:
        task.cancel()
