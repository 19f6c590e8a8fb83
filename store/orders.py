"""Checkout and order queries."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from store import carts, outbox, tokens
from store.errors import (
    AccessDenied,
    Conflict,
    IdempotencyKeyReused,
    InvalidInput,
    PriceChanged,
    StockShort,
)
from store.pool import Connection, required
from store.pricing import check_order_size, check_quantity, product_unit_price
from store.products import StockLevel

# Crockford's base32 without I, L, O and U: easy to read aloud over the phone.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8

BUYER_FIELDS = ("company_name", "tax_id", "contact_name", "phone", "email", "notes")

_ORDER_QUERY = """
SELECT o.*, l.slug AS live_slug
FROM orders o JOIN lives l ON l.id = o.live_id
WHERE {where}
"""


@dataclass
class CheckoutResult:
    order: dict[str, Any]
    read_token: str
    created: bool
    live_slug: str
    # The stock left of every product the checkout sold.
    stock_left: list[StockLevel]
    # Outbox rows of the live's topics, to delete once the sale was published.
    outbox_ids: list[int] = field(default_factory=list)


def new_order_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


async def checkout(
    pool: asyncpg.Pool,
    cart_id: uuid.UUID,
    session_token: str,
    idempotency_key: str,
    request_digest: bytes,
    buyer: dict[str, str],
) -> CheckoutResult:
    """Turn a cart into an order, all or nothing.

    Raises StockShort or PriceChanged (nothing changes, except that the cart then
    records the new prices as seen), Conflict (also when the total or unit count is
    above the maximum of an order), AccessDenied or IdempotencyKeyReused.
    """
    async with pool.acquire() as connection:
        try:
            async with connection.transaction():
                return await _checkout(
                    connection,
                    cart_id,
                    session_token,
                    idempotency_key,
                    request_digest,
                    buyer,
                )
        except PriceChanged as exc:
            # The 409 shows the buyer the new prices, so the next attempt accepts them.
            await connection.executemany(
                "UPDATE cart_items SET seen_unit_price_cents = $3"
                " WHERE cart_id = $1 AND product_id = $2",
                [
                    (cart_id, line["product_id"], line["unit_price_cents"])
                    for line in exc.details["lines"]
                ],
            )
            raise


async def _checkout(
    connection: Connection,
    cart_id: uuid.UUID,
    session_token: str,
    idempotency_key: str,
    request_digest: bytes,
    buyer: dict[str, str],
) -> CheckoutResult:
    # The cart lock serialises checkouts of one cart, so a retry racing the first
    # attempt waits for it and then finds its order.
    cart = await carts.open_cart(connection, cart_id, session_token, for_update=True)
    read_token = tokens.derive_read_token(session_token, idempotency_key)

    existing = await connection.fetchrow(
        _ORDER_QUERY.format(where="o.cart_id = $1"), cart_id
    )
    if existing is not None:
        return await _replay(
            connection, existing, idempotency_key, request_digest, read_token
        )

    if cart["live_status"] == "ended":
        raise Conflict("this live has ended; orders are closed", code="live_ended")

    # Rows are locked in product id order, the same in every checkout, so two carts
    # holding the same products never wait on each other in a cycle.
    lines = await connection.fetch(
        """
        SELECT ci.product_id, ci.quantity, ci.seen_unit_price_cents,
               p.sku, p.name, p.price_cents, p.tiers, p.min_quantity, p.step,
               p.max_quantity, p.stock, p.visible, p.flash_price_cents,
               p.flash_ends_at
        FROM cart_items ci
        JOIN products p ON p.id = ci.product_id
        WHERE ci.cart_id = $1
        ORDER BY p.id
        FOR UPDATE OF p
        """,
        cart_id,
    )
    if not lines:
        raise Conflict("the cart is empty; add products first", code="cart_empty")

    priced = _price_lines(lines)
    stock_left = await _take_stock(connection, priced)
    order = await _insert_order(
        connection, cart, priced, read_token, idempotency_key, request_digest, buyer
    )
    await connection.execute(
        "UPDATE carts SET status = 'checked_out', updated_at = now() WHERE id = $1",
        cart_id,
    )
    return CheckoutResult(
        order=order,
        read_token=read_token,
        created=True,
        live_slug=cart["live_slug"],
        stock_left=stock_left,
        outbox_ids=await outbox.add(connection, outbox.live_topics(cart["live_slug"])),
    )


async def _replay(
    connection: Connection,
    existing: asyncpg.Record,
    idempotency_key: str,
    request_digest: bytes,
    read_token: str,
) -> CheckoutResult:
    if existing["idempotency_key"] != idempotency_key:
        raise Conflict(
            f"this cart was already checked out as order {existing['code']}",
            code="cart_closed",
        )
    if existing["request_digest"] != request_digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body; "
            "use a new key for a new checkout",
            field="Idempotency-Key",
        )
    order = await _order_to_wire(connection, existing)
    return CheckoutResult(
        order=order,
        read_token=read_token,
        created=False,
        live_slug=existing["live_slug"],
        stock_left=[],
    )


def _price_lines(lines: list[asyncpg.Record]) -> list[dict[str, Any]]:
    """Check every line against the locked products; raise one error for all."""
    unavailable = []
    short = []
    changed = []
    priced = []

    for index, line in enumerate(lines):
        product_id = line["product_id"]
        quantity = line["quantity"]
        if not line["visible"]:
            unavailable.append(product_id)
            continue
        try:
            check_quantity(line, quantity, f"items[{index}].quantity")
        except InvalidInput as exc:
            raise Conflict(exc.message, field=exc.field, code=exc.code) from None
        if line["stock"] < quantity:
            short.append(
                {
                    "product_id": product_id,
                    "requested": quantity,
                    "available": line["stock"],
                }
            )

        unit_price = product_unit_price(line, quantity)
        if unit_price != line["seen_unit_price_cents"]:
            changed.append(
                {
                    "product_id": product_id,
                    "previous_unit_price_cents": line["seen_unit_price_cents"],
                    "unit_price_cents": unit_price,
                }
            )
        priced.append(
            {
                "product_id": product_id,
                "sku": line["sku"],
                "name": line["name"],
                "unit_price_cents": unit_price,
                "quantity": quantity,
                "line_total_cents": unit_price * quantity,
            }
        )

    if unavailable:
        raise Conflict(
            "some products are no longer on sale; remove them from the cart",
            field="items",
            code="product_unavailable",
            details={"product_ids": unavailable},
        )
    if short:
        raise StockShort(
            "not enough stock for "
            + ", ".join(f"product {line['product_id']}" for line in short)
            + "; lower the quantities to what is left",
            field="items",
            details={"lines": short},
        )
    if changed:
        raise PriceChanged(
            "prices changed since the cart was last shown; review them and check out"
            " again",
            field="items",
            details={"lines": changed},
        )
    # The cart checked these limits when each line was set, but prices may have
    # risen since, and the order's bigint and integer columns must not overflow.
    try:
        check_order_size(
            sum(line["line_total_cents"] for line in priced),
            sum(line["quantity"] for line in priced),
            "items",
        )
    except InvalidInput as exc:
        raise Conflict(exc.message, field=exc.field, code=exc.code) from None
    return priced


async def _take_stock(
    connection: Connection, priced: list[dict[str, Any]]
) -> list[StockLevel]:
    product_ids = [line["product_id"] for line in priced]
    quantities = [line["quantity"] for line in priced]

    # The rows are already locked and checked; the stock >= q condition and the
    # CHECK (stock >= 0) constraint still guard against a negative stock.
    rows = await connection.fetch(
        """
        UPDATE products p SET stock = p.stock - v.quantity, updated_at = now()
        FROM unnest($1::bigint[], $2::int[]) AS v(id, quantity)
        WHERE p.id = v.id AND p.stock >= v.quantity
        RETURNING p.id, p.stock, p.version, p.low_stock_threshold
        """,
        product_ids,
        quantities,
    )
    if len(rows) != len(priced):
        raise RuntimeError(
            f"stock update touched {len(rows)} of {len(priced)} locked products"
        )
    levels = [
        StockLevel(row["id"], row["stock"], row["version"], row["low_stock_threshold"])
        for row in rows
    ]
    return sorted(levels, key=lambda level: level.product_id)


async def _insert_order(
    connection: Connection,
    cart: asyncpg.Record,
    priced: list[dict[str, Any]],
    read_token: str,
    idempotency_key: str,
    request_digest: bytes,
    buyer: dict[str, str],
) -> dict[str, Any]:
    total = sum(line["line_total_cents"] for line in priced)
    item_count = sum(line["quantity"] for line in priced)

    for _attempt in range(5):
        code = new_order_code()
        try:
            async with connection.transaction():
                order_id = await connection.fetchval(
                    """
                    INSERT INTO orders (
                        code, live_id, cart_id, read_token_digest, idempotency_key,
                        request_digest, currency, total_cents, item_count,
                        company_name, tax_id, contact_name, phone, email, notes
                    ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                              $10, $11, $12, $13, $14, $15)
                    RETURNING id
                    """,
                    code,
                    cart["live_id"],
                    cart["id"],
                    tokens.digest(read_token),
                    idempotency_key,
                    request_digest,
                    cart["currency"],
                    total,
                    item_count,
                    *(buyer.get(name, "") for name in BUYER_FIELDS),
                )
            break
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "orders_code_key":
                raise
    else:
        raise RuntimeError("could not find a free order code in 5 attempts")

    await connection.executemany(
        """
        INSERT INTO order_items (
            order_id, product_id, sku, name, unit_price_cents, quantity,
            line_total_cents, line_number
        ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        [
            (
                order_id,
                line["product_id"],
                line["sku"],
                line["name"],
                line["unit_price_cents"],
                line["quantity"],
                line["line_total_cents"],
                number,
            )
            for number, line in enumerate(priced, start=1)
        ],
    )
    row = await connection.fetchrow(_ORDER_QUERY.format(where="o.id = $1"), order_id)
    return await _order_to_wire(connection, required(row))


