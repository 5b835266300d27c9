"""The simulator over real HTTPS, as a subprocess (see conftest.sim)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import signal
import subprocess
import sys
import time
import zlib
from typing import Any

import aiohttp
import pytest

from tests.requirements import CHROMIUM, needs
from tests.simulator.conftest import REPO_ROOT, RPC_BASE, SimProcess, start_simulator

NEW_CHAT = "https://aistudio.google.com/prompts/new_chat"
GENERATE = RPC_BASE + "GenerateContent"
ORIGIN = "https://aistudio.google.com"


def generate_body(
    prompt: str,
    *,
    model: str = "gemini-2.5-pro",
    stops: list[str] | None = None,
    max_tokens: int | None = 65536,
    temperature: float | None = 1.0,
    top_p: float | None = 0.95,
    thinking: list | None = None,
    mime: str | None = None,
    schema: Any = None,
    tools: list | None = None,
    attachments: list[list] | None = None,
) -> bytes:
    """A GenerateContent request body as the simulator page builds it (README contract)."""
    parts: list[list] = [[None, prompt]]
    parts += [[None, None, a] for a in attachments or []]
    config = [
        None,
        stops,
        None,
        max_tokens,
        temperature,
        top_p,
        None,
        None,
        None,
        None,
        None,
        None,
        mime,
        None if schema is None else json.dumps(schema),
        None,
        thinking,
    ]
    return json.dumps([f"models/{model}", [[parts, "user"]], None, config, "!token", tools]).encode()


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


async def generate(
    sim: SimProcess, body: bytes, *, cookie: str | None = "", headers: dict | None = None
) -> tuple[int, dict, bytes]:
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


def test_demo_profile_is_a_private_storage_state(fresh_sim: SimProcess) -> None:
    """--write-demo-profile writes a 0600 storage_state with the session cookies."""
    sim = fresh_sim
    assert sim.profile_path.stat().st_mode & 0o777 == 0o600
    assert sim.profile_path.parent.stat().st_mode & 0o777 == 0o700
    state = json.loads(sim.profile_path.read_text())
    names = {c["name"] for c in state["cookies"]}
    assert {"SID", "SAPISID", "HSID", "SSID", "APISID", "__Secure-1PSID", "__Secure-3PSID"} <= names
    for c in state["cookies"]:
        assert c["domain"] == ".google.com" and c["secure"] and c["path"] == "/"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_cleanly(tmp_path, sig: signal.Signals) -> None:
    """SIGTERM and SIGINT stop the server with exit status 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aistudio_sim", "--port", "0", "--state-dir", str(tmp_path / "st")],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready https://127.0.0.1:")
    proc.send_signal(sig)
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
                "https%3A%2F%2Faistudio.google.com%2Fprompts%2Fnew_chat"
            )


async def test_login_form_sets_cookies_then_the_page_loads(sim: SimProcess) -> None:
    """Posting the demo credentials sets the session cookies and returns to new_chat."""
    async with sim.client_session() as s:
        async with s.get("https://accounts.google.com/v3/signin/identifier") as r:
            assert r.status == 200 and r.content_type == "text/html"
        async with s.post(
            "https://accounts.google.com/v3/signin/submit",
            data={"email": "demo@example.com", "password": "demo"},
            allow_redirects=False,
        ) as r:
            assert r.status == 302
            assert r.headers["Location"] == NEW_CHAT
            cookies = r.headers.getall("Set-Cookie")
        by_name = {c.split("=", 1)[0]: c for c in cookies}
        assert set(by_name) == {
            "SID",
            "SAPISID",
            "HSID",
            "SSID",
            "APISID",
            "__Secure-1PSID",
            "__Secure-3PSID",
        }
        for name, c in by_name.items():
            assert "Domain=.google.com" in c or "Domain=google.com" in c
            assert "Secure" in c and "SameSite=None" in c and "Path=/" in c
            assert ("HttpOnly" in c) == (name != "SAPISID")
        async with s.get(NEW_CHAT, allow_redirects=False) as r:
            assert r.status == 200
            assert r.content_type == "text/html"
            assert r.headers["Cache-Control"] == "no-store"
    events = sim.inspect("events")
    assert [e["kind"] for e in events] == ["login", "page_load"]
    assert events[0]["account"] == "demo@example.com"


