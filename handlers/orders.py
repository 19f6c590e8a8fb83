"""A buyer's view of an order, opened by its read token."""

from __future__ import annotations

import re

from handlers.base import ApiHandler
from handlers.errors import ApiError
from store import orders
from store.errors import AccessDenied

READ_TOKEN_HEADER = "X-Read-Token"
ORDER_CODE = re.compile(r"^[0-9A-Za-z]{1,16}\Z")


class OrderHandler(ApiHandler):
    async def get(self, code: str) -> None:
        token = self.request.headers.get(READ_TOKEN_HEADER) or self.get_query_argument(
            "token", ""
        )
        if not token:
            raise ApiError(
                401,
                "unauthorized",
                f"send the order's read token in the {READ_TOKEN_HEADER} header or "
                "the token query parameter",
                field=READ_TOKEN_HEADER,
            )
        if not ORDER_CODE.match(code):
            raise AccessDenied("the read token does not open this order")
        async with self.connection() as connection:
            order = await orders.get_for_buyer(connection, code.upper(), token)
        self.write_json(order)
