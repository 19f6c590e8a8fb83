"""Errors raised by the store: the caller's mistake apart from a conflict with state."""

from __future__ import annotations

from typing import Any


class StoreError(Exception):
    """Base of every error the store raises on purpose.

    ``code`` is a stable machine-readable name, ``field`` the input it concerns (if
    any) and ``details`` extra JSON-ready facts such as the short lines of a checkout.
    """

    code = "store_error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code
        self.details = details or {}


class InvalidInput(StoreError):
    """A value breaks a rule: a quantity off the product's step, a bad tier list."""

    code = "invalid"


class NotFound(StoreError):
    code = "not_found"


class AccessDenied(StoreError):
    """A token that does not open the cart or order, which may or may not exist."""

    code = "forbidden"


class Conflict(StoreError):
    """The request is valid but the current state does not allow it."""

    code = "conflict"


class StockShort(Conflict):
    code = "stock_short"


class PriceChanged(Conflict):
    code = "price_changed"


class IdempotencyKeyReused(StoreError):
    code = "idempotency_key_reused"