async def test_wrong_password_returns_to_the_login_page_with_an_error(sim: SimProcess) -> None:
    """Bad credentials redirect back to the sign-in page with error=invalid_credentials."""
    async with sim.client_session() as s:
        async with s.post(
            "https://accounts.google.com/v3/signin/submit",
            data={"email": "demo@example.com", "password": "nope"},
            allow_redirects=False,
        ) as r:
            assert r.status == 303
            assert "/v3/signin/identifier?" in r.headers["Location"]
            assert "error=invalid_credentials" in r.headers["Location"]
            assert not r.headers.getall("Set-Cookie", [])
        async with s.get(NEW_CHAT, allow_redirects=False) as r:
            assert r.status == 302


async def test_accept_any_email_and_logout(sim: SimProcess) -> None:
    """With accept_any_email any address signs in; /Logout ends that session."""
    form = {"email": "someone@example.org", "password": "whatever"}
    async with sim.client_session() as s:
        async with s.post(
            "https://accounts.google.com/v3/signin/submit", data=form, allow_redirects=False
        ) as r:
            assert r.status == 303
        sim.config(accept_any_email=True)
        async with s.post(
            "https://accounts.google.com/v3/signin/submit", data=form, allow_redirects=False
        ) as r:
            assert r.status == 302
        async with s.get(NEW_CHAT, allow_redirects=False) as r:
            assert r.status == 200
        async with s.get("https://accounts.google.com/Logout", allow_redirects=False) as r:
            assert r.status == 302
        async with s.get(NEW_CHAT, allow_redirects=False) as r:
            assert r.status == 302
    kinds = [(e["kind"], e.get("account")) for e in sim.inspect("events")]
    assert ("login_failed", "someone@example.org") in kinds
    assert ("login", "someone@example.org") in kinds and ("logout", "someone@example.org") in kinds


async def test_list_models_needs_a_session_and_has_every_thinking_family(sim: SimProcess) -> None:
    """ListModels: 401 without cookies; with them the fixture shape and [simulated] texts."""
    async with sim.client_session() as s:
        async with s.post(RPC_BASE + "ListModels", data=b"[]", headers={"Origin": ORIGIN}) as r:
            assert r.status == 401
            assert json.loads(await r.read()) == [16, "Request had invalid authentication credentials."]
        async with s.post(
            RPC_BASE + "ListModels", data=b"[]", headers={"Origin": ORIGIN, "Cookie": sim.cookie_header()}
        ) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "application/json+protobuf; charset=UTF-8"
            assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert r.headers["Access-Control-Allow-Credentials"] == "true"
            data = json.loads(await r.read())
    models = data[0]
    ids = [m[0] for m in models]
    for mid in (
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-3-pro-preview",
        "gemini-2.0-flash",
        "gemma-3-27b-it",
        "gemini-2.5-flash-preview-tts",
        "gemini-3-flash-preview",
    ):
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


async def test_search_directive_adds_grounding_at_the_configured_index(sim: SimProcess) -> None:
    """Search tool + #sim:search=3: metadata on the last content event at index 7, or 8 via config."""
    search = [[None, None, None, []]]
    for index in (7, 8):
        if index == 8:
            assert sim.config(grounding_index=8)["grounding_index"] == 8
        status, _, raw = await generate(sim, generate_body("Paris weather #sim:search=3", tools=search))
        assert status == 200
        events, _ = parse_body(raw)
        candidate = events[-2][0][0]
        assert candidate[1] == 1 and len(candidate) == index + 1
        metadata = candidate[index]
        assert [c[0][0] for c in metadata[1]] == [
            f"https://example.com/search/paris-weather/{i}" for i in (1, 2, 3)
        ]
        assert metadata[4] == ["Paris weather"]
        grounding = sim.inspect("requests/last")["response"]["grounding"]
        assert grounding["index"] == index and grounding["queries"] == ["Paris weather"]
        assert [s["uri"] for s in grounding["sources"]] == [c[0][0] for c in metadata[1]]
    with pytest.raises(AssertionError, match="400"):
        sim.config(grounding_index=9)
    await generate(sim, generate_body("Paris weather #sim:search=3"))
    assert sim.inspect("requests/last")["response"]["grounding"] is None


