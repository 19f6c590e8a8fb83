"""Queries on a live's catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from store.errors import Conflict, InvalidInput, NotFound
from store.pool import Connection, required
from store.pricing import check_tier_prices, running_flash_price

# The highest stock a manager may set, well under the 32-bit stock column's limit of
# 2,147,483,647.
MAX_STOCK = 10**9

PRODUCT_COLUMNS = (
    "id, live_id, sku, name, description, image_url, price_cents, tiers, "
    "min_quantity, step, max_quantity, stock, visible, position, version, "
    "low_stock_threshold, flash_price_cents, flash_ends_at"
)


@dataclass(frozen=True)
class StockLevel:
    """A product's stock after a change, with the row version that change made."""

    product_id: int
    stock: int
    version: int
    low_stock_threshold: int = 0

    def to_event(self) -> dict[str, int]:
        return {
            "product_id": self.product_id,
            "stock": self.stock,
            "version": self.version,
        }


# Fields a manager may set, in the order the wire shows them.
EDITABLE_FIELDS = (
    "sku",
    "name",
    "description",
    "image_url",
    "price_cents",
    "tiers",
    "min_quantity",
    "step",
    "max_quantity",
    "stock",
    "visible",
    "position",
    "low_stock_threshold",
    "flash_price_cents",
    "flash_ends_at",
)


def manager_product_to_wire(row: asyncpg.Record) -> dict[str, Any]:
    """Return the product as managers see it: public fields plus internal ones."""
    product = product_to_wire(row)
    product["low_stock_threshold"] = row["low_stock_threshold"]
    return product


