"""`python -m stream_proxy`: serve the proxy socket until SIGTERM (filled in by its issue)."""

from __future__ import annotations

import asyncio
import contextlib

from shared import protocol
from shared.runner import run_process
from shared.settings import VERSION, Settings


async def main(settings: Settings, stop: asyncio.Event) -> None:
    async def handle(conn: protocol.Connection) -> None:
        async for _msg in conn:
            pass

    path = settings.proxy_socket
    server = await protocol.serve(path, handle, process="stream_proxy", version=VERSION)
    await stop.wait()
    server.close()
    await server.wait_closed()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


if __name__ == "__main__":
    run_process("stream_proxy", main)