# ---------------------------------------------------------------------------------------------
# encodings and pacing


async def test_identity_encoding_when_gzip_is_off_or_not_accepted(sim: SimProcess) -> None:
    """Config gzip=false, or an Accept-Encoding without gzip, gives an identity body."""
    status, headers, raw = await generate(sim, generate_body("hi"), headers={"Accept-Encoding": "identity"})
    assert status == 200 and "Content-Encoding" not in headers
    assert texts(parse_body(raw)[0])[1].startswith("[simulated")
    assert sim.inspect("requests/last")["content_encoding"] == "identity"
    sim.config(gzip=False)
    status, headers, raw = await generate(sim, generate_body("hi"))
    assert status == 200 and "Content-Encoding" not in headers
    sim.config(gzip=True)
    status, headers, _ = await generate(sim, generate_body("hi"))
    assert headers["Content-Encoding"] == "gzip"


async def test_events_arrive_incrementally_each_gzip_flushed(sim: SimProcess) -> None:
    """With delay_ms, the first event is decodable on arrival, before the server sends the last."""
    body = generate_body("count #sim:words=12 #sim:chunks=4 #sim:delay_ms=150")
    decomp = zlib.decompressobj(wbits=31)
    async with sim.client_session(auto_decompress=False) as s:
        async with s.post(
            GENERATE, data=body, headers={"Cookie": sim.cookie_header(), "Accept-Encoding": "gzip"}
        ) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            first = b""
            while not first.startswith(b"[[") or not _complete_event(first[2:]):
                first += decomp.decompress(await r.content.readany())
            first_at = time.time()
            rest = await r.read()
    whole = first + decomp.decompress(rest) + decomp.flush()
    assert decomp.eof
    assert json.loads(first[2:])[0][0][0][0][0][1]
    last = sim.inspect("requests/last")
    assert first_at < last["last_byte_at"]
    assert last["first_byte_at"] <= first_at
    assert last["last_byte_at"] - last["first_byte_at"] >= 4 * 0.15 * 0.9
    events, _ = parse_body(whole)
    assert len(events) == 5


