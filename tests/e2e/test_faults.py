"""Faults against the real supervisord and HAProxy: a killed process, a Redis
restart, a PostgreSQL outage."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import orjson
import pytest

from tests.e2e.resuming import ResumingClient
from tests.e2e.test_cross_process import PinnedApi
from tests.e2e.topology import Topology, http_get
from tests.factories import create_live, create_product, login_manager

pytestmark = pytest.mark.e2e

PRODUCTS = "/api/v1/manager/lives/summer-24/products"
REDIS_PORT = os.environ.get("VITRINE_TEST_REDIS_PORT", "")
REDIS_CONF = os.environ.get("VITRINE_TEST_REDIS_CONF", "")
PG_BIN = os.environ.get("VITRINE_TEST_PG_BIN", "")
PG_DATA = os.environ.get("VITRINE_TEST_PG_DATA", "")
PG_USER = os.environ.get("VITRINE_TEST_PG_USER", "")


async def _live_with_clients(topology: Topology, database_url: str):
    manager = PinnedApi(topology, 2)
    await login_manager(manager, database_url)
    await create_live(manager)
    product = await create_product(manager, stock=1000)
    clients = [ResumingClient(topology, index, "live:summer-24") for index in (1, 2)]
    for client in clients:
        client.start()
    for client in clients:
        await asyncio.wait_for(client.subscribed.wait(), 10)
    return manager, product, clients


async def _wait_for(condition, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.mark.gen_test(timeout=120)
async def test_kill_9_clients_resume_every_event(topology, database_url):
    manager, product, clients = await _live_with_clients(topology, database_url)
    victim = topology.pid(1)

    for stock in range(30):
        if stock == 10:
            os.kill(victim, signal.SIGKILL)
        response = await manager.patch(f"{PRODUCTS}/{product['id']}", {"stock": stock})
        assert response.status == 200, response
        await asyncio.sleep(0.1)

    for client in clients:
        await _wait_for(lambda c=client: len(c.stock_values()) >= 30, 30, "events")
    await asyncio.sleep(0.5)
    for client in clients:
        await client.stop()
        assert client.stock_values() == list(range(30))
        offsets = [event["offset"] for event in client.events]
        assert offsets == sorted(set(offsets))
        assert client.resets == 0
    assert clients[0].reconnects >= 1
    # supervisord brings the killed process back.
    topology.wait_backends_up(30)
    assert topology.pid(1) != victim


def _redis(*args: str) -> None:
    subprocess.run(["redis-cli", "-p", REDIS_PORT, *args], check=False, timeout=10)


@pytest.mark.skipif(not REDIS_CONF, reason="needs the private Redis of scripts/test")
@pytest.mark.gen_test(timeout=120)
async def test_redis_restart_events_reach_everyone(topology, database_url):
    manager, product, clients = await _live_with_clients(topology, database_url)

    _redis("shutdown", "nosave")
    await asyncio.sleep(1.0)
    subprocess.run(["redis-server", REDIS_CONF], check=True, timeout=10)
    await _wait_for(
        lambda: (
            subprocess.run(
                ["redis-cli", "-p", REDIS_PORT, "ping"],
                capture_output=True,
                check=False,
            ).stdout.strip()
            == b"PONG"
        ),
        10,
        "Redis",
    )
    topology.wait_ready(30)
    await asyncio.sleep(1.0)

    for stock in range(100, 105):
        response = await manager.patch(f"{PRODUCTS}/{product['id']}", {"stock": stock})
        assert response.status == 200, response

    for client in clients:
        await _wait_for(
            lambda c=client: c.stock_values()[-5:] == list(range(100, 105)),
            20,
            "events after the restart",
        )
        await client.stop()


def _pg_ctl(*args: str) -> None:
    command = [f"{PG_BIN}/pg_ctl", "-D", PG_DATA, *args]
    if PG_USER:
        command = ["runuser", "-u", PG_USER, "--", *command]
    subprocess.run(command, check=True, timeout=60, cwd="/", capture_output=True)


@pytest.mark.skipif(not PG_DATA, reason="needs the private PostgreSQL of scripts/test")
@pytest.mark.gen_test(timeout=120)
async def test_postgres_outage_503_then_recovery(topology, database_url):
    manager = PinnedApi(topology, 1)
    await login_manager(manager, database_url)
    await create_live(manager)
    pids = [topology.pid(1), topology.pid(2)]
    direct = topology.process_url(1) + "/api/v1/lives/summer-24"

    _pg_ctl("stop", "-m", "fast", "-w")
    try:
        status, body = http_get(direct, timeout=15)
        through_haproxy = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            through_haproxy = http_get(topology.base_url + "/api/v1/lives/summer-24")
            if through_haproxy[0] == 503:
                break
            await asyncio.sleep(0.5)
    finally:
        _pg_ctl("start", "-w", "-l", f"{PG_DATA}/postgresql.log")

    assert status == 503, body
    assert orjson.loads(body)["error"]["code"] == "unavailable"
    assert through_haproxy is not None
    assert through_haproxy[0] == 503
    assert orjson.loads(through_haproxy[1])["error"]["code"] == "unavailable"

    deadline = time.monotonic() + 30
    recovered = 0
    while time.monotonic() < deadline:
        recovered, _ = http_get(direct)
        if recovered == 200:
            break
        await asyncio.sleep(0.5)
    assert recovered == 200
    assert [topology.pid(1), topology.pid(2)] == pids
