"""The API server's application factory."""

from __future__ import annotations

from aiohttp import web

from api_server import lifecycle
from api_server.app_keys import (
    AUTH_LIMITER,
    CLIENT_KEYS,
    ENGINE,
    LEDGER,
    LIMITER,
    METRICS,
    OBSERVERS,
    QUEUE,
    RECENT,
    RESPONSES,
    SETTINGS,
    STATE,
    WORKER,
)
from api_server.auth import FailedAuthLimiter, KeyStore
from api_server.cors import add_cors_headers, cors_middleware
from api_server.engine import Engine
from api_server.key_limits import KeyLimiter
from api_server.metrics import Metrics
from api_server.middleware import add_request_ids, auth_middleware, error_middleware, guard_middleware
from api_server.queue import RequestQueue
from api_server.records import Observer, RecentRequests, add_server_timing, record_middleware
from api_server.response_store import ResponseStore
from api_server.routes import (
    accounts_add,
    admin,
    anthropic,
    control,
    dashboard,
    gemini,
    observe,
    openai,
    responses,
)
from api_server.state import ServerState
from api_server.usage_ledger import UsageLedger
from api_server.worker_client import WorkerClient
from shared.settings import Settings


def create_app(
    settings: Settings, *, connect_worker: bool = True, fetch_remote: bool = True
) -> web.Application:
    """Build the app; ``connect_worker=False`` leaves the worker socket alone (tests of pure routes)."""
    observers: list[Observer] = []
    app = web.Application(
        middlewares=[
            error_middleware,
            record_middleware(observers),
            guard_middleware,
            cors_middleware,
            auth_middleware,
        ],
        client_max_size=settings.max_request_bytes,
    )
    app[SETTINGS] = settings
    app[STATE] = ServerState.from_settings(settings)
    worker = WorkerClient(settings.worker_socket, max_frame=settings.max_frame_bytes)
    queue = RequestQueue(settings.queue_limit, worker, limit_per_key=settings.queue_limit_per_key or None)
    worker.on_event = queue.deliver
    worker.on_status = queue.status_changed
    worker.on_lost = queue.connection_lost
    app[WORKER] = worker
    app[QUEUE] = queue
    app[CLIENT_KEYS] = KeyStore(settings.api_keys_file)
    app[LIMITER] = KeyLimiter(app[CLIENT_KEYS].limits)
    app[AUTH_LIMITER] = FailedAuthLimiter(settings.auth_failure_limit, settings.auth_lockout_s)
    app[ENGINE] = Engine(settings, queue, worker)
    app[RESPONSES] = ResponseStore(settings.data_dir, settings.responses_retention_days)
    app[LEDGER] = UsageLedger(
        settings.data_dir, settings.usage_retention_days, max_bytes=int(settings.usage_max_mb * 2**20)
    )
    app[METRICS] = Metrics(worker, queue, app[LEDGER])
    app[RECENT] = RecentRequests()
    observers.extend([app[LEDGER], app[METRICS], app[RECENT]])
    app[OBSERVERS] = observers
    app.add_routes(openai.routes)
    app.add_routes(gemini.routes)
    app.add_routes(anthropic.routes)
    app.add_routes(responses.routes)
    app.add_routes(admin.routes)
    app.add_routes(observe.routes)
    app.add_routes(control.routes)
    app.add_routes(dashboard.routes)
    app.add_routes(accounts_add.routes)
    if connect_worker:
        app.cleanup_ctx.append(lifecycle.worker_connection)
    app.cleanup_ctx.append(lifecycle.queue_dispatcher)
    if fetch_remote:
        app.cleanup_ctx.append(lifecycle.http_session)
    app.on_startup.append(lifecycle.remove_orphaned_uploads)
    app.on_shutdown.append(lifecycle.on_shutdown)
    app.on_cleanup.append(lifecycle.close_response_store)
    app.cleanup_ctx.append(lifecycle.usage_ledger)
    app.on_response_prepare.append(add_request_ids)
    app.on_response_prepare.append(add_server_timing)
    app.on_response_prepare.append(add_cors_headers)
    return app
