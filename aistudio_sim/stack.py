"""The whole aistudio-proxy stack under the real ``supervisord.conf``, in a private temp folder.

``Stack`` is used by the end-to-end tests and by benchmark scripts, so it imports nothing from
pytest. It copies the real config into a short ``/tmp/aisp-XXXX`` folder (run, logs and simulator
state moved there, ``%(here)s`` pointed at the repository), picks free ports for the API, the stream
proxy and the simulator, writes the simulator's demo login, starts ``supervisord -n`` plus the
``simulator`` program, and waits for ``/health``. ``stop()`` sends SIGTERM to supervisord and checks
that every program exited with status 0 and that no child process survived.

    with Stack() as stack:
        print(stack.base_url, stack.sim_inspect("requests/last"))

Options: ``stream_port_enabled=False`` (``STREAM_PORT=0``, answers read from the page), ``env`` (extra
settings for the programs, e.g. ``{"ADMIN_KEY": "..."}``), ``attachments=True`` (an ``ATTACHMENTS_DIR``
inside the stack's folder). ``E2E_KEEP_LOGS=1`` keeps the folder after a clean stop.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .processes import alive, cmdline, descendants, pick_free_port, rss_bytes

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ("stream_proxy", "browser_worker", "api_server")
SIM_HOSTS = ("aistudio.google.com", "alkalimakersuite-pa.clients6.google.com", "accounts.google.com")


class StackError(RuntimeError):
    """The stack did not start, or did not stop cleanly; the message says what was seen."""


class SimError(StackError):
    """The simulator's inspection API answered with an HTTP error."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"simulator inspection API answered {status}: {body[:500]}")
        self.status = status
        self.body = body