def _complete_event(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


async def test_ttfb_delays_headers_and_first_byte(sim: SimProcess) -> None:
    """ttfb_ms holds back the response headers and the first event."""
    started = time.monotonic()
    async with sim.client_session() as s:
        async with s.post(
            GENERATE, data=generate_body("x #sim:ttfb_ms=400"), headers={"Cookie": sim.cookie_header()}
        ) as r:
            headers_after = time.monotonic() - started
            await r.read()
    assert headers_after >= 0.4
    last = sim.inspect("requests/last")
    assert last["first_byte_at"] - last["received_at"] >= 0.4
    assert last["directives"]["ttfb_ms"] == 400


async def test_echo_returns_the_prompt_byte_exact(sim: SimProcess) -> None:
    prompt = 'User:\nünï ☕ "quoted" \\ back\n\ttab #sim:echo #sim:chunks=7\n'
    status, _, raw = await generate(sim, generate_body(prompt, stops=["User:"]))
    assert status == 200
    events, _ = parse_body(raw)
    assert texts(events)[1] == prompt
    assert len(events) == 8
    assert sim.inspect("requests/last")["prompt"] == prompt


async def test_a_4_mb_prompt_is_accepted_and_recorded_byte_exact(sim: SimProcess) -> None:
    """Long contexts fit: a 4 MB prompt is answered, not refused with 413."""
    prompt = ("0123456789abcdef" * 262_144) + " #sim:words=3"
    status, _, _raw = await generate(sim, generate_body(prompt))
    assert status == 200
    assert sim.inspect("requests/last")["prompt"] == prompt


async def test_thinking_tool_calls_and_recorded_request(sim: SimProcess) -> None:
    """Thought events then calls; the record holds config, tools, attachments and calls."""
    payload = b"%PDF-1.4 fake document"
    tools = [
        [
            [
                [
                    "get_weather",
                    "Weather for a city",
                    json.dumps({"type": "object", "properties": {"city": {"type": "string"}}}),
                ],
                ["noop", "No args", json.dumps({"type": "object", "properties": {}})],
            ]
        ],
        [None, None, None, []],
    ]
    prompt = 'plan #sim:tool=get_weather #sim:args={"city": "Tokyo", "days": [1, 2]} #sim:tool=noop'
    body = generate_body(
        prompt,
        model="gemini-2.5-flash",
        temperature=0.3,
        top_p=0.7,
        max_tokens=2048,
        stops=["User:"],
        thinking=[1, 512, None],
        tools=tools,
        attachments=[["application/pdf", _b64(payload), "doc.pdf"]],
    )
    status, _, raw = await generate(sim, body)
    assert status == 200
    events, _ = parse_body(raw)
    parts = [ev[0][0][0][0][0] for ev in events[:-1]]
    assert len(parts[0]) == 13 and parts[0][12] == 1
    calls = [p[10] for p in parts if len(p) == 11]
    assert [c[0] for c in calls] == ["get_weather", "noop"]
    assert events[-2][0][0][1] == 1
    rec = sim.inspect("requests/last")
    assert rec["model"] == "gemini-2.5-flash"
    gc = rec["generation_config"]
    assert (gc["temperature"], gc["top_p"], gc["max_output_tokens"], gc["stop_sequences"]) == (
        0.3,
        0.7,
        2048,
        ["User:"],
    )
    assert gc["thinking"] == {"include_thoughts": True, "budget": 512, "level": None}
    assert [d["name"] for d in rec["tools"]["function_declarations"]] == ["get_weather", "noop"]
    assert rec["tools"]["function_declarations"][0]["parameters"]["properties"]["city"]
    assert rec["tools"]["google_search"] is True and rec["tools"]["url_context"] is False
    assert rec["attachments"] == [
        {"name": "doc.pdf", "mime_type": "application/pdf", "size": len(payload), "sha256": _sha256(payload)}
    ]
    assert rec["response"]["calls"][0] == {
        "name": "get_weather",
        "args": {"city": "Tokyo", "days": [1, 2]},
        "variant": "canonical",
    }
    assert rec["response"]["calls"][1]["variant"] == "bare_pairs"
    assert rec["contents"][0][1] == "user"


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
    "required": ["city", "temp"],
}


