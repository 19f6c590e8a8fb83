"""What every handler is given: settings, the PostgreSQL pool and the broker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from realtime.broker import Broker
from server.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    pool: asyncpg.Pool
    broker: Broker
    # Set on SIGTERM: /readyz fails so HAProxy stops sending new connections.
    draining: bool = False
    # Requests being served, so shutdown can wait for them.
    requests_in_flight: int = 0
    sockets: set[object] = field(default_factory=set)
    # Set when the last request in flight finishes while draining.
    idle: asyncio.Event = field(default_factory=asyncio.Event)
