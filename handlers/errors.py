"""Errors a handler raises about the request itself."""

from __future__ import annotations

from typing import Any

from store.errors import StoreError


class ApiError(StoreError):
    """An error with an explicit HTTP status, for checks made in handlers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message, field=field, code=code, details=details)
        self.status = status
        # Seconds for the Retry-After header of a 429 or 503.
        self.retry_after = retry_after
