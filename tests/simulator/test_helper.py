"""The simulator as a stream helper: ``GET /getStreamResponse`` mirrors GenerateContent bodies."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from aistudio_sim.helper import SINCE_MARGIN_S
from shared.wire.decoder import ResponseDecoder
from tests.simulator.conftest import SimProcess
from tests.simulator.test_server import GENERATE, ORIGIN, generate_body


def _session_cookies(sim: SimProcess) -> dict[str, str]:
    return {c["name"]: c["value"] for c in sim.storage_state()["cookies"]}


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


async def _post(
    sim: SimProcess, prompt: str, cookies: dict[str, str], **headers: str
) -> tuple[int, dict, bytes]:
    """The browser's side: POST GenerateContent; the raw (still encoded) body."""
    async with sim.client_session(auto_decompress=False) as s:
        async with s.post(
            GENERATE,
            data=generate_body(prompt),
            headers={
                "Cookie": _cookie_header(cookies),
                "Origin": ORIGIN,
                "Content-Type": "application/json+protobuf",
                **headers,
            },
        ) as r:
            return r.status, dict(r.headers), await r.read()


async def _helper(sim: SimProcess, sapisid: str, **query: str) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        async with s.get(sim.helper_url, params=query, headers={"Cookie": f"SAPISID={sapisid}"}) as r:
            return r.status, dict(r.headers), await r.read()


def _texts(status: int, encoding: str | None, body: bytes) -> tuple[str, list]:
    dec = ResponseDecoder(status, encoding)
    events = dec.feed(body) + dec.close()
    text = "".join(e.text for e in events if type(e).__name__ == "Content")
    return text, [type(e).__name__ for e in events]


async def test_helper_mirrors_the_body_byte_exact_gzip(sim: SimProcess) -> None:
    """Asked before the browser's request starts: waits, then returns the very same bytes."""
    cookies = _session_cookies(sim)
    since = str(time.time())
    helper = asyncio.create_task(_helper(sim, cookies["SAPISID"], since=since))
    status, headers, body = await _post(
        sim, "hello #sim:words=30 #sim:chunks=6", cookies, **{"Accept-Encoding": "gzip"}
    )
    h_status, h_headers, h_body = await helper
    assert (status, h_status) == (200, 200)
    assert headers["Content-Encoding"] == h_headers["Content-Encoding"] == "gzip"
    assert h_headers["Content-Type"] == headers["Content-Type"]
    assert h_body == body
    text, kinds = _texts(h_status, "gzip", h_body)
    assert text and kinds[-1] == "Done" and "Error" not in kinds
    served = [e for e in sim.inspect("events") if e["kind"] == "helper_serve"]
    assert served[-1]["request"] == sim.inspect("requests/last")["id"]


async def test_helper_streams_while_the_answer_is_written(sim: SimProcess) -> None:
    """A stalled answer: the helper delivers what was written before the answer ends, and cuts its
    own answer when the browser abandons the upstream one."""
    cookies = _session_cookies(sim)
    async with sim.client_session() as s:
        async with s.post(
            GENERATE,
            data=generate_body("x #sim:error=stall"),
            headers={"Cookie": _cookie_header(cookies), "Origin": ORIGIN},
        ) as r:
            assert (await r.content.readany()).startswith(b"[[")
            async with aiohttp.ClientSession(auto_decompress=False) as hs:
                async with hs.get(
                    sim.helper_url,
                    params={"since": str(time.time() - 5)},
                    headers={"Cookie": f"SAPISID={cookies['SAPISID']}"},
                ) as h:
                    assert h.status == 200
                    first = await h.content.readany()
                    assert first  # written before the upstream answer ended
                    assert sim.inspect("requests/last")["ended"] is None
                    dec = ResponseDecoder(200, h.headers.get("Content-Encoding"))
                    assert [type(e).__name__ for e in dec.feed(first)][:1] == ["Content"]
                    await r.release()
                    r.close()  # the browser goes away: the mirror breaks off
                    with pytest.raises(aiohttp.ClientPayloadError):
                        while await h.content.readany():
                            pass


async def test_helper_cuts_when_the_upstream_answer_is_cut(sim: SimProcess) -> None:
    cookies = _session_cookies(sim)
    since = str(time.time())
    helper = asyncio.create_task(_helper(sim, cookies["SAPISID"], since=since))
    with pytest.raises(aiohttp.ClientPayloadError):  # the browser's answer is cut …
        await _post(sim, "x #sim:error=cut #sim:words=40", cookies)
    with pytest.raises(aiohttp.ClientPayloadError):  # … and so is the helper's
        await helper


@pytest.mark.parametrize(("kind", "status"), [("quota", 429), ("permission", 403), ("internal", 500)])
async def test_helper_mirrors_http_errors(sim: SimProcess, kind: str, status: int) -> None:
    cookies = _session_cookies(sim)
    since = str(time.time())
    helper = asyncio.create_task(_helper(sim, cookies["SAPISID"], since=since))
    got = await _post(sim, f"x #sim:error={kind}", cookies)
    h_status, h_headers, h_body = await helper
    assert (got[0], h_status, h_body) == (status, status, got[2])
    assert h_headers["Content-Type"].startswith("application/json+protobuf")
    _, kinds = _texts(h_status, None, h_body)
    assert kinds == ["Error", "Done"]


async def test_helper_takes_the_first_answer_since_and_not_an_older_one(sim: SimProcess) -> None:
    cookies = _session_cookies(sim)
    await _post(sim, "old #sim:echo", cookies)
    since = time.time() + SINCE_MARGIN_S  # the old answer started before since - margin
    helper = asyncio.create_task(_helper(sim, cookies["SAPISID"], since=str(since)))
    _, _, body = await _post(sim, "new #sim:echo", cookies, **{"Accept-Encoding": "identity"})
    _, _, h_body = await helper
    assert h_body == body and b"new" in h_body


async def test_helper_refuses_other_accounts_and_bad_queries(sim: SimProcess) -> None:
    cookies = _session_cookies(sim)
    other = _session_cookies(sim)
    helper = asyncio.create_task(_helper(sim, other["SAPISID"], since=str(time.time()), wait="2"))
    await _post(sim, "x", cookies)  # the demo account again, but another session: same account
    assert (await helper)[0] == 200
    status, headers, body = await _helper(sim, "not-a-session", since=str(time.time()))
    assert status == 401 and headers["Content-Type"].startswith("application/json") and b"SAPISID" in body
    assert (await _helper(sim, cookies["SAPISID"], since="soon"))[0] == 400
    assert (await _helper(sim, cookies["SAPISID"], since=str(time.time() + 60), wait="0"))[0] == 404
    assert sim.inspect("events")[-1]["kind"] == "helper_none"
