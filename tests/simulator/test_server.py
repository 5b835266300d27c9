"""The simulator over real HTTPS, as a subprocess (see conftest.sim)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

from tests.simulator.conftest import REPO_ROOT, RPC_BASE, SimProcess

NEW_CHAT = "https://aistudio.google.com/prompts/new_chat"
GENERATE = RPC_BASE + "GenerateContent"
ORIGIN = "https://aistudio.google.com"


def generate_body(prompt: str, *, model: str = "gemini-2.5-pro", stops: list[str] | None = None,
                  max_tokens: int | None = 65536, temperature: float | None = 1.0,
                  top_p: float | None = 0.95, thinking: list | None = None,
                  mime: str | None = None, schema: Any = None, tools: list | None = None,
                  attachments: list[list] | None = None) -> bytes:
    """A GenerateContent request body as the simulator page builds it (README contract)."""
    parts: list[list] = [[None, prompt]]
    parts += [[None, None, a] for a in attachments or []]
    config = [None, stops, None, max_tokens, temperature, top_p, None, None, None, None, None,
              None, mime, None if schema is None else json.dumps(schema), None, thinking]
    return json.dumps([f"models/{model}", [[parts, "user"]], None, config, "!token",
                       tools]).encode()


def parse_body(raw: bytes) -> tuple[list, list | None]:
    """(events, error element) of a complete body."""
    data = json.loads(raw)
    return data[0], (data[1] if len(data) > 1 else None)


def texts(events: list) -> tuple[str, str]:
    """(thought text, answer text) of a list of events."""
    thought, answer = "", ""
    for ev in events:
        if not ev[0]:
            continue
        for part in ev[0][0][0][0]:
            if isinstance(part[1], str):
                if len(part) > 12 and part[12]:
                    thought += part[1]
                else:
                    answer += part[1]
    return thought, answer


async def generate(sim: SimProcess, body: bytes, *, cookie: str | None = "",
                   headers: dict | None = None) -> tuple[int, dict, bytes]:
    hdrs = {"Content-Type": "application/json+protobuf", "Origin": ORIGIN, **(headers or {})}
    if cookie == "":
        cookie = sim.cookie_header()
    if cookie:
        hdrs["Cookie"] = cookie
    async with sim.client_session() as s:
        async with s.post(GENERATE, data=body, headers=hdrs) as resp:
            return resp.status, dict(resp.headers), await resp.read()


# ---------------------------------------------------------------------------------------------
# process


def test_ready_line_names_the_real_port(sim: SimProcess) -> None:
    """The ready line shows the port actually bound when asked for port 0."""
    assert sim.port > 0
    assert sim.inspect("health") == {"ok": True}
    assert sim.cert_path.exists()
    assert (sim.state_dir / "sim-key.pem").stat().st_mode & 0o777 == 0o600


def test_demo_profile_is_a_private_storage_state(sim: SimProcess) -> None:
    """--write-demo-profile writes a 0600 storage_state with the session cookies."""
    assert sim.profile_path.stat().st_mode & 0o777 == 0o600
    assert sim.profile_path.parent.stat().st_mode & 0o777 == 0o700
    state = json.loads(sim.profile_path.read_text())
    names = {c["name"] for c in state["cookies"]}
    assert {"SID", "SAPISID", "HSID", "SSID", "APISID", "__Secure-1PSID",
            "__Secure-3PSID"} <= names
    for c in state["cookies"]:
        assert c["domain"] == ".google.com" and c["secure"] and c["path"] == "/"


def test_sigterm_exits_cleanly(tmp_path) -> None:
    """SIGTERM stops the server with exit status 0."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.aistudio_sim", "--port", "0",
                             "--state-dir", str(tmp_path / "st")], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready https://127.0.0.1:")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    proc.stdout.close()


# ---------------------------------------------------------------------------------------------
# login gate


async def test_page_redirects_to_accounts_without_a_session(sim: SimProcess) -> None:
    """No cookie: 302 to the accounts sign-in URL with the new_chat continue URL."""
    async with sim.client_session() as s:
        async with s.get(NEW_CHAT, allow_redirects=False) as r:
            assert r.status == 302
            assert r.headers["Location"] == (
                "https://accounts.google.com/v3/signin/identifier?continue="
                "https%3A%2F%2Faistudio.google.com%2Fprompts%2Fnew_chat")


