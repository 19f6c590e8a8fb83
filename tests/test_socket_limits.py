"""Limits that protect a process: sizes, rates, caps, liveness and slow readers."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import sys
import time
from dataclasses import replace
from typing import Any

import orjson
import pytest
import tornado.httpclient

from realtime.heartbeat import Heartbeat
from realtime.limits import AddressLimiter
from tests.factories import insert_lives
from tests.wsclient import Socket, masked_text_frame, raw_socket


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "ws_ping_interval": 1.0,
        "ws_ping_timeout": 0.5,
        "ws_message_rate": 5.0,
        "ws_message_burst": 10,
        "max_sockets": 5,
    }


@pytest.mark.gen_test
async def test_oversized_message_closes_1009(base_url, http_server, ctx):
    socket_ = await Socket.open(base_url)

    await socket_.connection.write_message("x" * (64 * 1024 + 1))

    assert await socket_.wait_closed() == 1009


@pytest.mark.gen_test
async def test_message_flood_closes_1008(base_url, http_server, ctx):
    socket_ = await Socket.open(base_url)

    for index in range(30):
        await socket_.send({"op": "unsubscribe", "topic": f"live:t{index}"})

    assert await socket_.wait_closed() == 1008
    assert ctx.counters["closed_flooding"] == 1


@pytest.mark.gen_test
async def test_topic_limit_per_socket(base_url, http_server, ctx, database_url):
    await insert_lives(database_url, [f"topic-{index}" for index in range(129)])
    ctx.settings = replace(ctx.settings, ws_message_rate=1000.0, ws_message_burst=1000)
    socket_ = await Socket.open(base_url)

    for index in range(128):
        reply = await socket_.subscribe(f"live:topic-{index}")
        assert reply["op"] == "subscribed", reply
    over = await socket_.subscribe("live:topic-128")

    assert over["op"] == "error"
    assert over["code"] == "too_many_topics"
    socket_.close()


@pytest.mark.gen_test
async def test_socket_cap_closes_1013(base_url, http_server, ctx):
    sockets = [await Socket.open(base_url) for _ in range(5)]

    extra = await Socket.open(base_url)

    assert await extra.wait_closed() == 1013
    assert ctx.counters["rejected_cap"] == 1
    for socket_ in sockets:
        socket_.close()


@pytest.mark.gen_test(timeout=15)
async def test_silent_peer_is_dropped(http_port, http_server, ctx):
    quiet = await raw_socket(http_port)
    loop = asyncio.get_running_loop()

    # The socket never replies to pings: it is dropped after one interval and timeout.
    received = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(quiet, 4096), 0.5)
        except TimeoutError:
            continue
        if not chunk:
            break
        received += chunk

    assert received.startswith(b"\x89\x00"), received
    assert ctx.counters["ping_timeouts"] == 1
    assert len(ctx.sockets) == 0
    quiet.close()


@pytest.mark.gen_test(timeout=15)
async def test_answering_peer_is_kept(base_url, http_server, ctx, database_url):
    await insert_lives(database_url, ["still-here"])
    # Tornado's client replies to pings, so it outlives several ping intervals.
    socket_ = await Socket.open(base_url)

    await asyncio.sleep(3)

    assert len(ctx.sockets) == 1
    assert ctx.counters["ping_timeouts"] == 0
    reply = await socket_.subscribe("live:still-here")
    assert reply["op"] == "subscribed"
    socket_.close()


class FakeSocket:
    def __init__(self) -> None:
        self.ping_sent_at = 0.0
        self.pong_received_at = 0.0
        self.pings = 0
        self.aborted = False

    def send_ping(self) -> None:
        self.pings += 1

    def ping_timed_out(self) -> None:
        self.aborted = True


def test_heartbeat_spreads_pings_over_interval():
    sockets = [FakeSocket() for _ in range(100)]
    heartbeat = Heartbeat(sockets, interval=10.0, timeout=4.0)

    now = 0.0
    for _ in range(20):
        heartbeat.tick(now)
        for fake in sockets:
            if fake.ping_sent_at == now:
                fake.pong_received_at = now + 0.1
        now += 0.5

    assert all(fake.pings == 1 for fake in sockets)
    assert not any(fake.aborted for fake in sockets)


def test_heartbeat_aborts_late_pong():
    answering, silent = FakeSocket(), FakeSocket()
    heartbeat = Heartbeat([answering, silent], interval=1.0, timeout=0.5)

    # One socket is pinged per tick: answering at 0.0, silent at 0.5.
    heartbeat.tick(0.0)
    answering.pong_received_at = 0.2
    heartbeat.tick(0.5)
    heartbeat.tick(1.0)

    assert silent.aborted
    assert not answering.aborted


@pytest.mark.parametrize("count", [1, 3])
def test_heartbeat_few_sockets_pinged_once_per_interval(count):
    sockets = [FakeSocket() for _ in range(count)]
    heartbeat = Heartbeat(sockets, interval=10.0, timeout=4.0)

    now = 0.0
    while now < 29.9:
        heartbeat.tick(now)
        now += 0.5

    # Rounds start at 0, 10 and 20 s; no socket ever sent a pong.
    assert [fake.pings for fake in sockets] == [3] * count
    assert all(fake.aborted for fake in sockets)


@pytest.mark.gen_test(timeout=60)
async def test_stalled_reader_closed_others_unaffected(
    base_url, http_port, http_server, ctx, database_url
):
    await insert_lives(database_url, ["flood"])
    topic = "live:flood"
    stalled = await raw_socket(http_port, receive_buffer=4096)
    subscribe = orjson.dumps({"op": "subscribe", "topic": topic})
    await asyncio.get_running_loop().sock_sendall(stalled, masked_text_frame(subscribe))
    reader = await Socket.open(base_url)
    await reader.subscribe(topic)
    # Let the stalled socket's subscription land before the flood.
    await asyncio.sleep(0.3)

    payload = {"blob": "x" * 60_000}
    latencies = []
    for index in range(200):
        sent = time.monotonic()
        await ctx.broker.publish(topic, "test.flood", {**payload, "index": index})
        event = await reader.receive()
        latencies.append(time.monotonic() - sent)
        assert event["data"]["index"] == index

    assert ctx.counters["closed_slow"] == 1
    latencies.sort()
    # The reader keeps up whatever the stalled socket does: no event waits on it.
    assert latencies[int(len(latencies) * 0.99)] < 0.25, latencies[-5:]
    stalled.setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
    )
    stalled.close()
    reader.close()


@pytest.mark.gen_test
async def test_connect_rate_per_address_is_429(base_url, http_server, ctx):
    ctx.connect_limiter = AddressLimiter(rate=0.5, burst=2)
    allowed = [await Socket.open(base_url) for _ in range(2)]

    with pytest.raises(tornado.httpclient.HTTPClientError) as raised:
        await Socket.open(base_url)

    assert raised.value.code == 429
    assert raised.value.response is not None
    assert raised.value.response.headers["Retry-After"] == "2"
    assert ctx.counters["rejected_rate"] == 1
    for socket_ in allowed:
        socket_.close()


@pytest.mark.gen_test
async def test_connect_rate_counts_trusted_address(base_url, http_server, ctx):
    ctx.connect_limiter = AddressLimiter(rate=0.5, burst=2)
    addresses = ["203.0.113.1", "203.0.113.1", "203.0.113.2"]

    # The test client connects from 127.0.0.1, a trusted proxy by default.
    trusted = [
        await Socket.open(base_url, headers={"X-Real-Ip": address})
        for address in addresses
    ]
    with pytest.raises(tornado.httpclient.HTTPClientError) as same_address:
        await Socket.open(base_url, headers={"X-Real-Ip": "203.0.113.1"})

    # With no trusted proxy, every socket counts against 127.0.0.1.
    ctx.trusted_proxies = ()
    forged = [
        await Socket.open(base_url, headers={"X-Real-Ip": f"198.51.100.{index}"})
        for index in range(2)
    ]
    with pytest.raises(tornado.httpclient.HTTPClientError) as forged_over:
        await Socket.open(base_url, headers={"X-Real-Ip": "198.51.100.9"})

    assert same_address.value.code == 429
    assert forged_over.value.code == 429
    assert ctx.counters["rejected_rate"] == 2
    for socket_ in trusted + forged:
        socket_.close()


@pytest.mark.gen_test(timeout=30)
async def test_accept_pauses_when_descriptors_run_out(
    base_url, http_port, http_server, ctx, caplog
):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    # A child process keeps the client ends, so only the server's accepts need
    # descriptors in this process, and just 5 of them are left.
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLD_CONNECTIONS,
        str(http_port),
        "40",
        stdout=asyncio.subprocess.PIPE,
    )
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 5, hard))
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 10) == b"open\n"
        cpu_before = time.process_time()
        await asyncio.sleep(1.0)
        cpu_used = time.process_time() - cpu_before
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    holder.kill()
    await holder.wait()

    # Out of descriptors, the listener waits instead of retrying accept() at once.
    assert cpu_used < 0.5
    assert "out of file descriptors" in caplog.text
    # With descriptors back, the listener accepts again.
    socket_ = await Socket.open(base_url)
    reply = await socket_.subscribe("live:x")
    assert reply["code"] == "unknown_topic"
    socket_.close()


# Opens N connections to 127.0.0.1:PORT, prints "open" and keeps them until killed.
HOLD_CONNECTIONS = """
import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
print("open", flush=True)
time.sleep(60)
"""
