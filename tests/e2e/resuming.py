"""A test client that behaves like the storefront's: it reconnects through HAProxy
and resubscribes from its last offset, and refetches the state after a reset."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import tornado.httpclient
import tornado.websocket

from tests.e2e.topology import Topology

log = logging.getLogger(__name__)


class ResumingClient:
    def __init__(self, topology: Topology, index: int, topic: str) -> None:
        self.topology = topology
        self.cookie = topology.cookie(index)
        self.topic = topic
        self.slug = topic.removeprefix("live:")
        self.epoch: str | None = None
        self.offset: int | None = None
        self.events: list[dict[str, Any]] = []
        self.resets = 0
        self.reconnects = 0
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def stock_values(self) -> list[int]:
        return [
            event["data"]["stock"]
            for event in self.events
            if event["type"] == "stock.changed"
        ]

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except (OSError, tornado.websocket.WebSocketClosedError) as exc:
                log.info("client %s: connection failed: %r", self.cookie, exc)
            except tornado.httpclient.HTTPClientError as exc:
                log.info("client %s: upgrade failed: %r", self.cookie, exc)
            self.reconnects += 1
            await asyncio.sleep(0.2)

    async def _session(self) -> None:
        request = tornado.httpclient.HTTPRequest(
            self.topology.base_url.replace("http://", "ws://") + "/ws",
            headers={"Cookie": self.cookie},
            connect_timeout=3,
            request_timeout=3,
        )
        connection = await tornado.websocket.websocket_connect(request)
        await self._subscribe(connection)
        while True:
            raw = await connection.read_message()
            if raw is None:
                return
            message = orjson.loads(raw)
            if message.get("op") == "reset":
                self.resets += 1
                await self._refetch()
                await self._subscribe(connection)
            elif message.get("op") in ("subscribed", "reconnect", "error"):
                continue
            else:
                assert self.offset is None or message["offset"] > self.offset, message
                self.offset = message["offset"]
                self.events.append(message)

    async def _subscribe(self, connection: Any) -> None:
        request: dict[str, Any] = {"op": "subscribe", "topic": self.topic}
        if self.epoch is not None:
            request.update(epoch=self.epoch, offset=self.offset)
        await connection.write_message(orjson.dumps(request).decode())
        while True:
            raw = await connection.read_message()
            if raw is None:
                raise OSError("closed while subscribing")
            reply = orjson.loads(raw)
            if reply.get("op") == "subscribed":
                self.epoch = reply["epoch"]
                self.offset = reply["offset"]
                self.subscribed.set()
                return
            if reply.get("op") == "reset":
                self.resets += 1
                await self._refetch()
                await self._subscribe(connection)
                return

    async def _refetch(self) -> None:
        """Read the state over HTTP like the storefront, taking its topic position."""
        client = tornado.httpclient.AsyncHTTPClient()
        response = await client.fetch(
            f"{self.topology.base_url}/api/v1/lives/{self.slug}",
            headers={"Cookie": self.cookie},
        )
        state = orjson.loads(response.body)
        self.epoch = state["topic"]["epoch"]
        self.offset = state["topic"]["offset"]
