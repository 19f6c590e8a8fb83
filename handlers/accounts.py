"""Manager accounts, for admins only."""

from __future__ import annotations

import logging

from handlers.auth import ManagerHandler
from handlers.errors import ApiError
from handlers.validation import get_str, reject_unknown
from store import managers

log = logging.getLogger(__name__)

MIN_PASSWORD = 10


class AccountsHandler(ManagerHandler):
    allowed_roles = ("admin",)

    async def get(self) -> None:
        async with self.connection() as connection:
            rows = await managers.list_managers(connection)
        self.write_json({"managers": [dict(row) for row in rows]})

    async def post(self) -> None:
        body = self.json_body()
        reject_unknown(body, ["username", "password", "role"])
        username = get_str(body, "username", max_length=64)
        password = body.get("password")
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            raise ApiError(
                400,
                "invalid",
                f"password must be at least {MIN_PASSWORD} characters",
                field="password",
            )
        role = body.get("role", "host")
        if role not in managers.ROLES:
            raise ApiError(400, "invalid", "role must be admin or host", field="role")

        async with self.connection() as connection:
            manager_id = await managers.create(connection, username, password, role)
        log.info(
            "manager %s (%s) created by manager %s", manager_id, role, self.manager_id
        )
        self.write_json({"id": manager_id, "username": username, "role": role}, 201)
