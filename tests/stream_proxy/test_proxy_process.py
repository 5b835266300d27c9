"""The real proxy: ``python -m stream_proxy`` in a subprocess, a local HTTPS upstream, real clients.

The upstream stands in for AI Studio through the test-only resolve override (``AISTUDIO_RESOLVE``).
It streams a fixture gzip-compressed piece by piece and holds the last piece back until the test
releases it, so "the first event arrives before the body ends" is checked, not assumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import ssl
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from shared import channel, protocol
from shared.ca import spki_hash
from shared.errors import StreamProxyShutdown
from tests.requirements import needs

REPO = Path(__file__).resolve().parents[2]
RPC_HOST = "alkalimakersuite-pa.clients6.google.com"
GENERATE = "/$rpc/google.internal.alkali.applications.makersuite.v1.MakerSuiteService/GenerateContent"
REQUEST_BODY = b'["models/gemini-2.5-pro",[[[[null,"17*23?"]],"user"]],null,[null,null,null,65536,1]]'
CHROMIUM = Path("/usr/bin/chromium")

#: What the thinking fixture decodes to (fixtures/README.md).
EXPECTED_REASONING = (
    "**Breaking down the multiplication**\n\nThe user wants 17 × 23. "
    "I'll split it: 17 × 20 = 340 and 17 × 3 = 51, so the total is 391.\n"
)
EXPECTED_CONTENT = "17 × 23 = **391**."


# --------------------------------------------------------------------------- the stand-in upstream


@dataclass
class Upstream:
    """An HTTPS server answering GenerateContent with a held-back last piece."""

    pieces: list[bytes]
    port: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    sent_last: bool = False
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.host, request.path, await request.read()))
        resp = web.StreamResponse(
            headers={"Content-Type": "application/json+protobuf; charset=UTF-8", "Content-Encoding": "gzip"}
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for piece in self.pieces[:-1]:
            await resp.write(piece)
        self.holding.set()
        await self.release.wait()
        self.sent_last = True
        await resp.write(self.pieces[-1])
        await resp.write_eof()
        return resp

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>stand-in</title><p>ok</p>", content_type="text/html")

    async def tunnel_check(self, request: web.Request) -> web.Response:
        return web.Response(text=f"direct from upstream for {request.host}")


@pytest.fixture
async def upstream(upstream_cert, thinking_stream) -> AsyncIterator[Upstream]:
    up = Upstream(thinking_stream.gzip_pieces())
    app = web.Application()
    app.router.add_post(GENERATE, up.generate)
    app.router.add_get("/", up.page)
    app.router.add_get("/tunnel-check", up.tunnel_check)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(upstream_cert.cert, upstream_cert.key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    up.port = runner.addresses[0][1]
    yield up
    up.release.set()
    await runner.cleanup()


# --------------------------------------------------------------------------- the proxy process


@dataclass
class ProxyProcess:
    proc: asyncio.subprocess.Process
    base: Path
    port: int
    lines: list[str]
    pump: asyncio.Task[None]
    signalled: bool = False

    @property
    def socket(self) -> Path:
        return self.base / "run" / "proxy.sock"

    @property
    def certs(self) -> Path:
        return self.base / "certs"

    @property
    def server(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The proxy with credentials: it asks every client for a user name (its slot, here ``test``)."""
        return f"http://test:aisp@127.0.0.1:{self.port}"

    def browser_proxy(self, slot: str = "test") -> dict[str, str]:
        """Playwright's proxy option for a context (or browser) of slot ``slot``."""
        return {"server": self.server, "username": slot, "password": "aisp"}

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def sigterm(self) -> None:
        self.signalled = True
        self.proc.send_signal(signal.SIGTERM)

    async def terminate(self) -> int:
        """SIGTERM, then the exit code (the output is drained to the end)."""
        if self.proc.returncode is None and not self.signalled:
            self.sigterm()
        async with asyncio.timeout(20):
            rc = await self.proc.wait()
            await self.pump
        return rc


def proxy_env(base: Path, port: int, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(base),
        "PYTHONPATH": str(REPO),
        "RUN_DIR": str(base / "run"),
        "LOG_DIR": str(base / "logs"),
        "CERTS_DIR": str(base / "certs"),
        "STREAM_PORT": str(port),
    }
    env.update(extra)
    return env


