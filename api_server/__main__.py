"""`python -m api_server`: the OpenAI-compatible HTTP API plus the ``api.sock`` control socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from api_server.app import create_app
from api_server.lifecycle import drain
from shared import channel
from shared.process import run_process
from shared.settings import VERSION, Settings

log = logging.getLogger("api_server")


async def main(settings: Settings, stop: asyncio.Event) -> None:
    async def handle(conn: channel.Connection) -> None:
        async for _msg in conn:  # ping is answered by serve(); nothing else is spoken here
            pass

    app = create_app(settings)
    runner = web.AppRunner(
        app, handler_cancellation=True, access_log=None, shutdown_timeout=settings.shutdown_grace_s + 5
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.api_host, settings.api_port)
    await site.start()
    path = settings.api_socket
    server = await channel.serve(path, handle, process="api_server", version=VERSION)
    log.info("serving http://%s:%d and %s", settings.api_host, settings.api_port, path)
    await stop.wait()
    log.info("shutdown: draining requests")
    await drain(app)
    log.info("shutdown: closing the HTTP server")
    await runner.cleanup()
    log.info("shutdown: closing %s", path.name)
    server.close()
    await server.wait_closed()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


if __name__ == "__main__":
    run_process("api_server", main)
