"""The WebSocket protocol on the process's listener: handshake, frames, closing."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
from dataclasses import replace

import asyncpg
import orjson
import pytest

from realtime.frames import close_frame
from realtime.handshake import accept_key
from realtime.websocket import ProtocolError, parse_frame, unmask
from tests.factories import insert_lives
from tests.wsclient import masked_text_frame, raw_socket

UPGRADE_HEADERS = (
    "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        header = bytes((first, 0x80 | len(payload)))
    else:
        header = bytes((first, 0x80 | 126)) + struct.pack("!H", len(payload))
    return header + mask + unmask(payload, mask)


async def connect(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


async def send(sock: socket.socket, data: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, data)


async def read_until_closed(sock: socket.socket, wait: float = 5.0) -> bytes:
    loop = asyncio.get_running_loop()
    received = b""
    async with asyncio.timeout(wait):
        while chunk := await loop.sock_recv(sock, 65536):
            received += chunk
    return received


class FrameReader:
    """Reads server frames (unmasked, payload under 64 KiB) from a raw socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    async def next(self, wait: float = 3.0) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(wait):
            while True:
                frame = self._take()
                if frame is not None:
                    return frame
                chunk = await loop.sock_recv(self.sock, 65536)
                assert chunk, f"server closed the connection after {self.buffer!r}"
                self.buffer += chunk

    def _take(self) -> tuple[int, bytes] | None:
        if len(self.buffer) < 2:
            return None
        length = self.buffer[1] & 0x7F
        start = 2
        if length == 126:
            if len(self.buffer) < 4:
                return None
            length = struct.unpack("!H", self.buffer[2:4])[0]
            start = 4
        if len(self.buffer) < start + length:
            return None
        opcode = self.buffer[0] & 0x0F
        payload = self.buffer[start : start + length]
        self.buffer = self.buffer[start + length :]
        return opcode, payload


def close_code(payload: bytes) -> int:
    code: int = struct.unpack("!H", payload[:2])[0]
    return code


def test_accept_key_matches_rfc_example():
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_unmask_matches_bytewise_xor():
    mask = b"\x01\x80\xff\x37"
    for length in (0, 1, 3, 4, 5, 1000):
        payload = os.urandom(length)
        expected = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        assert unmask(payload, mask) == expected


def test_parse_frame_waits_for_whole_frame():
    frame = client_frame(0x1, b"hello")

    for cut in range(len(frame)):
        assert parse_frame(frame[:cut], 0, 1024) is None
    assert parse_frame(frame, 0, 1024) == (True, 0x1, b"hello", len(frame))


def test_parse_frame_rejects_oversized_from_header():
    header_only = bytes((0x81, 0x80 | 126)) + struct.pack("!H", 2000)

    with pytest.raises(ProtocolError) as raised:
        parse_frame(header_only, 0, 1024)

    assert raised.value.code == 1009


def test_close_reason_cut_keeps_utf8_valid():
    frame = close_frame(1000, "é" * 100)

    payload = frame[2:]
    assert len(payload) <= 125
    assert payload[2:].decode() == "é" * 61


@pytest.mark.gen_test
async def test_handshake_returns_accept_key(http_port, http_server, ctx):
    sock = await connect(http_port)

    await send(sock, f"GET /ws HTTP/1.1\r\n{UPGRADE_HEADERS}\r\n".encode())
    response = await asyncio.get_running_loop().sock_recv(sock, 4096)

    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
    sock.close()


@pytest.mark.parametrize(
    ("headers", "status", "field"),
    [
        (UPGRADE_HEADERS.replace("Upgrade: websocket\r\n", ""), 426, "Upgrade"),
        (
            UPGRADE_HEADERS.replace("Connection: Upgrade", "Connection: keep-alive"),
            400,
            "Connection",
        ),
        (
            UPGRADE_HEADERS.replace("Version: 13", "Version: 8"),
            426,
            "Sec-WebSocket-Version",
        ),
        (
            UPGRADE_HEADERS.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
            400,
            "Sec-WebSocket-Key",
        ),
        (UPGRADE_HEADERS.replace("Host: 127.0.0.1\r\n", ""), 400, "Host"),
        (UPGRADE_HEADERS + "Content-Length: 5\r\n", 400, "Content-Length"),
    ],
)
@pytest.mark.gen_test
async def test_bad_upgrade_gets_json_error(
    http_port, http_server, ctx, headers, status, field
):
    sock = await connect(http_port)

    await send(sock, f"GET /ws HTTP/1.1\r\n{headers}\r\n".encode())
    response = await read_until_closed(sock)

    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    error = orjson.loads(body)["error"]
    assert error["field"] == field
    assert error["message"]
    if field == "Sec-WebSocket-Version":
        assert b"Sec-WebSocket-Version: 13" in head
    sock.close()


