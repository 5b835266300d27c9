"""Simulator fixtures: the real AI Studio simulator as a subprocess, on a free port, with its own
state dir.

* `sim`: the session-wide simulator, reset before each test (cheap; use this by default);
* `fresh_sim`: a process of its own per test (pristine state dir);
* `start_simulator(state_dir, *extra_args)`: the context manager behind both, for other scopes.

Other test packages can reuse them: `from tests.simulator.conftest import sim, sim_server`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from aistudio_sim.processes import pick_free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SIM_HOSTS = ("aistudio.google.com", "alkalimakersuite-pa.clients6.google.com", "accounts.google.com")
RPC_BASE = (
    "https://alkalimakersuite-pa.clients6.google.com/$rpc/"
    "google.internal.alkali.applications.makersuite.v1.MakerSuiteService/"
)
STARTUP_TIMEOUT = 20.0


@dataclass
class SimProcess:
    """A running simulator. All simulated hosts are served on `127.0.0.1:port`."""

    port: int
    cert_path: Path
    state_dir: Path
    profile_path: Path
    process: subprocess.Popen
    stderr_path: Path
    #: Plain-HTTP port of the stream helper (`--helper-port`).
    helper_port: int = 0
    _ssl: ssl.SSLContext | None = field(default=None, repr=False)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def helper_url(self) -> str:
        """The simulator as a `HELPER_ENDPOINT`."""
        return f"http://127.0.0.1:{self.helper_port}/getStreamResponse"

    @property
    def host_resolver_rules(self) -> str:
        """Value for Chromium's `--host-resolver-rules=` mapping the real hosts here."""
        return ", ".join(f"MAP {h} 127.0.0.1:{self.port}" for h in SIM_HOSTS)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the simulator's self-signed certificate."""
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self.cert_path))
        return self._ssl

    def inspect(self, path: str, body: Any = None, *, method: str | None = None) -> Any:
        """Call the inspection API: `inspect("requests/last")`, `inspect("config", {...})`.
        A body (or method="POST") makes it a POST. Returns the decoded JSON (None for no body)."""
        path = path.lstrip("/")
        if not path.startswith("__sim__/"):
            path = "__sim__/" + path
        method = method or ("POST" if body is not None else "GET")
        data = None if body is None else json.dumps(body).encode()
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl_context(), timeout=10)
        try:
            conn.request(
                method,
                "/" + path,
                body=data,
                headers={"Host": "aistudio.google.com", "Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        if resp.status >= 400 and resp.status != 404:
            raise AssertionError(f"inspect {method} {path}: HTTP {resp.status} {raw[:300]!r}")
        return json.loads(raw) if raw else None

    def config(self, **updates: Any) -> dict:
        """Merge config toggles (`sim.config(gzip=False)`); returns the whole config."""
        return self.inspect("config", updates) if updates else self.inspect("config")

    def reset(self) -> None:
        self.inspect("reset", method="POST")

    def storage_state(self, email: str | None = None) -> dict:
        """A fresh signed-in Playwright storage_state (default: the demo account)."""
        return self.inspect("sessions", {"email": email} if email else {})

    def refresh_profile(self) -> Path:
        """Write a new demo-account storage_state to `profile_path` (0600)."""
        data = json.dumps(self.storage_state()).encode()
        fd = os.open(self.profile_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return self.profile_path

    def cookie_header(self, email: str | None = None) -> str:
        state = self.storage_state(email)
        return "; ".join(f"{c['name']}={c['value']}" for c in state["cookies"])

    def resolver(self) -> Any:
        """An aiohttp resolver sending the simulated hosts to this simulator."""
        return _SimResolver(self.port)

    def client_session(self, **kwargs: Any) -> Any:
        """An `aiohttp.ClientSession` that reaches the real URLs (`https://aistudio.google.com/...`)
        on this simulator, trusting its certificate. Use as `async with sim.client_session() as s`."""
        import aiohttp

        connector = aiohttp.TCPConnector(resolver=self.resolver(), ssl=self.ssl_context(), force_close=True)
        kwargs.setdefault("auto_decompress", True)
        return aiohttp.ClientSession(connector=connector, **kwargs)

    def stop(self, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        return self.process.returncode

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


class _SimResolver:
    """aiohttp `AbstractResolver` duck type: simulated hosts → 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict]:
        if host in SIM_HOSTS or host in ("127.0.0.1", "localhost"):
            return [
                {
                    "hostname": host,
                    "host": "127.0.0.1",
                    "port": self.port,
                    "family": socket.AF_INET,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
            ]
        raise OSError(f"the simulator resolver only knows {SIM_HOSTS}, not {host!r}")

    async def close(self) -> None:
        return None


@contextlib.contextmanager
def start_simulator(state_dir: Path, *extra_args: str) -> Iterator[SimProcess]:
    """Start the simulator on a free port; on exit SIGTERM it and require exit status 0."""
    state_dir.mkdir(parents=True, exist_ok=True)
    profile = state_dir.parent / f"{state_dir.name}-profile" / "demo.json"
    stderr_path = state_dir.parent / f"{state_dir.name}-stderr.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    helper_port = pick_free_port()
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aistudio_sim",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--state-dir",
                str(state_dir),
                "--write-demo-profile",
                str(profile),
                "--helper-port",
                str(helper_port),
                *extra_args,
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
    line = _read_ready_line(proc)
    if not line.startswith("ready https://127.0.0.1:"):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"simulator did not start: {line!r}\n{stderr_path.read_text()}")
    sim = SimProcess(
        port=int(line.rsplit(":", 1)[1]),
        cert_path=state_dir / "sim-cert.pem",
        state_dir=state_dir,
        profile_path=profile,
        process=proc,
        stderr_path=stderr_path,
        helper_port=helper_port,
    )
    try:
        yield sim
    finally:
        code = sim.stop()
    assert code == 0, f"simulator exited with {code}:\n{sim.stderr()}"


def _read_ready_line(proc: subprocess.Popen) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    buf = b""
    try:
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                return buf.decode(errors="replace") or "<timeout>"
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return buf.decode(errors="replace") or "<exited>"
            buf += chunk
    finally:
        sel.close()
    return buf.split(b"\n", 1)[0].decode()


@pytest.fixture(scope="session")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """One simulator process for the whole test session (SIGTERM + exit 0 checked at the end)."""
    with start_simulator(tmp_path_factory.mktemp("sim") / "state") as running:
        yield running


@pytest.fixture
def sim(sim_server: SimProcess) -> SimProcess:
    """The shared simulator, reset for this test: no recorded requests, jserrors or events, the
    default config, and a fresh demo-account session in `sim.profile_path`."""
    sim_server.refresh_profile()
    sim_server.reset()
    return sim_server


@pytest.fixture
def fresh_sim(tmp_path: Path) -> Iterator[SimProcess]:
    """A simulator process of its own, with a brand-new state dir."""
    with start_simulator(tmp_path / "sim-state") as running:
        yield running
