"""Security from outside: loopback only, private sockets and CA, admin keys, confined attachments, redaction."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from aistudio_sim.processes import descendants
from aistudio_sim.stack import Stack
from tests.e2e.conftest import ADMIN_KEY, PLAIN_MODEL

PROJECT_SOCKETS = ("api.sock", "worker.sock", "proxy.sock")


def request(
    stack: Stack, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        stack.base_url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def assert_error(payload: Any, code: str | None = None) -> dict[str, Any]:
    assert set(payload) == {"error"} and set(payload["error"]) == {"message", "type", "param", "code"}, (
        payload
    )
    if code is not None:
        assert payload["error"]["code"] == code, payload
    return payload["error"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# --------------------------------------------------------------------------- listening addresses


def listening_sockets(pids: set[int]) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state owned by ``pids``."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # The kernel prints each 32-bit word in host (little-endian) order.
            packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((str(ipaddress.ip_address(packed)), int(hex_port, 16)))
    return found


def is_loopback(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def test_api_and_proxy_listen_on_loopback_only(shared_stack: Stack):
    """Every TCP listener of the stack's processes (API, proxy, browser, simulator) is on 127.0.0.1."""
    assert shared_stack.proc is not None
    pids = {shared_stack.proc.pid} | descendants(shared_stack.proc.pid)
    sockets = listening_sockets(pids)
    assert ("127.0.0.1", shared_stack.api_port) in sockets, sockets
    assert ("127.0.0.1", shared_stack.stream_port) in sockets, sockets
    exposed = [(addr, port) for addr, port in sockets if not is_loopback(addr)]
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_dom_stack_opens_no_proxy_port_and_listens_on_loopback_only(shared_stack_dom: Stack):
    """STREAM_PORT=0: no interceptor port is opened; every listener is on loopback (the simulator's own
    two ports are demo-only)."""
    assert shared_stack_dom.proc is not None
    sockets = listening_sockets({shared_stack_dom.proc.pid} | descendants(shared_stack_dom.proc.pid))
    assert ("127.0.0.1", shared_stack_dom.api_port) in sockets
    assert not [(a, p) for a, p in sockets if not is_loopback(a)], sockets
    ports = {p for _, p in sockets}
    assert ports <= {shared_stack_dom.api_port, shared_stack_dom.sim_port, shared_stack_dom.helper_port}, (
        sockets
    )


# --------------------------------------------------------------------------- files on disk


def test_sockets_are_0600_in_a_0700_folder(shared_stack: Stack):
    """The run folder is 0700; api/worker/proxy sockets are 0600; supervisord's socket has no group/other bits."""
    assert mode(shared_stack.run_dir) == 0o700
    for name in PROJECT_SOCKETS:
        path = shared_stack.run_dir / name
        assert stat.S_ISSOCK(path.lstat().st_mode), name
        assert mode(path) == 0o600, f"{name}: {oct(mode(path))}"
    assert mode(shared_stack.run_dir / "supervisor.sock") & 0o077 == 0


def test_ca_private_key_files_are_0600_in_a_0700_certs_folder(shared_stack: Stack):
    """The generated CA: certs folder 0700; every file holding the private key is 0600."""
    assert mode(shared_stack.certs_dir) == 0o700
    assert (shared_stack.certs_dir / "mitmproxy-ca-cert.pem").exists()
    key_files = [
        p
        for p in shared_stack.certs_dir.iterdir()
        if p.is_file() and (b"PRIVATE KEY" in p.read_bytes() or p.name == "mitmproxy-ca.p12")
    ]
    assert key_files, list(shared_stack.certs_dir.iterdir())
    for path in key_files:
        assert mode(path) == 0o600, f"{path.name}: {oct(mode(path))}"


# --------------------------------------------------------------------------- admin routes and client keys


