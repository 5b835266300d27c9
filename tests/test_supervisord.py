"""The real supervisord.conf runs the three programs; stream_proxy restarts alone; shutdown is clean."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aistudio_sim.processes import alive, descendants, pick_free_port
from shared import channel, protocol
from tests.conftest import PROJECT_ROOT

PROGRAMS = ("stream_proxy", "browser_worker", "api_server")
SOCKETS = {"stream_proxy": "proxy.sock", "browser_worker": "worker.sock", "api_server": "api.sock"}


def temp_copy_of_config(base: Path) -> Path:
    """The real config with its run/log/state folders moved under ``base``."""
    text = (PROJECT_ROOT / "supervisord.conf").read_text()
    for folder in ("run", "logs", "sim_state"):
        text = text.replace(f"%(here)s/{folder}", str(base / folder))
    text = text.replace("%(here)s", str(PROJECT_ROOT))
    (base / "run").mkdir(mode=0o700)
    (base / "logs").mkdir(mode=0o700)
    conf = base / "supervisord.conf"
    conf.write_text(text)
    return conf


def stack_env(base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "STREAM_", "AISTUDIO_"))}
    env.update(
        RUN_DIR=str(base / "run"),
        LOG_DIR=str(base / "logs"),
        CERTS_DIR=str(base / "certs"),
        ERROR_SNAPSHOT_DIR=str(base / "errors"),
        AUTH_PROFILES_DIR=str(base / "auth_profiles"),
        API_KEYS_FILE=str(base / "data" / "keys.json"),
        API_PORT=str(pick_free_port()),
        STREAM_PORT=str(pick_free_port()),
        BROWSER="chromium",
        HEADLESS="true",
    )
    return env


class Supervisor:
    def __init__(self, conf: Path, env: dict[str, str]) -> None:
        self.conf, self.env = conf, env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def ctl(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return proc.stdout

    def states(self) -> dict[str, str]:
        return dict(re.findall(r"^(\S+)\s+(\S+)", self.ctl("status"), re.M))

    def pid(self, program: str) -> int:
        return int(self.ctl("pid", program).strip())

    def wait_for(self, condition, what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                pytest.fail(f"supervisord exited ({self.proc.returncode}) while waiting for {what}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}: {self.states()}")
            time.sleep(0.2)  # polling supervisord's own state, not timing the programs


@pytest.fixture
def supervisor(short_socket_dir: Path) -> Iterator[Supervisor]:
    sup = Supervisor(temp_copy_of_config(short_socket_dir), stack_env(short_socket_dir))
    try:
        yield sup
    finally:
        if sup.proc.poll() is None:
            sup.proc.send_signal(signal.SIGTERM)
            try:
                sup.proc.wait(60)
            except subprocess.TimeoutExpired:
                sup.proc.kill()


def ping(sock: Path) -> protocol.Pong:
    return asyncio.run(channel.ping(sock, timeout=10))


def answers_ping(sock: Path) -> bool:
    try:
        ping(sock)
        return True
    except (OSError, TimeoutError):
        return False


def test_three_programs_run_answer_ping_restart_alone_and_stop_cleanly(supervisor: Supervisor):
    """RUNNING x3 with pings answered; restarting stream_proxy keeps other pids; shutdown leaves nothing."""
    run_dir = Path(supervisor.env["RUN_DIR"])

    supervisor.wait_for(lambda: all(supervisor.states().get(p) == "RUNNING" for p in PROGRAMS), "RUNNING")
    assert supervisor.states().get("simulator") == "STOPPED"  # demo-only program, not autostarted
    for program, sock in SOCKETS.items():
        supervisor.wait_for(lambda s=sock: answers_ping(run_dir / s), f"{program} ping")
        assert ping(run_dir / sock).process == program
    pids = {p: supervisor.pid(p) for p in PROGRAMS}

    assert "stream_proxy: started" in supervisor.ctl("restart", "stream_proxy")
    supervisor.wait_for(lambda: answers_ping(run_dir / "proxy.sock"), "stream_proxy ping after restart")
    after = {p: supervisor.pid(p) for p in PROGRAMS}
    assert after["stream_proxy"] != pids["stream_proxy"]
    assert after["browser_worker"] == pids["browser_worker"]
    assert after["api_server"] == pids["api_server"]
    worker_tree = set().union(*(descendants(pid) for pid in after.values()))

    supervisor.proc.send_signal(signal.SIGTERM)
    assert supervisor.proc.wait(90) == 0
    for program, pid in after.items():
        assert not alive(pid), f"{program} (pid {pid}) outlived supervisord"
    assert not {pid for pid in worker_tree if alive(pid)}, "child processes (browser, driver) left behind"
    log = (Path(supervisor.env["LOG_DIR"]) / "supervisord.log").read_text()
    for program in PROGRAMS:
        assert re.search(rf"stopped: {program} \(exit status 0\)", log), f"{program} did not exit cleanly"
    for sock in SOCKETS.values():
        assert not (run_dir / sock).exists()
