"""Fixtures every test folder can use: free ports, short socket dirs, the project root."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aistudio_sim.processes import pick_free_port
from tests.fixtures import FIXTURES_DIR
from tests.requirements import IN_CI, missing_tools

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI=true a machine without Chromium, curl or node fails the run at once instead of skipping."""
    if IN_CI and (missing := missing_tools()):
        pytest.exit(
            f"CI=true but these are missing: {', '.join(missing)} (scripts/test.sh installs them)",
            returncode=1,
        )


@pytest.fixture
def free_port() -> int:
    return pick_free_port()


@pytest.fixture
def short_socket_dir() -> Iterator[Path]:
    """A private directory with a path short enough for Unix sockets (pytest's tmp_path may not be)."""
    path = Path(tempfile.mkdtemp(prefix="aisp-", dir="/tmp"))
    path.chmod(0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES_DIR
