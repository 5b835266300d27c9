"""`python -m browser_worker`: serve ``worker.sock`` until SIGTERM.

`python -m browser_worker login [--name NAME] [--headless]`: open AI Studio in a
browser window, wait for the sign-in, and save the login as
``auth_profiles/active/<NAME>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from shared.process import run_process
from shared.settings import Settings


async def main(settings: Settings, stop: asyncio.Event) -> None:
    from browser_worker.worker import Worker

    await Worker(settings).run(stop)


def login_main(argv: list[str]) -> int:
    from browser_worker.auth import LoginFailed, interactive_login
    from shared.logging import configure_logging
    from shared.settings import SettingsError, load_settings

    parser = argparse.ArgumentParser(prog="python -m browser_worker login")
    parser.add_argument("--name", default="default", help="profile file name (letters, digits, _ and -)")
    parser.add_argument("--headless", action="store_true", help="no window (only useful for tests)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the sign-in")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"browser_worker login: bad setting: {exc}", file=sys.stderr)
        return 2
    configure_logging("browser_worker-login", None, settings.log_level)
    try:
        path = asyncio.run(
            interactive_login(settings, args.name, headless=args.headless, timeout_s=args.timeout)
        )
    except LoginFailed as exc:
        print(f"login failed: {exc}", file=sys.stderr)
        return 1
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "login":
        raise SystemExit(login_main(sys.argv[2:]))
    run_process("browser_worker", main)