async def launch(base: Path, port: int, **extra: str) -> ProxyProcess:
    """Start ``python -m stream_proxy``; return once it serves ``proxy.sock`` or has exited."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stream_proxy",
        cwd=base,
        env=proxy_env(base, port, **extra),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    ready = asyncio.Event()

    async def pump() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            if "serving events on" in line:
                ready.set()

    pump_task = asyncio.create_task(pump())
    ended = asyncio.create_task(proc.wait())
    waiting = asyncio.create_task(ready.wait())
    async with asyncio.timeout(30):
        await asyncio.wait({ended, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    ended.cancel()
    return ProxyProcess(proc, base, port, lines, pump_task)


Launcher = Callable[..., Awaitable[ProxyProcess]]


@pytest.fixture
async def proxy_launcher(short_socket_dir: Path) -> AsyncIterator[Launcher]:
    """Starts proxy processes in a short private dir; kills any still running at teardown."""
    started: list[ProxyProcess] = []

    async def start(port: int, **extra: str) -> ProxyProcess:
        pp = await launch(short_socket_dir, port, **extra)
        started.append(pp)
        return pp

    yield start
    for pp in started:
        if pp.proc.returncode is None:
            pp.proc.kill()
            await pp.proc.wait()
        pp.pump.cancel()


def resolve_to(upstream: Upstream, *hosts: str) -> str:
    return ",".join(f"{host}=127.0.0.1:{upstream.port}" for host in hosts)


async def subscribe(path: Path) -> channel.Connection:
    """Subscribe on ``proxy.sock``; the pong proves the subscription is registered."""
    conn = await channel.connect(path)
    await conn.send(protocol.Subscribe())
    await conn.send(protocol.Ping(nonce="sync"))
    async with asyncio.timeout(10):
        assert isinstance(await conn.recv(), protocol.Pong)
    return conn


async def next_event(conn: channel.Connection) -> protocol.Message:
    async with asyncio.timeout(20):
        msg = await conn.recv()
    assert msg is not None, "proxy.sock closed"
    return msg


async def events_until_done(conn: channel.Connection) -> list[protocol.Message]:
    out = []
    while True:
        msg = await next_event(conn)
        out.append(msg)
        if msg.type == "done":
            return out


def check_decoded(events: list[protocol.Message], flow_id: str) -> None:
    """The events are the thinking fixture's expected answer, in stream order, for one flow."""
    assert {e.id for e in events} == {flow_id}
    assert [e.type for e in events] == [
        "reasoning",
        "reasoning",
        "content",
        "content",
        "finish",
        "usage",
        "done",
    ]
    assert "".join(e.text for e in events if e.type == "reasoning") == EXPECTED_REASONING
    assert "".join(e.text for e in events if e.type == "content") == EXPECTED_CONTENT
    finish = next(e for e in events if e.type == "finish")
    usage = next(e for e in events if e.type == "usage")
    assert finish.reason == "stop"
    assert (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens, usage.total_tokens) == (
        14,
        9,
        120,
        143,
    )


