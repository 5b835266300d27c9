"""Playwright's exceptions turned into the worker's typed errors, once, at the page boundary (STYLE pattern 7).

Every public intent of a region carries ``@translated``; inside, Playwright's ``Error``,
``TimeoutError`` and ``TargetClosedError`` (and a failed ``expect``) may be raised freely.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from playwright._impl._errors import TargetClosedError
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from browser_worker.errors import BrowserGone, PageBroken, PageUnreachable
from shared.errors import ServiceError

#: Network errors in a navigation that mean AI Studio (or the stream proxy) cannot be reached.
UNREACHABLE_MARKERS = (
    "ERR_CONNECTION_REFUSED",
    "ERR_PROXY_CONNECTION_FAILED",
    "ERR_TUNNEL_CONNECTION_FAILED",
    "ERR_CONNECTION_RESET",
    "ERR_CONNECTION_CLOSED",
    "ERR_NAME_NOT_RESOLVED",
    "ERR_ADDRESS_UNREACHABLE",
    "NS_ERROR_CONNECTION_REFUSED",
    "NS_ERROR_PROXY_CONNECTION_REFUSED",
)


def first_line(exc: BaseException) -> str:
    """The error's first line plus the last line of Playwright's call log (why it waited)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [type(exc).__name__]
    text = lines[0][:300]
    if len(lines) > 2:
        text += f" [{lines[-1][:200]}]"
    return text


def translated[**P, R](fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn Playwright exceptions raised by an intent into the worker's typed errors."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ServiceError:
            raise
        except TargetClosedError as exc:
            raise BrowserGone(f"{fn.__name__}: the page or browser closed ({first_line(exc)})") from None
        except PlaywrightTimeout as exc:
            raise PageBroken(f"{fn.__name__}: timed out ({first_line(exc)})") from None
        except AssertionError as exc:
            raise PageBroken(f"{fn.__name__}: {first_line(exc)}") from None
        except PlaywrightError as exc:
            text = str(exc)
            if "has been closed" in text or "crashed" in text.lower():
                raise BrowserGone(f"{fn.__name__}: {first_line(exc)}") from None
            if any(marker in text for marker in UNREACHABLE_MARKERS):
                raise PageUnreachable(f"AI Studio is unreachable: {first_line(exc)}") from None
            raise PageBroken(f"{fn.__name__}: {first_line(exc)}") from None

    return wrapper
