"""The public view of a live."""

from __future__ import annotations

from handlers.base import ApiHandler
from store import banners, lives, products
from store.errors import NotFound


class LiveHandler(ApiHandler):
    async def get(self, slug: str) -> None:
        topic = f"live:{slug}"

        # Checked first, so an unknown slug creates nothing in Redis. The cached
        # directory spares PostgreSQL when a crowd refetches after a reset.
        if not await self.ctx.lives.exists(slug):
            raise NotFound(f"live {slug!r} not found")

        # The topic position is read before the state, so every change made after the
        # state was read has a larger offset and reaches a client that subscribes from
        # this position.
        position = await self.ctx.broker.position(topic)
        viewers, peak = await self.ctx.broker.presence.viewers(topic)
        async with self.connection() as connection:
            live = await lives.get_by_slug(connection, slug)
            rows = await products.list_visible(connection, live["id"])
            shown_banners = await banners.shown_banners(connection, live["id"])

        self.write_json(
            {
                "live": lives.live_to_wire(live),
                "products": [products.product_to_wire(row) for row in rows],
                "topic": {
                    "name": topic,
                    "epoch": position.epoch,
                    "offset": position.offset,
                },
                "viewers": {"now": viewers, "peak": peak},
                "banners": shown_banners,
            }
        )