def client_ssl(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


async def post_generate(proxy: ProxyProcess) -> tuple[int, dict[str, str], bytes]:
    """POST GenerateContent through the proxy, trusting only the proxy's CA; raw (still gzip) body."""
    cafile = proxy.certs / "mitmproxy-ca-cert.pem"
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.post(
            f"https://{RPC_HOST}{GENERATE}",
            data=REQUEST_BODY,
            headers={"Content-Type": "application/json+protobuf"},
            proxy=proxy.url,
            ssl=client_ssl(cafile),
        ) as resp:
            return resp.status, dict(resp.headers), await resp.read()


# --------------------------------------------------------------------------- streaming through the proxy


async def test_aiohttp_client_streams_through_and_events_arrive_before_the_last_chunk(
    proxy_launcher, upstream, free_port, thinking_stream
):
    """Events reach the subscriber while upstream still holds its last piece; the body arrives byte-identical."""
    proxy = await proxy_launcher(free_port, AISTUDIO_RESOLVE=resolve_to(upstream, RPC_HOST))
    sub = await subscribe(proxy.socket)
    request = asyncio.create_task(post_generate(proxy))

    started = await next_event(sub)
    assert isinstance(started, protocol.StreamStarted)
    assert started.url == f"https://{RPC_HOST}{GENERATE}"
    assert started.model == "gemini-2.5-pro"
    first = await next_event(sub)
    assert first.type == "reasoning"
    assert not upstream.sent_last, "an event must arrive before the upstream sends its last piece"
    assert upstream.holding.is_set()

    upstream.release.set()
    events = [first, *await events_until_done(sub)]
    status, headers, body = await request
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert body == b"".join(upstream.pieces)
    check_decoded(events, started.id)
    ((host, path, sent),) = upstream.requests
    assert (host, path, sent) == (RPC_HOST, GENERATE, REQUEST_BODY)  # SNI/Host keep the real name
    await sub.close()
    assert await proxy.terminate() == 0


@contextlib.asynccontextmanager
async def chromium_on_rpc_page(proxy: ProxyProcess) -> AsyncIterator[Any]:
    """Chromium through ``proxy``, trusting its CA by SPKI hash alone (as the worker does), on a page
    of the RPC host; closed on exit."""
    from playwright.async_api import async_playwright

    spki = spki_hash(proxy.certs / "mitmproxy-ca-cert.pem")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            proxy=proxy.browser_proxy(),
            args=[f"--ignore-certificate-errors-spki-list={spki}"],
        )
        try:
            page = await browser.new_page()
            await page.goto(f"https://{RPC_HOST}/")
            yield page
        finally:
            await browser.close()


@needs(CHROMIUM.exists(), "Debian Chromium")
async def test_chromium_streams_through_the_proxy_trusting_the_ca_by_spki(
    proxy_launcher, upstream, free_port, thinking_stream
):
    """Chromium, trusting the CA only by SPKI hash, reads the answer as it streams and gets every byte."""
    proxy = await proxy_launcher(free_port, AISTUDIO_RESOLVE=resolve_to(upstream, RPC_HOST))
    sub = await subscribe(proxy.socket)
    async with chromium_on_rpc_page(proxy) as page:
        fetch = asyncio.create_task(
            page.evaluate(
                """async ([path, body]) => {
                    const resp = await fetch(path, {method: "POST", body,
                        headers: {"Content-Type": "application/json+protobuf"}});
                    const reader = resp.body.getReader();
                    const bytes = [];
                    for (;;) {
                        const {done, value} = await reader.read();
                        if (done) break;
                        bytes.push(...value);
                    }
                    return {status: resp.status, bytes};
                }""",
                [GENERATE, REQUEST_BODY.decode()],
            )
        )
        started = await next_event(sub)
        assert isinstance(started, protocol.StreamStarted)
        first = await next_event(sub)
        assert first.type == "reasoning"
        assert not upstream.sent_last, "an event must arrive before the upstream sends its last piece"
        upstream.release.set()
        events = [first, *await events_until_done(sub)]
        result = await fetch
    assert result["status"] == 200
    assert bytes(result["bytes"]) == thinking_stream.body  # the browser undid the gzip
    check_decoded(events, started.id)
    await sub.close()
    assert await proxy.terminate() == 0


FETCH_GENERATE = """async ([path, body]) => {
    const resp = await fetch(path, {method: "POST", body,
        headers: {"Content-Type": "application/json+protobuf"}});
    return {status: resp.status, text: (await resp.arrayBuffer()).byteLength};
}"""


