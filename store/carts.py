"""Queries on anonymous carts, each opened by a secret session token."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from store import tokens
from store.errors import AccessDenied, Conflict, NotFound, StockShort
from store.pool import Connection
from store.pricing import check_order_size, check_quantity, product_unit_price

_LINE_QUERY = """
SELECT ci.product_id, ci.quantity, ci.seen_unit_price_cents,
       p.sku, p.name, p.image_url, p.price_cents, p.tiers, p.stock, p.visible,
       p.flash_price_cents, p.flash_ends_at
FROM cart_items ci
JOIN products p ON p.id = ci.product_id
WHERE ci.cart_id = $1
ORDER BY ci.created_at, ci.product_id
"""


async def create(connection: Connection, live_id: int) -> tuple[uuid.UUID, str]:
    """Open a cart; return its id and the session token, which is not stored."""
    cart_id = uuid.uuid4()
    token, token_digest = tokens.new_token()
    await connection.execute(
        "INSERT INTO carts (id, live_id, token_digest) VALUES ($1, $2, $3)",
        cart_id,
        live_id,
        token_digest,
    )
    return cart_id, token


async def open_cart(
    connection: Connection,
    cart_id: uuid.UUID,
    session_token: str,
    *,
    for_update: bool = False,
) -> asyncpg.Record:
    """Return the cart joined with its live, or raise AccessDenied.

    An unknown cart and a wrong token raise the same error, so the response never
    reveals which carts exist.
    """
    lock = " FOR UPDATE OF c" if for_update else ""
    row = await connection.fetchrow(
        "SELECT c.id, c.live_id, c.status, c.token_digest,"
        " l.slug AS live_slug, l.status AS live_status, l.currency"
        " FROM carts c JOIN lives l ON l.id = c.live_id"
        f" WHERE c.id = $1{lock}",
        cart_id,
    )
    stored = None if row is None else row["token_digest"]
    if not tokens.matches(stored, session_token):
        raise AccessDenied("the session token does not open this cart")
    assert row is not None
    return row


def _require_open(cart: asyncpg.Record) -> None:
    if cart["status"] != "open":
        raise Conflict(
            "this cart was already checked out; create a new cart to keep shopping",
            code="cart_closed",
        )
    if cart["live_status"] == "ended":
        raise Conflict("this live has ended", code="live_ended")


async def view(connection: Connection, cart: asyncpg.Record) -> dict[str, Any]:
    """Price every line with the tier that applies and return the cart's wire form.

    A line whose price moved since the buyer last saw it carries the old price. The
    new one is then recorded as seen, because this response shows it.
    """
    rows = await connection.fetch(_LINE_QUERY, cart["id"])
    lines = []
    seen_updates: list[tuple[uuid.UUID, int, int]] = []
    total = 0
    item_count = 0

    for row in rows:
        unit_price = product_unit_price(row, row["quantity"])
        line_total = unit_price * row["quantity"]
        line: dict[str, Any] = {
            "product_id": row["product_id"],
            "sku": row["sku"],
            "name": row["name"],
            "image_url": row["image_url"],
            "quantity": row["quantity"],
            "unit_price_cents": unit_price,
            "line_total_cents": line_total,
            "available": row["visible"],
            "stock": row["stock"],
        }
        if unit_price != row["seen_unit_price_cents"] and cart["status"] == "open":
            line["previous_unit_price_cents"] = row["seen_unit_price_cents"]
            seen_updates.append((cart["id"], row["product_id"], unit_price))
        lines.append(line)
        total += line_total
        item_count += row["quantity"]

    if seen_updates:
        await connection.executemany(
            "UPDATE cart_items SET seen_unit_price_cents = $3"
            " WHERE cart_id = $1 AND product_id = $2",
            seen_updates,
        )

    order_code = None
    if cart["status"] == "checked_out":
        order_code = await connection.fetchval(
            "SELECT code FROM orders WHERE cart_id = $1", cart["id"]
        )

    return {
        "session_id": str(cart["id"]),
        "live_slug": cart["live_slug"],
        "status": cart["status"],
        "currency": cart["currency"],
        "lines": lines,
        "item_count": item_count,
        "total_cents": total,
        "order_code": order_code,
    }


async def set_quantity(
    connection: Connection,
    cart: asyncpg.Record,
    product_id: int,
    quantity: int,
) -> None:
    """Set a line's quantity (zero removes it) after checking the product's rules."""
    _require_open(cart)
    if quantity == 0:
        await remove_item(connection, cart, product_id)
        return

    product = await connection.fetchrow(
        "SELECT id, name, price_cents, tiers, min_quantity, step, max_quantity, stock,"
        " flash_price_cents, flash_ends_at"
        " FROM products WHERE id = $1 AND live_id = $2 AND visible",
        product_id,
        cart["live_id"],
    )
    if product is None:
        raise NotFound(
            f"product {product_id} is not on sale in this live", field="product_id"
        )

    check_quantity(product, quantity, "quantity")
    if quantity > product["stock"]:
        raise StockShort(
            f"{product['name']}: only {product['stock']} left, "
            f"{quantity} were requested",
            field="quantity",
            details={
                "lines": [
                    {
                        "product_id": product_id,
                        "requested": quantity,
                        "available": product["stock"],
                    }
                ]
            },
        )

    unit_price = product_unit_price(product, quantity)
    await _check_cart_size(connection, cart, product_id, quantity, unit_price)
    await connection.execute(
        """
        INSERT INTO cart_items (cart_id, product_id, quantity, seen_unit_price_cents)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (cart_id, product_id) DO UPDATE
        SET quantity = excluded.quantity,
            seen_unit_price_cents = excluded.seen_unit_price_cents,
            updated_at = now()
        """,
        cart["id"],
        product_id,
        quantity,
        unit_price,
    )
    await connection.execute(
        "UPDATE carts SET updated_at = now() WHERE id = $1", cart["id"]
    )


async def _check_cart_size(
    connection: Connection,
    cart: asyncpg.Record,
    product_id: int,
    quantity: int,
    unit_price: int,
) -> None:
    """Raise InvalidInput on quantity when the new line takes the cart above the
    limits of an order. The other lines are priced as the cart view prices them.

    A change that raises neither the line's total nor its quantity passes, so a
    buyer can still lower a cart that went above a limit because prices rose.
    """
    rows = await connection.fetch(_LINE_QUERY, cart["id"])
    other_total = other_count = 0
    old_total = old_quantity = 0
    for row in rows:
        line_total = product_unit_price(row, row["quantity"]) * row["quantity"]
        if row["product_id"] == product_id:
            old_total, old_quantity = line_total, row["quantity"]
        else:
            other_total += line_total
            other_count += row["quantity"]

    new_total = unit_price * quantity
    if new_total > old_total or quantity > old_quantity:
        check_order_size(other_total + new_total, other_count + quantity, "quantity")


async def remove_item(
    connection: Connection, cart: asyncpg.Record, product_id: int
) -> None:
    """Remove a line; removing a line that is not there is not an error."""
    _require_open(cart)
    await connection.execute(
        "DELETE FROM cart_items WHERE cart_id = $1 AND product_id = $2",
        cart["id"],
        product_id,
    )
