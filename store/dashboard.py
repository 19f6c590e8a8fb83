"""Sales figures of a live, computed in PostgreSQL from its orders."""

from __future__ import annotations

from typing import Any

from store.pool import Connection

TOP_PRODUCTS = 5
# Orders per minute are averaged over this many recent minutes.
RATE_WINDOW_MINUTES = 5


async def dashboard(connection: Connection, live_id: int) -> dict[str, Any]:
    """Return revenue, orders, units, recent order rate, top products and a series of
    revenue per minute; cancelled orders count in none of them."""
    totals = await connection.fetchrow(
        """
        SELECT coalesce(sum(total_cents), 0)::bigint AS revenue_cents,
               count(*) AS orders,
               coalesce(sum(item_count), 0)::bigint AS units,
               count(*) FILTER (
                   WHERE created_at > now() - make_interval(mins => $2)
               ) AS recent_orders
        FROM orders
        WHERE live_id = $1 AND status <> 'cancelled'
        """,
        live_id,
        RATE_WINDOW_MINUTES,
    )
    top = await connection.fetch(
        """
        SELECT i.product_id, (array_agg(i.sku ORDER BY i.order_id DESC))[1] AS sku,
               (array_agg(i.name ORDER BY i.order_id DESC))[1] AS name,
               sum(i.quantity)::bigint AS units,
               sum(i.line_total_cents)::bigint AS revenue_cents
        FROM order_items i JOIN orders o ON o.id = i.order_id
        WHERE o.live_id = $1 AND o.status <> 'cancelled'
        GROUP BY i.product_id
        ORDER BY revenue_cents DESC, units DESC
        LIMIT $2
        """,
        live_id,
        TOP_PRODUCTS,
    )
    series = await connection.fetch(
        """
        SELECT date_trunc('minute', created_at) AS minute,
               sum(total_cents)::bigint AS revenue_cents, count(*) AS orders
        FROM orders
        WHERE live_id = $1 AND status <> 'cancelled'
        GROUP BY 1 ORDER BY 1
        """,
        live_id,
    )
    assert totals is not None
    return {
        "revenue_cents": totals["revenue_cents"],
        "orders": totals["orders"],
        "units": totals["units"],
        "orders_per_minute": round(totals["recent_orders"] / RATE_WINDOW_MINUTES, 2),
        "top_products": [dict(row) for row in top],
        "revenue_series": [dict(row) for row in series],
    }