@pytest.mark.gen_test
async def test_oversized_head_gets_431(http_port, http_server, ctx):
    sock = await connect(http_port)

    padding = "X-Padding: " + "a" * 9000 + "\r\n"
    await send(sock, f"GET /ws HTTP/1.1\r\n{padding}{UPGRADE_HEADERS}\r\n".encode())
    response = await read_until_closed(sock)

    assert response.startswith(b"HTTP/1.1 431 "), response[:100]
    sock.close()


@pytest.mark.gen_test
async def test_head_split_in_small_pieces(http_port, http_server, ctx):
    sock = await connect(http_port)
    request = f"GET /ws HTTP/1.1\r\n{UPGRADE_HEADERS}\r\n".encode()

    for piece in (request[:2], request[2:6], request[6:30], request[30:]):
        await send(sock, piece)
        await asyncio.sleep(0.05)
    response = await asyncio.get_running_loop().sock_recv(sock, 4096)

    assert response.startswith(b"HTTP/1.1 101 "), response
    sock.close()


@pytest.mark.gen_test
async def test_head_with_bare_line_feeds(http_port, http_server, ctx):
    sock = await connect(http_port)
    request = f"GET /ws HTTP/1.1\r\n{UPGRADE_HEADERS}\r\n".replace("\r\n", "\n")

    await send(sock, request.encode())
    response = await asyncio.wait_for(
        asyncio.get_running_loop().sock_recv(sock, 4096), 3
    )

    assert response.startswith(b"HTTP/1.1 101 "), response
    sock.close()


@pytest.mark.gen_test
async def test_frame_sent_with_head_is_read(http_port, http_server, ctx, database_url):
    await insert_lives(database_url, ["early"])
    sock = await connect(http_port)
    subscribe = masked_text_frame(b'{"op": "subscribe", "topic": "live:early"}')

    # The head and the first frame in one segment, before any response.
    await send(sock, f"GET /ws HTTP/1.1\r\n{UPGRADE_HEADERS}\r\n".encode() + subscribe)
    reader = FrameReader(sock)
    loop = asyncio.get_running_loop()
    while b"\r\n\r\n" not in reader.buffer:
        reader.buffer += await asyncio.wait_for(loop.sock_recv(sock, 4096), 3)
    response, _, reader.buffer = reader.buffer.partition(b"\r\n\r\n")
    _, reply = await reader.next()

    assert response.startswith(b"HTTP/1.1 101 ")
    assert orjson.loads(reply)["op"] == "subscribed"
    sock.close()


@pytest.mark.gen_test
async def test_silent_connection_closed_after_timeout(
    http_port, http_server, ctx, monkeypatch
):
    monkeypatch.setattr("server.listener.HEAD_TIMEOUT", 0.3)
    sock = await connect(http_port)

    assert await read_until_closed(sock, wait=3.0) == b""
    sock.close()


