"""The base of every JSON handler: body parsing, the error shape, outage responses."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import asyncpg
import orjson
import tornado.web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from handlers.context import AppContext
from handlers.errors import ApiError
from handlers.redaction import redact
from realtime.handshake import client_address
from store.errors import (
    AccessDenied,
    Conflict,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    StoreError,
)
from store.pool import Connection

log = logging.getLogger(__name__)

# Errors that mean PostgreSQL or Redis is unreachable, not that the request is wrong.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    RedisConnectionError,
    RedisTimeoutError,
)

_STATUS_BY_ERROR: list[tuple[type[StoreError], int]] = [
    (InvalidInput, 400),
    (AccessDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (IdempotencyKeyReused, 422),
]

POOL_ACQUIRE_TIMEOUT = 5.0


class ApiHandler(tornado.web.RequestHandler):
    ctx: AppContext

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        # The HTTP server leaves remote_ip at the peer's address (no xheaders), so
        # only a trusted proxy can name another client address.
        peer = self.request.remote_ip or "unknown"
        self.request.remote_ip = client_address(
            self.request.headers, peer, ctx.trusted_proxies
        )
        self.request_id = self.request.headers.get("X-Request-Id") or uuid.uuid4().hex

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    def prepare(self) -> Awaitable[None] | None:
        self.ctx.requests_in_flight += 1
        self._counted = True
        self.set_header("X-Request-Id", self.request_id)

        # The body is read before prepare(): a chunked one has no Content-Length.
        limit = self.body_limit()
        if len(self.request.body) > limit:
            raise ApiError(
                413, "body_too_large", f"the request body is over {limit} bytes"
            )
        return None

    def body_limit(self) -> int:
        return self.ctx.settings.max_body_bytes

    def on_finish(self) -> None:
        if getattr(self, "_counted", False):
            self.ctx.requests_in_flight -= 1
            self._counted = False
            if self.ctx.draining and self.ctx.requests_in_flight == 0:
                self.ctx.idle.set()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        async with self.ctx.pool.acquire(timeout=POOL_ACQUIRE_TIMEOUT) as connection:
            yield connection

    def json_body(self) -> dict[str, Any]:
        """Decode the body as one JSON object or raise a 400 that gives the reason."""
        if not self.request.body:
            raise ApiError(
                400, "invalid_json", "the request body must be a JSON object"
            )
        try:
            body = orjson.loads(self.request.body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(
                400, "invalid_json", f"the body is not valid JSON: {exc}"
            ) from None
        if not isinstance(body, dict):
            raise ApiError(
                400, "invalid_json", "the request body must be a JSON object"
            )
        return body

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(orjson.dumps(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        status, body = _error_response(status_code, error, self._reason)
        self.set_status(status)
        if status == 503:
            self.set_header("Retry-After", str(self.ctx.settings.retry_after_seconds))
        if isinstance(error, ApiError) and error.retry_after is not None:
            self.set_header("Retry-After", str(error.retry_after))
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps({"error": body}))

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A bad request is the client's mistake and an outage is logged once per
        # request without a trace; only unexpected errors get a traceback.
        if isinstance(value, StoreError | tornado.web.HTTPError):
            return
        if isinstance(value, OUTAGE_ERRORS):
            log.warning(
                "%s %s failed, dependency unreachable: %r (request %s)",
                self.request.method,
                self.request.path,
                value,
                self.request_id,
            )
            return
        # Tornado's own version logs the request's repr, URL and query included.
        log.error(
            "uncaught exception in %s (request %s)",
            self._request_summary(),
            self.request_id,
            exc_info=(typ, value, tb),  # type: ignore[arg-type]
        )

    def _request_summary(self) -> str:
        return (
            f"{self.request.method} {redact(self.request.uri or '')}"
            f" ({self.request.remote_ip})"
        )


def _error_response(
    status_code: int, error: BaseException | None, reason: str
) -> tuple[int, dict[str, Any]]:
    if isinstance(error, ApiError):
        status = error.status
    elif isinstance(error, StoreError):
        status = next(
            (code for kind, code in _STATUS_BY_ERROR if isinstance(error, kind)), 500
        )
    elif isinstance(error, OUTAGE_ERRORS):
        return 503, {
            "code": "unavailable",
            "message": "the service is briefly unavailable; retry after the "
            "Retry-After delay",
            "field": None,
        }
    elif isinstance(error, tornado.web.HTTPError):
        return status_code, {
            "code": _code_for_status(status_code),
            "message": error.log_message or reason,
            "field": None,
        }
    else:
        return status_code, {
            "code": _code_for_status(status_code),
            "message": reason,
            "field": None,
        }

    body: dict[str, Any] = {
        "code": error.code,
        "message": error.message,
        "field": error.field,
    }
    body.update(error.details)
    return status, body


def _code_for_status(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
    }.get(status, "internal_error")


def parse_uuid(raw: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(
            404, "not_found", f"{field} {raw!r} is not a valid id", field=field
        ) from None


def parse_int_id(raw: str, field: str) -> int:
    # isdigit() alone accepts superscripts and digits of other scripts.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ApiError(
            404, "not_found", f"{field} {raw!r} is not a valid id", field=field
        )
    return int(raw)