@needs(CHROMIUM.exists(), "Debian Chromium")
async def test_each_browser_context_s_flows_carry_its_slot_and_a_client_without_one_is_asked_for_it(
    proxy_launcher, upstream, free_port
):
    """The browser worker gives every page its own context whose proxy user name is the page's slot id: the
    proxy asks for it (407) and names it in ``stream_started``, so concurrent answers on several pages each
    reach their own job. Two contexts post at once; each flow carries its own slot."""
    from playwright.async_api import async_playwright

    proxy = await proxy_launcher(free_port, AISTUDIO_RESOLVE=resolve_to(upstream, RPC_HOST))
    sub = await subscribe(proxy.socket)
    spki = spki_hash(proxy.certs / "mitmproxy-ca-cert.pem")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[f"--ignore-certificate-errors-spki-list={spki}"],
        )
        try:
            pages = {}
            for slot in ("s1", "s2"):
                context = await browser.new_context(proxy=proxy.browser_proxy(slot))
                pages[slot] = await context.new_page()
                await pages[slot].goto(f"https://{RPC_HOST}/")
            fetches = {
                slot: asyncio.create_task(page.evaluate(FETCH_GENERATE, [GENERATE, REQUEST_BODY.decode()]))
                for slot, page in pages.items()
            }
            started = [await next_event(sub) for _ in range(2)]
            while len([m for m in started if isinstance(m, protocol.StreamStarted)]) < 2:
                started.append(await next_event(sub))
            upstream.release.set()
            for task in fetches.values():
                assert (await task)["status"] == 200
        finally:
            await browser.close()
    assert sorted(m.slot or "" for m in started if isinstance(m, protocol.StreamStarted)) == ["s1", "s2"]
    async with aiohttp.ClientSession() as session:  # no credentials: the proxy asks for them
        async with session.get(f"http://{RPC_HOST}/", proxy=proxy.server) as resp:
            assert resp.status == 407 and "Proxy-Authenticate" in resp.headers
    await sub.close()


async def test_other_hosts_are_tunnelled_untouched(proxy_launcher, upstream, upstream_cert, free_port):
    """A host outside the AI Studio pair is not decrypted: the client sees the upstream's own certificate."""
    proxy = await proxy_launcher(
        free_port, AISTUDIO_RESOLVE=resolve_to(upstream, RPC_HOST, "accounts.google.com")
    )
    async with aiohttp.ClientSession() as session:
        async with session.get(
            "https://accounts.google.com/tunnel-check", proxy=proxy.url, ssl=client_ssl(upstream_cert.cert)
        ) as resp:
            assert resp.status == 200
            assert await resp.text() == "direct from upstream for accounts.google.com"
        # ...while an AI Studio host is intercepted: the upstream's own certificate no longer fits.
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with session.get(
                f"https://{RPC_HOST}/", proxy=proxy.url, ssl=client_ssl(upstream_cert.cert)
            ) as resp:
                pass
    assert await proxy.terminate() == 0


@pytest.mark.parametrize("browser", ["chromium", "camoufox"])
async def test_a_browser_ignoring_certificate_errors_is_only_safe_with_camoufox_scope(
    proxy_launcher, upstream, free_port, browser
):
    """An upstream with an untrusted certificate, reached by a client that ignores certificate errors
    (what Camoufox must do, as Firefox cannot pin the CA). With Chromium's scope the host is tunnelled
    and the client alone would have to refuse it; with Camoufox's scope the proxy decrypts every host
    and refuses the certificate itself (502), while the AI Studio flow still streams."""
    proxy = await proxy_launcher(free_port, BROWSER=browser, AISTUDIO_RESOLVE=resolve_to(upstream, RPC_HOST))
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"https://127.0.0.1:{upstream.port}/tunnel-check", proxy=proxy.url, ssl=False
        ) as resp:
            if browser == "chromium":
                assert resp.status == 200 and (await resp.text()).startswith("direct from upstream")
            else:
                assert resp.status == 502
                assert "certificate" in (await resp.text()).lower()
    if browser == "camoufox":
        assert any("every host" in line for line in proxy.lines)
        upstream.release.set()
        status, _, body = await post_generate(proxy)
        assert status == 200 and body == b"".join(upstream.pieces)
    assert await proxy.terminate() == 0


async def test_sigterm_mid_stream_lets_the_open_stream_finish_within_the_grace_period(
    proxy_launcher, upstream, free_port
):
    """On SIGTERM the proxy stops accepting but an answer already streaming still completes."""
    proxy = await proxy_launcher(free_port, AISTUDIO_RESOLVE=resolve_to(upstream, RPC_HOST))
    sub = await subscribe(proxy.socket)
    request = asyncio.create_task(post_generate(proxy))
    started = await next_event(sub)
    first = await next_event(sub)
    proxy.sigterm()
    async with asyncio.timeout(10):
        while not any("waiting up to" in line for line in proxy.lines):
            await asyncio.sleep(0.01)  # the log line is the only sign the signal was handled
    upstream.release.set()
    check_decoded([first, *await events_until_done(sub)], started.id)
    status, _, body = await request
    assert status == 200 and body == b"".join(upstream.pieces)
    assert await proxy.terminate() == 0, proxy.output
    await sub.close()


