"""Manager login, token refresh and logout, and the bearer check of manager routes.

Access tokens are JWTs carrying the id of their login's token family. Logging out,
or presenting a spent refresh token, revokes the family in PostgreSQL and lists it in
Redis for as long as its access tokens live, so every process rejects them at once.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import jwt
import redis.asyncio as redis

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

REVOKED_PREFIX = "vitrine:revoked-family:"
THROTTLE_PREFIX = "vitrine:login-failures:"
# Failed logins allowed per address and per username in a window of this many seconds.
LOGIN_FAILURES_ALLOWED = 5
LOGIN_WINDOW = 60


class AuthError(Exception):
    """A manager credential that is missing, invalid or not allowed."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def jwt_secret(secret: str) -> str:
    return secret or DEVELOPMENT_JWT_SECRET


def issue_access_token(manager: Any, family: uuid.UUID, secret: str, ttl: int) -> str:
    now = int(time.time())
    claims = {
        "sub": str(manager["id"]),
        "name": manager["username"],
        "role": manager["role"],
        "fam": str(family),
        "aud": JWT_AUDIENCE,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, jwt_secret(secret), algorithm=JWT_ALGORITHM)


async def verify_access_token(
    token: str, secret: str, client: redis.Redis
) -> dict[str, Any]:
    """Return the claims of a valid, unrevoked token; raise AuthError otherwise."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            jwt_secret(secret),
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            options={"require": ["exp", "sub", "role", "fam"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError(
            401,
            "token_expired",
            "the access token has expired; get a new one from /api/v1/manager/refresh",
        ) from None
    except jwt.InvalidTokenError:
        raise AuthError(401, "unauthorized", "the access token is invalid") from None
    if await client.exists(REVOKED_PREFIX + claims["fam"]):
        raise AuthError(
            401, "token_revoked", "the access token was revoked; log in again"
        )
    return claims


async def revoke_family(client: redis.Redis, family: uuid.UUID, ttl: int) -> None:
    await client.set(REVOKED_PREFIX + str(family), 1, ex=ttl)


class ManagerHandler(ApiHandler):
    """A handler whose every method needs a manager's bearer token."""

    manager: dict[str, Any]
    allowed_roles: tuple[str, ...] = ("admin", "host")

    async def prepare(self) -> None:
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
            claims = await verify_access_token(
                token.strip(), self.ctx.settings.jwt_secret, self.ctx.broker.client
            )
        except AuthError as exc:
            raise ApiError(
                exc.status, exc.code, exc.message, field="Authorization"
            ) from None
        if claims["role"] not in self.allowed_roles:
            raise ApiError(
                403,
                "forbidden",
                f"the role {claims['role']!r} may not do this; it needs "
                + " or ".join(self.allowed_roles),
            )
        self.manager = claims

    @property
    def manager_id(self) -> int:
        return int(self.manager["sub"])


class TokenHandler(ApiHandler):
    def write_tokens(self, manager: Any, family: uuid.UUID, refresh_token: str) -> None:
        settings = self.ctx.settings
        self.write_json(
            {
                "access_token": issue_access_token(
                    manager, family, settings.jwt_secret, settings.access_token_ttl
                ),
                "refresh_token": refresh_token,
                "expires_in": settings.access_token_ttl,
                "manager": {
                    "id": manager["id"],
                    "username": manager["username"],
                    "role": manager["role"],
                },
            }
        )


class LoginHandler(TokenHandler):
    async def post(self) -> None:
        body = self.json_body()
        reject_unknown(body, ["username", "password"])
        username = get_str(body, "username", max_length=64)
        password = body.get("password")
        if not isinstance(password, str) or not password:
            raise ApiError(400, "missing", "password is required", field="password")

        address = self.request.remote_ip or "unknown"
        throttle_keys = [
            THROTTLE_PREFIX + "address:" + address,
            THROTTLE_PREFIX + "username:" + username.lower(),
        ]
        await self._reserve_attempt(throttle_keys)

        async with self.connection() as connection:
            manager = await managers.authenticate(connection, username, password)
            if manager is None:
                log.warning("failed login for manager %r from %s", username, address)
                raise ApiError(
                    401, "invalid_credentials", "the username or password is wrong"
                )
            family = uuid.uuid4()
            refresh_token = await managers.issue_refresh_token(
                connection, manager["id"], self.ctx.settings.refresh_token_ttl, family
            )

        # A successful login gives its attempt back, so only failures add up.
        async with self.ctx.broker.client.pipeline(transaction=True) as pipe:
            for key in throttle_keys:
                pipe.decr(key)
            await pipe.execute()
        log.info("manager %s logged in", manager["id"])
        self.write_tokens(manager, family, refresh_token)

    async def _reserve_attempt(self, keys: list[str]) -> None:
        """Count the attempt before checking the password, so concurrent guesses
        cannot all pass a check made before any of them is counted."""
        async with self.ctx.broker.client.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, LOGIN_WINDOW, nx=True)
                pipe.ttl(key)
            values = await pipe.execute()
        for index in range(0, len(values), 3):
            attempts, ttl = values[index], values[index + 2]
            if int(attempts) > LOGIN_FAILURES_ALLOWED:
                wait = max(int(ttl), 1)
                raise ApiError(
                    429,
                    "too_many_attempts",
                    f"too many failed logins; try again in {wait} seconds",
                    retry_after=wait,
                )


class RefreshHandler(TokenHandler):
    async def post(self) -> None:
        body = self.json_body()
        reject_unknown(body, ["refresh_token"])
        token = get_str(body, "refresh_token", max_length=200)

        async with self.connection() as connection:
            rotation = await managers.rotate_refresh_token(
                connection, token, self.ctx.settings.refresh_token_ttl
            )
        if rotation.reused_family is not None:
            await revoke_family(
                self.ctx.broker.client,
                rotation.reused_family,
                self.ctx.settings.access_token_ttl,
            )
            log.warning(
                "spent refresh token presented again; token family %s revoked",
                rotation.reused_family,
            )
        if rotation.manager is None or rotation.token is None:
            raise ApiError(
                401,
                "invalid_refresh_token",
                "the refresh token is invalid, expired or already used; log in again",
                field="refresh_token",
            )
        row = rotation.manager
        manager = {
            "id": row["manager_id"],
            "username": row["username"],
            "role": row["role"],
        }
        self.write_tokens(manager, row["family"], rotation.token)


class LogoutHandler(ManagerHandler):
    async def post(self) -> None:
        family = uuid.UUID(self.manager["fam"])
        async with self.connection() as connection:
            await managers.revoke_family(connection, family)
        await revoke_family(
            self.ctx.broker.client, family, self.ctx.settings.access_token_ttl
        )
        log.info("manager %s logged out", self.manager_id)
        self.set_status(204)
        self.finish()
