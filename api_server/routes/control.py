"""Operator actions behind the admin key, for the dashboard and scripts.

* ``POST /api/control/restart/{stream_proxy|browser_worker}``: the process is asked to stop (SIGTERM to the pid
  that answers on its socket) and its supervisor starts it again: supervisord (``autorestart``) in the
  installed service. Under the ``Procfile`` a process manager such as honcho stops every process when one exits,
  so there a restart stops the service. Requests running on the worker fail with 503 and may be retried; a
  stream proxy restart is safe for running answers (it finishes open streams first).
* ``POST /api/control/doctor``: runs ``python -m browser_worker doctor`` with this server's settings and returns
  its JSON report as an attachment.
* ``GET /api/snapshots``, ``GET /api/snapshots/{day}/{name}/{file}``: the worker's error snapshots
  (``ERROR_SNAPSHOT_DIR``); the page's text (``page.html``) only with ``?reveal=1``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from api_server.app_keys import SETTINGS
from shared import channel, protocol
from shared.errors import InvalidRequest, NotFound, ServiceError, WorkerUnavailable

routes = web.RouteTableDef()

#: A doctor run gets this long (seconds).
DOCTOR_TIMEOUT_S = 240.0
#: The files of a snapshot folder the dashboard may read, and their types.
SNAPSHOT_FILES = {
    "error.txt": "text/plain",
    "screenshot.png": "image/png",
    "console.txt": "text/plain",
    "network.txt": "text/plain",
    "page.html": "text/plain",
}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@routes.post(r"/api/control/restart/{program:stream_proxy|browser_worker}")
async def restart(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    program = request.match_info["program"]
    path = settings.proxy_socket if program == "stream_proxy" else settings.worker_socket
    if program == "stream_proxy" and not settings.stream_port:
        raise InvalidRequest("The stream proxy is disabled (STREAM_PORT=0).", code="stream_proxy_disabled")
    try:
        pid = (await channel.ping(path, timeout=2.0)).pid
    except (OSError, TimeoutError, protocol.FrameError):
        raise WorkerUnavailable(f"{program} does not answer on {path.name}; nothing to restart.") from None
    os.kill(pid, signal.SIGTERM)
    return web.json_response({"program": program, "pid": pid, "signal": "SIGTERM", "restarting": True})


@routes.post("/api/control/doctor")
async def doctor(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    out = settings.data_dir / "doctor"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "browser_worker",
        "doctor",
        "--json",
        "--out",
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(DOCTOR_TIMEOUT_S):
            await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ServiceError(f"The doctor did not finish within {DOCTOR_TIMEOUT_S:.0f} s.") from None
    report = out / "doctor-report.json"
    if not report.is_file():
        raise ServiceError(f"The doctor wrote no report (exit status {proc.returncode}); see the server log.")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return web.Response(
        body=report.read_bytes(),
        content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="doctor-{stamp}.json"'},
    )


@routes.get("/api/snapshots")
async def list_snapshots(request: web.Request) -> web.Response:
    root = request.app[SETTINGS].error_snapshot_dir
    rows: list[dict[str, Any]] = []
    if root.is_dir():
        for day in sorted((d for d in root.iterdir() if d.is_dir() and _DAY.match(d.name)), reverse=True):
            for folder in sorted((f for f in day.iterdir() if f.is_dir()), reverse=True):
                rows.append(_describe(day.name, folder))
    return web.json_response({"object": "list", "data": rows[:100]})


def _describe(day: str, folder: Path) -> dict[str, Any]:
    parts = folder.name.split("_")
    error = folder / "error.txt"
    return {
        "day": day,
        "name": folder.name,
        "request_id": "_".join(parts[1:-1]) if len(parts) >= 3 else None,
        "kind": parts[-1] if len(parts) >= 3 else None,
        "error": error.read_text(errors="replace")[:500] if error.is_file() else "",
        "files": sorted(f.name for f in folder.iterdir() if f.name in SNAPSHOT_FILES),
    }


@routes.get("/api/snapshots/{day}/{name}/{file}")
async def snapshot_file(request: web.Request) -> web.Response:
    day, name, file = (request.match_info[k] for k in ("day", "name", "file"))
    if not _DAY.match(day) or not _NAME.match(name) or file not in SNAPSHOT_FILES:
        raise NotFound("No such snapshot file.", code="snapshot_not_found")
    path = request.app[SETTINGS].error_snapshot_dir / day / name / file
    if not path.is_file():
        raise NotFound("No such snapshot file.", code="snapshot_not_found")
    if file == "page.html" and request.query.get("reveal") != "1":
        text = path.read_text(errors="replace")
        return web.Response(text=_without_text(text), content_type="text/plain")
    return web.Response(body=path.read_bytes(), content_type=SNAPSHOT_FILES[file])


def _without_text(html: str) -> str:
    """The page's markup with its text (the prompt, the answer) replaced by its length; ``?reveal=1`` shows it."""
    return re.sub(
        r">([^<]+)<",
        lambda m: f">[{len(m.group(1))} characters]<" if m.group(1).strip() else m.group(0),
        html,
    )
