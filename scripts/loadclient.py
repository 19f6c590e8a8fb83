#!/usr/bin/env python3
"""Hold many WebSocket subscribers to one Vitrine topic from a single process.

A lean load client for ``scripts/bench``: one ``asyncio.Protocol`` per socket on
uvloop, a hand-written RFC 6455 client (upgrade, masked client frames, unmasked
server frames, ping and close) and only as much JSON parsing as the benchmark needs.
It records the receive time of every ``stock.changed`` event by its stock value,
so the benchmark can map each one to the publish time of the PATCH that set it.

The process talks to its parent over JSON lines. It writes ``progress`` and
``connected`` messages to stdout, and replies on stdout to the ``reset``, ``count``,
``report`` and ``exit`` commands it reads from stdin. It exits on ``exit``, when
stdin closes or after ``--max-lifetime`` seconds, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import ipaddress
import logging
import os
import random
import resource
import socket
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import uvloop

log = logging.getLogger("loadclient")

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OPCODE_CONTINUATION = 0x0
OPCODE_TEXT = 0x1
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA
# Linux socket option: bind() picks no port, so connect() may reuse a local port
# for another destination (linux/in.h).
IP_BIND_ADDRESS_NO_PORT = 24
# Open files the process needs besides its sockets: stdio, the event loop's epoll
# and self-pipe, imported modules.
RESERVED_FILES = 64
# Latency histogram bucket width, seconds.
BUCKET_SECONDS = 0.0001
PROGRESS_INTERVAL = 1.0


@dataclass(frozen=True)
class Target:
    """A WebSocket endpoint. ``cookie`` pins the socket to one process via HAProxy."""

    host: str
    port: int
    cookie: str | None


@dataclass
class Recorder:
    """Event counts and receive times of every socket in this process."""

    received: int = 0
    missing: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    resets: int = 0
    pings: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    # Receive times (time.time()) of stock.changed events, by stock value.
    receipts: dict[int, list[float]] = field(default_factory=dict)
    # Latencies from each event's published_ms, in BUCKET_SECONDS buckets.
    publish_histogram: Counter[int] = field(default_factory=Counter)
    max_publish_latency: float = 0.0

    def clear(self) -> None:
        self.received = self.missing = self.duplicates = self.out_of_order = 0
        self.resets = self.pings = 0
        self.errors.clear()
        self.receipts = {}
        self.publish_histogram.clear()
        self.max_publish_latency = 0.0

    def record_stock(
        self, stock: int, received_at: float, published_ms: int | None
    ) -> None:
        if published_ms is not None:
            latency = received_at - published_ms / 1000
            self.max_publish_latency = max(self.max_publish_latency, latency)
            self.publish_histogram[int(latency / BUCKET_SECONDS)] += 1
        times = self.receipts.get(stock)
        if times is None:
            self.receipts[stock] = [received_at]
        else:
            times.append(received_at)


@dataclass
class Totals:
    """Connection outcomes of this process since it started."""

    opened: int = 0
    failed: int = 0
    closed: int = 0
    subscribe_retries: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    close_codes: Counter[int] = field(default_factory=Counter)


def mask_frame(opcode: int, payload: bytes) -> bytes:
    """Build one masked, final client frame (RFC 6455 section 5.3)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    repeated = (mask * (length // 4 + 1))[:length]
    masked = (
        int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    ).to_bytes(length, "big")
    return header + mask + masked


def upgrade_request(target: Target, key: str) -> bytes:
    lines = [
        "GET /ws HTTP/1.1",
        f"Host: {target.host}:{target.port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if target.cookie:
        lines.append(f"Cookie: VITRINE_SRV={target.cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def expected_accept(key: str) -> bytes:
    digest = hashlib.sha1(key.encode() + WEBSOCKET_GUID).digest()
    return base64.b64encode(digest)


class Subscriber(asyncio.Protocol):
    """One WebSocket that subscribes to a topic and records what arrives."""

    def __init__(
        self, target: Target, topic: str, client: LoadClient, retries: int
    ) -> None:
        self.target = target
        self.retries_left = retries
        self.client = client
        self.recorder = client.recorder
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.subscribe_frame = mask_frame(
            OPCODE_TEXT, orjson.dumps({"op": "subscribe", "topic": topic})
        )
        self.transport: asyncio.Transport | None = None
        self.upgraded = False
        self.buffer = b""
        self.fragments: list[bytes] = []
        # Offset of the last event seen, first set by the "subscribed" reply.
        self.last_offset: int | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(upgrade_request(self.target, self.key))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.ready.done():
            reason = f"connection lost: {exc!r}" if exc else "connection closed"
            self.ready.set_exception(ConnectionError(reason))
        else:
            self.client.socket_closed(self)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        if not self.upgraded:
            data = self._read_upgrade(data)
            if not data:
                return
        self.buffer = self._read_frames(data, now)

    def _read_upgrade(self, data: bytes) -> bytes:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self.buffer = data
            return b""
        head = data[:end]
        if not head.startswith(b"HTTP/1.1 101"):
            status = head.split(b"\r\n", 1)[0].decode(errors="replace")
            self._fail(f"upgrade rejected: {status}")
            return b""
        if expected_accept(self.key) not in head:
            self._fail("upgrade reply has a wrong Sec-WebSocket-Accept")
            return b""
        self.upgraded = True
        assert self.transport is not None
        self.transport.write(self.subscribe_frame)
        return data[end + 4 :]

    def _read_frames(self, data: bytes, now: float) -> bytes:
        """Handle every complete frame in ``data`` and return the incomplete rest."""
        position = 0
        size = len(data)
        while size - position >= 2:
            first = data[position]
            length = data[position + 1]
            if length & 0x80:
                self._fail("server sent a masked frame")
                return b""
            header = 2
            if length == 126:
                if size - position < 4:
                    break
                length = int.from_bytes(data[position + 2 : position + 4], "big")
                header = 4
            elif length == 127:
                if size - position < 10:
                    break
                length = int.from_bytes(data[position + 2 : position + 10], "big")
                header = 10
            end = position + header + length
            if end > size:
                break
            self._handle_frame(first, data[position + header : end], now)
            position = end
        return data[position:]

    def _handle_frame(self, first: int, payload: bytes, now: float) -> None:
        opcode = first & 0x0F
        final = first & 0x80
        if opcode == OPCODE_TEXT and final:
            self._handle_message(payload, now)
        elif opcode == OPCODE_PING:
            self.recorder.pings += 1
            if self.transport is not None:
                self.transport.write(mask_frame(OPCODE_PONG, payload))
        elif opcode == OPCODE_CLOSE:
            self._handle_close(payload)
        elif opcode in (OPCODE_TEXT, OPCODE_CONTINUATION):
            self.fragments.append(payload)
            if final:
                message = b"".join(self.fragments)
                self.fragments = []
                self._handle_message(message, now)

    def _handle_message(self, payload: bytes, now: float) -> None:
        message: dict[str, Any] = orjson.loads(payload)
        offset = message.get("offset")
        if "op" in message:
            self._handle_control(message)
            return
        recorder = self.recorder
        recorder.received += 1
        last = self.last_offset
        if last is not None and isinstance(offset, int):
            if offset == last + 1:
                pass
            elif offset > last + 1:
                recorder.missing += offset - last - 1
            elif offset == last:
                recorder.duplicates += 1
            else:
                recorder.out_of_order += 1
        if isinstance(offset, int) and (last is None or offset > last):
            self.last_offset = offset
        if message.get("type") == "stock.changed":
            recorder.record_stock(
                message["data"]["stock"], now, message.get("published_ms")
            )

    def _handle_control(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "subscribed":
            self.last_offset = message.get("offset")
            if not self.ready.done():
                self.ready.set_result(None)
        elif op == "reset":
            self.recorder.resets += 1
            self.last_offset = message.get("offset")
        elif op == "error":
            code = str(message.get("code"))
            self.recorder.errors[code] += 1
            if self.ready.done():
                return
            if code == "unavailable" and self.retries_left > 0:
                # The error requests a retry in a few seconds, as a browser would do.
                self.retries_left -= 1
                self.client.totals.subscribe_retries += 1
                delay = random.uniform(1.0, 3.0)
                asyncio.get_running_loop().call_later(delay, self._resubscribe)
            else:
                self._fail(f"subscribe failed: {code}: {message.get('message')}")

    def _resubscribe(self) -> None:
        if self.transport is not None and not self.ready.done():
            self.transport.write(self.subscribe_frame)

    def _handle_close(self, payload: bytes) -> None:
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        self.client.totals.close_codes[code] += 1
        if not self.ready.done():
            reason = payload[2:].decode(errors="replace")
            self.ready.set_exception(
                ConnectionError(f"closed by the server with {code}: {reason}")
            )
        if self.transport is not None:
            self.transport.write(mask_frame(OPCODE_CLOSE, payload[:2]))
            self.transport.close()

    def _fail(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.abort()

    def abort(self) -> None:
        """Close with a TCP reset, so neither side keeps the port in TIME_WAIT."""
        transport = self.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        transport.abort()


class LoadClient:
    """Open the sockets at a bounded rate, then serve the parent's commands."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.targets: list[Target] = [parse_target(text) for text in args.target]
        self.sources: list[str] = list(args.source_address or [])
        if args.source_range:
            first, count = args.source_range
            self.sources += loopback_addresses(first, int(count))
        self.recorder = Recorder()
        self.totals = Totals()
        self.sockets: set[Subscriber] = set()
        self.started = time.monotonic()
        self.connect_seconds = 0.0

    def socket_closed(self, subscriber: Subscriber) -> None:
        if subscriber in self.sockets:
            self.sockets.discard(subscriber)
            self.totals.closed += 1

    async def open_all(self) -> None:
        args = self.args
        limit = asyncio.Semaphore(args.max_pending)
        tasks: list[asyncio.Task[None]] = []
        start = time.monotonic()
        progress = asyncio.create_task(self._report_progress())
        for index in range(args.sockets):
            delay = start + index / args.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await limit.acquire()
            global_index = args.first_index + index
            tasks.append(asyncio.create_task(self._open_one(global_index, limit)))
        await asyncio.gather(*tasks)
        self.connect_seconds = time.monotonic() - start
        progress.cancel()
        write_message({"type": "connected", **self.connection_state()})

    async def _open_one(self, global_index: int, limit: asyncio.Semaphore) -> None:
        target = self.targets[global_index % len(self.targets)]
        try:
            subscriber = await asyncio.wait_for(
                self._connect(target, global_index), self.args.connect_timeout
            )
        except (TimeoutError, OSError) as exc:
            self.totals.failed += 1
            reason = type(exc).__name__ if not str(exc) else str(exc)
            self.totals.failures[reason[:120]] += 1
        else:
            self.sockets.add(subscriber)
            self.totals.opened += 1
        finally:
            limit.release()

    async def _connect(self, target: Target, global_index: int) -> Subscriber:
        loop = asyncio.get_running_loop()
        subscriber = Subscriber(
            target, self.args.topic, self, self.args.subscribe_retries
        )
        sock = self._new_socket(global_index)
        try:
            await loop.sock_connect(sock, (target.host, target.port))
            await loop.create_connection(lambda: subscriber, sock=sock)
        except BaseException:
            sock.close()
            raise
        try:
            await subscriber.ready
        except BaseException:
            subscriber.abort()
            raise
        return subscriber

    def _new_socket(self, global_index: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if self.sources:
            source = self.sources[
                (global_index // len(self.targets)) % len(self.sources)
            ]
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
        return sock

    async def _report_progress(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            write_message({"type": "progress", **self.connection_state()})

    def connection_state(self) -> dict[str, Any]:
        totals = self.totals
        return {
            "opened": totals.opened,
            "failed": totals.failed,
            "open": len(self.sockets),
            "closed": totals.closed,
            "subscribe_retries": totals.subscribe_retries,
            "connect_seconds": round(self.connect_seconds, 3),
            "failures": dict(totals.failures.most_common(5)),
        }

    def report(self, command: dict[str, Any]) -> dict[str, Any]:
        """Summarise what arrived since the last reset against the publish times."""
        publish_times = {int(k): v for k, v in command["publish_times"].items()}
        final_offset = command.get("final_offset")
        histogram: Counter[int] = Counter()
        unmatched = 0
        max_latency = 0.0
        for stock, times in self.recorder.receipts.items():
            published = publish_times.get(stock)
            if published is None:
                unmatched += len(times)
                continue
            for received in times:
                latency = received - published
                max_latency = max(max_latency, latency)
                histogram[int(latency / BUCKET_SECONDS)] += 1

        tail_missing = 0
        if isinstance(final_offset, int):
            for subscriber in self.sockets:
                last = subscriber.last_offset
                if last is not None and last < final_offset:
                    tail_missing += final_offset - last

        recorder = self.recorder
        cpu = os.times()
        return {
            "type": "report",
            **self.connection_state(),
            "received": recorder.received,
            "missing": recorder.missing,
            "tail_missing": tail_missing,
            "duplicates": recorder.duplicates,
            "out_of_order": recorder.out_of_order,
            "resets": recorder.resets,
            "pings": recorder.pings,
            "errors": dict(recorder.errors),
            "close_codes": {str(k): v for k, v in self.totals.close_codes.items()},
            "unmatched": unmatched,
            "max_latency": max_latency,
            "histogram": {str(k): v for k, v in histogram.items()},
            "publish_histogram": {
                str(k): v for k, v in recorder.publish_histogram.items()
            },
            "max_publish_latency": recorder.max_publish_latency,
            "bucket_seconds": BUCKET_SECONDS,
            "cpu_seconds": cpu.user + cpu.system,
        }

    def count_stock(self, command: dict[str, Any]) -> dict[str, Any]:
        """Count receipts of the given stock values, so the parent can wait for all."""
        stocks = [int(stock) for stock in command["stocks"]]
        receipts = self.recorder.receipts
        count = sum(len(receipts.get(stock, ())) for stock in stocks)
        return {"type": "count", "count": count, "open": len(self.sockets)}

    def close_all(self) -> None:
        for subscriber in list(self.sockets):
            subscriber.abort()
        self.sockets.clear()


def loopback_addresses(first: str, count: int) -> list[str]:
    """Return ``count`` consecutive loopback addresses from ``first`` on, skipping
    addresses that end in .0 or .255."""
    addresses: list[str] = []
    current = ipaddress.IPv4Address(first)
    while len(addresses) < count:
        if not current.is_loopback:
            raise ValueError(f"{count} addresses from {first} run past 127.255.255.254")
        if str(current).split(".")[-1] not in ("0", "255"):
            addresses.append(str(current))
        current += 1
    return addresses


def parse_target(text: str) -> Target:
    """Parse ``HOST:PORT`` or ``HOST:PORT:COOKIE``."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise ValueError(f"invalid target {text!r}: expected HOST:PORT[:COOKIE]")
    cookie = parts[2] if len(parts) == 3 else None
    return Target(parts[0], int(parts[1]), cookie)


def write_message(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.buffer.flush()


def raise_file_limit(sockets: int) -> None:
    """Raise the soft open-file limit to the hard one; fail if it cannot fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = sockets + RESERVED_FILES
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise SystemExit(
            f"loadclient: {sockets} sockets need about {needed} open files but the "
            f"hard limit (ulimit -Hn) is {hard}; use fewer sockets per client process"
        )
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve_commands(client: LoadClient) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    while True:
        line = await reader.readline()
        if not line:
            log.info("stdin closed; exiting")
            return
        command = orjson.loads(line)
        name = command.get("cmd")
        if name == "reset":
            client.recorder.clear()
            write_message({"type": "reset", **client.connection_state()})
        elif name == "report":
            write_message(client.report(command))
        elif name == "count":
            write_message(client.count_stock(command))
        elif name == "exit":
            return
        else:
            log.error("unknown command %r; expected reset, report, count or exit", name)


async def run(args: argparse.Namespace) -> None:
    client = LoadClient(args)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def expire() -> None:
        if not done.done():
            done.set_result(None)

    loop.call_later(args.max_lifetime, expire)
    opener = asyncio.create_task(client.open_all())
    commands = asyncio.create_task(serve_commands(client))
    await asyncio.wait([commands, done], return_when=asyncio.FIRST_COMPLETED)
    if done.done():
        log.warning("max lifetime of %.0f s reached; exiting", args.max_lifetime)
    opener.cancel()
    commands.cancel()
    client.close_all()
    await asyncio.sleep(0.1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--target",
        action="append",
        required=True,
        help="HOST:PORT[:COOKIE] of a WebSocket endpoint; repeat to spread sockets",
    )
    parser.add_argument("--sockets", type=int, required=True, help="sockets to open")
    parser.add_argument(
        "--first-index",
        type=int,
        default=0,
        help="global index of this process's first socket, for an even spread",
    )
    parser.add_argument("--topic", default="live:bench", help="topic to subscribe to")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="connections started per second"
    )
    parser.add_argument(
        "--max-pending",
        type=int,
        default=256,
        help="connections that may be in the handshake at once",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=20.0,
        help="seconds until a socket must be subscribed",
    )
    parser.add_argument(
        "--subscribe-retries",
        type=int,
        default=3,
        help="times a socket resends its subscribe after an 'unavailable' error",
    )
    parser.add_argument(
        "--source-address",
        action="append",
        help="loopback address to connect from; repeat to spread over several",
    )
    parser.add_argument(
        "--source-range",
        nargs=2,
        metavar=("FIRST", "COUNT"),
        help="connect from COUNT consecutive loopback addresses starting at FIRST",
    )
    parser.add_argument(
        "--max-lifetime",
        type=float,
        default=600.0,
        help="seconds after which the process closes its sockets and exits",
    )
    return parser.parse_args(argv)


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s loadclient[{os.getpid()}] %(levelname)s %(message)s",
    )
    args = parse_args()
    if args.sockets < 0 or args.rate <= 0 or args.max_pending < 1:
        raise SystemExit("loadclient: --sockets >= 0, --rate > 0, --max-pending >= 1")
    raise_file_limit(args.sockets)
    uvloop.run(run(args))


if __name__ == "__main__":
    main()
