"""The worker's queue of jobs: ``PendingJob`` (one job, its connection, its cancel) and ``JobQueue``."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from shared import channel, protocol


@dataclass
class PendingJob:
    id: str
    job: protocol.Job
    conn: channel.Connection
    received: float = field(default_factory=time.monotonic)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    client_gone: bool = False
    #: Some of the answer went to the client: the job can no longer move to another account.
    output_sent: bool = False


class JobQueue:
    """The jobs waiting for a page, first in first out; unlike ``asyncio.Queue`` it can be looked
    through (to cancel a waiting job, or every job of a client that left). One consumer."""

    def __init__(self) -> None:
        self._jobs: collections.deque[PendingJob] = collections.deque()
        self._added = asyncio.Event()

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[PendingJob]:
        return iter(list(self._jobs))

    def put(self, pending: PendingJob) -> None:
        self._jobs.append(pending)
        self._added.set()

    async def get(self) -> PendingJob:
        while not self._jobs:
            self._added.clear()
            await self._added.wait()
        return self._jobs.popleft()

    def take_all(self) -> list[PendingJob]:
        jobs = list(self._jobs)
        self._jobs.clear()
        return jobs
