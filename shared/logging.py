"""Logging for the three processes, configured once from each ``__main__``.

One line per event, to stdout and ``<log_dir>/<process>.log``. The request id
of the job being handled (``request_id`` context variable) is on every line.
Control characters in a message (CR, LF, ESC …, e.g. in a client's model name)
are escaped (``\\r``, ``\\n``, ``\\x1b``), so no logged client value can forge a line;
only a traceback, which the formatter appends itself, spans several lines.
"""

from __future__ import annotations

import contextvars
import logging
import logging.handlers
import re
import sys
from pathlib import Path
from typing import TextIO

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(process_name)s %(name)s [%(request_id)s] %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def escape_control(text: str) -> str:
    """``text`` with every control character (and Unicode line separator) written as an escape."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class SafeFormatter(logging.Formatter):
    """One line per record: the message's control characters are escaped before the traceback is added."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = escape_control(record.message)
        return super().formatMessage(record)


class _ContextFilter(logging.Filter):
    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.process_name = self.process_name
        return True


def configure_logging(
    process_name: str, log_dir: Path | None, level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Send every logger's records to ``stream`` (stdout by default: a command whose stdout is its output
    passes stderr) and ``log_dir/<process_name>.log``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = SafeFormatter(FORMAT, DATEFMT)
    context = _ContextFilter(process_name)
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stdout)]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                Path(log_dir) / f"{process_name}.log", maxBytes=20 * 1024 * 1024, backupCount=3
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(context)
        root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter stays at WARNING unless we debug.
    for noisy in ("aiohttp.access", "asyncio", "hpack", "mitmproxy"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
