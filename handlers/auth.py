"""Manager login, token refresh and the bearer check for manager routes."""

from __future__ import annotations

import logging
import time
from typing import Any

import jwt

from handlers.base import ApiHandler
from handlers.errors import ApiError
from handlers.validation import get_str, reject_unknown
from store import managers

log = logging.getLogger(__name__)

JWT_ALGORITHM = "HS256"
JWT_AUDIENCE = "vitrine-manager"

# Used only when VITRINE_JWT_SECRET is empty in development, which settings reject in
# production.
DEVELOPMENT_JWT_SECRET = "vitrine-development-secret-do-not-use-in-production"


def jwt_secret(secret: str) -> str:
    return secret or DEVELOPMENT_JWT_SECRET


def issue_access_token(manager: Any, secret: str, ttl: int) -> str:
    now = int(time.time())
    claims = {
        "sub": str(manager["id"]),
        "name": manager["username"],
        "role": manager["role"],
        "aud": JWT_AUDIENCE,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, jwt_secret(secret), algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, secret: str) -> dict[str, Any]:
    """Return the claims of a valid token; raise jwt.InvalidTokenError otherwise."""
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt_secret(secret),
        algorithms=[JWT_ALGORITHM],
        audience=JWT_AUDIENCE,
        options={"require": ["exp", "sub", "role"]},
    )
    return claims


class ManagerHandler(ApiHandler):
    """A handler whose every method needs a manager's bearer token."""

    manager: dict[str, Any]
    allowed_roles: tuple[str, ...] = ("admin", "host")

    def prepare(self) -> None:
        super().prepare()
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "unauthorized",
                "send the access token as 'Authorization: Bearer TOKEN'",
                field="Authorization",
            )
        try:
            claims = decode_access_token(token.strip(), self.ctx.settings.jwt_secret)
        except jwt.ExpiredSignatureError:
            raise ApiError(
                401,
                "token_expired",
                "the access token has expired; get a new one from "
                "/api/v1/manager/refresh",
                field="Authorization",
            ) from None
        except jwt.InvalidTokenError:
            raise ApiError(
                401,
                "unauthorized",
                "the access token is invalid",
                field="Authorization",
            ) from None
        if claims["role"] not in self.allowed_roles:
            raise ApiError(
                403, "forbidden", f"the role {claims['role']!r} may not do this"
            )
        self.manager = claims


class LoginHandler(ApiHandler):
    async def post(self) -> None:
        body = self.json_body()
        reject_unknown(body, ["username", "password"])
        username = get_str(body, "username", max_length=64)
        password = body.get("password")
        if not isinstance(password, str) or not password:
            raise ApiError(400, "missing", "password is required", field="password")

        async with self.connection() as connection:
            manager = await managers.authenticate(connection, username, password)
            if manager is None:
                log.warning("failed login for manager %r", username)
                raise ApiError(
                    401, "invalid_credentials", "the username or password is wrong"
                )
            refresh_token = await managers.issue_refresh_token(
                connection, manager["id"], self.ctx.settings.refresh_token_ttl
            )

        log.info("manager %s logged in", manager["id"])
        self.write_json(self._tokens(manager, refresh_token))

    def _tokens(self, manager: Any, refresh_token: str) -> dict[str, Any]:
        settings = self.ctx.settings
        return {
            "access_token": issue_access_token(
                manager, settings.jwt_secret, settings.access_token_ttl
            ),
            "refresh_token": refresh_token,
            "expires_in": settings.access_token_ttl,
        }


class RefreshHandler(LoginHandler):
    async def post(self) -> None:
        body = self.json_body()
        reject_unknown(body, ["refresh_token"])
        token = get_str(body, "refresh_token", max_length=200)

        async with self.connection() as connection:
            rotated = await managers.rotate_refresh_token(
                connection, token, self.ctx.settings.refresh_token_ttl
            )
        if rotated is None:
            raise ApiError(
                401,
                "invalid_refresh_token",
                "the refresh token is invalid, expired or already used; log in again",
                field="refresh_token",
            )
        row, successor = rotated
        manager = {
            "id": row["manager_id"],
            "username": row["username"],
            "role": row["role"],
        }
        self.write_json(self._tokens(manager, successor))
