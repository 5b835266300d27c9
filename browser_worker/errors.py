"""Worker-side failures, as leaves of the shared error tree (STYLE pattern 7).

The page object translates Playwright's exceptions into these at its boundary;
nothing foreign leaves the worker.
"""

from __future__ import annotations

from shared.errors import InvalidRequest, UpstreamError, WorkerUnavailable


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
