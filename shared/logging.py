"""Logging for the three processes, configured once from each ``__main__``.

One line per event, to stdout and ``<log_dir>/<process>.log``. The request id
of the job being handled (``request_id`` context variable) is on every line.
"""

from __future__ import annotations

import contextvars
import logging
import logging.handlers
import sys
from pathlib import Path

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(process_name)s %(name)s [%(request_id)s] %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"


class _ContextFilter(logging.Filter):
    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.process_name = self.process_name
        return True


def configure_logging(process_name: str, log_dir: Path | None, level: str = "INFO") -> None:
    """Send every logger's records to stdout and ``log_dir/<process_name>.log``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = logging.Formatter(FORMAT, DATEFMT)
    context = _ContextFilter(process_name)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
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