def _render(value: Any) -> str:
    """A setting's default as the environment spells it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path.name}: missing)"
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- the stack


class Stack:
    """The real stack (simulator + stream_proxy + browser_worker + api_server) under supervisord."""

    def __init__(
        self,
        *,
        stream_port_enabled: bool = True,
        env: dict[str, str] | None = None,
        attachments: bool = False,
        helper: bool = False,
        health_timeout: float = 180.0,
        prefix: str = "aisp-",
    ) -> None:
        self.stream_port_enabled = stream_port_enabled
        self.admin_key = (env or {}).get("ADMIN_KEY") or None
        self.extra_env = dict(env or {})
        self.health_timeout = health_timeout
        # The owner's pid in the name tells whose folder a leftover is.
        self.base = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir="/tmp"))
        self.base.chmod(0o700)
        self.run_dir = self.base / "run"
        self.log_dir = self.base / "logs"
        self.certs_dir = self.base / "certs"
        self.errors_dir = self.base / "errors"
        self.data_dir = self.base / "data"
        self.auth_dir = self.base / "auth_profiles"
        self.sim_state = self.base / "sim_state"
        self.profile_path = self.auth_dir / "demo_profile.json"
        #: ``ATTACHMENTS_DIR`` when ``attachments`` is on (local-path attachments allowed from here only).
        self.attachments_dir = self.base / "attachments" if attachments else None
        self.conf_path = self.base / "supervisord.conf"
        self.api_port = pick_free_port()
        self.stream_port = pick_free_port() if stream_port_enabled else 0
        self.sim_port = pick_free_port()
        self.helper_port = pick_free_port()
        if helper:  # the simulator as the worker's stream helper
            self.extra_env.setdefault("HELPER_ENDPOINT", self.helper_url)
        self.api_host = self.extra_env.get("API_HOST", "127.0.0.1")
        if "API_PORT" in self.extra_env:
            self.api_port = int(self.extra_env["API_PORT"])
        self.env = self._environment()
        self.proc: subprocess.Popen[bytes] | None = None
        self._tree: set[int] = set()

    # ---- configuration

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<api_port>`` (append ``/v1`` for OpenAI clients)."""
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "", "::") else self.api_host
        return f"http://{host}:{self.api_port}"

    @property
    def helper_url(self) -> str:
        """The simulator's stream helper (``HELPER_ENDPOINT`` when the stack was made with ``helper=True``)."""
        return f"http://127.0.0.1:{self.helper_port}/getStreamResponse"

    @property
    def resolve(self) -> str:
        return ",".join(f"{host}=127.0.0.1:{self.sim_port}" for host in SIM_HOSTS)

    def _environment(self) -> dict[str, str]:
        from shared.settings import Settings

        own = {name.upper() for name in Settings.model_fields}
        env = {k: v for k, v in os.environ.items() if k.upper() not in own}
        env.update(
            RUN_DIR=str(self.run_dir),
            LOG_DIR=str(self.log_dir),
            CERTS_DIR=str(self.certs_dir),
            ERROR_SNAPSHOT_DIR=str(self.errors_dir),
            AUTH_PROFILES_DIR=str(self.auth_dir),
            AUTH_PROFILE=str(self.profile_path),
            API_KEYS_FILE=str(self.data_dir / "api_keys.json"),
            DATA_DIR=str(self.data_dir),
            API_HOST="127.0.0.1",
            API_PORT=str(self.api_port),
            STREAM_HOST="127.0.0.1",
            STREAM_PORT=str(self.stream_port),
            AISTUDIO_RESOLVE=self.resolve,
            BROWSER="chromium",
            HEADLESS="true",
            ADMIN_KEY="",
            ATTACHMENTS_DIR=str(self.attachments_dir or ""),
            # The tests of one stack share 127.0.0.1: their deliberate wrong keys must not add up to a lockout
            # of the next test (the lockout has its own tests against the app, tests/api_server/test_keys.py).
            AUTH_FAILURE_LIMIT="0",
        )
        env.update(self.extra_env)
        env["API_PORT"] = str(self.api_port)
        if self.demo_accounts > 1:  # every demo account's login in auth_profiles/active/: the pool's accounts
            env["AUTH_PROFILE"] = ""
        # Every other setting at its default, so a developer's .env cannot leak into the stack.
        for name, field in Settings.model_fields.items():
            env.setdefault(name.upper(), _render(field.get_default(call_default_factory=True)))
        return env

    @property
    def demo_accounts(self) -> int:
        return int(self.extra_env.get("DEMO_ACCOUNTS", "1") or 1)

    def _write_config(self) -> None:
        text = (PROJECT_ROOT / "supervisord.conf").read_text()
        for name in ("run", "logs", "sim_state"):
            text = text.replace(f"%(here)s/{name}", str(self.base / name))
        if not (PROJECT_ROOT / ".venv" / "bin" / "python").exists():  # e.g. a git worktree without a venv
            text = text.replace("%(here)s/.venv/bin/python", sys.executable)
        text = text.replace("%(here)s", str(PROJECT_ROOT))
        text, n = re.subn(r"(-m aistudio_sim\b[^\n]*--port )\d+", rf"\g<1>{self.sim_port}", text)
        if n != 1:
            raise StackError("supervisord.conf: the simulator's --port was not found")
        text, n = re.subn(r"(-m aistudio_sim\b[^\n]*--helper-port )\d+", rf"\g<1>{self.helper_port}", text)
        if n != 1:
            raise StackError("supervisord.conf: the simulator's --helper-port was not found")
        for folder in (
            self.run_dir,
            self.log_dir,
            self.sim_state,
            self.auth_dir,
            self.data_dir,
            self.attachments_dir,
        ):
            if folder is not None:
                folder.mkdir(mode=0o700, exist_ok=True)
        self.conf_path.write_text(text)

    # ---- lifecycle

    def start(self) -> Stack:
        """Start supervisord and the simulator; return once ``/health`` is 200 and every program is RUNNING."""
        self._write_config()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "aistudio_sim",
                "demo-profile",
                *(
                    [str(self.auth_dir / "active"), "--accounts", str(self.demo_accounts)]
                    if self.demo_accounts > 1
                    else [str(self.profile_path)]
                ),
                "--state-dir",
                str(self.sim_state),
            ],
            cwd=PROJECT_ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(self.conf_path)],
            env=self.env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait(lambda: self._ctl_ok("pid"), "supervisord's control socket", 30)
            out = self.ctl("start", "simulator")
            if "started" not in out and "already started" not in out:
                raise StackError(
                    f"supervisorctl start simulator: {out.strip()}\n{self.log_tail('simulator')}"
                )
            self.wait_healthy(self.health_timeout)
            # /health can turn 200 before supervisord's startsecs have passed; "started" means both agree.
            self._wait(
                lambda: all(self.states().get(p) == "RUNNING" for p in (*PROGRAMS, "simulator")),
                "supervisord to report every program RUNNING",
                30,
            )
        except BaseException:
            self._force_stop()
            raise
        return self

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(check=exc[0] is None)

    def stop(self, check: bool = True, timeout: float = 120.0) -> None:
        """SIGTERM supervisord; with ``check``, raise unless every program exited 0 and nothing survived."""
        if self.proc is None:
            return
        problems: list[str] = []
        log_offset = len(self.supervisord_log())  # judge only this shutdown, not earlier restarts
        try:
            if self.proc.poll() is None:
                self._tree = descendants(self.proc.pid)
                self.proc.send_signal(signal.SIGTERM)
                try:
                    code = self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    problems.append(f"supervisord still running {timeout:.0f}s after SIGTERM")
                    code = None
                if code not in (0, None):
                    problems.append(f"supervisord exited with {code}")
            else:
                problems.append(f"supervisord had already exited with {self.proc.returncode}")
            survivors = sorted(pid for pid in self._tree if alive(pid))
            if survivors:
                problems.append(
                    "processes outlived supervisord: "
                    + "; ".join(f"{pid} {' '.join(cmdline(pid))[:120]}" for pid in survivors)
                )
            log = self.supervisord_log()[log_offset:]
            for program in PROGRAMS:
                if not re.search(rf"stopped: {program} \(exit status 0\)", log):
                    problems.append(f"{program} did not exit with status 0:\n{self.log_tail(program)}")
            if "simulator" in log and not re.search(r"stopped: simulator \(exit status 0\)", log):
                problems.append("simulator did not exit with status 0")
        finally:
            self._force_stop()
            self.proc = None
        if check and problems:
            raise StackError("unclean shutdown:\n" + "\n".join(problems) + f"\n(logs kept in {self.base})")
        if not problems and os.environ.get("E2E_KEEP_LOGS") != "1":
            shutil.rmtree(self.base, ignore_errors=True)

    def _force_stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._tree |= descendants(self.proc.pid)
            self.proc.kill()
            self.proc.wait(10)
        for pid in self._tree:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _wait(self, condition: Any, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(
                    f"supervisord exited ({self.proc.returncode}) while waiting for {what}\n"
                    + self.supervisord_log()[-3000:]
                )
            if time.monotonic() > deadline:
                raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.2)  # polling an outside condition with a deadline

    # ---- supervisord

    def ctl(self, *args: str, timeout: float = 90) -> str:
        """Run ``supervisorctl -c <copy> args...``; return its stdout."""
        proc = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf_path), *args],
            env=self.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return proc.stdout

    def _ctl_ok(self, *args: str) -> bool:
        try:
            return (
                subprocess.run(
                    [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf_path), *args],
                    env=self.env,
                    capture_output=True,
                    timeout=30,
                ).returncode
                == 0
            )
        except subprocess.TimeoutExpired:
            return False

    def states(self) -> dict[str, str]:
        """``{program: RUNNING|STOPPED|...}`` from ``supervisorctl status``."""
        return dict(re.findall(r"^(\S+)\s+(\S+)", self.ctl("status"), re.M))

    def pid(self, program: str) -> int:
        """The pid supervisord has for ``program`` (0 when not running)."""
        out = self.ctl("pid", program).strip()
        return int(out) if out.isdigit() else 0

    def tree(self, program: str) -> set[int]:
        """The program's pid and every process below it."""
        pid = self.pid(program)
        return {pid} | descendants(pid) if pid else set()

    def browser_pids(self) -> list[int]:
        """Chromium's main process(es) under the worker (a Chromium whose parent is not Chromium)."""
        worker = self.pid("browser_worker")
        found = []
        for pid in sorted(descendants(worker)) if worker else ():
            line = " ".join(cmdline(pid))  # Chromium's helpers rewrite their argv into one string
            exe = Path(line.split(" ", 1)[0]).name.lower()
            if exe.startswith("chrom") and "crashpad" not in exe and " --type=" not in line:
                found.append(pid)
        return found

    def rss(self, program: str, children: bool = True, proportional: bool = True) -> int:
        """Resident memory in bytes of ``program`` and, by default, its children (the worker's browser).

        Summed as Pss (shared pages split between their users) so a process tree is not counted
        several times over; ``proportional=False`` sums plain VmRSS.
        """
        pids = self.tree(program) if children else {self.pid(program)}
        return sum(rss_bytes(pid, proportional) for pid in pids if pid)

    def supervisord_log(self) -> str:
        try:
            return (self.log_dir / "supervisord.log").read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, program: str, lines: int = 40) -> str:
        """The last lines of the program's own log (``<program>.log``) and its stdout (``<program>.out``)."""
        parts = []
        for name in (f"{program}.log", f"{program}.out"):
            path = self.log_dir / name
            if path.exists():
                parts.append(f"--- {name}\n{_tail(path, lines)}")
        return "\n".join(parts) or f"(no log for {program} in {self.log_dir})"

    # ---- HTTP

    def get(self, path: str, timeout: float = 10) -> tuple[int, Any]:
        """GET ``base_url + path``: (status, parsed JSON or text)."""
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def health(self) -> tuple[int, Any]:
        """``GET /health``: (status, body); (0, reason) when the API does not answer."""
        try:
            return self.get("/health", timeout=5)
        except (OSError, http.client.HTTPException) as exc:
            return 0, f"{type(exc).__name__}: {exc}"

    def wait_healthy(self, timeout: float = 120.0) -> Any:
        """Wait until ``/health`` is 200; on timeout raise with its body and every program's log tail."""
        deadline = time.monotonic() + timeout
        next_state_check = time.monotonic() + 2
        status, body = self.health()
        while status != 200:
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(
                    f"supervisord exited ({self.proc.returncode}) before /health was 200\n"
                    + self._diagnostics(status, body)
                )
            if time.monotonic() > deadline:
                raise StackError(f"/health not 200 within {timeout:.0f}s\n" + self._diagnostics(status, body))
            if self.proc is not None and time.monotonic() > next_state_check:
                next_state_check = time.monotonic() + 2
                fatal = [p for p, state in self.states().items() if state == "FATAL"]
                if fatal:
                    raise StackError(
                        f"{', '.join(fatal)} FATAL (gave up restarting) before /health was 200\n"
                        + self._diagnostics(status, body)
                    )
            time.sleep(0.25)  # polling an outside condition with a deadline
            status, body = self.health()
        return body

    def _diagnostics(self, status: int, body: Any) -> str:
        shown = json.dumps(body, indent=1) if not isinstance(body, str) else body
        tails = "\n".join(f"=== {p}\n{self.log_tail(p, 30)}" for p in ("simulator", *PROGRAMS))
        return (
            f"/health: {status} {shown}\nsupervisorctl status:\n{self.ctl('status', timeout=20)}\n{tails}"
            f"\n(logs in {self.log_dir})"
        )

    # ---- simulator

    def sim_inspect(self, path: str, method: str = "GET", json: Any = None, timeout: float = 10) -> Any:
        """Call the simulator's inspection API (``/__sim__/<path>``); return the parsed JSON."""
        import json as _json

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", self.sim_port, context=ctx, timeout=timeout)
        try:
            body = None if json is None else _json.dumps(json).encode()
            headers = {"Host": "aistudio.google.com"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            elif method != "GET":
                body = b""
            conn.request(method, "/__sim__/" + path.lstrip("/"), body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode(errors="replace")
        finally:
            conn.close()
        if resp.status >= 400:
            raise SimError(resp.status, raw)
        return _json.loads(raw) if raw.strip() else None

    def sim_reset(self) -> None:
        """Clear the simulator's recorded requests, jserrors and config (sessions are kept)."""
        self.sim_inspect("reset", method="POST")

    def for_test(self) -> Stack:
        """This shared stack, healthy again (faults a test injected heal by themselves) and with the
        simulator's records and config reset: what each test starts from."""
        self.wait_healthy(90)
        self.sim_reset()
        return self

    def sim_requests(self) -> list[dict[str, Any]]:
        requests: list[dict[str, Any]] = self.sim_inspect("requests")
        return requests
