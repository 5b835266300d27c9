"""``python -m api_server``: serves HTTP and api.sock, and exits 0 on SIGTERM after an ordered shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from shared import channel
from tests.api_server.conftest import pick_free_port

ROOT = Path(__file__).resolve().parents[2]


async def wait_until_serving(url: str, sock: Path, proc: asyncio.subprocess.Process) -> None:
    """Poll until both the HTTP port and api.sock answer (startup readiness, not synchronisation)."""
    async with asyncio.timeout(20), aiohttp.ClientSession() as session:
        while True:
            assert proc.returncode is None, "api_server exited during startup"
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        await channel.ping(sock, timeout=2)
                        return
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.05)


async def test_sigterm_exits_zero_and_removes_the_socket(short_dir: Path) -> None:
    """The process answers ping and HTTP, then exits 0 on SIGTERM and unlinks api.sock."""
    port = pick_free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RUN_DIR": str(short_dir / "run"),
        "LOG_DIR": str(short_dir / "logs"),
        "API_PORT": str(port),
        "STREAM_PORT": "0",
        "API_KEYS_FILE": str(short_dir / "keys.json"),
        "SHUTDOWN_GRACE_S": "0.5",
        "AISTUDIO_RESOLVE": "",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api_server",
        cwd=short_dir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    sock = short_dir / "run" / "api.sock"
    try:
        await wait_until_serving(f"http://127.0.0.1:{port}/api/info", sock, proc)
        pong = await channel.ping(sock)
        assert pong.process == "api_server" and pong.pid == proc.pid
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            out, _ = await proc.communicate()
        log = out.decode()
        assert proc.returncode == 0, log
        assert "shutdown: no longer accepting" in log and "api_server stopped" in log
        assert not sock.exists()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_upload_folders_of_a_killed_server_are_removed_at_the_next_start(short_dir: Path) -> None:
    """kill -9 while a request with an attachment waits: its run/uploads/<id> folder is left behind, and the next
    start removes it (and nothing outside uploads/)."""
    import base64
    import contextlib

    port = pick_free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RUN_DIR": str(short_dir / "run"),
        "LOG_DIR": str(short_dir / "logs"),
        "API_PORT": str(port),
        "STREAM_PORT": "0",
        "API_KEYS_FILE": str(short_dir / "keys.json"),
        "SHUTDOWN_GRACE_S": "0.5",
        "AISTUDIO_RESOLVE": "",
    }
    uploads = short_dir / "run" / "uploads"
    image = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"x" * 5000).decode()
    body = {
        "model": "gemini-2.5-pro",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": image}},
                ],
            }
        ],
    }

    async def start() -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "api_server",
            cwd=short_dir,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await wait_until_serving(f"http://127.0.0.1:{port}/api/info", short_dir / "run" / "api.sock", proc)
        return proc

    first = await start()
    try:
        async with aiohttp.ClientSession() as session:
            pending = asyncio.ensure_future(
                session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body)
            )
            async with asyncio.timeout(20):
                while not (uploads.is_dir() and any(uploads.iterdir())):  # the request has written its folder
                    await asyncio.sleep(0.02)
            first.kill()
            await first.wait()
            with contextlib.suppress(aiohttp.ClientError):
                await pending
        left = list(uploads.iterdir())
        assert len(left) == 1 and any(left[0].iterdir())
        second = await start()
        try:
            assert list(uploads.iterdir()) == []
            assert (short_dir / "run").is_dir()
        finally:
            second.send_signal(signal.SIGTERM)
            await second.wait()
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
