"""Fixtures: short socket dirs, settings, the fake worker and the real app on a free port."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api_server.app import create_app
from shared.settings import Settings
from tests.api_server.fake_worker import FakeWorker


def pick_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short temp dir (Unix socket paths must stay under ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="aisp-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_settings(base: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "run_dir": base / "run",
        "log_dir": base / "logs",
        "api_keys_file": base / "data" / "api_keys.json",
        "data_dir": base / "data",
        "stream_port": 0,
        "response_completion_timeout_ms": 30_000,
        "shutdown_grace_s": 0.5,
        "aistudio_resolve": "",
        "admin_key": None,
        "attachments_dir": None,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or with ``@pytest.mark.parametrize``) to change settings."""
    return {}


@pytest.fixture
def settings(short_dir: Path, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(short_dir, **settings_overrides)


@pytest.fixture
async def fake(settings: Settings) -> AsyncIterator[FakeWorker]:
    worker = FakeWorker(settings.worker_socket)
    await worker.start()
    yield worker
    await worker.stop()


@pytest.fixture
async def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[TestClient]:
    """An aiohttp client for the real app served on a free loopback port."""
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
async def ready(fake: FakeWorker, client: TestClient) -> TestClient:
    """The client, once the app's worker connection has seen the fake's status."""
    from api_server.app_keys import WORKER

    await client.app[WORKER].wait_usable()  # type: ignore[index]
    return client
