"""Manager routes for a live's banners and its sales dashboard."""

from __future__ import annotations

import logging
from typing import Any

from handlers.auth import ManagerHandler
from handlers.base import parse_int_id
from handlers.validation import (
    check_url,
    get_bool,
    get_datetime,
    get_str,
    reject_unknown,
)
from store import banners, dashboard, lives

log = logging.getLogger(__name__)


class BannersHandler(ManagerHandler):
    async def get(self, slug: str) -> None:
        async with self.connection() as connection:
            live = await lives.get_by_slug(connection, slug)
            rows = await banners.list_banners(connection, live["id"])
        self.write_json({"banners": [banners.banner_to_wire(row) for row in rows]})

    async def post(self, slug: str) -> None:
        fields = parse_banner(self.json_body(), partial=False)
        async with self.connection() as connection, connection.transaction():
            live = await lives.get_by_slug(connection, slug)
            row = await banners.create(connection, live["id"], fields)
            shown = await banners.shown_banners(connection, live["id"])
            pending = await self.ctx.outbox.add(connection, f"live:{slug}")
        await self.ctx.broker.publish(
            f"live:{slug}", "banners.changed", {"banners": shown}
        )
        self.ctx.outbox.mark_published(pending)
        self.write_json(banners.banner_to_wire(row), 201)


class BannerHandler(ManagerHandler):
    async def patch(self, slug: str, raw_id: str) -> None:
        banner_id = parse_int_id(raw_id, "banner_id")
        fields = parse_banner(self.json_body(), partial=True)
        async with self.connection() as connection, connection.transaction():
            live = await lives.get_by_slug(connection, slug)
            row = await banners.update(connection, live["id"], banner_id, fields)
            shown = await banners.shown_banners(connection, live["id"])
            pending = await self.ctx.outbox.add(connection, f"live:{slug}")
        await self.ctx.broker.publish(
            f"live:{slug}", "banners.changed", {"banners": shown}
        )
        self.ctx.outbox.mark_published(pending)
        self.write_json(banners.banner_to_wire(row))

    async def delete(self, slug: str, raw_id: str) -> None:
        banner_id = parse_int_id(raw_id, "banner_id")
        async with self.connection() as connection, connection.transaction():
            live = await lives.get_by_slug(connection, slug)
            await banners.delete(connection, live["id"], banner_id)
            shown = await banners.shown_banners(connection, live["id"])
            pending = await self.ctx.outbox.add(connection, f"live:{slug}")
        await self.ctx.broker.publish(
            f"live:{slug}", "banners.changed", {"banners": shown}
        )
        self.ctx.outbox.mark_published(pending)
        self.set_status(204)
        self.finish()


class DashboardHandler(ManagerHandler):
    async def get(self, slug: str) -> None:
        async with self.connection() as connection:
            live = await lives.get_by_slug(connection, slug)
            figures = await dashboard.dashboard(connection, live["id"])
        now, peak = await self.ctx.broker.presence.viewers(f"live:{slug}")
        figures["viewers"] = {"now": now, "peak": peak}
        self.write_json(figures)


def parse_banner(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    reject_unknown(body, banners.EDITABLE_FIELDS)
    fields: dict[str, Any] = {}
    if not partial or "text" in body:
        fields["text"] = get_str(body, "text", max_length=300)
    for name in ("image_url", "link_url"):
        if name in body:
            fields[name] = check_url(
                get_str(body, name, max_length=2000, min_length=0),
                name,
                allow_relative=True,
            )
    if "visible" in body:
        fields["visible"] = get_bool(body, "visible")
    for name in ("show_at", "hide_at"):
        if name in body:
            fields[name] = get_datetime(body, name)
    return fields