async def get_for_buyer(
    connection: Connection, code: str, read_token: str
) -> dict[str, Any]:
    """Return the order if ``read_token`` opens it; AccessDenied for any miss."""
    row = await connection.fetchrow(_ORDER_QUERY.format(where="o.code = $1"), code)
    stored = None if row is None else row["read_token_digest"]
    if not tokens.matches(stored, read_token):
        raise AccessDenied("the read token does not open this order")
    return await _order_to_wire(connection, required(row))


async def _order_to_wire(connection: Connection, row: asyncpg.Record) -> dict[str, Any]:
    items = await connection.fetch(
        "SELECT product_id, sku, name, unit_price_cents, quantity, line_total_cents"
        " FROM order_items WHERE order_id = $1 ORDER BY line_number",
        row["id"],
    )
    return {
        "code": row["code"],
        "status": row["status"],
        "live_slug": row["live_slug"],
        "currency": row["currency"],
        "items": [dict(item) for item in items],
        "item_count": row["item_count"],
        "total_cents": row["total_cents"],
        "buyer": {name: row[name] for name in BUYER_FIELDS},
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def exists(connection: Connection, code: str) -> bool:
    """Return whether an order with ``code`` exists."""
    found = await connection.fetchval("SELECT 1 FROM orders WHERE code = $1", code)
    return found is not None


async def read_token_opens(connection: Connection, code: str, read_token: str) -> bool:
    """Tell whether ``read_token`` opens order ``code``, in constant time."""
    stored = await connection.fetchval(
        "SELECT read_token_digest FROM orders WHERE code = $1", code
    )
    return tokens.matches(stored, read_token)