def product_to_wire(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    flash_price = running_flash_price(row)
    return {
        "id": row["id"],
        "sku": row["sku"],
        "name": row["name"],
        "description": row["description"],
        "image_url": row["image_url"],
        "price_cents": row["price_cents"],
        "tiers": row["tiers"],
        "min_quantity": row["min_quantity"],
        "step": row["step"],
        "max_quantity": row["max_quantity"],
        "stock": row["stock"],
        "visible": row["visible"],
        "position": row["position"],
        "version": row["version"],
        # Set only while a flash offer runs; the storefront counts down to the end.
        "flash_price_cents": flash_price,
        "flash_ends_at": row["flash_ends_at"] if flash_price is not None else None,
    }


async def list_visible(connection: Connection, live_id: int) -> list[asyncpg.Record]:
    return await connection.fetch(
        f"SELECT {PRODUCT_COLUMNS} FROM products"
        " WHERE live_id = $1 AND visible ORDER BY position, id",
        live_id,
    )


async def list_all(connection: Connection, live_id: int) -> list[asyncpg.Record]:
    return await connection.fetch(
        f"SELECT {PRODUCT_COLUMNS} FROM products WHERE live_id = $1"
        " ORDER BY position, id",
        live_id,
    )


async def get(connection: Connection, live_id: int, product_id: int) -> asyncpg.Record:
    row = await connection.fetchrow(
        f"SELECT {PRODUCT_COLUMNS} FROM products WHERE live_id = $1 AND id = $2",
        live_id,
        product_id,
    )
    if row is None:
        raise NotFound(f"product {product_id} not found in this live")
    return row


async def create(
    connection: Connection, live_id: int, fields: dict[str, Any]
) -> asyncpg.Record:
    """Insert a product; ``fields`` is validated and contains sku, name and price."""
    check_tier_prices(fields["price_cents"], fields.get("tiers", []))
    if "position" not in fields:
        # A new product goes to the end of the grid unless a position is given.
        fields = dict(fields)
        fields["position"] = await connection.fetchval(
            "SELECT coalesce(max(position) + 1, 0) FROM products WHERE live_id = $1",
            live_id,
        )

    names = list(fields)
    placeholders = ", ".join(f"${index + 2}" for index in range(len(names)))
    try:
        return required(
            await connection.fetchrow(
                f"INSERT INTO products (live_id, {', '.join(names)})"
                f" VALUES ($1, {placeholders}) RETURNING {PRODUCT_COLUMNS}",
                live_id,
                *fields.values(),
            )
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"SKU {fields['sku']!r} is already used in this live",
            field="sku",
            code="duplicate_sku",
        ) from None
    except asyncpg.CheckViolationError as exc:
        raise _rule_conflict(exc) from None


def _rule_conflict(exc: asyncpg.CheckViolationError) -> Conflict:
    if exc.constraint_name == "products_flash_below_price":
        return Conflict(
            "flash_price_cents must be below the product's price_cents",
            field="flash_price_cents",
            code="invalid_product",
        )
    return Conflict(
        "the product would break a rule: max_quantity must not be below "
        f"min_quantity and stock must not be negative ({exc.constraint_name})",
        code="invalid_product",
    )


async def update(
    connection: Connection,
    live_id: int,
    product_id: int,
    fields: dict[str, Any],
    *,
    expected_version: int | None = None,
    stock_delta: int | None = None,
) -> tuple[asyncpg.Record, asyncpg.Record]:
    """Apply a partial update; return the rows before and after it.

    With ``expected_version`` the update is a conflict if the product changed since
    that version; ``stock_delta`` adds to the stock instead of replacing it.
    """
    before = await connection.fetchrow(
        f"SELECT {PRODUCT_COLUMNS} FROM products"
        " WHERE live_id = $1 AND id = $2 FOR UPDATE",
        live_id,
        product_id,
    )
    if before is None:
        raise NotFound(f"product {product_id} not found in this live")
    if expected_version is not None and before["version"] != expected_version:
        raise Conflict(
            f"product {product_id} changed since version {expected_version} (now "
            f"{before['version']}); reload it and apply the change again",
            field="version",
            code="version_conflict",
        )
    if stock_delta is not None:
        if before["stock"] + stock_delta < 0:
            raise Conflict(
                f"stock_delta {stock_delta} would take the stock of product "
                f"{product_id} below zero (it is {before['stock']})",
                field="stock_delta",
                code="stock_short",
            )
        # A cancelled order may have put the stock above MAX_STOCK, and a delta must
        # still be able to lower it.
        if stock_delta > 0 and before["stock"] + stock_delta > MAX_STOCK:
            raise InvalidInput(
                f"stock_delta {stock_delta} would take the stock of product "
                f"{product_id} above the maximum of {MAX_STOCK} (it is "
                f"{before['stock']})",
                field="stock_delta",
                code="out_of_range",
            )
        fields = {**fields, "stock": before["stock"] + stock_delta}
    if not fields:
        return before, before

    # A change of only the price is checked against the stored tiers, and a change
    # of only the tiers against the stored price.
    if "tiers" in fields or "price_cents" in fields:
        check_tier_prices(
            fields.get("price_cents", before["price_cents"]),
            fields.get("tiers", before["tiers"]),
            field="tiers" if "tiers" in fields else "price_cents",
        )

    assignments = ", ".join(
        f"{name} = ${index + 3}" for index, name in enumerate(fields)
    )
    try:
        after = await connection.fetchrow(
            f"UPDATE products SET {assignments}, updated_at = now()"
            f" WHERE live_id = $1 AND id = $2 RETURNING {PRODUCT_COLUMNS}",
            live_id,
            product_id,
            *fields.values(),
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"SKU {fields.get('sku')!r} is already used in this live",
            field="sku",
            code="duplicate_sku",
        ) from None
    except asyncpg.CheckViolationError as exc:
        raise _rule_conflict(exc) from None
    return before, required(after)


async def delete(connection: Connection, live_id: int, product_id: int) -> None:
    deleted = await connection.fetchval(
        "DELETE FROM products WHERE live_id = $1 AND id = $2 RETURNING id",
        live_id,
        product_id,
    )
    if deleted is None:
        raise NotFound(f"product {product_id} not found in this live")