async def test_sigterm_after_the_grace_period_ends_the_open_stream_with_a_shutdown_error_and_done(
    proxy_launcher, upstream, free_port
):
    """A stream still open when the grace period is over gets ``error(proxy_shutdown)`` + ``done``
    saying the proxy shut down, not mitmproxy's "Client disconnected" for the cut connection; exit 0."""
    proxy = await proxy_launcher(
        free_port, AISTUDIO_RESOLVE=resolve_to(upstream, RPC_HOST), SHUTDOWN_GRACE_S="0"
    )
    sub = await subscribe(proxy.socket)
    request = asyncio.create_task(post_generate(proxy))
    started = await next_event(sub)
    assert (await next_event(sub)).type == "reasoning"
    proxy.sigterm()
    rest = await events_until_done(sub)
    assert [e.type for e in rest][-2:] == ["error", "done"]
    error = rest[-2]
    assert error.kind == StreamProxyShutdown.kind and rest[-1].id == started.id
    assert "stream proxy shut down" in error.message and "retry" in error.message, error.message
    assert "disconnected" not in error.message.lower(), error.message
    assert await proxy.terminate() == 0, proxy.output
    assert "Traceback" not in proxy.output
    with pytest.raises(aiohttp.ClientError):
        await request
    await sub.close()