@pytest.mark.parametrize(
    ("prompt", "kwargs", "check"),
    [
        (
            "q #sim:think=30 #sim:words=5",
            {},
            lambda th, ans, fin: len(th.split()) == 30 and len(ans.split()) == 5 and fin == 1,
        ),
        ("q #sim:words=40", {"max_tokens": 9}, lambda th, ans, fin: len(ans.split()) == 9 and fin == 2),
        (
            "q STOPHERE tail",
            {"stops": ["STOPHERE"]},
            lambda th, ans, fin: ans == "[simulated gemini-2.5-pro] You said: q " and fin == 1,
        ),
        (
            "q #sim:ctrl_tokens",
            {},
            lambda th, ans, fin: "read_file{files:[{path:<ctrl46>temp.txt<ctrl46>}]}" in ans,
        ),
        (
            "q #sim:json",
            {"mime": "application/json", "schema": SCHEMA},
            lambda th, ans, fin: set(json.loads(ans)) == {"city", "temp"},
        ),
        (
            "q #sim:json=invalid",
            {"mime": "application/json", "schema": SCHEMA},
            lambda th, ans, fin: not isinstance(json.loads(ans), dict),
        ),
        (
            "q",
            {"model": "gemini-3-pro-preview", "thinking": [0, None, "HIGH"]},
            lambda th, ans, fin: th and ans.startswith("[simulated gemini-3-pro-preview]"),
        ),
        ("q", {"model": "gemini-2.5-flash", "thinking": [1, 0, None]}, lambda th, ans, fin: th == "" and ans),
    ],
    ids=["think", "max_tokens", "stop", "ctrl_tokens", "json", "json_invalid", "level", "budget_off"],
)
async def test_text_directives_over_https(sim: SimProcess, prompt: str, kwargs: dict, check: Any) -> None:
    """Answer-shaping directives and generation settings, end to end."""
    status, _, raw = await generate(sim, generate_body(prompt, **kwargs))
    assert status == 200
    events, error = parse_body(raw)
    assert error is None
    thought, answer = texts(events)
    finish = next(ev[0][0][1] for ev in events if ev[0] and len(ev[0][0]) > 1)
    assert check(thought, answer, finish)
    rec = sim.inspect("requests/last")
    assert rec["response"]["answer_text"] == answer and rec["response"]["thought_text"] == thought


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("kind", "status", "body"),
    [
        ("quota", 429, [8, "Resource has been exhausted (e.g. check quota)."]),
        ("rate_limit", 429, [8, "Too many requests. Please wait and try again later."]),
        ("permission", 403, [7, "The caller does not have permission"]),
        ("internal", 500, [13, "An internal error has occurred."]),
    ],
)
async def test_http_error_directives(sim: SimProcess, kind: str, status: int, body: list) -> None:
    got_status, headers, raw = await generate(sim, generate_body(f"x #sim:error={kind}"))
    assert got_status == status
    assert headers["Content-Type"] == "application/json+protobuf; charset=UTF-8"
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert json.loads(raw) == body
    rec = sim.inspect("requests/last")
    assert (rec["status"], rec["ended"]) == (status, "error")


async def test_error_login_expires_the_session(sim: SimProcess) -> None:
    """error=login answers 401 and the same cookies are then sent to the sign-in page."""
    cookie = sim.cookie_header()
    status, _, raw = await generate(sim, generate_body("x #sim:error=login"), cookie=cookie)
    assert status == 401 and json.loads(raw)[0] == 16
    async with sim.client_session() as s:
        async with s.get(NEW_CHAT, headers={"Cookie": cookie}, allow_redirects=False) as r:
            assert r.status == 302 and "accounts.google.com" in r.headers["Location"]
    status, _, _ = await generate(sim, generate_body("again"), cookie=cookie)
    assert status == 401


async def test_no_cookie_generate_is_401_and_recorded(sim: SimProcess) -> None:
    status, _, raw = await generate(sim, generate_body("hi"), cookie=None)
    assert status == 401 and json.loads(raw) == [16, "Request had invalid authentication credentials."]
    assert sim.inspect("requests/last")["status"] == 401


async def test_inline_error_element_after_events(sim: SimProcess) -> None:
    status, _, raw = await generate(sim, generate_body("x #sim:error=inline #sim:words=20"))
    assert status == 200
    events, error = parse_body(raw)
    assert error == [8, "Resource has been exhausted (e.g. check quota)."]
    assert 1 <= len(events) <= 2
    assert sim.inspect("requests/last")["ended"] == "error"


async def test_cut_drops_the_connection_mid_event(sim: SimProcess) -> None:
    """error=cut: a few events, half an event, then no terminating chunk."""
    got = b""
    async with sim.client_session(auto_decompress=False) as s:
        async with s.post(
            GENERATE,
            data=generate_body("x #sim:error=cut #sim:words=40"),
            headers={"Cookie": sim.cookie_header(), "Accept-Encoding": "identity"},
        ) as r:
            assert r.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                while chunk := await r.content.readany():
                    got += chunk
    assert got.startswith(b"[[")
    with pytest.raises(ValueError):
        json.loads(got)
    rec = sim.inspect("requests/last")
    assert rec["ended"] == "cut"


