"""Migrations apply once, even when several processes run them at once."""

from __future__ import annotations

import asyncpg
import pytest

from store.migrate import migrate, migration_files
from tests.conftest import MAINTENANCE_URL, _database_url, run_isolated


@pytest.fixture
def empty_database() -> str:
    name = "vitrine_test_migrate"

    async def recreate() -> None:
        admin = await asyncpg.connect(MAINTENANCE_URL)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.execute(f"CREATE DATABASE {name}")
        finally:
            await admin.close()

    run_isolated(recreate())
    return _database_url(name)


def test_concurrent_migrations_apply_once(empty_database):
    async def run_many() -> list[list[str]]:
        import asyncio

        connections = [await asyncpg.connect(empty_database) for _ in range(4)]
        try:
            return await asyncio.gather(*(migrate(c) for c in connections))
        finally:
            for connection in connections:
                await connection.close()

    results = run_isolated(run_many())

    applied = [name for result in results for name in result]
    assert sorted(applied) == sorted(path.name for path in migration_files())

    async def count() -> int:
        connection = await asyncpg.connect(empty_database)
        try:
            return await connection.fetchval("SELECT count(*) FROM schema_migrations")
        finally:
            await connection.close()

    assert run_isolated(count()) == len(migration_files())