# --------------------------------------------------------------------------- the process


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def ca_info(base: Path, port: int) -> dict[str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stream_proxy",
        "ca-info",
        cwd=base,
        env=proxy_env(base, port),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return json.loads(out)


async def test_process_creates_a_private_ca_answers_ping_and_exits_zero_on_sigterm(
    proxy_launcher, short_socket_dir, free_port
):
    """First start makes the CA (key 0600, dir 0700), serves a 0600 socket, and SIGTERM exits 0 cleanly."""
    proxy = await proxy_launcher(free_port)
    assert proxy.socket.exists(), proxy.output
    assert mode(proxy.certs) == 0o700
    assert mode(proxy.certs / "mitmproxy-ca.pem") == 0o600
    assert mode(proxy.socket) == 0o600
    assert mode(proxy.socket.parent) == 0o700
    pong = await channel.ping(proxy.socket)
    assert pong.process == "stream_proxy"
    assert pong.pid == proxy.proc.pid

    info = await ca_info(short_socket_dir, free_port)
    assert Path(info["cert"]) == (proxy.certs / "mitmproxy-ca-cert.pem").absolute()
    assert info["spki_sha256"] == spki_hash(proxy.certs / "mitmproxy-ca-cert.pem")

    assert await proxy.terminate() == 0
    assert not proxy.socket.exists()
    assert "stream_proxy stopped" in proxy.output


async def test_restart_keeps_the_ca_and_the_next_request_works(proxy_launcher, upstream, free_port):
    """After a restart on the same port the CA is unchanged and a request streams as before."""
    resolve = resolve_to(upstream, RPC_HOST)
    first = await proxy_launcher(free_port, AISTUDIO_RESOLVE=resolve)
    cert_before = (first.certs / "mitmproxy-ca-cert.pem").read_bytes()
    key_before = (first.certs / "mitmproxy-ca.pem").read_bytes()
    assert await first.terminate() == 0

    second = await proxy_launcher(free_port, AISTUDIO_RESOLVE=resolve)
    assert (second.certs / "mitmproxy-ca-cert.pem").read_bytes() == cert_before
    assert (second.certs / "mitmproxy-ca.pem").read_bytes() == key_before
    sub = await subscribe(second.socket)
    upstream.release.set()
    status, _, body = await post_generate(second)
    assert status == 200 and body == b"".join(upstream.pieces)
    started = await next_event(sub)
    check_decoded(await events_until_done(sub), started.id)
    await sub.close()
    assert await second.terminate() == 0


async def test_socks5_upstream_proxy_fails_at_start_with_a_clear_message(proxy_launcher, free_port):
    """mitmproxy cannot chain to SOCKS, so ``UPSTREAM_PROXY=socks5://`` stops the start, naming the variable."""
    proxy = await proxy_launcher(free_port, UPSTREAM_PROXY="socks5://127.0.0.1:1080")
    assert await proxy.terminate() == 2
    assert "UPSTREAM_PROXY" in proxy.output and "not supported" in proxy.output
    assert not proxy.socket.exists()


async def test_a_taken_port_fails_at_start(proxy_launcher, free_port):
    """When the proxy port is in use the process exits 1 instead of serving a socket with no proxy."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        proxy = await proxy_launcher(free_port)
        assert await proxy.terminate() == 1
    assert "cannot listen" in proxy.output
    assert not proxy.socket.exists()


async def test_upstream_proxy_url_maps_to_mitmproxy_upstream_mode():
    """http(s) upstream proxies become ``upstream:`` mode with credentials moved to ``upstream_auth``."""
    from shared.settings import SettingsError
    from stream_proxy.server import upstream_mode

    assert upstream_mode("") == ("regular", None)
    assert upstream_mode("http://127.0.0.1:3128") == ("upstream:http://127.0.0.1:3128", None)
    assert upstream_mode("https://u%40x:p%3Aw@proxy.example:8443") == (
        "upstream:https://proxy.example:8443",
        "u@x:p:w",
    )
    with pytest.raises(SettingsError, match="socks5"):
        upstream_mode("socks5://127.0.0.1:1080")


async def test_stream_port_zero_serves_the_socket_without_a_proxy(proxy_launcher):
    """``STREAM_PORT=0`` turns interception off: the socket still answers ping and SIGTERM exits 0."""
    proxy = await proxy_launcher(0)
    pong = await channel.ping(proxy.socket)
    assert pong.process == "stream_proxy"
    assert "interception is off" in proxy.output
    assert await proxy.terminate() == 0
    assert not proxy.socket.exists()


def test_ensure_ca_keeps_an_existing_ca_and_tightens_its_permissions(short_socket_dir):
    """A second ``ensure_ca`` reuses the CA and puts the folder back to 0700 and the key to 0600."""
    from stream_proxy.ca import ensure_ca

    certs = short_socket_dir / "certs"
    cert = ensure_ca(certs)
    before = cert.read_bytes()
    certs.chmod(0o755)
    (certs / "mitmproxy-ca.pem").chmod(0o644)
    assert ensure_ca(certs) == cert
    assert cert.read_bytes() == before
    assert mode(certs) == 0o700
    assert mode(certs / "mitmproxy-ca.pem") == 0o600


@dataclass
class ConnectProxy:
    """A minimal HTTP CONNECT proxy that sends every tunnel to one local port and records the requests."""

    target_port: int
    port: int = 0
    heads: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_http_upstream_proxy_carries_tunnels_with_its_credentials(
    proxy_launcher, upstream, upstream_cert, free_port
):
    """With ``UPSTREAM_PROXY=http://user:pw@...`` connections go through that proxy, authenticated."""
    chained = ConnectProxy(upstream.port)
    server = await asyncio.start_server(chained.handle, "127.0.0.1", 0)
    chained.port = server.sockets[0].getsockname()[1]
    try:
        proxy = await proxy_launcher(
            free_port, UPSTREAM_PROXY=f"http://aisp:s%40cret@127.0.0.1:{chained.port}"
        )
        async with aiohttp.ClientSession() as session:
            async with session.get(
                "https://accounts.google.com/tunnel-check",
                proxy=proxy.url,
                ssl=client_ssl(upstream_cert.cert),
            ) as resp:
                assert resp.status == 200
                assert await resp.text() == "direct from upstream for accounts.google.com"
        assert await proxy.terminate() == 0
    finally:
        server.close()
    (head,) = chained.heads
    assert head.startswith(b"CONNECT accounts.google.com:443 ")
    assert b"Proxy-Authorization: Basic YWlzcDpzQGNyZXQ=" in head  # base64("aisp:s@cret")
