"""The Stack harness itself: the shared stack runs the real config; a stack that cannot start says why."""

from __future__ import annotations

import shutil

import pytest

from aistudio_sim.processes import alive, descendants
from aistudio_sim.stack import PROGRAMS, Stack, StackError


def test_shared_stack_runs_every_program_of_the_real_config_on_its_own_ports(shared_stack: Stack):
    """supervisord runs the simulator and the three programs; the copy uses the stack's folders and ports."""
    states = shared_stack.states()
    assert all(states.get(p) == "RUNNING" for p in (*PROGRAMS, "simulator")), states
    conf = shared_stack.conf_path.read_text()
    assert f"--port {shared_stack.sim_port}" in conf and "%(here)s" not in conf
    assert str(shared_stack.run_dir) in conf and str(shared_stack.log_dir) in conf
    info = shared_stack.get("/api/info")[1]
    assert info["demo_mode"] is True and info["capture_mode"] == "stream"
    assert info["system_fingerprint"].startswith("fp_aistudio_sim")
    assert shared_stack.sim_inspect("health") == {"ok": True}
    assert len(shared_stack.browser_pids()) == 1
    for program in PROGRAMS:
        assert shared_stack.pid(program) > 0
        own = shared_stack.rss(program, children=False)
        assert 10 * 2**20 < own < 1024 * 2**20, (program, own)  # a Python process, not 0 and not the browser
        assert (
            shared_stack.rss(program) >= own - 2**20
        )  # two reads of a live process: its pages move a little between them
        assert f"--- {program}.log" in shared_stack.log_tail(program, 5)
    # the worker's tree counts its browser too: Chromium's processes add far more than a Python process
    assert (
        shared_stack.rss("browser_worker") - shared_stack.rss("browser_worker", children=False) > 50 * 2**20
    )


def test_stack_that_cannot_become_healthy_raises_with_health_and_logs_and_leaves_nothing():
    """A bad setting: start() raises StackError quoting /health and the programs' logs; no process survives."""
    stack = Stack(env={"QUEUE_LIMIT": "0"}, health_timeout=90, prefix="aisp-bad-")
    with pytest.raises(StackError) as info:
        stack.start()
    message = str(info.value)
    assert "/health" in message
    assert "QUEUE_LIMIT" in message
    assert stack.proc is not None and stack.proc.poll() is not None
    assert not [pid for pid in descendants(stack.proc.pid) if alive(pid)]
    assert str(stack.base) in message  # the logs are kept for a look
    shutil.rmtree(stack.base)
