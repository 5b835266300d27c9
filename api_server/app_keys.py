"""Typed keys of everything the API server keeps on its ``Application`` and requests."""

from __future__ import annotations

from aiohttp import ClientSession, web

from api_server.auth import Caller, FailedAuthLimiter, KeyStore
from api_server.engine import Engine
from api_server.key_limits import KeyLimiter
from api_server.metrics import Metrics
from api_server.queue import RequestQueue
from api_server.records import Observer, RecentRequests
from api_server.response_store import ResponseStore
from api_server.state import ServerState
from api_server.usage_ledger import UsageLedger
from api_server.worker_client import WorkerClient
from shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
STATE = web.AppKey("state", ServerState)
WORKER = web.AppKey("worker", WorkerClient)
QUEUE = web.AppKey("queue", RequestQueue)
CLIENT_KEYS = web.AppKey("client_keys", KeyStore)
AUTH_LIMITER = web.AppKey("auth_limiter", FailedAuthLimiter)
ENGINE = web.AppKey("engine", Engine)
HTTP = web.AppKey("http", ClientSession)
RESPONSES = web.AppKey("responses", ResponseStore)
LEDGER = web.AppKey("ledger", UsageLedger)
LIMITER = web.AppKey("limiter", KeyLimiter)
METRICS = web.AppKey("metrics", Metrics)
RECENT = web.AppKey("recent", RecentRequests)
#: Who gets each closed request record (the ledger, the metrics, the recent timelines).
OBSERVERS = web.AppKey("observers", list[Observer])

#: The request id of one HTTP request (also the queue id of a chat request).
REQUEST_ID = web.RequestKey("request_id", str)
#: The id the client sent in ``x-request-id`` (for its own tracing; never used as an internal key).
CLIENT_REQUEST_ID = web.RequestKey("client_request_id", str)
#: Who sent a /v1 request (``auth_middleware``).
CALLER = web.RequestKey("caller", Caller)
