"""Anonymous carts: create, read, change lines, check out."""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any

import orjson

from handlers.base import ApiHandler, parse_int_id
from handlers.errors import ApiError
from handlers.events import publish_order_change
from handlers.outbox import Pending
from handlers.validation import (
    EMAIL_PATTERN,
    get_int,
    get_str,
    normalize_tax_id,
    reject_unknown,
)
from store import carts, lives, order_desk, orders, outbox
from store.errors import AccessDenied, Conflict, InvalidInput
from store.pricing import MAX_QUANTITY

log = logging.getLogger(__name__)

SESSION_HEADER = "X-Session-Token"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 200


class CartCreateHandler(ApiHandler):
    async def post(self, slug: str) -> None:
        async with self.connection() as connection:
            live = await lives.get_by_slug(connection, slug)
            if live["status"] == "ended":
                raise Conflict(
                    f"live {slug!r} has ended; carts can no longer be opened",
                    code="live_ended",
                )
            cart_id, token = await carts.create(connection, live["id"])

        log.info("cart %s opened on live %s", cart_id, slug)
        self.write_json({"session_id": str(cart_id), "session_token": token}, 201)


class CartHandlerBase(ApiHandler):
    def session(self, raw_cart_id: str) -> tuple[uuid.UUID, str]:
        """Return the cart id and token, or raise 401/403 without naming the cause."""
        token = self.request.headers.get(SESSION_HEADER, "")
        if not token:
            raise ApiError(
                401,
                "unauthorized",
                f"the {SESSION_HEADER} header is required; it was returned when the "
                "cart was created",
                field=SESSION_HEADER,
            )
        try:
            cart_id = uuid.UUID(raw_cart_id)
        except ValueError:
            raise AccessDenied("the session token does not open this cart") from None
        return cart_id, token


class CartHandler(CartHandlerBase):
    async def get(self, raw_cart_id: str) -> None:
        cart_id, token = self.session(raw_cart_id)
        async with self.connection() as connection:
            cart = await carts.open_cart(connection, cart_id, token)
            self.write_json(await carts.view(connection, cart))


class CartItemHandler(CartHandlerBase):
    async def put(self, raw_cart_id: str, raw_product_id: str) -> None:
        cart_id, token = self.session(raw_cart_id)
        product_id = parse_int_id(raw_product_id, "product_id")
        body = self.json_body()
        reject_unknown(body, ["quantity"])
        quantity = get_int(body, "quantity", minimum=0, maximum=MAX_QUANTITY)

        async with self.connection() as connection, connection.transaction():
            cart = await carts.open_cart(connection, cart_id, token, for_update=True)
            await carts.set_quantity(connection, cart, product_id, quantity)
            self.write_json(await carts.view(connection, cart))

    async def delete(self, raw_cart_id: str, raw_product_id: str) -> None:
        cart_id, token = self.session(raw_cart_id)
        product_id = parse_int_id(raw_product_id, "product_id")

        async with self.connection() as connection, connection.transaction():
            cart = await carts.open_cart(connection, cart_id, token, for_update=True)
            await carts.remove_item(connection, cart, product_id)
            self.write_json(await carts.view(connection, cart))


class CheckoutHandler(CartHandlerBase):
    async def post(self, raw_cart_id: str) -> None:
        cart_id, token = self.session(raw_cart_id)
        key = self._idempotency_key()
        body = self.json_body()
        buyer = parse_buyer(body)
        # The digest of the normalised fields, so a retry that differs only in key
        # order or spacing still counts as the same request.
        request_digest = hashlib.sha256(
            orjson.dumps(buyer, option=orjson.OPT_SORT_KEYS)
        ).digest()

        result = await orders.checkout(
            self.ctx.pool, cart_id, token, key, request_digest, buyer
        )

        if result.created:
            log.info(
                "order %s placed on live %s from cart %s: %d items, %d cents",
                result.order["code"],
                result.live_slug,
                cart_id,
                result.order["item_count"],
                result.order["total_cents"],
            )
            await self._publish_sale(result)

        self.write_json(
            {"order": result.order, "read_token": result.read_token},
            201 if result.created else 200,
        )

    async def _publish_sale(self, result: orders.CheckoutResult) -> None:
        slug = result.live_slug
        broker = self.ctx.broker
        for level in result.stock_left:
            await broker.publish(f"live:{slug}", "stock.changed", level.to_event())

        async with self.connection() as connection:
            live = await lives.get_by_slug(connection, slug)
            summary = await order_desk.get_order(
                connection, live["id"], result.order["code"]
            )
            order_counts = await order_desk.counts(connection, live["id"])
        await publish_order_change(
            broker,
            slug,
            order_desk.summary_to_wire(summary),
            order_counts,
            [],
            created=True,
        )
        for level in result.stock_left:
            if level.stock <= level.low_stock_threshold:
                await broker.publish(
                    f"managers:{slug}",
                    "stock.low",
                    {**level.to_event(), "threshold": level.low_stock_threshold},
                )
        self.ctx.outbox.mark_published(
            Pending(result.outbox_ids, tuple(outbox.live_topics(slug)))
        )

    def _idempotency_key(self) -> str:
        key = self.request.headers.get(IDEMPOTENCY_HEADER, "")
        if not key:
            raise InvalidInput(
                f"the {IDEMPOTENCY_HEADER} header is required: send a new random "
                "value (a UUID) per checkout and the same value on retries",
                field=IDEMPOTENCY_HEADER,
                code="missing",
            )
        if len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
            raise InvalidInput(
                f"the {IDEMPOTENCY_HEADER} header must be 1 to "
                f"{MAX_IDEMPOTENCY_KEY} printable characters",
                field=IDEMPOTENCY_HEADER,
            )
        return key


def parse_buyer(body: dict[str, Any]) -> dict[str, str]:
    """Validate the buyer fields of a checkout."""
    reject_unknown(body, orders.BUYER_FIELDS)
    buyer = {
        "company_name": get_str(body, "company_name", max_length=200),
        "tax_id": normalize_tax_id(get_str(body, "tax_id", max_length=40)),
        "contact_name": get_str(body, "contact_name", max_length=200),
        "phone": get_str(body, "phone", max_length=40),
        "email": get_str(body, "email", max_length=254),
        "notes": get_str(
            body, "notes", max_length=2000, min_length=0, default="", required=False
        ),
    }

    digits = sum(character.isdigit() for character in buyer["phone"])
    if not 8 <= digits <= 15 or not set(buyer["phone"]) <= set("+0123456789 ()-."):
        raise InvalidInput(
            "phone must have 8 to 15 digits, with optional +, spaces, dashes and "
            "parentheses",
            field="phone",
        )
    if not EMAIL_PATTERN.match(buyer["email"]):
        raise InvalidInput(
            f"email {buyer['email']!r} is not a valid address", field="email"
        )
    buyer["email"] = buyer["email"].lower()
    return buyer