async def _wait_for_end(sim: SimProcess, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        rec = sim.inspect("requests/last")
        if rec["ended"] or time.monotonic() > deadline:
            return rec
        await asyncio.sleep(0.02)


async def test_stall_sends_one_event_then_waits_for_the_client(sim: SimProcess) -> None:
    async with sim.client_session() as s:
        async with s.post(
            GENERATE, data=generate_body("x #sim:error=stall"), headers={"Cookie": sim.cookie_header()}
        ) as r:
            first = await r.content.readany()
            assert first.startswith(b"[[")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r.content.readany(), 0.3)
            assert sim.inspect("requests/last")["ended"] is None
            closed_at = time.time()
    rec = await _wait_for_end(sim)
    assert rec["ended"] == "client_closed"
    assert rec["ended_at"] >= closed_at


async def test_client_closing_mid_stream_stops_the_stream(sim: SimProcess) -> None:
    async with sim.client_session() as s:
        async with s.post(
            GENERATE,
            data=generate_body("x #sim:words=60 #sim:chunks=20 #sim:delay_ms=200"),
            headers={"Cookie": sim.cookie_header()},
        ) as r:
            await r.content.readany()
    rec = await _wait_for_end(sim)
    assert rec["ended"] == "client_closed"
    assert rec["ended_at"] - rec["first_byte_at"] < 2.0


async def test_exhausted_account_gets_quota_others_do_not(sim: SimProcess) -> None:
    sim.config(quota_exhausted_accounts=["tired@example.com"])
    status, _, raw = await generate(sim, generate_body("hi"), cookie=sim.cookie_header("tired@example.com"))
    assert status == 429 and json.loads(raw)[0] == 8
    assert sim.inspect("requests/last")["account"] == "tired@example.com"
    status, _, _ = await generate(sim, generate_body("hi"))
    assert status == 200


async def test_bad_body_and_unknown_model(sim: SimProcess) -> None:
    status, _, raw = await generate(sim, b"{nope")
    assert status == 400 and json.loads(raw)[0] == 3
    status, _, raw = await generate(sim, generate_body("hi", model="gemini-9-ultra"))
    assert status == 404 and json.loads(raw)[0] == 5


# ---------------------------------------------------------------------------------------------
# other RPCs, CORS, hosts


async def test_cors_preflight_allows_the_page_headers(sim: SimProcess) -> None:
    async with sim.client_session() as s:
        async with s.options(
            GENERATE,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-goog-authuser,x-custom",
            },
        ) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert r.headers["Access-Control-Allow-Credentials"] == "true"
            allowed = r.headers["Access-Control-Allow-Headers"]
            for h in (
                "content-type",
                "x-goog-api-key",
                "x-goog-authuser",
                "authorization",
                "x-user-agent",
                "x-custom",
            ):
                assert h in allowed
            assert "POST" in r.headers["Access-Control-Allow-Methods"]


async def test_count_tokens_and_prompt_storage_rpcs(sim: SimProcess) -> None:
    headers = {"Cookie": sim.cookie_header(), "Origin": ORIGIN}
    async with sim.client_session() as s:
        async with s.post(RPC_BASE + "CountTokens", data=generate_body("x" * 40), headers=headers) as r:
            assert r.status == 200
            assert json.loads(await r.read()) == [10, [], [[[3], 1]], None, None, [[1, 10]]]
        for method in ("CreatePrompt", "UpdatePrompt", "ListPrompts", "ResolveDriveResource"):
            async with s.post(RPC_BASE + method, data=b"[]", headers=headers) as r:
                assert r.status == 200 and json.loads(await r.read()) == []


