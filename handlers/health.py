"""Liveness and readiness probes for HAProxy and ops."""

from __future__ import annotations

import asyncio
import logging
import os

from handlers.base import OUTAGE_ERRORS, ApiHandler

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0


class HealthHandler(ApiHandler):
    """Respond while the process runs its event loop, with its process id, open
    sockets, socket counters and the lag of its latest fan-outs."""

    def get(self) -> None:
        self.write_json(
            {
                "status": "ok",
                "pid": os.getpid(),
                "sockets": len(self.ctx.sockets),
                "deliveries": self.ctx.broker.hub.deliveries,
                # The latest fan-outs of live topics: [topic, published_ms, sockets,
                # lag_ms].
                "recent_fanouts": [
                    list(fanout) for fanout in self.ctx.broker.hub.recent_fanouts
                ],
                "counters": dict(self.ctx.counters),
            }
        )


class ReadyHandler(ApiHandler):
    """Respond 200 only while PostgreSQL and Redis are reachable and the process is
    not draining, so HAProxy routes new connections elsewhere otherwise."""

    async def get(self) -> None:
        checks = {"postgresql": "ok", "redis": "ok", "relay": "ok"}
        if self.ctx.draining:
            checks["process"] = "draining"

        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                async with self.ctx.pool.acquire() as connection:
                    await connection.fetchval("SELECT 1")
        except OUTAGE_ERRORS as exc:
            checks["postgresql"] = f"unreachable: {exc!r}"

        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self.ctx.broker.client.ping()
        except OUTAGE_ERRORS as exc:
            checks["redis"] = f"unreachable: {exc!r}"

        if not self.ctx.broker.relay.connected:
            checks["relay"] = "reconnecting"

        ready = all(value == "ok" for value in checks.values())
        self.write_json({"ready": ready, "checks": checks}, 200 if ready else 503)
