"""Worker-side failures, as leaves of the shared error tree (STYLE pattern 7), and the one place
that reads AI Studio's error texts (stream ``Error`` events, toasts, the quota banner, navigation
errors) into them.

The page object translates Playwright's exceptions into these at its boundary;
nothing foreign leaves the worker.
"""

from __future__ import annotations

from shared import protocol
from shared.errors import (
    InvalidRequest,
    LoginRequired,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    ServiceError,
    StreamProxyShutdown,
    UpstreamError,
    WorkerUnavailable,
)


class PageBroken(UpstreamError):
    """A step on the AI Studio page failed: a control did not appear or did not take a value."""


#: Retry-After (s) for a request failed by a browser crash: the relaunch and the page's start-up measured 4-6 s
#: against the simulator (tests/e2e/test_faults.py prints it), so 10 s leaves room on a loaded machine.
BROWSER_RESTART_RETRY_S = 10


class BrowserGone(WorkerUnavailable):
    """The page or the browser crashed or was closed; the worker relaunches it."""

    default_retry_after = BROWSER_RESTART_RETRY_S

    @classmethod
    def crashed(cls, detail: str) -> BrowserGone:
        """The error a request gets when the browser died under it."""
        return cls(f"The browser crashed; restarting ({detail}).")


class PageUnreachable(WorkerUnavailable):
    """AI Studio (or the stream proxy in front of it) refused the connection."""


class DeclarationsRejected(InvalidRequest):
    """The function-declarations or the response-schema dialog refused the JSON (e.g. an unknown
    schema key)."""


# ---------------------------------------------------------------------- classifying AI Studio's error texts
# Every reading of an error text inside the worker happens here (the page object's translation of
# Playwright's exceptions at its boundary aside).

#: Errors that a navigation of the page causes (its scripts lose their execution context).
NAVIGATION_ERRORS = ("Execution context was destroyed", "navigat")
#: Words of the page's quota banner that end the job as ``QuotaExceeded``.
QUOTA_BANNER_MARKERS = ("exceeded quota", "out of free generations")


def error_from_stream(ev: protocol.Error) -> ServiceError:
    """Map the proxy's (or the helper's) ``Error`` event to the typed error; a retry hint it lacks is
    the error class's own default (``shared/errors.py``)."""
    text = ev.message or ""
    kind = ev.kind
    if kind == "quota" or (ev.status == 429 and "too many requests" not in text.lower()):
        return QuotaExceeded(text or "quota exceeded", retry_after=ev.retry_after or None)
    if kind == "rate_limit" or ev.status == 429:
        return RateLimited(text or "too many requests", retry_after=ev.retry_after or None)
    if ev.status == 401 or "invalid authentication credentials" in text.lower():
        return LoginRequired("the Google session expired: run `make login`")
    if kind == "permission" or ev.status == 403:
        return PermissionDenied(text or "permission denied")
    if kind == StreamProxyShutdown.kind:
        # The browser's connection to AI Studio was cut by the proxy's own shutdown, not upstream.
        return StreamProxyShutdown(
            text or "the stream proxy shut down while the answer was streaming: retry the request",
            retry_after=ev.retry_after,
        )
    err = UpstreamError(text or "AI Studio failed", status=None)
    err.code = kind if kind in ("upstream_status", "aborted", "protocol") else err.code
    if ev.status:
        err.message = f"{text} (HTTP {ev.status})" if str(ev.status) not in text else text
    return err


def error_from_toast(text: str) -> ServiceError:
    """The page's error toast, when no stream event says more (DOM tier)."""
    lower = text.lower()
    if "too many requests" in lower:
        return RateLimited(text)
    if "quota" in lower or "resource has been exhausted" in lower:
        return QuotaExceeded(text)
    if "permission" in lower:
        return PermissionDenied(text)
    return UpstreamError(text)


def error_from_quota_banner(text: str) -> QuotaExceeded | None:
    """The page's quota banner (``DomState.quota``) when it says the quota is spent, else None."""
    lower = text.lower()
    if any(marker in lower for marker in QUOTA_BANNER_MARKERS):
        return QuotaExceeded(text)
    return None


def error_from_quota_signal(signal: protocol.QuotaSignal) -> QuotaExceeded:
    """The quota report the page sent while this job ran (the proxy's ``QuotaSignal``)."""
    return QuotaExceeded(signal.message)


def is_empty_exchange(ev: protocol.Error) -> bool:
    """The flow's error says its body ended with nothing received (``0 bytes``, the decoder's words):
    an aborted exchange such as a preflight, not the answer's failure."""
    return "0 bytes" in ev.message


def caused_by_navigation(error: ServiceError) -> bool:
    """The error is what a navigation of the page causes (its scripts lost their context)."""
    return any(marker in error.message for marker in NAVIGATION_ERRORS)