async def test_unknown_host_is_404(sim: SimProcess) -> None:
    async with sim.client_session() as s:
        async with s.get(f"{sim.base}/prompts/new_chat", headers={"Host": "example.com"}, ssl=False) as r:
            assert r.status == 404
        async with s.get(f"{sim.base}/prompts/new_chat", ssl=False) as r:
            assert r.status == 404
        async with s.get(f"{sim.base}/__sim__/health") as r:
            assert r.status == 200 and await r.json() == {"ok": True}


async def test_root_and_user_prefixed_pages(sim: SimProcess) -> None:
    cookie = sim.cookie_header()
    async with sim.client_session() as s:
        async with s.get("https://aistudio.google.com/", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/prompts/new_chat"
        for path in ("/prompts/1AbC", "/u/1/prompts/new_chat"):
            async with s.get(
                "https://aistudio.google.com" + path, headers={"Cookie": cookie}, allow_redirects=False
            ) as r:
                assert r.status == 200 and r.content_type == "text/html"


def test_static_files_from_a_custom_dir(tmp_path) -> None:
    """`--static-dir`: index.html for pages, /static/<file> without auth, no traversal."""
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<html>sim page</html>")
    (static / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("no")
    with start_simulator(tmp_path / "st", "--static-dir", str(static)) as sim:

        async def run() -> None:
            async with sim.client_session() as s:
                async with s.get("https://aistudio.google.com/static/app.js") as r:
                    assert r.status == 200
                    assert "javascript" in r.content_type
                    assert r.headers["Cache-Control"] == "no-store"
                async with s.get("https://aistudio.google.com/static/..%2Fsecret.txt") as r:
                    assert r.status == 404
                async with s.get(NEW_CHAT, headers={"Cookie": sim.cookie_header()}) as r:
                    assert await r.text() == "<html>sim page</html>"

        asyncio.run(run())


# ---------------------------------------------------------------------------------------------
# inspection API


async def test_jserror_is_recorded(sim: SimProcess) -> None:
    msg = "Failed to generate content: quota (MakerSuiteService/GenerateContent)"
    async with sim.client_session() as s:
        async with s.get(
            "https://aistudio.google.com/_/MakerSuite/jserror", params={"script": "1", "error": msg}
        ) as r:
            assert r.status == 204
    errors = sim.inspect("jserrors")
    assert [e["error"] for e in errors] == [msg]


def test_config_merges_validates_and_resets(sim: SimProcess) -> None:
    defaults = sim.config()
    assert defaults["chunk_delay_ms"] == 15 and defaults["gzip"] is True
    assert defaults["grounding_index"] == 7
    assert defaults["default_model"] == "gemini-2.5-pro"
    assert defaults["page_unknown_models"] == []
    updated = sim.config(
        inject_overlays=["tooltip", "survey_iframe"],
        virtualize_turns=True,
        page_unknown_models=["gemini-2.5-flash"],
    )
    assert updated["inject_overlays"] == ["tooltip", "survey_iframe"]
    assert updated["page_unknown_models"] == ["gemini-2.5-flash"]
    assert updated["chunk_delay_ms"] == 15
    with pytest.raises(AssertionError, match="400"):
        sim.config(bogus=1)
    with pytest.raises(AssertionError, match="400"):
        sim.config(inject_overlays=["nope"])
    with pytest.raises(AssertionError, match="400"):
        sim.config(chunk_delay_ms="fast")
    with pytest.raises(AssertionError, match="400"):
        sim.config(page_unknown_models=[1])
    assert defaults["dom_variant"] is None
    assert sim.config(dom_variant="no_top_p")["dom_variant"] == "no_top_p"
    assert sim.config(dom_variant=None)["dom_variant"] is None
    with pytest.raises(AssertionError, match="unknown dom_variant .*retro.*known.*first_use_dialog"):
        sim.config(dom_variant="retro")
    with pytest.raises(AssertionError, match="unknown dom_variant"):
        sim.config(dom_variant=["no_top_p"])
    sim.reset()
    assert sim.config() == defaults


async def test_reset_clears_records_but_keeps_sessions(sim: SimProcess) -> None:
    cookie = sim.cookie_header()
    await generate(sim, generate_body("one"), cookie=cookie)
    assert len(sim.inspect("requests")) == 1
    sim.reset()
    assert sim.inspect("requests") == []
    assert sim.inspect("requests/last") == {"error": "no GenerateContent request received yet"}
    status, _, _ = await generate(sim, generate_body("two"), cookie=cookie)
    assert status == 200
    assert [r["prompt"] for r in sim.inspect("requests")] == ["two"]


async def test_sessions_expire_sends_pages_to_login(sim: SimProcess) -> None:
    cookie = sim.cookie_header()
    assert sim.inspect("sessions/expire", method="POST")["expired"] >= 1
    async with sim.client_session() as s:
        async with s.get(NEW_CHAT, headers={"Cookie": cookie}, allow_redirects=False) as r:
            assert r.status == 302
    assert "sessions_expired" in [e["kind"] for e in sim.inspect("events")]


def test_demo_profile_subcommand_works_against_a_running_server(sim: SimProcess, tmp_path) -> None:
    """`demo-profile` writes a session the running server accepts, and exits 0."""
    out = tmp_path / "new" / "profile.json"
    proc = subprocess.run(
        [sys.executable, "-m", "aistudio_sim", "demo-profile", str(out), "--state-dir", str(sim.state_dir)],
        cwd=REPO_ROOT,
        timeout=30,
    )
    assert proc.returncode == 0
    cookies = json.loads(out.read_text())["cookies"]
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in cookies)

    async def load_page() -> int:
        async with sim.client_session() as s:
            async with s.get(NEW_CHAT, headers={"Cookie": cookie}, allow_redirects=False) as r:
                return r.status

    assert asyncio.run(load_page()) == 200


# ---------------------------------------------------------------------------------------------
# a real browser


@needs(CHROMIUM.exists(), "Debian Chromium")
async def test_chromium_reaches_the_simulator_through_host_resolver_rules(sim: SimProcess) -> None:
    """Chromium with `sim.host_resolver_rules`: login redirect, storage_state session, and a
    credentialed cross-origin GenerateContent fetch whose events arrive one by one."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=[f"--host-resolver-rules={sim.host_resolver_rules}"],
        )
        try:
            anon = await browser.new_context(ignore_https_errors=True)
            page = await anon.new_page()
            await page.goto(NEW_CHAT)
            assert page.url.startswith("https://accounts.google.com/v3/signin/identifier?continue=")
            await anon.close()
            ctx = await browser.new_context(ignore_https_errors=True, storage_state=str(sim.profile_path))
            page = await ctx.new_page()
            await page.goto(NEW_CHAT)
            assert page.url == NEW_CHAT
            result = await page.evaluate(
                """async ([url, body]) => {
                const r = await fetch(url, {method: 'POST', credentials: 'include', body,
                    headers: {'content-type': 'application/json+protobuf', 'x-goog-authuser': '0'}});
                const reader = r.body.getReader(); const dec = new TextDecoder(); const reads = [];
                let firstAt = null;
                for (;;) { const {done, value} = await reader.read(); if (done) break;
                           if (firstAt === null) firstAt = Date.now();
                           reads.push(dec.decode(value, {stream: true})); }
                return {status: r.status, encoding: r.headers.get('content-encoding'), reads, firstAt};
            }""",
                [GENERATE, generate_body("hi #sim:chunks=3 #sim:delay_ms=150").decode()],
            )
            await ctx.close()
        finally:
            await browser.close()
    assert result["status"] == 200 and result["encoding"] == "gzip"
    assert len(result["reads"]) >= 2
    assert result["reads"][0].startswith("[[")
    assert texts(parse_body("".join(result["reads"]).encode())[0])[1].startswith("[simulated")
    rec = sim.inspect("requests/last")
    assert rec["ended"] == "complete"
    assert result["firstAt"] / 1000 < rec["last_byte_at"]
