"""The shared state handed to every handler: settings, PostgreSQL pool, broker."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from handlers.live_directory import LiveDirectory
from handlers.outbox import Outbox
from realtime.broker import Broker
from realtime.limits import AddressLimiter
from server.settings import Network, Settings
from store.images import LocalStorage, S3Storage, make_storage


@dataclass
class AppContext:
    settings: Settings
    pool: asyncpg.Pool
    broker: Broker
    # Set on SIGTERM: /readyz fails so HAProxy stops sending new connections.
    draining: bool = False
    # Requests being served, so shutdown can wait for them.
    requests_in_flight: int = 0
    sockets: set[Any] = field(default_factory=set)
    # Set when the last request in flight finishes while draining.
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    # Socket events worth watching: opened, closed_slow, ping_timeouts, rejected_cap,
    # rejected_rate, closed_flooding.
    counters: Counter[str] = field(default_factory=Counter)
    connect_limiter: AddressLimiter | None = None
    lives: LiveDirectory = field(init=False)
    images: S3Storage | LocalStorage = field(init=False)
    # Peers whose X-Real-Ip and X-Forwarded-For headers are believed.
    trusted_proxies: tuple[Network, ...] = field(init=False)
    outbox: Outbox = field(init=False)

    def __post_init__(self) -> None:
        self.lives = LiveDirectory(self.pool)
        self.images = make_storage(self.settings)
        self.trusted_proxies = self.settings.trusted_proxy_networks()
        self.outbox = Outbox(self.pool, self.broker)
