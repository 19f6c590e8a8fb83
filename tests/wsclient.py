"""WebSocket helpers for tests: a Tornado client and a raw one that misbehaves."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from typing import Any

import orjson
import tornado.httpclient
import tornado.websocket


class Socket:
    def __init__(self, connection: tornado.websocket.WebSocketClientConnection):
        self.connection = connection

    @classmethod
    async def open(cls, base_url: str, headers: dict[str, str] | None = None) -> Socket:
        request = tornado.httpclient.HTTPRequest(
            base_url.replace("http://", "ws://") + "/ws", headers=headers or {}
        )
        return cls(await tornado.websocket.websocket_connect(request))

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.write_message(orjson.dumps(message).decode())

    async def receive(self, wait: float = 3.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.read_message(), wait)
        assert raw is not None, f"socket closed with {self.connection.close_code}"
        message: dict[str, Any] = orjson.loads(raw)
        return message

    async def receive_none(self, wait: float = 0.3) -> None:
        try:
            message = await asyncio.wait_for(self.connection.read_message(), wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {message!r}")

    async def wait_closed(self, wait: float = 5.0) -> int | None:
        """Read until the server closes the socket; return its close code."""
        async with asyncio.timeout(wait):
            while await self.connection.read_message() is not None:
                pass
        return self.connection.close_code

    async def subscribe(self, topic: str, **position: Any) -> dict[str, Any]:
        await self.send({"op": "subscribe", "topic": topic, **position})
        return await self.receive()

    def close(self) -> None:
        self.connection.close()


async def raw_socket(port: int, receive_buffer: int | None = None) -> socket.socket:
    """Open a WebSocket with a plain socket that replies to nothing by itself.

    With ``receive_buffer`` set the kernel buffers little for it, so a client that
    never reads makes the server's send buffer grow.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        sock,
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode(),
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        assert chunk, "server closed during the handshake"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def masked_text_frame(payload: bytes) -> bytes:
    """Build a client frame: clients must mask what they send (RFC 6455 5.3)."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    length = len(payload)
    if length < 126:
        header = bytes((0x81, 0x80 | length))
    else:
        header = bytes((0x81, 0x80 | 126)) + length.to_bytes(2, "big")
    return header + mask + masked
