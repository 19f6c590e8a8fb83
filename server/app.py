"""The Tornado application: routes and settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import tornado.web

from handlers import (
    accounts,
    auth,
    carts,
    catalog_csv,
    health,
    live_control,
    lives,
    manager_lives,
    order_desk,
    orders,
    pages,
    uploads,
    ws_upgrade,
)
from handlers.context import AppContext
from server.logs import log_request

STATIC_DIR = Path(__file__).parent / "static"

SLUG = r"([a-z0-9][a-z0-9-]{0,62})"
ID = r"([^/]+)"
ORDER_CODE = r"([0-9A-Za-z]{8})"


class MediaHandler(tornado.web.StaticFileHandler):
    def set_extra_headers(self, path: str) -> None:
        # Uploads are checked only by their first bytes: a browser must not sniff
        # them into another type.
        self.set_header("X-Content-Type-Options", "nosniff")

    def write_error(self, status_code: int, **kwargs: object) -> None:
        # Tornado's own messages name paths on the server's disk, so they stay out.
        if status_code == 404:
            code, message = "not_found", f"no image at {self.request.path}"
        elif status_code == 403:
            code, message = "forbidden", f"{self.request.path} is not an image"
        else:
            code, message = self._reason.lower().replace(" ", "_"), self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(
            orjson.dumps({"error": {"code": code, "message": message, "field": None}})
        )


class NotFoundHandler(tornado.web.RequestHandler):
    def prepare(self) -> None:
        # No log message: the access log already has a line for each 404.
        raise tornado.web.HTTPError(404)

    def write_error(self, status_code: int, **kwargs: object) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(
            b'{"error": {"code": "not_found", "message": "no such route", '
            b'"field": null}}'
        )


def make_app(ctx: AppContext) -> tornado.web.Application:
    deps = {"ctx": ctx}
    routes: list[Any] = [
        (r"/healthz", health.HealthHandler, deps),
        (r"/readyz", health.ReadyHandler, deps),
        (r"/ws", ws_upgrade.UpgradeHandler, deps),
        (rf"/api/v1/lives/{SLUG}", lives.LiveHandler, deps),
        (rf"/api/v1/lives/{SLUG}/carts", carts.CartCreateHandler, deps),
        (rf"/api/v1/carts/{ID}", carts.CartHandler, deps),
        (rf"/api/v1/carts/{ID}/items/{ID}", carts.CartItemHandler, deps),
        (rf"/api/v1/carts/{ID}/checkout", carts.CheckoutHandler, deps),
        (rf"/api/v1/orders/{ID}", orders.OrderHandler, deps),
        (r"/api/v1/manager/login", auth.LoginHandler, deps),
        (r"/api/v1/manager/refresh", auth.RefreshHandler, deps),
        (r"/api/v1/manager/logout", auth.LogoutHandler, deps),
        (r"/api/v1/manager/accounts", accounts.AccountsHandler, deps),
        (r"/api/v1/manager/uploads", uploads.UploadRequestHandler, deps),
        (r"/api/v1/uploads/(.+)", uploads.LocalUploadHandler, deps),
        (
            r"/media/(.*)",
            MediaHandler,
            {"path": ctx.settings.media_dir},
        ),
        (r"/api/v1/manager/lives", manager_lives.ManagerLivesHandler, deps),
        (rf"/api/v1/manager/lives/{SLUG}", manager_lives.ManagerLiveHandler, deps),
        (
            rf"/api/v1/manager/lives/{SLUG}/products",
            manager_lives.ManagerProductsHandler,
            deps,
        ),
        (
            rf"/api/v1/manager/lives/{SLUG}/products/{ID}",
            manager_lives.ManagerProductHandler,
            deps,
        ),
        (
            rf"/api/v1/manager/lives/{SLUG}/banners",
            live_control.BannersHandler,
            deps,
        ),
        (
            rf"/api/v1/manager/lives/{SLUG}/banners/{ID}",
            live_control.BannerHandler,
            deps,
        ),
        (
            rf"/api/v1/manager/lives/{SLUG}/dashboard",
            live_control.DashboardHandler,
            deps,
        ),
        (
            rf"/api/v1/manager/lives/{SLUG}/products.csv",
            catalog_csv.CatalogCsvHandler,
            deps,
        ),
        (rf"/api/v1/manager/lives/{SLUG}/orders", order_desk.OrdersHandler, deps),
        (
            rf"/api/v1/manager/lives/{SLUG}/orders/counts",
            order_desk.OrderCountsHandler,
            deps,
        ),
        (
            rf"/api/v1/manager/lives/{SLUG}/orders/export.csv",
            order_desk.OrderExportHandler,
            deps,
        ),
        (
            rf"/api/v1/manager/lives/{SLUG}/orders/{ORDER_CODE}",
            order_desk.OrderHandler,
            deps,
        ),
        (r"/", pages.PageHandler, {"path": STATIC_DIR / "index.html"}),
        (rf"/live/{SLUG}/?", pages.PageHandler, {"path": STATIC_DIR / "live.html"}),
        (
            r"/panel(?:/.*)?",
            pages.PageHandler,
            {"path": STATIC_DIR / "panel" / "index.html"},
        ),
        (rf"/orders/{ID}", pages.PageHandler, {"path": STATIC_DIR / "order.html"}),
    ]
    return tornado.web.Application(
        routes,
        static_path=str(STATIC_DIR),
        static_url_prefix="/static/",
        default_handler_class=NotFoundHandler,
        log_function=log_request,
        compress_response=False,
    )
