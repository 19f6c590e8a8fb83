from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL
from tests.e2e.topology import Topology, start_topology


@pytest.fixture
def topology(database_url: str, clean_data: None) -> Iterator[Topology]:
    """Two Vitrine processes and HAProxy under a real supervisord."""
    with tempfile.TemporaryDirectory(prefix="vitrine-e2e-") as directory:
        env = {
            "VITRINE_DATABASE_URL": database_url,
            "VITRINE_REDIS_URL": REDIS_URL,
            "VITRINE_JWT_SECRET": "e2e-secret-" + "z" * 32,
            "VITRINE_SHUTDOWN_TIMEOUT": "10",
            "VITRINE_DB_POOL_MIN": "1",
        }
        running = start_topology(Path(directory), env)
        try:
            yield running
        finally:
            running.stop()
