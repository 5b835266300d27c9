"""The stream proxy's error events as the worker maps them, and as the API server rebuilds them."""

from __future__ import annotations

import time

from browser_worker.errors import error_from_stream
from shared import protocol
from shared.errors import StreamProxyShutdown, UpstreamError, from_kind
from stream_proxy.addon import SHUTDOWN_MESSAGE


def stream_error(kind: str, message: str) -> protocol.Error:
    return protocol.Error(id="flow-1", ts=time.time(), kind=kind, message=message)


def across_the_worker_socket(err: UpstreamError) -> UpstreamError:
    """What the API server rebuilds from the worker's ``error`` event (kind, message, status, retry)."""
    rebuilt = from_kind(err.kind, err.message, status=err.status, retry_after=err.retry_after)
    assert isinstance(rebuilt, UpstreamError)
    return rebuilt


def test_a_stream_cut_by_the_proxys_shutdown_reaches_the_client_as_a_retryable_502_naming_the_proxy():
    """``error(proxy_shutdown)``: a 502 with its own code, the proxy's message and a retry hint."""
    err = across_the_worker_socket(error_from_stream(stream_error("proxy_shutdown", SHUTDOWN_MESSAGE)))
    assert isinstance(err, StreamProxyShutdown)
    assert (err.status, err.code, err.error_type) == (502, "stream_proxy_shutdown", "upstream_error")
    assert err.message == SHUTDOWN_MESSAGE and "retry" in err.message
    assert err.retry_after == StreamProxyShutdown.default_retry_after == 5.0


def test_a_genuine_upstream_cut_stays_a_plain_upstream_error_with_its_reason():
    """``error(aborted)`` (e.g. ``#sim:error=cut``) is not mistaken for a proxy shutdown."""
    reason = (
        "response body ended before its top-level array closed (120 bytes received): peer closed connection"
    )
    err = error_from_stream(stream_error("aborted", reason))
    assert type(err) is UpstreamError and err.code == "aborted" and err.message == reason
    assert err.retry_after is None
    assert type(across_the_worker_socket(err)) is UpstreamError
