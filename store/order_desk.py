"""The order desk: orders of a live filtered, counted and moved through their states."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from store.errors import Conflict, NotFound
from store.pool import Connection, required
from store.products import StockLevel

STATUSES = ("new", "in_service", "done", "cancelled")

TRANSITIONS = {
    "new": {"in_service", "cancelled"},
    "in_service": {"done", "cancelled"},
    "done": set(),
    "cancelled": set(),
}

SUMMARY_COLUMNS = (
    "o.id, o.code, o.status, o.currency, o.total_cents, o.item_count, o.company_name,"
    " o.tax_id, o.contact_name, o.phone, o.email, o.assigned_manager_id,"
    " o.created_at, o.updated_at"
)

_CODE_PATTERN = re.compile(r"^[0-9A-Za-z]{8}\Z")


@dataclass(frozen=True)
class OrderFilter:
    """A status and a search term, applied the same way to lists and counts."""

    status: str | None = None
    search: str = ""

    def where(self, live_id: int) -> tuple[str, list[Any]]:
        clauses = ["o.live_id = $1"]
        args: list[Any] = [live_id]
        if self.status is not None:
            args.append(self.status)
            clauses.append(f"o.status = ${len(args)}")
        term = self.search.strip()
        if term:
            # The code, a tax id prefix, or part of the company name.
            compact = re.sub(r"[.\-/\s]", "", term).upper()
            args.append(term.upper() if _CODE_PATTERN.match(term) else "")
            code_arg = len(args)
            args.append(_escape_like(compact) + "%")
            tax_arg = len(args)
            args.append("%" + _escape_like(term.lower()) + "%")
            name_arg = len(args)
            clauses.append(
                f"(o.code = ${code_arg} OR o.tax_id LIKE ${tax_arg}"
                f" OR lower(o.company_name) LIKE ${name_arg})"
            )
        return " AND ".join(clauses), args


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def summary_to_wire(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "code": row["code"],
        "status": row["status"],
        "currency": row["currency"],
        "total_cents": row["total_cents"],
        "item_count": row["item_count"],
        "company_name": row["company_name"],
        "tax_id": row["tax_id"],
        "contact_name": row["contact_name"],
        "phone": row["phone"],
        "email": row["email"],
        "assigned_manager_id": row["assigned_manager_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def list_orders(
    connection: Connection,
    live_id: int,
    order_filter: OrderFilter,
    limit: int,
    before: int | None,
) -> tuple[list[asyncpg.Record], int | None]:
    """Return a page of orders, newest first, and the cursor of the next page.

    Keyset paging on the order id: a page stays stable while new orders arrive.
    """
    where, args = order_filter.where(live_id)
    if before is not None:
        args.append(before)
        where += f" AND o.id < ${len(args)}"
    args.append(limit + 1)
    rows = await connection.fetch(
        f"SELECT {SUMMARY_COLUMNS} FROM orders o WHERE {where}"
        f" ORDER BY o.id DESC LIMIT ${len(args)}",
        *args,
    )
    next_cursor = rows[limit - 1]["id"] if len(rows) > limit else None
    return rows[:limit], next_cursor


async def iter_orders(
    connection: Connection, live_id: int, order_filter: OrderFilter
) -> list[asyncpg.Record]:
    """Return every order matching the filter with its lines, for an export."""
    where, args = order_filter.where(live_id)
    return await connection.fetch(
        f"SELECT {SUMMARY_COLUMNS}, o.notes,"
        " (SELECT string_agg(i.quantity || ' x ' || i.sku, '; ' ORDER BY i.line_number)"
        "  FROM order_items i WHERE i.order_id = o.id) AS lines"
        f" FROM orders o WHERE {where} ORDER BY o.id",
        *args,
    )


async def counts(
    connection: Connection, live_id: int, search: str = ""
) -> dict[str, int]:
    """Count orders per status with one aggregate query."""
    where, args = OrderFilter(search=search).where(live_id)
    rows = await connection.fetch(
        f"SELECT o.status, count(*) AS n FROM orders o WHERE {where} GROUP BY o.status",
        *args,
    )
    result = dict.fromkeys(STATUSES, 0)
    for row in rows:
        result[row["status"]] = row["n"]
    result["total"] = sum(result[status] for status in STATUSES)
    return result


async def get_order(connection: Connection, live_id: int, code: str) -> asyncpg.Record:
    row = await connection.fetchrow(
        f"SELECT {SUMMARY_COLUMNS}, o.notes FROM orders o"
        " WHERE o.live_id = $1 AND o.code = $2",
        live_id,
        code,
    )
    if row is None:
        raise NotFound(f"order {code} not found in this live")
    return row


async def order_detail(
    connection: Connection, live_id: int, code: str
) -> dict[str, Any]:
    row = await get_order(connection, live_id, code)
    items = await connection.fetch(
        "SELECT product_id, sku, name, unit_price_cents, quantity, line_total_cents"
        " FROM order_items WHERE order_id = $1 ORDER BY line_number",
        row["id"],
    )
    events = await connection.fetch(
        "SELECT e.kind, e.from_status, e.to_status, e.created_at, e.manager_id,"
        " m.username AS manager, e.assigned_manager_id"
        " FROM order_events e LEFT JOIN managers m ON m.id = e.manager_id"
        " WHERE e.order_id = $1 ORDER BY e.id",
        row["id"],
    )
    detail = summary_to_wire(row)
    detail["notes"] = row["notes"]
    detail["items"] = [dict(item) for item in items]
    detail["history"] = [dict(event) for event in events]
    return detail


@dataclass
class StatusChange:
    order: dict[str, Any]
    previous_status: str
    # Every product a cancellation put stock back into.
    restocked: list[StockLevel]


async def change_status(
    connection: Connection, live_id: int, code: str, status: str, manager_id: int
) -> StatusChange:
    """Move an order to ``status``; cancelling puts its stock back, exactly once.

    The order row is locked first, so of two managers cancelling at once the second
    finds the order cancelled and gets a conflict instead of restocking again.
    """
    async with connection.transaction():
        row = await connection.fetchrow(
            "SELECT id, status FROM orders WHERE live_id = $1 AND code = $2 FOR UPDATE",
            live_id,
            code,
        )
        if row is None:
            raise NotFound(f"order {code} not found in this live")
        if status not in TRANSITIONS[row["status"]]:
            raise Conflict(
                f"order {code} cannot move from {row['status']} to {status}",
                field="status",
                code="invalid_transition",
            )

        restocked: list[StockLevel] = []
        if status == "cancelled":
            restocked = await _restock(connection, row["id"])
        await connection.execute(
            "UPDATE orders SET status = $2, updated_at = now() WHERE id = $1",
            row["id"],
            status,
        )
        await connection.execute(
            "INSERT INTO order_events (order_id, kind, from_status, to_status,"
            " manager_id) VALUES ($1, 'status', $2, $3, $4)",
            row["id"],
            row["status"],
            status,
            manager_id,
        )
        updated = required(
            await connection.fetchrow(
                f"SELECT {SUMMARY_COLUMNS} FROM orders o WHERE o.id = $1", row["id"]
            )
        )
    return StatusChange(summary_to_wire(updated), row["status"], restocked)


async def _restock(connection: Connection, order_id: int) -> list[StockLevel]:
    # Products are locked in id order, as checkout does, so the two never deadlock.
    lines = await connection.fetch(
        "SELECT product_id, sum(quantity) AS quantity FROM order_items"
        " WHERE order_id = $1 AND product_id IS NOT NULL"
        " GROUP BY product_id ORDER BY product_id",
        order_id,
    )
    if not lines:
        return []
    product_ids = [line["product_id"] for line in lines]
    await connection.fetch(
        "SELECT id FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        product_ids,
    )
    # The units come back even above MAX_STOCK, which only caps what managers set,
    # but never past the 32-bit column, where a cancellation would fail.
    rows = await connection.fetch(
        "UPDATE products p"
        " SET stock = LEAST(p.stock::bigint + v.quantity, 2147483647),"
        " updated_at = now()"
        " FROM unnest($1::bigint[], $2::int[]) AS v(id, quantity)"
        " WHERE p.id = v.id RETURNING p.id, p.stock, p.version",
        product_ids,
        [line["quantity"] for line in lines],
    )
    levels = [StockLevel(row["id"], row["stock"], row["version"]) for row in rows]
    return sorted(levels, key=lambda level: level.product_id)


async def assign(
    connection: Connection,
    live_id: int,
    code: str,
    assignee_id: int | None,
    manager_id: int,
) -> dict[str, Any]:
    async with connection.transaction():
        if assignee_id is not None:
            exists = await connection.fetchval(
                "SELECT 1 FROM managers WHERE id = $1", assignee_id
            )
            if exists is None:
                raise NotFound(
                    f"manager {assignee_id} not found", field="assigned_manager_id"
                )
        row = await connection.fetchrow(
            "UPDATE orders SET assigned_manager_id = $3, updated_at = now()"
            " WHERE live_id = $1 AND code = $2 RETURNING id",
            live_id,
            code,
            assignee_id,
        )
        if row is None:
            raise NotFound(f"order {code} not found in this live")
        await connection.execute(
            "INSERT INTO order_events (order_id, kind, manager_id, assigned_manager_id)"
            " VALUES ($1, 'assignment', $2, $3)",
            row["id"],
            manager_id,
            assignee_id,
        )
        updated = required(
            await connection.fetchrow(
                f"SELECT {SUMMARY_COLUMNS} FROM orders o WHERE o.id = $1", row["id"]
            )
        )
    return summary_to_wire(updated)
