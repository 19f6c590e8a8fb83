"""One process-wide ping loop instead of a timer per socket.

Every tick pings the next slice of sockets, so each socket is pinged once per
interval and the pings are spread evenly over it. A socket whose pong has not arrived
``timeout`` seconds after its ping is dropped: its peer is gone or stuck.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Collection
from typing import Protocol

log = logging.getLogger(__name__)

TICK = 0.5


class Pingable(Protocol):
    ping_sent_at: float
    pong_received_at: float

    def send_ping(self) -> None: ...

    def ping_timed_out(self) -> None: ...


class Heartbeat:
    def __init__(
        self, sockets: Collection[Pingable], interval: float, timeout: float
    ) -> None:
        self._sockets = sockets
        self._interval = interval
        self._timeout = timeout
        self._round: list[Pingable] = []
        self._cursor = 0
        self._round_started = -math.inf
        self._waiting: deque[tuple[float, list[Pingable]]] = deque()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.tick(loop.time())
            await asyncio.sleep(TICK)

    def tick(self, now: float) -> None:
        """Drop the sockets whose pong is late, then ping the next slice."""
        # Checked before pinging, so a socket due for its next ping is judged on the
        # previous one first.
        while self._waiting and self._waiting[0][0] + self._timeout <= now:
            sent_at, sockets = self._waiting.popleft()
            for socket in sockets:
                if socket.ping_sent_at == sent_at and socket.pong_received_at < sent_at:
                    socket.ping_timed_out()

        batch = self._next_batch(now)
        for socket in batch:
            socket.ping_sent_at = now
            socket.send_ping()
        if batch:
            self._waiting.append((now, batch))

    def _next_batch(self, now: float) -> list[Pingable]:
        if self._cursor >= len(self._round):
            # A round lasts the interval even when its sockets were all pinged in
            # fewer ticks, so no socket is pinged more often than once an interval.
            if now - self._round_started < self._interval:
                return []
            # A new round starts from the sockets open now; ones that open during
            # the round are pinged in the next.
            self._round = list(self._sockets)
            self._cursor = 0
            self._round_started = now
        size = math.ceil(len(self._round) * TICK / self._interval)
        batch = self._round[self._cursor : self._cursor + size]
        self._cursor += size
        return batch
