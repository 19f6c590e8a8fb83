"""Manager routes that create and run lives and their catalog."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import asyncpg

from handlers.auth import ManagerHandler
from handlers.base import parse_int_id
from handlers.validation import (
    CURRENCY_PATTERN,
    SLUG_PATTERN,
    check_url,
    get_bool,
    get_datetime,
    get_int,
    get_str,
    is_int,
    reject_unknown,
)
from store import lives, products
from store.errors import InvalidInput
from store.pricing import MAX_PRICE_CENTS, MAX_QUANTITY, normalize_tiers
from store.products import MAX_STOCK, StockLevel

log = logging.getLogger(__name__)


class ManagerLivesHandler(ManagerHandler):
    async def get(self) -> None:
        async with self.connection() as connection:
            rows = await lives.list_lives(connection)
        self.write_json({"lives": [lives.live_to_wire(row) for row in rows]})

    async def post(self) -> None:
        body = self.json_body()
        reject_unknown(body, ["slug", "title", "video_url", "currency"])
        slug = get_str(body, "slug", max_length=63)
        if not SLUG_PATTERN.match(slug):
            raise InvalidInput(
                "slug must be lowercase letters, digits and dashes, starting with a "
                "letter or digit",
                field="slug",
            )
        title = get_str(body, "title", max_length=200)
        video_url = check_url(
            get_str(
                body,
                "video_url",
                max_length=2000,
                min_length=0,
                required=False,
                default="",
            ),
            "video_url",
        )
        currency = get_str(
            body,
            "currency",
            max_length=3,
            required=False,
            default=self.ctx.settings.default_currency,
        ).upper()
        if not CURRENCY_PATTERN.match(currency):
            raise InvalidInput(
                "currency must be a three-letter ISO 4217 code such as BRL",
                field="currency",
            )

        async with self.connection() as connection:
            live = await lives.create(connection, slug, title, video_url, currency)
        log.info("live %s created by manager %s", slug, self.manager["sub"])
        self.write_json(lives.live_to_wire(live), 201)


class ManagerLiveHandler(ManagerHandler):
    async def get(self, slug: str) -> None:
        async with self.connection() as connection:
            live = await lives.get_by_slug(connection, slug)
            rows = await products.list_all(connection, live["id"])
        self.write_json(
            {
                "live": lives.live_to_wire(live),
                "products": [products.manager_product_to_wire(row) for row in rows],
            }
        )

    async def patch(self, slug: str) -> None:
        fields = parse_live_patch(self.json_body())

        outbox = self.ctx.outbox
        async with self.connection() as connection, connection.transaction():
            before, after = await lives.update(connection, slug, fields)
            pending = await outbox.add(connection, f"live:{slug}")

        if before != after:
            log.info(
                "live %s updated by manager %s: %s",
                slug,
                self.manager["sub"],
                ", ".join(sorted(fields)),
            )
            await self.ctx.broker.publish(
                f"live:{slug}", "live.updated", lives.live_to_wire(after)
            )
        outbox.mark_published(pending)
        self.write_json(lives.live_to_wire(after))


class ManagerProductsHandler(ManagerHandler):
    async def post(self, slug: str) -> None:
        fields = parse_product_fields(self.json_body(), partial=False)

        outbox = self.ctx.outbox
        async with self.connection() as connection, connection.transaction():
            live = await lives.get_by_slug(connection, slug)
            row = await products.create(connection, live["id"], fields)
            pending = await outbox.add(connection, f"live:{slug}")

        product = products.product_to_wire(row)
        log.info("product %s (%s) created in live %s", row["id"], row["sku"], slug)
        if product["visible"]:
            await self.ctx.broker.publish(f"live:{slug}", "product.created", product)
        outbox.mark_published(pending)
        self.write_json(products.manager_product_to_wire(row), 201)


class ManagerProductHandler(ManagerHandler):
    async def patch(self, slug: str, raw_product_id: str) -> None:
        product_id = parse_int_id(raw_product_id, "product_id")
        body = self.json_body()
        # Optional: the version the manager edited (a conflict if it moved since) and
        # a relative stock change, which a concurrent sale cannot overwrite.
        expected_version = get_int(
            body, "version", minimum=1, maximum=2**62, required=False, default=None
        )
        stock_delta = get_int(
            body,
            "stock_delta",
            minimum=-MAX_STOCK,
            maximum=MAX_STOCK,
            required=False,
            default=None,
        )
        body.pop("version", None)
        body.pop("stock_delta", None)
        fields = parse_product_fields(body, partial=True)
        if stock_delta is not None and "stock" in fields:
            raise InvalidInput(
                "send stock or stock_delta, not both", field="stock_delta"
            )

        async with self.connection() as connection, connection.transaction():
            live = await lives.get_by_slug(connection, slug)
            before, after = await products.update(
                connection,
                live["id"],
                product_id,
                fields,
                expected_version=expected_version,
                stock_delta=stock_delta,
            )
            unpinned = None
            if not after["visible"]:
                unpinned = await lives.unpin(connection, live["id"], product_id)
            pending = await self.ctx.outbox.add(connection, f"live:{slug}")

        topic = f"live:{slug}"
        for event_type, data in product_change_events(before, after):
            await self.ctx.broker.publish(topic, event_type, data)
        if unpinned is not None:
            await self.ctx.broker.publish(
                topic, "live.updated", lives.live_to_wire(unpinned)
            )
        self.ctx.outbox.mark_published(pending)
        self.write_json(products.manager_product_to_wire(after))

    async def delete(self, slug: str, raw_product_id: str) -> None:
        product_id = parse_int_id(raw_product_id, "product_id")

        async with self.connection() as connection, connection.transaction():
            live = await lives.get_by_slug(connection, slug)
            before = await products.get(connection, live["id"], product_id)
            unpinned = await lives.unpin(connection, live["id"], product_id)
            await products.delete(connection, live["id"], product_id)
            pending = await self.ctx.outbox.add(connection, f"live:{slug}")

        log.info("product %s deleted from live %s", product_id, slug)
        topic = f"live:{slug}"
        if before["visible"]:
            await self.ctx.broker.publish(topic, "product.removed", {"id": product_id})
        if unpinned is not None:
            await self.ctx.broker.publish(
                topic, "live.updated", lives.live_to_wire(unpinned)
            )
        self.ctx.outbox.mark_published(pending)
        self.set_status(204)
        self.finish()


def product_change_events(
    before: asyncpg.Record, after: asyncpg.Record
) -> list[tuple[str, dict[str, Any]]]:
    """Return the events buyers see for a product edit.

    Hidden products never reach the public topic: hiding one reads as a removal and
    showing it again as a creation. A change of stock alone is a small stock event.
    """
    old = products.product_to_wire(before)
    new = products.product_to_wire(after)
    if old == new:
        return []
    if not new["visible"]:
        return [("product.removed", {"id": new["id"]})] if old["visible"] else []
    if not old["visible"]:
        return [("product.created", new)]

    changed = {name for name in new if new[name] != old[name]}
    if changed <= {"version"}:
        return []
    if changed == {"stock", "version"}:
        level = StockLevel(new["id"], new["stock"], new["version"])
        return [("stock.changed", level.to_event())]
    return [("product.updated", new)]


def _parse_flash_offer(body: dict[str, Any]) -> dict[str, Any]:
    """Parse a flash offer: a price and an end time, set or cleared together."""
    price = get_int(
        body,
        "flash_price_cents",
        minimum=1,
        maximum=MAX_PRICE_CENTS,
        required=False,
        nullable=True,
        default=None,
    )
    ends_at = get_datetime(body, "flash_ends_at")
    if (price is None) != (ends_at is None):
        raise InvalidInput(
            "set flash_price_cents and flash_ends_at together, or both to null to "
            "end the offer",
            field="flash_ends_at" if ends_at is None else "flash_price_cents",
        )
    if ends_at is not None and ends_at <= dt.datetime.now(dt.UTC):
        raise InvalidInput("flash_ends_at must be in the future", field="flash_ends_at")
    return {"flash_price_cents": price, "flash_ends_at": ends_at}


def parse_live_patch(body: dict[str, Any]) -> dict[str, Any]:
    reject_unknown(
        body, ["title", "video_url", "status", "pinned_product_ids", "starts_at"]
    )
    fields: dict[str, Any] = {}
    if "title" in body:
        fields["title"] = get_str(body, "title", max_length=200)
    if "video_url" in body:
        fields["video_url"] = check_url(
            get_str(body, "video_url", max_length=2000, min_length=0), "video_url"
        )
    if "status" in body:
        status = body["status"]
        if status not in lives.TRANSITIONS:
            raise InvalidInput(
                "status must be scheduled, live or ended", field="status"
            )
        fields["status"] = status
    if "starts_at" in body:
        fields["starts_at"] = get_datetime(body, "starts_at")
    if "pinned_product_ids" in body:
        pinned = body["pinned_product_ids"]
        if not isinstance(pinned, list) or not all(is_int(item) for item in pinned):
            raise InvalidInput(
                "pinned_product_ids must be a list of product ids",
                field="pinned_product_ids",
            )
        fields["pinned_product_ids"] = pinned
    return fields


def parse_product_fields(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """Validate product fields; with ``partial`` only the ones present."""
    reject_unknown(body, products.EDITABLE_FIELDS)
    required = not partial
    fields: dict[str, Any] = {}

    def present(name: str) -> bool:
        return required or name in body

    if present("sku"):
        fields["sku"] = get_str(body, "sku", max_length=64)
    if present("name"):
        fields["name"] = get_str(body, "name", max_length=200)
    if "description" in body:
        fields["description"] = get_str(
            body, "description", max_length=5000, min_length=0
        )
    if body.get("image_url", "") is None:
        # A product without an image stores "", and null means the same.
        fields["image_url"] = ""
    elif "image_url" in body:
        fields["image_url"] = check_url(
            get_str(body, "image_url", max_length=2000, min_length=0),
            "image_url",
            allow_relative=True,
        )
    if present("price_cents"):
        fields["price_cents"] = get_int(
            body, "price_cents", minimum=0, maximum=MAX_PRICE_CENTS
        )
    if "tiers" in body:
        fields["tiers"] = normalize_tiers(body["tiers"])
    if "min_quantity" in body:
        fields["min_quantity"] = get_int(
            body, "min_quantity", minimum=1, maximum=MAX_QUANTITY
        )
    if "step" in body:
        fields["step"] = get_int(body, "step", minimum=1, maximum=MAX_QUANTITY)
    if "max_quantity" in body:
        fields["max_quantity"] = get_int(
            body, "max_quantity", minimum=1, maximum=MAX_QUANTITY, nullable=True
        )
    if "stock" in body:
        fields["stock"] = get_int(body, "stock", minimum=0, maximum=MAX_STOCK)
    if "visible" in body:
        fields["visible"] = get_bool(body, "visible")
    if "position" in body:
        fields["position"] = get_int(body, "position", minimum=0, maximum=10**6)
    if "low_stock_threshold" in body:
        fields["low_stock_threshold"] = get_int(
            body, "low_stock_threshold", minimum=0, maximum=MAX_STOCK
        )

    if "flash_price_cents" in body or "flash_ends_at" in body:
        fields.update(_parse_flash_offer(body))

    minimum = fields.get("min_quantity")
    maximum = fields.get("max_quantity")
    if minimum is not None and maximum is not None and maximum < minimum:
        raise InvalidInput(
            f"max_quantity {maximum} is below min_quantity {minimum}",
            field="max_quantity",
        )
    return fields
