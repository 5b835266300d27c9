"""Build and run mitmproxy (as a library) with the ``StreamTap`` addon, from ``Settings``.

``ProxyService(settings, publisher)``: ``start()`` brings the HTTP proxy up on
``stream_host:stream_port`` (regular mode, or ``upstream:`` mode for ``UPSTREAM_PROXY``) with
``confdir = certs_dir`` and TLS interception limited to the AI Studio hosts (every host when the
browser is Camoufox: ``shared/browsers.py``), and returns once it listens; ``stop()`` closes the listener, ends open streams and shuts mitmproxy down.

Upstream proxies: mitmproxy 12 chains only to ``http://`` and ``https://`` proxies (credentials in
the URL become ``upstream_auth``). It has no SOCKS client (mitmproxy issue #211), so a
``socks5://`` ``UPSTREAM_PROXY`` fails at start with a message saying so; put an HTTP bridge in
front of the SOCKS proxy instead. ``AISTUDIO_RESOLVE`` (test/demo only) maps hosts on direct
connections and cannot be combined with an upstream proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from typing import Any

from mitmproxy import addons as mitm_addons
from mitmproxy import master as mitm_master
from mitmproxy import options as mitm_options

from shared.browsers import browser_kind
from shared.settings import Settings, SettingsError
from stream_proxy.addon import StreamTap, allow_hosts_patterns
from stream_proxy.ca import ensure_ca
from stream_proxy.publisher import Publisher

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The proxy could not come up (for example its port is taken)."""


def upstream_mode(upstream_proxy: str) -> tuple[str, str | None]:
    """The mitmproxy ``mode`` and ``upstream_auth`` for an ``UPSTREAM_PROXY`` value.

    Raises ``SettingsError`` naming the variable for a scheme mitmproxy cannot chain to.
    """
    if not upstream_proxy:
        return "regular", None
    parts = urllib.parse.urlsplit(upstream_proxy)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise SettingsError(
            f"UPSTREAM_PROXY: {scheme}:// upstream proxies are not supported: mitmproxy 12 can only "
            "chain to http:// or https:// proxies. Run an HTTP proxy that forwards to the SOCKS "
            "proxy and point UPSTREAM_PROXY at it."
        )
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise SettingsError(f"UPSTREAM_PROXY: bad port in {upstream_proxy!r}") from None
    if not parts.hostname:
        raise SettingsError(f"UPSTREAM_PROXY: no host in {upstream_proxy!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    auth = None
    if parts.username is not None:
        auth = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    return f"upstream:{scheme}://{host}:{port}", auth


class ProxyService:
    """mitmproxy plus ``StreamTap``, started and stopped in order; see the module docstring."""

    def __init__(self, settings: Settings, publisher: Publisher) -> None:
        self.settings = settings
        self.publisher = publisher
        self.tap = StreamTap(publisher)
        self.master: mitm_master.Master | None = None
        self.task: asyncio.Task[None] | None = None
        self.port: int | None = None
        self.decrypt_all = False

    async def start(self) -> None:
        """Bring the proxy up; return once it listens. Raises ``SettingsError``/``StartupError``."""
        settings = self.settings
        mode, auth = upstream_mode(settings.upstream_proxy)
        if settings.upstream_proxy and settings.aistudio_resolve:
            raise SettingsError("AISTUDIO_RESOLVE (test/demo only) cannot be combined with UPSTREAM_PROXY")
        ensure_ca(settings.certs_dir)

        # Chromium pins the CA: decrypt only AI Studio. Camoufox cannot pin and ignores certificate
        # errors, so every host is decrypted here and its real certificate checked by mitmproxy.
        self.decrypt_all = browser_kind(settings) == "camoufox"
        opts = mitm_options.Options(
            listen_host=settings.stream_host,
            listen_port=settings.stream_port,
            confdir=str(settings.certs_dir),
            mode=[mode],
            allow_hosts=[] if self.decrypt_all else allow_hosts_patterns(),
        )
        master = mitm_master.Master(opts)  # needs the running loop
        master.addons.add(*mitm_addons.default_addons())
        master.addons.add(self.tap)  # after TlsConfig: tls_start_server relies on that order
        # Every client names its slot as the proxy user name (any accepted; ``StreamTap`` reads it).
        master.options.update(aisp_resolve=settings.aistudio_resolve, proxyauth="any")
        if auth is not None:
            master.options.update(upstream_auth=auth)
        self.master = master

        self.task = asyncio.create_task(master.run(), name="mitmproxy")
        started = asyncio.create_task(self.tap.started.wait())
        await asyncio.wait({self.task, started}, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            started.cancel()
            self.task.result()  # re-raises what ended mitmproxy
            raise StartupError("mitmproxy stopped during startup")
        proxyserver = master.addons.get("proxyserver")
        addrs = proxyserver.listen_addrs() if proxyserver else []
        if not addrs:
            await self.stop()
            raise StartupError(
                f"cannot listen on {settings.stream_host}:{settings.stream_port} (see the error above)"
            )
        self.port = addrs[0][1]
        log.info(
            "proxy listening on %s:%d (%s mode), intercepting %s; CA in %s",
            settings.stream_host,
            self.port,
            mode.split(":", 1)[0],
            "every host (the browser is Camoufox)" if self.decrypt_all else ", ".join(self.tap.hosts),
            settings.certs_dir,
        )

    async def stop(self, grace: float = 0.0) -> None:
        """Stop accepting, give open streams ``grace`` seconds, end the rest with an error, shut down."""
        if self.master is None or self.task is None:
            return
        proxyserver = self.master.addons.get("proxyserver")
        if proxyserver is not None:
            log.info("stopping: closing the proxy listener")
            await proxyserver.servers.update([])
        if self.tap.open_streams and grace > 0:
            log.info("stopping: waiting up to %.1f s for %d open stream(s)", grace, self.tap.open_streams)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self.tap.idle.wait()
        if self.tap.open_streams:
            log.warning("stopping: ending %d open stream(s) with a shutdown error", self.tap.open_streams)
        self.tap.abort_all()  # before the cut below, which mitmproxy reports as "Client disconnected."
        if proxyserver is not None:
            await self._close_connections(proxyserver)
        log.info("stopping: shutting mitmproxy down")
        self.master.shutdown()
        try:
            async with asyncio.timeout(10):
                await self.task
        except TimeoutError:
            log.warning("mitmproxy did not stop within 10 s; cancelling it")
            self.task.cancel()
        except Exception:
            log.exception("mitmproxy failed")
        self.master = None

    async def _close_connections(self, proxyserver: Any) -> None:
        """Close the browser's open connections so that their flows end (with ``error``) before exit."""
        handlers = list(getattr(proxyserver, "connections", {}).values())
        if not handlers:
            return
        log.info("stopping: closing %d client connection(s)", len(handlers))
        for handler in handlers:
            io = getattr(handler, "transports", {}).get(getattr(handler, "client", None))
            if io is not None and io.handler is not None:
                io.handler.cancel("stream proxy shutting down")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while proxyserver.connections:
                    await asyncio.sleep(0.01)
