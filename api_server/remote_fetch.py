"""Downloads of http(s) attachment URLs, limited to public addresses (``REMOTE_ATTACHMENTS=public``).

The API server runs next to private services (its own port, the worker, a
cloud metadata endpoint), so a URL must never make it a proxy into them.
``RemoteFetcher`` checks every address it connects to with ``allow``
(``is_public`` unless a test injects another policy):

* a literal IP host is checked before the request;
* a name is resolved by ``CheckedResolver``, the session's only resolver, which
  refuses the name if any of its addresses is not allowed; aiohttp then
  connects to exactly those checked addresses (no second lookup to rebind);
* redirects are followed here, one hop at a time (at most ``max_redirects``),
  so each hop goes through the same two checks; only http and https;
* the whole download has one time limit and a byte cap.

Every refusal and failure (refused address, DNS error, closed port, HTTP error,
too large, too slow, too many redirects) is the same 400 text, ``FETCH_FAILED``,
so answers cannot be used to scan ports or hosts; the reason goes to the log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import mimetypes
import socket
from collections.abc import Callable
from types import TracebackType

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from shared.errors import InvalidRequest

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]

FETCH_FAILED = "The attachment URL could not be fetched."
MAX_BYTES = 20 * 1024 * 1024
TIMEOUT_S = 20.0
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses; an IPv4 address embedded in IPv6 (mapped, 6to4,
    Teredo, NAT64) is judged as that IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        teredo = ip.teredo
        embedded = ip.ipv4_mapped or ip.sixtofour or (teredo[1] if teredo else None)
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_reserved
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
    )


class _Refused(Exception):
    """Why one fetch was refused (logged, never shown to the client)."""


class CheckedResolver(AbstractResolver):
    """The default resolver, refusing a name when any of its addresses fails the policy."""

    def __init__(self, allow: AddressPolicy) -> None:
        self.inner = DefaultResolver()
        self.allow = allow

    async def resolve(
        self,
        host: str,
        port: int = 0,
        family: socket.AddressFamily = socket.AF_INET,
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            if not self.allow(ipaddress.ip_address(result["host"])):
                raise OSError(f"{host!r} resolves to {result['host']}, which is not allowed")
        return results

    async def close(self) -> None:
        await self.inner.close()


class RemoteFetcher:
    """One aiohttp session whose connections only reach addresses ``allow`` accepts."""

    def __init__(
        self,
        *,
        allow: AddressPolicy = is_public,
        max_redirects: int = MAX_REDIRECTS,
        timeout_s: float = TIMEOUT_S,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.allow = allow
        self.max_redirects = max_redirects
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RemoteFetcher:
        connector = aiohttp.TCPConnector(resolver=CheckedResolver(self.allow))
        self.session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def fetch(self, url: str, param: str, max_bytes: int) -> tuple[bytes, str, str | None]:
        """(body, MIME type, file name hint) of ``url``, or a 400 with the one generic text."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._follow(URL(url), min(max_bytes, self.max_bytes))
        except (_Refused, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            log.info("remote attachment %r refused: %s", url, exc or type(exc).__name__)
            raise InvalidRequest(FETCH_FAILED, param=param, code="attachment_fetch_failed") from None

    def _check_literal(self, url: URL) -> None:
        if url.scheme not in ("http", "https") or not url.host:
            raise _Refused(f"scheme {url.scheme!r} or missing host")
        try:
            ip = ipaddress.ip_address(url.host)
        except ValueError:
            return  # a name: CheckedResolver decides
        if not self.allow(ip):
            raise _Refused(f"address {ip} is not allowed")

    async def _follow(self, url: URL, max_bytes: int) -> tuple[bytes, str, str | None]:
        assert self.session is not None, "use RemoteFetcher as an async context manager"
        for _hop in range(self.max_redirects + 1):
            self._check_literal(url)
            async with self.session.get(url, allow_redirects=False) as resp:
                if resp.status in REDIRECTS:
                    location = resp.headers.get("Location")
                    if not location:
                        raise _Refused(f"HTTP {resp.status} without Location")
                    url = resp.url.join(URL(location))
                    continue
                if resp.status >= 300:
                    raise _Refused(f"HTTP {resp.status}")
                if (resp.content_length or 0) > max_bytes:
                    raise _Refused(f"larger than {max_bytes} bytes")
                data = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > max_bytes:
                        raise _Refused(f"larger than {max_bytes} bytes")
                mime = resp.content_type or mimetypes.guess_type(url.path)[0] or "application/octet-stream"
                return bytes(data), mime, url.name or None
        raise _Refused(f"more than {self.max_redirects} redirects")
