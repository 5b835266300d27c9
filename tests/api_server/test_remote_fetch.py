"""Remote attachment URLs: only public addresses, checked on the address actually connected to, on every hop.

Every target is an aiohttp server on 127.0.0.1; nothing leaves the machine. The "public" case injects an
address policy that treats loopback as public, which is the only way to see an allowed fetch offline.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from api_server.attachments import AttachmentCollector
from api_server.remote_fetch import FETCH_FAILED, RemoteFetcher, is_public
from shared.errors import InvalidRequest


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.fixture
async def target() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback server: /cat.png, /big, /slow-free redirects; returns (base URL, paths requested)."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        if request.path == "/cat.png":
            return web.Response(body=b"meow", content_type="image/png")
        if request.path == "/big":
            return web.Response(body=b"x" * 2048, content_type="image/png")
        if request.path == "/to-cat":
            raise web.HTTPFound("/cat.png")
        if request.path == "/to-localhost":
            raise web.HTTPFound(f"http://localhost:{request.url.port}/cat.png")
        if request.path == "/loop":
            raise web.HTTPFound("/loop")
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield f"http://127.0.0.1:{server.port}", seen


async def fetch(
    fetcher: RemoteFetcher, url: str, folder: Path, max_bytes: int = 1 << 20
) -> AttachmentCollector:
    c = AttachmentCollector(folder, attachments_dir=None, fetcher=fetcher, max_bytes=max_bytes)
    await c.collect([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}], None)
    return c


async def refused(fetcher: RemoteFetcher, url: str, folder: Path, max_bytes: int = 1 << 20) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        await fetch(fetcher, url, folder, max_bytes)
    assert (info.value.status, info.value.code) == (400, "attachment_fetch_failed")
    assert info.value.param == "messages.0.content.0.image_url.url"
    return info.value


@pytest.mark.parametrize("path", ["/cat.png", "/missing", "/to-cat"])
async def test_loopback_is_never_fetched_and_every_refusal_reads_the_same(
    short_dir: Path, target: tuple[str, list[str]], path: str
) -> None:
    """127.0.0.1 and localhost (a name resolving to loopback) are refused before connecting, with one text."""
    base, seen = target
    async with RemoteFetcher() as fetcher:
        for url in (base + path, base.replace("127.0.0.1", "localhost") + path, "http://127.0.0.1:1/x"):
            error = await refused(fetcher, url, short_dir / "u")
            assert error.message == FETCH_FAILED
    assert seen == []


async def test_a_public_address_is_fetched(short_dir: Path, target: tuple[str, list[str]]) -> None:
    """With loopback treated as public (injected policy) the file is downloaded and redirects are followed."""
    base, seen = target
    async with RemoteFetcher(allow=lambda ip: True) as fetcher:
        c = await fetch(fetcher, base + "/to-cat", short_dir / "u")
    assert c.attachments[0].mime_type == "image/png" and Path(c.attachments[0].path).read_bytes() == b"meow"
    assert seen == ["/to-cat", "/cat.png"]


async def test_every_redirect_is_checked_again(short_dir: Path, target: tuple[str, list[str]]) -> None:
    """A public first hop that redirects to a refused address stops there (the policy sees every hop)."""
    base, seen = target
    checked: list[str] = []

    def only_first(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        checked.append(str(ip))
        return len(checked) == 1

    async with RemoteFetcher(allow=only_first) as fetcher:
        await refused(fetcher, base + "/to-localhost", short_dir / "u")
    assert seen == ["/to-localhost"] and len(checked) >= 2


async def test_failures_and_limits_read_the_same(short_dir: Path, target: tuple[str, list[str]]) -> None:
    """404, a redirect loop, a closed port and a body over the limit: the same text."""
    base, _ = target
    async with RemoteFetcher(allow=lambda ip: True, max_redirects=3) as fetcher:
        for url in (base + "/missing", base + "/loop", "http://127.0.0.1:1/x"):
            assert (await refused(fetcher, url, short_dir / "u")).message == FETCH_FAILED
        assert (
            await refused(fetcher, base + "/big", short_dir / "u", max_bytes=1024)
        ).message == FETCH_FAILED


async def test_remote_urls_are_refused_when_off(short_dir: Path) -> None:
    """Without a fetcher (REMOTE_ATTACHMENTS=off, the default) every http(s) URL is refused."""
    with pytest.raises(InvalidRequest) as info:
        await fetch(None, "https://example.com/cat.png", short_dir / "u")  # type: ignore[arg-type]
    assert info.value.code == "attachment_fetch_failed" and "REMOTE_ATTACHMENTS" in info.value.message
