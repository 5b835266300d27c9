"""Command line: `python -m aistudio_sim [--host H] [--port P] [--state-dir D]
[--write-demo-profile PATH] [--helper-port P]` serves; `python -m aistudio_sim demo-profile PATH
[--state-dir D] [--email E]` writes a Playwright storage_state and exits (`--accounts N`: one per demo
account, `demo.json`, `demo2.json` … in the folder PATH)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from .helper import create_helper_app
from .server import STATE, SimConfig, create_app
from .state import AccountStore, write_storage_state
from .tls import ensure_certificate, server_context

log = logging.getLogger("aistudio_sim")


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "aistudio-sim"


def write_demo_profile(state_dir: Path, path: Path, email: str | None = None) -> None:
    accounts = AccountStore(state_dir)
    session = accounts.create_session(email or accounts.demo_email)
    write_storage_state(path, session)


def demo_emails(count: int) -> list[str]:
    """``demo@example.com``, ``demo2@example.com`` … for ``DEMO_ACCOUNTS``."""
    return ["demo@example.com"] + [f"demo{i}@example.com" for i in range(2, count + 1)]


def write_demo_profiles(state_dir: Path, folder: Path, count: int) -> list[Path]:
    """One saved login per demo account in ``folder`` (``demo.json``, ``demo2.json`` …): each an account of
    the worker's pool."""
    paths = []
    for email in demo_emails(count):
        path = folder / f"{email.split('@')[0]}.json"
        write_demo_profile(state_dir, path, email)
        paths.append(path)
    return paths


async def serve(
    host: str, port: int, config: SimConfig, demo_profile: Path | None, helper_port: int | None = None
) -> None:
    cert, key = ensure_certificate(config.state_dir)
    app = create_app(config)
    if demo_profile is not None:
        write_demo_profile(config.state_dir, demo_profile)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=server_context(cert, key))
    await site.start()
    real_port = runner.addresses[0][1]
    helper_runner: web.AppRunner | None = None
    if helper_port is not None:
        helper_runner = web.AppRunner(
            create_helper_app(app[STATE]), handle_signals=False, access_log=None, shutdown_timeout=2.0
        )
        await helper_runner.setup()
        await web.TCPSite(helper_runner, host, helper_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready https://{host}:{real_port}", flush=True)
    if helper_runner is not None:
        print(f"helper http://{host}:{helper_runner.addresses[0][1]}/getStreamResponse", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await runner.cleanup()  # ends the mirrors first, so helper answers finish
        if helper_runner is not None:
            await helper_runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=os.environ.get("SIM_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if argv and argv[0] == "demo-profile":
        parser = argparse.ArgumentParser(prog="python -m aistudio_sim demo-profile")
        parser.add_argument("path", type=Path)
        parser.add_argument("--state-dir", type=Path, default=_default_state_dir())
        parser.add_argument("--email", default=None, help="account to sign in (default: the demo account)")
        parser.add_argument(
            "--accounts",
            type=int,
            default=0,
            help="write this many demo accounts' logins into the folder PATH (demo.json, demo2.json, ...)",
        )
        args = parser.parse_args(argv[1:])
        if args.accounts:
            write_demo_profiles(args.state_dir, args.path, args.accounts)
        else:
            write_demo_profile(args.state_dir, args.path, args.email)
        return 0
    parser = argparse.ArgumentParser(prog="python -m aistudio_sim", description="AI Studio simulator (HTTPS)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9443, help="0 picks a free port")
    parser.add_argument("--state-dir", type=Path, default=_default_state_dir())
    parser.add_argument("--static-dir", type=Path, default=None)
    parser.add_argument("--write-demo-profile", type=Path, default=None, metavar="PATH")
    parser.add_argument(
        "--helper-port",
        type=int,
        default=None,
        metavar="PORT",
        help="also serve the stream helper (GET /getStreamResponse) over plain "
        "HTTP on this port; 0 picks a free one",
    )
    args = parser.parse_args(argv)
    config = SimConfig(state_dir=args.state_dir)
    if args.static_dir is not None:
        config = SimConfig(state_dir=args.state_dir, static_dir=args.static_dir)
    asyncio.run(serve(args.host, args.port, config, args.write_demo_profile, args.helper_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
