"""``python -m stream_proxy``: run the intercepting proxy and serve ``proxy.sock`` until SIGTERM.

``python -m stream_proxy ca-info`` creates the CA if needed and prints
``{"cert": <path>, "spki_sha256": <hash>}`` as JSON.

Start order: the proxy listens first, then ``proxy.sock`` is served, so a ``pong`` on the socket
means the proxy is ready. ``STREAM_PORT=0`` turns interception off: only the socket is served.
Shutdown (SIGTERM/SIGINT): close the proxy listener, give open streams ``SHUTDOWN_GRACE_S``,
end the rest with ``error(proxy_shutdown)`` + ``done``, then close the subscribers and remove the socket
file; exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from typing import Any

from shared import channel
from shared.process import run_process
from shared.settings import VERSION, Settings, SettingsError, load_settings
from stream_proxy.ca import ca_info
from stream_proxy.publisher import Publisher

log = logging.getLogger("stream_proxy")


async def main(settings: Settings, stop: asyncio.Event) -> None:
    from stream_proxy.server import ProxyService, StartupError  # mitmproxy import, not needed by ca-info

    publisher = Publisher()
    service: ProxyService | None = None
    if settings.stream_port:
        service = ProxyService(settings, publisher)
        try:
            await service.start()
        except StartupError as exc:
            log.error("cannot start: %s", exc)
            raise SystemExit(1) from None
    else:
        log.info("STREAM_PORT=0: interception is off; serving %s only", settings.proxy_socket.name)

    path = settings.proxy_socket
    server = await channel.serve(
        path, publisher.handle, max_frame=settings.max_frame_bytes, process="stream_proxy", version=VERSION
    )
    log.info("serving events on %s", path)

    waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(stop.wait())}
    if service is not None and service.task is not None:
        waiters.add(service.task)
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    crashed = service is not None and service.task is not None and service.task.done() and not stop.is_set()

    if service is not None:
        await service.stop(grace=0.0 if crashed else settings.shutdown_grace_s)
    log.info("stopping: closing %s and %d subscriber(s)", path.name, publisher.subscriber_count)
    server.close()  # flushes what was published above, then drops every peer and the socket file
    await publisher.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await server.wait_closed()
    log.info("socket %s removed", path.name)
    for waiter in waiters:
        waiter.cancel()
    if crashed:
        log.error("mitmproxy stopped unexpectedly")
        raise SystemExit(1)


def print_ca_info() -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"stream_proxy: bad setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(ca_info(settings.certs_dir)))


if __name__ == "__main__":
    if sys.argv[1:] == ["ca-info"]:
        print_ca_info()
    elif sys.argv[1:]:
        print("usage: python -m stream_proxy [ca-info]", file=sys.stderr)
        raise SystemExit(2)
    else:
        run_process("stream_proxy", main)