def test_admin_routes_are_refused_without_an_admin_key_configured(shared_stack_dom: Stack):
    """No ADMIN_KEY: /api/keys refuses every caller, whatever key they present."""
    for headers in ({}, {"Authorization": "Bearer anything"}, {"x-api-key": ADMIN_KEY}):
        for method, body in (("GET", None), ("POST", {"label": "x"}), ("DELETE", {"id": "key_x"})):
            status, payload = request(shared_stack_dom, method, "/api/keys", body, headers)
            assert status in (401, 403), (method, headers, status, payload)
            assert_error(payload)
    assert not (shared_stack_dom.data_dir / "api_keys.json").exists()


def test_admin_key_manages_client_keys_that_then_guard_the_api(stack: Stack):
    """With ADMIN_KEY: admin routes need it; a created key is then required on /v1/*, until it is deleted."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"x-api-key": "wrong"}):
        status, payload = request(stack, "GET", "/api/keys", headers=headers)
        assert status in (401, 403), payload
        assert_error(payload)
        status, payload = request(stack, "POST", "/api/keys", {"label": "intruder"}, headers)
        assert status in (401, 403), payload
    status, listed = request(stack, "GET", "/api/keys", headers=admin)
    assert status == 200 and listed["data"] == []

    status, created = request(stack, "POST", "/api/keys", {"label": "e2e"}, admin)
    assert status == 201, created
    key = created["key"]
    try:
        status, payload = request(stack, "GET", "/v1/models")
        assert status == 401
        assert assert_error(payload)["type"] == "authentication_error"
        status, payload = request(
            stack, "GET", "/v1/models", headers={"Authorization": "Bearer sk-aisp-wrong"}
        )
        assert status == 401
        assert request(stack, "GET", "/v1/models", headers={"Authorization": f"Bearer {key}"})[0] == 200
        assert request(stack, "GET", "/v1/models", headers={"x-api-key": key})[0] == 200
        status, done = request(
            stack,
            "POST",
            "/v1/chat/completions",
            {"model": PLAIN_MODEL, "messages": [{"role": "user", "content": "keyed"}]},
            {"Authorization": f"Bearer {key}"},
        )
        assert status == 200, done
        status, payload = request(
            stack,
            "POST",
            "/v1/chat/completions",
            {"model": PLAIN_MODEL, "messages": [{"role": "user", "content": "no key"}]},
        )
        assert status == 401
        keys_file = stack.data_dir / "api_keys.json"
        assert mode(keys_file) == 0o600 and mode(keys_file.parent) == 0o700
        assert key not in keys_file.read_text()
        assert hashlib.sha256(key.encode()).hexdigest() in keys_file.read_text()
        status, listed = request(stack, "GET", "/api/keys", headers=admin)
        assert [k["id"] for k in listed["data"]] == [created["id"]]
        assert key not in json.dumps(listed)
    finally:
        status, _ = request(stack, "DELETE", f"/api/keys/{created['id']}", headers=admin)
        assert status == 200
    assert request(stack, "GET", "/v1/models")[0] == 200


# --------------------------------------------------------------------------- attachments


@pytest.fixture
def files(stack: Stack) -> dict[str, Path]:
    """A file inside ATTACHMENTS_DIR, a secret outside it, and symlinks leading out."""
    assert stack.attachments_dir is not None
    root = stack.attachments_dir
    outside = stack.base / "outside"
    outside.mkdir(mode=0o700, exist_ok=True)
    secret = outside / "secret.txt"
    secret.write_text("top secret\n")
    inside = root / "inside.txt"
    inside.write_text("attached from the allowed folder\n")
    link = root / "link-out.txt"
    dir_link = root / "dir-out"
    for path, target in ((link, secret), (dir_link, outside)):
        if not path.is_symlink():
            path.symlink_to(target)
    return {"root": root, "inside": inside, "secret": secret, "link": link, "dir_link": dir_link}


def chat_with(stack: Stack, attachments: list[Any]) -> tuple[int, Any]:
    return request(
        stack,
        "POST",
        "/v1/chat/completions",
        {
            "model": PLAIN_MODEL,
            "messages": [{"role": "user", "content": "See the attachment"}],
            "attachments": attachments,
        },
    )


def test_attachment_inside_the_folder_reaches_the_page(stack: Stack, files: dict[str, Path]):
    """A file: URL inside ATTACHMENTS_DIR is uploaded: the simulator receives the same bytes."""
    status, done = chat_with(stack, [f"file://{files['inside']}"])
    assert status == 200, done
    [attachment] = stack.sim_inspect("requests/last")["attachments"]
    assert attachment["sha256"] == hashlib.sha256(files["inside"].read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "kind", ["outside", "dotdot", "dotdot-encoded", "symlink", "symlinked-dir", "path-form"]
)
def test_attachment_paths_escaping_the_folder_are_refused(stack: Stack, files: dict[str, Path], kind: str):
    """Paths outside ATTACHMENTS_DIR, through .. or through symlinks: 400, and nothing reaches the page."""
    root, secret = files["root"], files["secret"]
    ref: Any = {
        "outside": f"file://{secret}",
        "dotdot": f"file://{root}/../outside/secret.txt",
        "dotdot-encoded": f"file://{root}/%2e%2e/outside/secret.txt",
        "symlink": f"file://{files['link']}",
        "symlinked-dir": f"file://{files['dir_link']}/secret.txt",
        "path-form": {"path": f"{root}/../outside/secret.txt"},
    }[kind]
    status, payload = chat_with(stack, [ref])
    assert status == 400, payload
    assert_error(payload, "attachment_path_refused")
    assert stack.sim_requests() == []


def test_local_attachments_are_refused_when_no_folder_is_configured(stack_dom: Stack):
    """Without ATTACHMENTS_DIR every local path is refused."""
    status, payload = chat_with(stack_dom, ["file:///etc/hostname"])
    assert status == 400
    assert_error(payload, "attachment_path_refused")
    assert stack_dom.sim_requests() == []


# --------------------------------------------------------------------------- error snapshots


def cookie_values(stack: Stack) -> set[str]:
    values = {
        c["value"] for c in json.loads(stack.profile_path.read_text())["cookies"] if len(c["value"]) >= 8
    }
    assert values
    return values


def test_error_snapshot_holds_the_page_without_cookie_values(stack: Stack):
    """A failed request leaves a private snapshot whose HTML and logs contain none of the login's cookies."""
    status, payload, req_id = None, None, None
    req = urllib.request.Request(
        stack.base_url + "/v1/chat/completions",
        method="POST",
        data=json.dumps(
            {"model": PLAIN_MODEL, "messages": [{"role": "user", "content": "Fail #sim:error=internal"}]}
        ).encode(),
        headers={"Content-Type": "application/json", "x-request-id": f"snap-{int(time.time() * 1000)}"},
    )
    try:
        urllib.request.urlopen(req, timeout=120)
    except urllib.error.HTTPError as err:
        status, payload, req_id = err.code, json.loads(err.read()), err.headers["x-request-id"]
    assert status == 502, payload
    deadline = time.monotonic() + 20
    while not (
        folders := [
            p for p in stack.errors_dir.glob("*/*") if req_id in p.name and (p / "page.html").exists()
        ]
    ):
        assert time.monotonic() < deadline, f"no snapshot for {req_id} in {stack.errors_dir}"
        time.sleep(0.1)  # polling an outside condition with a deadline
    [folder] = folders
    assert mode(stack.errors_dir) & 0o077 == 0 and mode(folder) == 0o700
    html = (folder / "page.html").read_text(errors="replace")
    assert "<html" in html.lower() and len(html) > 500
    texts = {p.name: p.read_text(errors="replace") for p in folder.iterdir() if p.suffix in (".html", ".txt")}
    for path in folder.iterdir():
        assert mode(path) == 0o600, f"{path.name}: {oct(mode(path))}"
    for value in cookie_values(stack):
        for name, text in texts.items():
            assert value not in text, f"cookie value found in {name}"
