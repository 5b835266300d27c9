"""`python -m browser_worker`: serve ``worker.sock`` until SIGTERM.

`python -m browser_worker login [--name NAME] [--headless]`: open AI Studio in a
browser window, wait for the sign-in, and save the login as
``auth_profiles/active/<NAME>.json``.

`python -m browser_worker doctor [--out DIR] [--json]`: check AI Studio's page with the active login and
write a redacted report (``browser_worker/doctor.py``); exit 0 when every check holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from shared.process import run_process
from shared.settings import Settings


async def main(settings: Settings, stop: asyncio.Event) -> None:
    from browser_worker.worker import Worker

    await Worker(settings).run(stop)


def _settings(command: str) -> Settings | None:
    """The settings, or None after saying on stderr which one is bad (the command then exits 2)."""
    from shared.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        print(f"browser_worker {command}: bad setting: {exc}", file=sys.stderr)
        return None


def login_main(argv: list[str]) -> int:
    from browser_worker.auth import LoginFailed, interactive_login
    from shared.logging import configure_logging

    parser = argparse.ArgumentParser(prog="python -m browser_worker login")
    parser.add_argument("--name", default="default", help="profile file name (letters, digits, _ and -)")
    parser.add_argument("--headless", action="store_true", help="no window (only useful for tests)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the sign-in")
    args = parser.parse_args(argv)
    settings = _settings("login")
    if settings is None:
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


def doctor_main(argv: list[str]) -> int:
    from browser_worker.doctor import REPORT_FILE, run_doctor
    from shared.logging import configure_logging

    parser = argparse.ArgumentParser(prog="python -m browser_worker doctor")
    parser.add_argument(
        "--out", type=Path, default=Path("doctor"), help="folder for the report and screenshot"
    )
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    settings = _settings("doctor")
    if settings is None:
        return 2
    configure_logging("browser_worker-doctor", None, "WARNING", stream=sys.stderr)
    report = asyncio.run(run_doctor(settings, args.out))
    print(json.dumps(report.to_json(), indent=2) if args.json else report.summary())
    where = f"report: {args.out / REPORT_FILE} (attach it, and the screenshot beside it, to a bug report)"
    print(where, file=sys.stderr if args.json else sys.stdout)  # --json: stdout is the JSON alone
    return 0 if report.ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "login":
        raise SystemExit(login_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "doctor":
        raise SystemExit(doctor_main(sys.argv[2:]))
    run_process("browser_worker", main)
