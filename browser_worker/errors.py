"""Worker-side failures, as leaves of the shared error tree (STYLE pattern 7).

The page object translates Playwright's exceptions into these at its boundary;
nothing foreign leaves the worker.
"""

from __future__ import annotations

from shared.errors import InvalidRequest, UpstreamError, WorkerUnavailable


class PageBroken(UpstreamError):
    """A step on the AI Studio page failed: a control did not appear or did not take a value."""


class BrowserGone(WorkerUnavailable):
    """The page or the browser crashed or was closed; the worker relaunches it."""


class PageUnreachable(WorkerUnavailable):
    """AI Studio (or the stream proxy in front of it) refused the connection."""


class DeclarationsRejected(InvalidRequest):
    """The function-declarations or the response-schema dialog refused the JSON (e.g. an unknown
    schema key)."""
