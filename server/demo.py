"""A demo live with a wholesale catalog, for trying Vitrine out."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from server.settings import Settings
from store import managers
from store.pool import Connection, init_connection

log = logging.getLogger(__name__)

# (sku, name, description, price in cents, tiers, min quantity, step, max, stock)
CATALOG: list[
    tuple[str, str, str, int, list[tuple[int, int]], int, int, int | None, int]
] = [
    (
        "TSH-BAS-01",
        "Basic cotton T-shirt",
        "Combed cotton 30.1, sizes S-XL, 6 colours.",
        2490,
        [(24, 2190), (96, 1890)],
        12,
        6,
        1200,
        3600,
    ),
    (
        "TSH-OVS-02",
        "Oversized T-shirt",
        "Heavy 240 g/m2 cotton, dropped shoulder.",
        3990,
        [(24, 3590), (72, 3290)],
        6,
        6,
        600,
        1200,
    ),
    (
        "POL-PIQ-03",
        "Piqué polo shirt",
        "Cotton piqué, ribbed collar, 4 colours.",
        5490,
        [(20, 4990), (60, 4590)],
        10,
        5,
        400,
        800,
    ),
    (
        "JNS-SKN-04",
        "Skinny denim jeans",
        "Stretch denim, sizes 36-46 in a size run.",
        8990,
        [(12, 8290), (48, 7690)],
        6,
        6,
        300,
        540,
    ),
    (
        "JKT-PUF-05",
        "Puffer jacket",
        "Water-repellent shell, recycled fill.",
        15990,
        [(10, 14490)],
        5,
        5,
        100,
        150,
    ),
    (
        "DRS-MID-06",
        "Midi wrap dress",
        "Viscose, printed, sizes S-L.",
        7990,
        [(12, 7190), (36, 6690)],
        6,
        3,
        240,
        420,
    ),
    (
        "SHR-LIN-07",
        "Linen shirt",
        "Linen and cotton, relaxed fit.",
        6990,
        [(18, 6290)],
        6,
        6,
        300,
        360,
    ),
    (
        "SOC-KIT-08",
        "Sports socks, pack of 3",
        "Cotton blend, cushioned sole.",
        1290,
        [(60, 1090), (240, 890)],
        24,
        12,
        2400,
        9600,
    ),
    (
        "CAP-TRK-09",
        "Trucker cap",
        "Mesh back, snap closure, embroidered front.",
        2990,
        [(30, 2590)],
        10,
        10,
        500,
        700,
    ),
    (
        "BAG-TOT-10",
        "Canvas tote bag",
        "Natural canvas 12 oz, 38 x 42 cm.",
        1890,
        [(50, 1590), (200, 1390)],
        25,
        25,
        2000,
        2500,
    ),
    (
        "SNK-RUN-11",
        "Running sneakers",
        "Mesh upper, EVA sole, size run 34-44.",
        12990,
        [(12, 11990)],
        6,
        6,
        120,
        96,
    ),
    (
        "HOD-FLC-12",
        "Fleece hoodie",
        "Brushed fleece 300 g/m2, kangaroo pocket.",
        8490,
        [(24, 7690), (72, 6990)],
        6,
        6,
        360,
        24,
    ),
]


async def seed_demo(
    settings: Settings, slug: str, manager_username: str, manager_password: str | None
) -> None:
    """Create the demo manager and live once; running it again changes nothing but
    the manager's password when one is given."""
    connection = await asyncpg.connect(settings.database_url)
    await init_connection(connection)
    try:
        await _seed_manager(connection, manager_username, manager_password)
        await _seed_live(connection, slug, settings.default_currency)
    finally:
        await connection.close()


async def _seed_manager(
    connection: Connection, username: str, password: str | None
) -> None:
    if password is None:
        return
    if await managers.set_password(connection, username, password):
        log.info("demo manager %s password set", username)
        return
    await managers.create(connection, username, password, "admin")
    log.info("demo manager %s created", username)


async def _seed_live(connection: Connection, slug: str, currency: str) -> None:
    async with connection.transaction():
        live_id = await connection.fetchval(
            "INSERT INTO lives (slug, title, status, video_url, currency)"
            " VALUES ($1, $2, 'live', $3, $4)"
            " ON CONFLICT (slug) DO NOTHING RETURNING id",
            slug,
            "Autumn wholesale collection - live",
            "https://www.youtube.com/embed/jfKfPfyJRdk",
            currency,
        )
        if live_id is None:
            log.info("demo live %s already exists; left as it is", slug)
            return

        rows: list[tuple[Any, ...]] = []
        for position, item in enumerate(CATALOG):
            sku, name, description, price, tiers, minimum, step, maximum, stock = item
            rows.append(
                (
                    live_id,
                    sku,
                    name,
                    description,
                    price,
                    [{"min_quantity": q, "price_cents": p} for q, p in tiers],
                    minimum,
                    step,
                    maximum,
                    stock,
                    position,
                )
            )
        await connection.executemany(
            "INSERT INTO products (live_id, sku, name, description, price_cents, tiers,"
            " min_quantity, step, max_quantity, stock, position)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            rows,
        )
        pinned = await connection.fetchval(
            "SELECT id FROM products WHERE live_id = $1 AND sku = 'JKT-PUF-05'", live_id
        )
        await connection.execute(
            "UPDATE lives SET pinned_product_ids = ARRAY[$2::bigint] WHERE id = $1",
            live_id,
            pinned,
        )
    log.info("demo live %s created with %d products", slug, len(CATALOG))