@pytest.mark.gen_test
@pytest.mark.parametrize("pipelined", [False, True], ids=["after-101", "pipelined"])
async def test_upgrade_on_kept_alive_connection(
    http_port, http_server, ctx, database_url, pipelined
):
    await insert_lives(database_url, ["kept"])
    sock = await connect(http_port)
    loop = asyncio.get_running_loop()
    subscribe = masked_text_frame(b'{"op": "subscribe", "topic": "live:kept"}')

    await send(sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    health = b""
    while b'"status"' not in health:
        health += await asyncio.wait_for(loop.sock_recv(sock, 4096), 3)
    # A pipelined frame arrives with the request head, before the 101 response.
    upgrade = f"GET /ws HTTP/1.1\r\n{UPGRADE_HEADERS}\r\n".encode()
    await send(sock, upgrade + subscribe if pipelined else upgrade)
    response = b""
    while b"\r\n\r\n" not in response:
        response += await asyncio.wait_for(loop.sock_recv(sock, 4096), 3)
    if not pipelined:
        await send(sock, subscribe)
    reader = FrameReader(sock)
    reader.buffer = response.partition(b"\r\n\r\n")[2]
    opcode, payload = await reader.next()

    assert response.startswith(b"HTTP/1.1 101 "), response
    assert opcode == 0x1
    assert orjson.loads(payload)["op"] == "subscribed"
    assert len(ctx.sockets) == 1
    sock.close()


@pytest.mark.gen_test
async def test_unparsable_request_gets_json_400(http_port, http_server, ctx):
    sock = await connect(http_port)

    await send(
        sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Key: a\x7f\r\n\r\n"
    )
    response = await read_until_closed(sock)

    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"Content-Type: application/json" in head
    assert orjson.loads(body)["error"]["code"] == "bad_request"
    sock.close()


@pytest.mark.gen_test
async def test_post_to_ws_gets_405(http_port, http_server, ctx):
    sock = await connect(http_port)

    await send(
        sock,
        b"POST /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n",
    )
    response = await read_until_closed(sock)

    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ")
    assert orjson.loads(body)["error"]["code"] == "method_not_allowed"
    sock.close()


@pytest.mark.gen_test
async def test_fragmented_message_is_one_command(
    http_port, http_server, ctx, database_url
):
    await insert_lives(database_url, ["pieces"])
    sock = await raw_socket(http_port)
    message = b'{"op": "subscribe", "topic": "live:pieces"}'

    await send(sock, client_frame(0x1, message[:10], fin=False))
    # A ping between fragments is allowed and gets its pong at once.
    await send(sock, client_frame(0x9, b"between"))
    await send(sock, client_frame(0x0, message[10:20], fin=False))
    await send(sock, client_frame(0x0, message[20:]))
    reader = FrameReader(sock)
    pong = await reader.next()
    _, reply = await reader.next()

    assert pong == (0xA, b"between")
    assert orjson.loads(reply)["op"] == "subscribed"
    sock.close()


@pytest.mark.gen_test
async def test_client_close_is_echoed(http_port, http_server, ctx):
    sock = await raw_socket(http_port)

    await send(sock, client_frame(0x8, struct.pack("!H", 1000) + b"bye"))
    reader = FrameReader(sock)
    opcode, payload = await reader.next()
    rest = reader.buffer + await read_until_closed(sock)

    assert opcode == 0x8
    assert close_code(payload) == 1000
    assert rest == b""
    assert len(ctx.sockets) == 0
    sock.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        # Unmasked text frame.
        (bytes((0x81, 5)) + b"hello", 1002),
        # A reserved bit set with no extension negotiated.
        (bytes((0xC1, 0x80)) + b"\x00\x00\x00\x00", 1002),
        # Opcode 0x3 is reserved.
        (client_frame(0x3, b"x"), 1002),
        # A fragmented ping.
        (client_frame(0x9, b"x", fin=False), 1002),
        # A continuation with no message started.
        (client_frame(0x0, b"x"), 1002),
        # Text that is not UTF-8.
        (client_frame(0x1, b"\xff\xfe"), 1007),
        # Close codes that no endpoint may send, and a reason that is not UTF-8.
        (client_frame(0x8, struct.pack("!H", 1005)), 1002),
        (client_frame(0x8, struct.pack("!H", 2999)), 1002),
        (client_frame(0x8, struct.pack("!H", 5000)), 1002),
        (client_frame(0x8, struct.pack("!H", 1000) + b"\xff"), 1007),
    ],
)
@pytest.mark.gen_test
async def test_protocol_errors_close_socket(http_port, http_server, ctx, frame, code):
    sock = await raw_socket(http_port)

    await send(sock, frame)
    opcode, payload = await FrameReader(sock).next()

    assert opcode == 0x8
    assert close_code(payload) == code
    # The client replies with its close frame, and the server drops the connection.
    await send(sock, client_frame(0x8, payload[:2]))
    assert await read_until_closed(sock) == b""
    assert len(ctx.sockets) == 0
    sock.close()


@pytest.mark.gen_test
async def test_commands_in_one_read_run_in_order(
    http_port, http_server, ctx, database_url
):
    await insert_lives(database_url, ["first", "second"])
    sock = await raw_socket(http_port)
    topics = ["live:first", "live:second", "live:first"]

    # Three commands in one segment: the second waits while the first awaits Redis.
    await send(
        sock,
        b"".join(
            masked_text_frame(orjson.dumps({"op": "subscribe", "topic": topic}))
            for topic in topics
        ),
    )
    reader = FrameReader(sock)
    replies = [orjson.loads((await reader.next())[1]) for _ in topics]

    assert [reply["topic"] for reply in replies] == topics
    assert [reply["op"] for reply in replies] == ["subscribed", "subscribed", "error"]
    assert replies[2]["code"] == "already_subscribed"
    sock.close()


