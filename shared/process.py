"""Run a process's main coroutine until SIGTERM/SIGINT, then let it shut down in order.

``main(stop)`` gets an ``asyncio.Event`` set on the first signal; it stops taking
work, finishes or fails in-flight jobs within its grace period, closes its
sockets and returns. A second signal forces an immediate exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from shared.logging import configure_logging
from shared.settings import Settings, SettingsError, load_settings

log = logging.getLogger(__name__)

Main = Callable[[Settings, asyncio.Event], Awaitable[None]]


async def _run(main: Main, settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s received: shutting down", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await main(settings, stop)


def run_process(name: str, main: Main) -> None:
    """Load settings, configure logging and run ``main``; exit 2 on a bad setting."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"{name}: bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(name, settings.log_dir, settings.log_level)
    log.info("%s starting (pid %d)", name, os.getpid())
    try:
        asyncio.run(_run(main, settings))
    except SettingsError as exc:
        log.error("bad setting: %s", exc)
        raise SystemExit(2) from None
    log.info("%s stopped", name)
