"""Viewers counted across processes; a dead process drops out on its own."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time

import orjson
import pytest

from tests.e2e.test_cross_process import PinnedApi, open_socket
from tests.factories import create_live, login_manager

pytestmark = pytest.mark.e2e


async def _next_viewers(
    connection, wanted: int, limit: float
) -> list[tuple[float, int]]:
    """Read viewer events until the count is ``wanted``; return (time, count) pairs."""
    seen = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        raw = await asyncio.wait_for(
            connection.read_message(), deadline - time.monotonic()
        )
        assert raw is not None, "watcher closed"
        message = orjson.loads(raw)
        if message.get("type") == "viewers.changed":
            seen.append((time.monotonic(), message["data"]["viewers"]))
            if message["data"]["viewers"] == wanted:
                return seen
    raise AssertionError(f"viewers never reached {wanted}: {seen}")


@pytest.mark.gen_test(timeout=90)
async def test_viewers_summed_and_dead_process_drops(topology, database_url):
    manager = PinnedApi(topology, 1)
    await login_manager(manager, database_url)
    await create_live(manager)
    subscribe = orjson.dumps({"op": "subscribe", "topic": "live:summer-24"}).decode()

    on_first = [await open_socket(topology, 1) for _ in range(3)]
    on_second = [await open_socket(topology, 2) for _ in range(2)]
    for connection in on_first + on_second:
        await connection.write_message(subscribe)
        await connection.read_message()
    watcher = on_first[0]

    rising = await _next_viewers(watcher, 5, 15)
    state = await manager.get("/api/v1/lives/summer-24")
    assert state.json["viewers"] == {"now": 5, "peak": 5}

    os.kill(topology.pid(2), signal.SIGKILL)
    falling = await _next_viewers(watcher, 3, 20)

    events = rising + falling
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(events)]
    # Counts are pushed at most once a second, not once per join or leave.
    assert all(gap > 0.8 for gap in gaps), gaps
    assert len(rising) <= 5
    # A killed process drops out once its report expires (5 s), not instantly.
    assert falling[-1][0] - falling[0][0] < 10
    for connection in on_first:
        connection.close()
