"""docs/aistudio.md §7: the browser's cookies are written back to the login file periodically, not only at shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.browser_worker.conftest import start_worker, worker_settings
from tests.simulator.conftest import SimProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_new_browser_cookie_reaches_the_profile_while_the_worker_runs(
    simulator: SimProcess, demo_profile: Path, work_dir: Path
):
    profile = work_dir / "refresh" / "auth" / "active" / "me.json"
    profile.parent.mkdir(parents=True, mode=0o700)
    shutil.copy(demo_profile, profile)
    profile.chmod(0o600)
    settings = worker_settings(simulator, work_dir / "refresh", profile, cookie_refresh_interval_s=1)
    async with start_worker(settings) as worker:
        assert worker.supervisor.page is not None
        await worker.supervisor.page.context.add_cookies(
            [{"name": "ROTATED", "value": "v2", "domain": ".google.com", "path": "/", "secure": True}]
        )
        async with asyncio.timeout(10):  # the refresh runs every second
            while "ROTATED" not in {c["name"] for c in json.loads(profile.read_text())["cookies"]}:
                await asyncio.sleep(0.1)  # polling the file the worker writes
        assert worker.supervisor.state == "ready"
        assert oct(os.stat(profile).st_mode & 0o777) == "0o600"
