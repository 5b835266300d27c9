"""The project's error tree, mapped once to OpenAI-style HTTP errors.

Every failure that can reach a client is one of these. Each class carries the
OpenAI error ``type``, a default ``code`` and the HTTP status; the API server's
middleware and SSE writer render them, and the worker sends them over the
socket as an ``error`` event whose ``kind`` names the class (see ``KINDS``).
Foreign exceptions (Playwright, mitmproxy, aiohttp) are translated into these
at the boundary where they occur and never cross a process.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Base of every error this project reports to a client."""

    kind: ClassVar[str] = "internal"
    #: Class defaults; an instance may carry its own (an HTTP error translated as it came).
    status: int = 500
    error_type: str = "server_error"
    default_code: ClassVar[str | None] = "internal_error"
    #: Seconds after which a retry may succeed, when the instance is given none (``Retry-After``).
    #: The one owner of these defaults: the worker, the queue and the HTTP layer all rely on it.
    default_retry_after: ClassVar[float | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.retry_after = retry_after if retry_after is not None else self.default_retry_after
        if status is not None:
            self.status = status

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI error object: ``{"error": {message, type, param, code}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(ServiceError):
    """The request is malformed or asks for something unsupported."""

    kind = "invalid_request"
    status = 400
    error_type = "invalid_request_error"
    default_code = "invalid_request"


class AuthenticationFailed(ServiceError):
    """Missing or wrong API key."""

    kind = "authentication"
    status = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(ServiceError):
    """Upstream refused the account (HTTP 403, gRPC 7) or an admin key is missing."""

    kind = "permission"
    status = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class NotFound(ServiceError):
    """Unknown model, request id or endpoint."""

    kind = "not_found"
    status = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class PayloadTooLarge(ServiceError):
    """The request body exceeds the configured limit."""

    kind = "too_large"
    status = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class QueueFull(ServiceError):
    """The request queue is at its limit."""

    kind = "queue_full"
    status = 429
    error_type = "rate_limit_error"
    default_code = "queue_full"
    default_retry_after = 5.0


class QuotaExceeded(ServiceError):
    """AI Studio says the account's quota is used up."""

    kind = "quota"
    status = 429
    error_type = "rate_limit_error"
    default_code = "insufficient_quota"
    #: A daily quota: an hour is the shortest wait worth trying again after.
    default_retry_after = 3600.0


class RateLimited(ServiceError):
    """AI Studio says too many requests."""

    kind = "rate_limit"
    status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"
    #: AI Studio's rate limits are per minute.
    default_retry_after = 60.0


class AllAccountsCooling(RateLimited):
    """Every account that could answer is cooling down after quota or rate-limit errors (the pool's own
    429, with the earliest recovery as ``Retry-After``)."""

    kind = "accounts_cooling"
    default_code = "all_accounts_cooling"


class ModelSwitchFailed(ServiceError):
    """The page did not accept the requested model."""

    kind = "model_switch"
    status = 422
    error_type = "invalid_request_error"
    default_code = "model_switch_failed"


class Cancelled(ServiceError):
    """The client cancelled the request or went away (logged as 499)."""

    kind = "cancelled"
    status = 499
    error_type = "invalid_request_error"
    default_code = "request_cancelled"


class UpstreamError(ServiceError):
    """AI Studio or the page failed: HTTP >= 400, an in-stream error, a broken stream."""

    kind = "upstream"
    status = 502
    error_type = "upstream_error"
    default_code = "upstream_error"


class SettingUnavailable(UpstreamError):
    """The request sets a run setting whose control the page does not offer now (degraded mode,
    docs/selectors.md): a 502 naming the control; ``STRICT_SETTINGS=false`` runs such requests without it."""

    kind = "setting_unavailable"
    default_code = "setting_unavailable"


class StreamProxyShutdown(UpstreamError):
    """The stream proxy shut down (a restart or a stop) while an answer was streaming through it.

    The browser's own connection to AI Studio runs through the proxy, so the answer was cut
    off; the request was fine and a retry is answered once the proxy is back (the worker waits
    for a restarting proxy). Still a 502: the answer this gateway relayed broke off mid-way.
    """

    kind = "proxy_shutdown"
    default_code = "stream_proxy_shutdown"
    default_retry_after = 5.0


class WorkerUnavailable(ServiceError):
    """The browser worker is not ready (starting, restarting, down)."""

    kind = "unavailable"
    status = 503
    error_type = "service_unavailable"
    default_code = "worker_unavailable"
    #: A page starts or restarts in well under this.
    default_retry_after = 30.0


class LoginRequired(WorkerUnavailable):
    """The saved Google login is missing or expired: run ``make login``."""

    kind = "login_required"
    default_code = "login_required"
    #: Someone has to sign in first.
    default_retry_after = 60.0


class UpstreamTimeout(ServiceError):
    """No (complete) answer within the configured timeouts."""

    kind = "timeout"
    status = 504
    error_type = "timeout_error"
    default_code = "upstream_timeout"


ERROR_CLASSES: tuple[type[ServiceError], ...] = (
    ServiceError,
    InvalidRequest,
    AuthenticationFailed,
    PermissionDenied,
    NotFound,
    PayloadTooLarge,
    QueueFull,
    QuotaExceeded,
    RateLimited,
    AllAccountsCooling,
    ModelSwitchFailed,
    Cancelled,
    UpstreamError,
    SettingUnavailable,
    StreamProxyShutdown,
    WorkerUnavailable,
    LoginRequired,
    UpstreamTimeout,
)

#: Error ``kind`` (as sent over the socket) -> class.
KINDS: dict[str, type[ServiceError]] = {cls.kind: cls for cls in ERROR_CLASSES}
# Kinds the stream decoder reports, folded into the classes above.
KINDS.update(
    {
        "upstream_status": UpstreamError,
        "protocol": UpstreamError,
        "aborted": UpstreamError,
    }
)


def from_kind(
    kind: str,
    message: str,
    *,
    status: int | None = None,
    retry_after: float | None = None,
    param: str | None = None,
) -> ServiceError:
    """Rebuild the typed error a peer process reported as ``kind``."""
    cls = KINDS.get(kind, ServiceError)
    err = cls(message, retry_after=retry_after, param=param)
    if kind in ("upstream_status", "protocol", "aborted"):
        err.code = kind
    if cls is UpstreamError and status is not None and status < 500:
        # An upstream 4xx is still our 502: the client's request was fine.
        err.code = f"upstream_{status}"
    return err
