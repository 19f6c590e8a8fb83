"""Manager routes of the order desk: list, count, export, read and move orders."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from handlers.auth import ManagerHandler
from handlers.errors import ApiError
from handlers.events import publish_order_change
from handlers.validation import get_int, reject_unknown
from store import lives, order_desk, outbox
from store.errors import InvalidInput
from store.products import StockLevel

log = logging.getLogger(__name__)

MAX_PAGE = 200


class OrderDeskHandler(ManagerHandler):
    def order_filter(self) -> order_desk.OrderFilter:
        status = self.get_query_argument("status", None) or None
        if status is not None and status not in order_desk.STATUSES:
            raise InvalidInput(
                "status must be one of " + ", ".join(order_desk.STATUSES),
                field="status",
            )
        search = self.get_query_argument("q", "")
        if len(search) > 100:
            raise InvalidInput("q must be at most 100 characters", field="q")
        return order_desk.OrderFilter(status=status, search=search)


class OrdersHandler(OrderDeskHandler):
    async def get(self, slug: str) -> None:
        order_filter = self.order_filter()
        limit = _query_int(self, "limit", 50, 1, MAX_PAGE) or 50
        before = _query_int(self, "before", None, 1, 2**62)

        async with self.connection() as connection:
            live = await lives.get_by_slug(connection, slug)
            rows, next_cursor = await order_desk.list_orders(
                connection, live["id"], order_filter, limit, before
            )
        self.write_json(
            {
                "orders": [order_desk.summary_to_wire(row) for row in rows],
                "next_before": next_cursor,
            }
        )


class OrderCountsHandler(OrderDeskHandler):
    async def get(self, slug: str) -> None:
        search = self.order_filter().search
        async with self.connection() as connection:
            live = await lives.get_by_slug(connection, slug)
            result = await order_desk.counts(connection, live["id"], search)
        self.write_json(result)


class OrderExportHandler(OrderDeskHandler):
    async def get(self, slug: str) -> None:
        order_filter = self.order_filter()
        async with self.connection() as connection:
            live = await lives.get_by_slug(connection, slug)
            rows = await order_desk.iter_orders(connection, live["id"], order_filter)

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [
                "code",
                "created_at",
                "status",
                "company_name",
                "tax_id",
                "contact_name",
                "phone",
                "email",
                "items",
                "item_count",
                "total_cents",
                "currency",
                "notes",
            ]
        )
        for row in rows:
            writer.writerow(
                [
                    row["code"],
                    row["created_at"].isoformat(),
                    row["status"],
                    safe_cell(row["company_name"]),
                    row["tax_id"],
                    safe_cell(row["contact_name"]),
                    safe_cell(row["phone"]),
                    safe_cell(row["email"]),
                    row["lines"] or "",
                    row["item_count"],
                    row["total_cents"],
                    row["currency"],
                    safe_cell(row["notes"]),
                ]
            )
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header(
            "Content-Disposition", f'attachment; filename="orders-{slug}.csv"'
        )
        self.finish(buffer.getvalue().encode())


class OrderHandler(OrderDeskHandler):
    async def get(self, slug: str, code: str) -> None:
        async with self.connection() as connection:
            live = await lives.get_by_slug(connection, slug)
            detail = await order_desk.order_detail(connection, live["id"], code.upper())
        self.write_json(detail)

    async def patch(self, slug: str, code: str) -> None:
        body = self.json_body()
        reject_unknown(body, ["status", "assigned_manager_id"])
        if not body:
            raise InvalidInput(
                "send status, assigned_manager_id or both", field="status"
            )
        status = body.get("status")
        if "status" in body and status not in order_desk.STATUSES:
            raise InvalidInput(
                "status must be one of " + ", ".join(order_desk.STATUSES),
                field="status",
            )
        assignee = None
        if "assigned_manager_id" in body:
            assignee = get_int(
                body, "assigned_manager_id", minimum=1, maximum=2**62, nullable=True
            )

        manager_id = int(self.manager["sub"])
        code = code.upper()
        async with self.connection() as connection, connection.transaction():
            live = await lives.get_by_slug(connection, slug)
            order: dict[str, Any] | None = None
            restocked: list[StockLevel] = []
            if "assigned_manager_id" in body:
                order = await order_desk.assign(
                    connection, live["id"], code, assignee, manager_id
                )
            if status is not None:
                change = await order_desk.change_status(
                    connection, live["id"], code, status, manager_id
                )
                order = change.order
                restocked = change.restocked
                log.info(
                    "order %s moved from %s to %s by manager %s",
                    code,
                    change.previous_status,
                    status,
                    manager_id,
                )
            assert order is not None
            order_counts = await order_desk.counts(connection, live["id"])
            pending = await self.ctx.outbox.add(
                connection, *outbox.live_topics(slug), f"order:{code}"
            )

        await publish_order_change(
            self.ctx.broker, slug, order, order_counts, restocked, created=False
        )
        self.ctx.outbox.mark_published(pending)
        self.write_json(order)


def _query_int(
    handler: ManagerHandler, name: str, default: int | None, minimum: int, maximum: int
) -> int | None:
    raw = handler.get_query_argument(name, None)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not minimum <= int(raw) <= maximum:
        raise ApiError(
            400,
            "out_of_range",
            f"{name} must be a whole number from {minimum} to {maximum}",
            field=name,
        )
    return int(raw)


def safe_cell(value: str) -> str:
    """Keep a spreadsheet from running buyer text as a formula (CSV injection)."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value
