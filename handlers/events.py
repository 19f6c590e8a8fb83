"""Events that follow an order change, for buyers, managers and the live."""

from __future__ import annotations

from typing import Any

from realtime.broker import Broker
from store.products import StockLevel


async def publish_order_change(
    broker: Broker,
    slug: str,
    order: dict[str, Any],
    counts: dict[str, int],
    restocked: list[StockLevel],
    *,
    created: bool,
) -> None:
    """Publish, after the commit, what managers, the buyer and the live should see."""
    managers_topic = f"managers:{slug}"
    await broker.publish(
        managers_topic, "order.created" if created else "order.updated", order
    )
    await broker.publish(managers_topic, "order.counts", counts)
    if not created:
        await broker.publish(
            f"order:{order['code']}",
            "order.updated",
            {
                "code": order["code"],
                "status": order["status"],
                "updated_at": order["updated_at"],
            },
        )
    for level in restocked:
        await broker.publish(f"live:{slug}", "stock.changed", level.to_event())