@pytest.mark.gen_test
async def test_ping_flood_closes_1008(http_port, http_server, ctx):
    sock = await raw_socket(http_port)

    # A client that floods pings and reads nothing would grow the unsent pongs.
    await send(sock, client_frame(0x9, b"p" * 125) * 200)
    reader = FrameReader(sock)
    frames = []
    while not frames or frames[-1][0] != 0x8:
        frames.append(await reader.next())

    pongs = [frame for frame in frames if frame[0] == 0xA]
    assert close_code(frames[-1][1]) == 1008
    assert len(pongs) <= 60
    assert ctx.counters["closed_flooding"] == 1
    sock.close()


@pytest.mark.gen_test
async def test_too_many_fragments_closes_1008(http_port, http_server, ctx):
    ctx.settings = replace(ctx.settings, ws_message_rate=1000.0, ws_message_burst=1000)
    sock = await raw_socket(http_port)

    # Empty continuations add nothing to the size, so only a count stops them.
    frames = [client_frame(0x1, b"{", fin=False)]
    frames += [client_frame(0x0, b"", fin=False)] * 100
    await send(sock, b"".join(frames))
    opcode, payload = await FrameReader(sock).next()

    assert opcode == 0x8
    assert close_code(payload) == 1008
    assert b"fragments" in payload
    sock.close()


@pytest.mark.gen_test(timeout=20)
async def test_socket_dropped_during_subscribe_leaves_no_subscription(
    http_port, http_server, ctx, database_url
):
    await insert_lives(database_url, ["stalled"])
    locker = await asyncpg.connect(database_url)
    transaction = locker.transaction()
    await transaction.start()
    # The subscribe's live lookup waits on this lock, as under a slow database.
    await locker.execute("LOCK TABLE lives IN ACCESS EXCLUSIVE MODE")
    sock = await raw_socket(http_port)
    await send(sock, masked_text_frame(b'{"op": "subscribe", "topic": "live:stalled"}'))
    await asyncio.sleep(0.3)

    # The heartbeat drops an unresponsive socket the same way.
    for server_socket in list(ctx.sockets):
        server_socket.abort()
    await transaction.rollback()
    await locker.close()
    await asyncio.sleep(0.3)

    assert ctx.sockets == set()
    assert ctx.broker.hub.subscriber_count("live:stalled") == 0
    sock.close()


@pytest.mark.gen_test(timeout=20)
async def test_stalled_prefixes_cost_little_cpu(http_port, http_server, ctx):
    sockets = [await connect(http_port) for _ in range(200)]
    for sock in sockets:
        # Too short to tell an upgrade from another GET, so the listener peeks again.
        await send(sock, b"GET /ws")
    await asyncio.sleep(2.0)

    cpu_before = time.process_time()
    await asyncio.sleep(1.0)
    cpu_used = time.process_time() - cpu_before

    assert cpu_used < 0.1
    for sock in sockets:
        sock.close()


@pytest.mark.gen_test(timeout=20)
async def test_silent_connections_logged_once(
    http_port, http_server, ctx, monkeypatch, caplog
):
    monkeypatch.setattr("server.listener.HEAD_TIMEOUT", 0.3)
    monkeypatch.setattr("server.listener._EXPIRED_LOG_INTERVAL", 0.5)
    caplog.set_level(logging.INFO, logger="server.listener")
    sockets = [await connect(http_port) for _ in range(20)]

    for sock in sockets:
        assert await read_until_closed(sock, wait=3.0) == b""
    await asyncio.sleep(1.0)

    lines = [
        record.getMessage()
        for record in caplog.records
        if "sending no request" in record.getMessage()
    ]
    assert len(lines) == 1
    assert ": 20, the last from 127.0.0.1" in lines[0]
    for sock in sockets:
        sock.close()


@pytest.mark.gen_test
async def test_invalid_close_frame_drops_at_once(http_port, http_server, ctx):
    sock = await raw_socket(http_port)

    await send(sock, client_frame(0x8, struct.pack("!H", 1005)))
    reader = FrameReader(sock)
    opcode, payload = await reader.next()

    assert opcode == 0x8
    assert close_code(payload) == 1002
    # The client sent its close frame already, so the server does not wait 5 s.
    assert reader.buffer + await read_until_closed(sock, wait=1.0) == b""
    sock.close()
