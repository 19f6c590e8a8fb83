"""Apply the SQL files in store/migrations in name order, each once."""

from __future__ import annotations

import logging
from pathlib import Path

from store.pool import Connection

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Any constant shared by every process that migrates; pg_advisory_xact_lock keys are
# global to the database.
_ADVISORY_LOCK_KEY = 0x56495452494E45


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("*.sql"))


async def migrate(connection: Connection) -> list[str]:
    """Apply pending migrations and return their names.

    Several processes may run this at once: the transaction-scoped advisory lock makes
    the others wait, then find nothing left to apply.
    """
    applied_now: list[str] = []

    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _ADVISORY_LOCK_KEY)
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                name text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        rows = await connection.fetch("SELECT name FROM schema_migrations")
        already_applied = {row["name"] for row in rows}

        for path in migration_files():
            if path.name in already_applied:
                continue
            log.info("applying migration %s", path.name)
            await connection.execute(path.read_text())
            await connection.execute(
                "INSERT INTO schema_migrations (name) VALUES ($1)", path.name
            )
            applied_now.append(path.name)

    return applied_now