async def test_login_form_sets_cookies_then_the_page_loads(sim: SimProcess) -> None:
    """Posting the demo credentials sets the session cookies and returns to new_chat."""
    async with sim.client_session() as s:
        async with s.get("https://accounts.google.com/v3/signin/identifier") as r:
            assert r.status == 200 and r.content_type == "text/html"
        async with s.post("https://accounts.google.com/v3/signin/submit",
                          data={"email": "demo@example.com", "password": "demo"},
                          allow_redirects=False) as r:
            assert r.status == 302
            assert r.headers["Location"] == NEW_CHAT
            cookies = r.headers.getall("Set-Cookie")
        by_name = {c.split("=", 1)[0]: c for c in cookies}
        assert set(by_name) == {"SID", "SAPISID", "HSID", "SSID", "APISID", "__Secure-1PSID",
                                "__Secure-3PSID"}
        for name, c in by_name.items():
            assert "Domain=.google.com" in c or "Domain=google.com" in c
            assert "Secure" in c and "SameSite=None" in c and "Path=/" in c
            assert ("HttpOnly" in c) == (name != "SAPISID")
        async with s.get(NEW_CHAT, allow_redirects=False) as r:
            assert r.status == 200
            assert r.content_type == "text/html"
            assert r.headers["Cache-Control"] == "no-store"
    events = sim.inspect("events")
    assert [e["kind"] for e in events] == ["page_redirect_login", "login", "page_load"] or \
        [e["kind"] for e in events][-2:] == ["login", "page_load"]


async def test_wrong_password_returns_to_the_login_page_with_an_error(sim: SimProcess) -> None:
    """Bad credentials redirect back to the sign-in page with error=invalid_credentials."""
    async with sim.client_session() as s:
        async with s.post("https://accounts.google.com/v3/signin/submit",
                          data={"email": "demo@example.com", "password": "nope"},
                          allow_redirects=False) as r:
            assert r.status == 303
            assert "/v3/signin/identifier?" in r.headers["Location"]
            assert "error=invalid_credentials" in r.headers["Location"]
            assert not r.headers.getall("Set-Cookie", [])
        async with s.get(NEW_CHAT, allow_redirects=False) as r:
            assert r.status == 302


async def test_list_models_needs_a_session_and_has_every_thinking_family(sim: SimProcess) -> None:
    """ListModels: 401 without cookies; with them the fixture shape and [simulated] texts."""
    async with sim.client_session() as s:
        async with s.post(RPC_BASE + "ListModels", data=b"[]", headers={"Origin": ORIGIN}) as r:
            assert r.status == 401
            assert json.loads(await r.read()) == [16, "Request had invalid authentication credentials."]
        async with s.post(RPC_BASE + "ListModels", data=b"[]",
                          headers={"Origin": ORIGIN, "Cookie": sim.cookie_header()}) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "application/json+protobuf; charset=UTF-8"
            assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert r.headers["Access-Control-Allow-Credentials"] == "true"
            data = json.loads(await r.read())
    models = data[0]
    ids = [m[0] for m in models]
    for mid in ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-3-pro-preview", "gemini-2.0-flash",
                "gemma-3-27b-it", "gemini-2.5-flash-preview-tts", "gemini-3-flash-preview"):
        assert f"models/{mid}" in ids
    for m in models:
        assert len(m) == 11 and m[4].startswith("[simulated]")
        assert isinstance(m[6], int) and m[9] == 0.95


async def test_generate_content_streams_the_default_answer(sim: SimProcess) -> None:
    """A plain prompt gets a gzip, chunked, §4.4-shaped body and is recorded."""
    status, headers, raw = await generate(sim, generate_body("Hello there\nWhat is up?"))
    assert status == 200
    assert headers["Content-Type"] == "application/json+protobuf; charset=UTF-8"
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Transfer-Encoding"] == "chunked"
    events, error = parse_body(raw)
    assert error is None
    assert events[-1][:3] == [None, None, None] and len(events[-1][3][0]) == 16
    thought, answer = texts(events)
    assert thought == ""
    assert answer.startswith("[simulated gemini-2.5-pro] You said: What is up?.")
    assert events[-2][0][0][1] == 1
    last = sim.inspect("requests/last")
    assert last["prompt"] == "Hello there\nWhat is up?"
    assert last["ended"] == "complete"
    assert last["response"]["answer_text"] == answer
