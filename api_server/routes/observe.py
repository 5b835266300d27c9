"""What an operator reads: ``/metrics``, ``/api/usage`` (and its CSV export), ``/api/requests/{id}``.

Access (``auth_middleware``): ``/metrics`` wants the admin key (open on loopback while no key is set);
the usage and timelines show everything to the admin key and a client key only its own requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from pathlib import Path
from typing import Any

from aiohttp import web

from api_server import utc
from api_server.app_keys import CALLER, LEDGER, METRICS, RECENT, SETTINGS, WORKER
from api_server.auth import Caller
from api_server.usage_ledger import COLUMNS, GROUPS
from shared import channel, protocol
from shared.errors import InvalidRequest, NotFound, WorkerUnavailable

routes = web.RouteTableDef()


def _time(request: web.Request, name: str) -> float | None:
    """A ``since``/``until`` parameter: Unix seconds or an ISO 8601 date/time (UTC unless it says)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return utc.unix_seconds(raw)
    except ValueError:
        raise InvalidRequest(
            f"{name} must be Unix seconds or an ISO 8601 date/time such as 2026-12-05T10:00:00Z, not {raw!r}.",
            param=name,
            code="invalid_value",
        ) from None


def _range(request: web.Request) -> tuple[float | None, float | None]:
    since, until = _time(request, "since"), _time(request, "until")
    if since is not None and until is not None and until < since:
        raise InvalidRequest("until is before since.", param="until", code="invalid_value")
    return since, until


async def _pid(path: Path) -> int | None:
    try:
        return (await channel.ping(path, timeout=1.0)).pid
    except (OSError, TimeoutError, protocol.FrameError):
        return None


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    settings, registry = request.app[SETTINGS], request.app[METRICS]
    sockets = {"browser_worker": settings.worker_socket}
    if settings.stream_port:
        sockets["stream_proxy"] = settings.proxy_socket
    with contextlib.suppress(WorkerUnavailable):  # the worker's counters as they are now (else its last push)
        await request.app[WORKER].status(timeout=2.0)
    pids = await asyncio.gather(*(_pid(path) for path in sockets.values()))
    registry.live.pids = {name: pid for name, pid in zip(sockets, pids, strict=True) if pid is not None}
    body = await asyncio.to_thread(registry.render)
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


@routes.get("/api/usage")
async def usage(request: web.Request) -> web.Response:
    since, until = _range(request)
    group_by = request.query.get("group_by") or None
    if group_by is not None and group_by not in GROUPS:
        raise InvalidRequest(
            f"group_by must be one of {', '.join(GROUPS)}, not {group_by!r}.",
            param="group_by",
            code="invalid_value",
        )
    caller: Caller = request[CALLER]
    ledger = request.app[LEDGER]
    await asyncio.to_thread(ledger.flush, 5.0)  # what finished before this request is counted
    rows = await asyncio.to_thread(
        ledger.summary, since=since, until=until, group_by=group_by, key_id=caller.key_id
    )
    body: dict[str, Any] = {
        "object": "usage",
        "since": since,
        "until": until,
        "group_by": group_by,
        "data": rows,
    }
    return web.json_response(body)


@routes.get("/api/usage/export")
async def usage_export(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "csv")
    if fmt != "csv":
        raise InvalidRequest(f"format must be csv, not {fmt!r}.", param="format", code="invalid_value")
    since, until = _range(request)
    caller: Caller = request[CALLER]
    ledger = request.app[LEDGER]
    await asyncio.to_thread(ledger.flush, 5.0)
    rows = await asyncio.to_thread(ledger.rows, since=since, until=until, key_id=caller.key_id)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="usage.csv"'},
    )


@routes.get("/api/requests/{request_id}")
async def request_timeline(request: web.Request) -> web.Response:
    wanted = request.match_info["request_id"]
    record = request.app[RECENT].get(wanted)
    caller: Caller = request[CALLER]
    if record is None or not (caller.sees_all or record.key_id == caller.key_id):
        raise NotFound(
            f"No recent request {wanted!r} (the last {request.app[RECENT].size} are kept).",
            param="request_id",
            code="request_not_found",
        )
    return web.json_response({"object": "request", **record.to_json()})
