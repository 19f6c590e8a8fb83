"""Checks on decoded JSON input; each failure names the field and the fix."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from store.errors import InvalidInput

_MISSING = object()

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}\Z")

# Times must fall in the UTC years 2000 to 9998. PostgreSQL can store every such time,
# and Python can convert it to any UTC offset because its datetime ends at year 9999.
EARLIEST_YEAR = 2000
LATEST_YEAR = 9998
_EARLIEST_UTC = dt.datetime(EARLIEST_YEAR, 1, 1)
_AFTER_LATEST_UTC = dt.datetime(LATEST_YEAR + 1, 1, 1)


def reject_unknown(body: dict[str, Any], allowed: Iterable[str]) -> None:
    allowed_set = set(allowed)
    for name in body:
        if name not in allowed_set:
            raise InvalidInput(
                f"unknown field {name!r}; allowed fields are "
                + ", ".join(sorted(allowed_set)),
                field=name,
                code="unknown_field",
            )


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def get_int(
    body: dict[str, Any],
    name: str,
    *,
    minimum: int,
    maximum: int,
    required: bool = True,
    nullable: bool = False,
    default: Any = _MISSING,
) -> Any:
    value = body.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise InvalidInput(f"{name} is required", field=name, code="missing")
        return default
    if value is None and nullable:
        return None
    if not is_int(value):
        raise InvalidInput(
            f"{name} must be an integer, got {value!r}", field=name, code="invalid_type"
        )
    if not minimum <= value <= maximum:
        raise InvalidInput(
            f"{name} must be from {minimum} to {maximum}, got {value}",
            field=name,
            code="out_of_range",
        )
    return value


def get_str(
    body: dict[str, Any],
    name: str,
    *,
    max_length: int,
    min_length: int = 1,
    required: bool = True,
    default: Any = _MISSING,
) -> Any:
    value = body.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise InvalidInput(f"{name} is required", field=name, code="missing")
        return default
    if not isinstance(value, str):
        raise InvalidInput(
            f"{name} must be a string, got {type(value).__name__}",
            field=name,
            code="invalid_type",
        )
    if "\x00" in value:
        raise InvalidInput(
            f"{name} must not contain NUL characters", field=name, code="invalid"
        )
    value = value.strip()
    if len(value) < min_length:
        raise InvalidInput(
            f"{name} must not be empty"
            if min_length == 1
            else f"{name} must be at least {min_length} characters",
            field=name,
            code="too_short",
        )
    if len(value) > max_length:
        raise InvalidInput(
            f"{name} must be at most {max_length} characters, got {len(value)}",
            field=name,
            code="too_long",
        )
    return value


def get_bool(
    body: dict[str, Any], name: str, *, required: bool = True, default: Any = _MISSING
) -> Any:
    value = body.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise InvalidInput(f"{name} is required", field=name, code="missing")
        return default
    if not isinstance(value, bool):
        raise InvalidInput(
            f"{name} must be true or false, got {value!r}",
            field=name,
            code="invalid_type",
        )
    return value


def check_url(value: str, name: str, *, allow_relative: bool = False) -> str:
    """Accept '' (no URL), an http(s) URL, or a path on this site when allowed."""
    if value == "":
        return value
    if value.startswith(("https://", "http://")) and " " not in value:
        return value
    if allow_relative and value.startswith("/") and not value.startswith("//"):
        return value
    raise InvalidInput(
        f"{name} must be an http:// or https:// URL", field=name, code="invalid_url"
    )


def normalize_tax_id(raw: str) -> str:
    """Validate a tax id; a 14-character one is checked as a Brazilian CNPJ."""
    compact = re.sub(r"[.\-/\s]", "", raw).upper()
    if compact.isdigit() and len(compact) in (12, 13):
        raise InvalidInput(
            f"tax id {raw!r} has {len(compact)} digits: a CNPJ has 14",
            field="tax_id",
            code="invalid_cnpj",
        )
    if len(compact) == 14:
        if not is_valid_cnpj(compact):
            raise InvalidInput(
                f"CNPJ {raw!r} is invalid: its check digits do not match",
                field="tax_id",
                code="invalid_cnpj",
            )
        return compact
    if not 3 <= len(compact) <= 32 or not compact.isalnum():
        raise InvalidInput(
            "tax_id must be a CNPJ (14 characters) or another tax id of 3 to 32 "
            "letters and digits",
            field="tax_id",
            code="invalid_tax_id",
        )
    return compact


def is_valid_cnpj(compact: str) -> bool:
    """Check a CNPJ: 12 letters or digits, then two check digits (modulus 11).

    Each character counts as its code point minus 48, which covers the numeric CNPJ
    and the alphanumeric one Receita Federal issues from July 2026.
    """
    if not re.fullmatch(r"[0-9A-Z]{12}[0-9]{2}", compact):
        return False
    if len(set(compact)) == 1:
        return False

    values = [ord(character) - 48 for character in compact]
    for length in (12, 13):
        # Weights run 2..9 from the right, wrapping around: 5,4,3,2,9,8,...,2.
        weights = [(length - 1 - index) % 8 + 2 for index in range(length)]
        total = sum(
            value * weight
            for value, weight in zip(values[:length], weights, strict=True)
        )
        remainder = total % 11
        check = 0 if remainder < 2 else 11 - remainder
        if values[length] != check:
            return False
    return True


def get_datetime(
    body: dict[str, Any], name: str, *, nullable: bool = True
) -> dt.datetime | None:
    """Parse an ISO 8601 time with a UTC offset, such as 2026-12-04T18:00:00Z.

    Raises InvalidInput, naming the field, unless the time falls in the UTC years
    EARLIEST_YEAR to LATEST_YEAR.
    """
    value = body.get(name)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise InvalidInput(
            f"{name} must be an ISO 8601 time such as 2026-12-04T18:00:00Z",
            field=name,
            code="invalid_type",
        )
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{name} {value!r} is not an ISO 8601 time such as 2026-12-04T18:00:00Z",
            field=name,
            code="invalid",
        ) from None
    offset = parsed.utcoffset()
    if offset is None:
        raise InvalidInput(
            f"{name} needs a UTC offset, such as Z or -03:00",
            field=name,
            code="invalid",
        )
    # The bounds move by the offset instead of the time moving to UTC, because that
    # conversion overflows near year 1 and year 9999. An offset is under 24 hours.
    local_time = parsed.replace(tzinfo=None)
    if not _EARLIEST_UTC + offset <= local_time < _AFTER_LATEST_UTC + offset:
        raise InvalidInput(
            f"{name} {value!r} is out of range: send a time in the years "
            f"{EARLIEST_YEAR} to {LATEST_YEAR} UTC, such as 2026-12-04T18:00:00Z",
            field=name,
            code="out_of_range",
        )
    return parsed
