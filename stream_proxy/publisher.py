"""Fan-out of stream events to the subscribers of ``proxy.sock``, never blocking the caller.

A peer becomes a subscriber by sending ``subscribe``; from then on every published message is
queued on its socket with ``send_nowait``. A subscriber that has gone away, or that lets more
than ``max_buffer`` bytes pile up unread, is dropped on the spot. With no subscriber a message
is simply discarded: nothing is kept for later.
"""

from __future__ import annotations

import logging

from shared import channel, protocol

log = logging.getLogger(__name__)

#: Unsent bytes a subscriber may have pending before it is considered dead.
DEFAULT_MAX_BUFFER = 8 * 1024 * 1024


class Publisher:
    """The subscriber set plus ``publish()``; ``handle`` is the ``proxy.sock`` connection handler."""

    def __init__(self, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self.max_buffer = max_buffer
        self._subscribers: list[channel.Connection] = []

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def handle(self, conn: channel.Connection) -> None:
        """Serve one connection: ``subscribe`` adds it to the subscribers until it closes."""
        try:
            async for msg in conn:
                if isinstance(msg, protocol.Subscribe):
                    if conn not in self._subscribers:
                        self._subscribers.append(conn)
                        log.info("subscriber added (%d now)", len(self._subscribers))
                else:
                    log.debug("ignoring %s on proxy.sock", getattr(msg, "type", type(msg).__name__))
        finally:
            if self._remove(conn):
                log.info("subscriber left (%d now)", len(self._subscribers))

    def publish(self, msg: protocol.Message) -> int:
        """Queue ``msg`` for every subscriber without waiting; return how many took it."""
        sent = 0
        for conn in list(self._subscribers):
            transport = conn.writer.transport
            if conn.closed or transport.get_write_buffer_size() > self.max_buffer:
                self._drop(conn, "is gone or too slow")
                continue
            if conn.send_nowait(msg):
                sent += 1
            else:
                self._drop(conn, "refused a message")
        return sent

    def _drop(self, conn: channel.Connection, why: str) -> None:
        if self._remove(conn):
            log.warning("subscriber dropped: it %s (%d left)", why, len(self._subscribers))
        # abort, not close: close would first try to flush what the peer never read
        conn.writer.transport.abort()

    def _remove(self, conn: channel.Connection) -> bool:
        if conn in self._subscribers:
            self._subscribers.remove(conn)
            return True
        return False

    async def close(self) -> None:
        """Close every subscriber connection."""
        conns, self._subscribers = self._subscribers, []
        for conn in conns:
            await conn.close()
