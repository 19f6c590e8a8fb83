"""Wholesale pricing and quantity rules of a product."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from store.errors import InvalidInput

MAX_QUANTITY = 1_000_000
MAX_PRICE_CENTS = 10**12

# Limits of one order, and so of the cart that becomes it. A line can reach
# MAX_PRICE_CENTS * MAX_QUANTITY = 10**18 cents, and a few such lines would overflow
# the bigint total_cents column (2**63 - 1). 10**15 cents also stays below 2**53, so
# JavaScript numbers hold every total exactly. The unit count must fit the integer
# column orders.item_count (2**31 - 1).
MAX_ORDER_TOTAL_CENTS = 10**15
MAX_ORDER_ITEM_COUNT = 10**9


def unit_price_cents(
    price_cents: int,
    tiers: Sequence[Mapping[str, int]],
    quantity: int,
    flash_price_cents: int | None = None,
) -> int:
    """Return the unit price for ``quantity``: the tier with the largest minimum not
    above it, or the base price when no tier applies. ``tiers`` is sorted by minimum.
    A running flash offer caps the price.
    """
    price = price_cents
    for tier in tiers:
        if tier["min_quantity"] > quantity:
            break
        price = tier["price_cents"]
    if flash_price_cents is not None:
        price = min(price, flash_price_cents)
    return price


def running_flash_price(product: Any, now: dt.datetime | None = None) -> int | None:
    """Return the flash offer price of a product row while the offer runs."""
    ends_at = product["flash_ends_at"]
    if ends_at is None or product["flash_price_cents"] is None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    if now >= ends_at:
        return None
    price: int = product["flash_price_cents"]
    return price


def product_unit_price(product: Any, quantity: int) -> int:
    """Return the unit price of a product row for ``quantity`` right now."""
    return unit_price_cents(
        product["price_cents"],
        product["tiers"],
        quantity,
        running_flash_price(product),
    )


def check_quantity(product: Any, quantity: int, field: str) -> None:
    """Raise InvalidInput unless ``quantity`` (positive) fits the product's rules."""
    name = product["name"]
    min_quantity = product["min_quantity"]
    step = product["step"]
    max_quantity = product["max_quantity"]

    if quantity < min_quantity:
        raise InvalidInput(
            f"{name}: quantity {quantity} is below the minimum of {min_quantity}",
            field=field,
            code="below_minimum",
        )
    if quantity % step != 0:
        lower = quantity - quantity % step
        raise InvalidInput(
            f"{name}: quantity {quantity} must be a multiple of {step} "
            f"(packs of {step}); try {max(lower, min_quantity)} or {lower + step}",
            field=field,
            code="invalid_step",
        )
    if max_quantity is not None and quantity > max_quantity:
        raise InvalidInput(
            f"{name}: quantity {quantity} is above the maximum of {max_quantity} "
            "per order",
            field=field,
            code="above_maximum",
        )


def check_order_size(total_cents: int, item_count: int, field: str) -> None:
    """Raise InvalidInput when an order's total or unit count is above its maximum."""
    if total_cents > MAX_ORDER_TOTAL_CENTS:
        raise InvalidInput(
            f"the order total would be {total_cents} cents, above the maximum of "
            f"{MAX_ORDER_TOTAL_CENTS} cents per order; lower the quantities",
            field=field,
            code="total_too_large",
        )
    if item_count > MAX_ORDER_ITEM_COUNT:
        raise InvalidInput(
            f"the order would have {item_count} units, above the maximum of "
            f"{MAX_ORDER_ITEM_COUNT} units per order; lower the quantities",
            field=field,
            code="item_count_too_large",
        )


def normalize_tiers(raw: Any, field: str = "tiers") -> list[dict[str, int]]:
    """Validate a tier list and return it sorted by ``min_quantity``."""
    if not isinstance(raw, list):
        raise InvalidInput(
            "tiers must be a list of {min_quantity, price_cents}", field=field
        )
    if len(raw) > 20:
        raise InvalidInput("at most 20 price tiers are allowed", field=field)

    tiers: list[dict[str, int]] = []
    for index, tier in enumerate(raw):
        where = f"{field}[{index}]"
        if not isinstance(tier, dict) or set(tier) != {"min_quantity", "price_cents"}:
            raise InvalidInput(
                "each tier must be an object with exactly min_quantity and price_cents",
                field=where,
            )
        min_quantity = tier["min_quantity"]
        price = tier["price_cents"]
        if not _is_int(min_quantity) or not 2 <= min_quantity <= MAX_QUANTITY:
            raise InvalidInput(
                f"min_quantity must be an integer from 2 to {MAX_QUANTITY}",
                field=f"{where}.min_quantity",
            )
        if not _is_int(price) or price < 0:
            raise InvalidInput(
                "price_cents must be a non-negative integer of cents",
                field=f"{where}.price_cents",
            )
        tiers.append({"min_quantity": min_quantity, "price_cents": price})

    tiers.sort(key=lambda tier: tier["min_quantity"])
    for previous, current in itertools.pairwise(tiers):
        if previous["min_quantity"] == current["min_quantity"]:
            raise InvalidInput(
                f"two tiers start at {current['min_quantity']} units",
                field=field,
            )
    return tiers


def check_tier_prices(
    price_cents: int, tiers: Sequence[Mapping[str, int]], field: str = "tiers"
) -> None:
    """Raise InvalidInput when a tier costs more than the base price or than the
    tier for fewer units. ``tiers`` is sorted by minimum."""
    ceiling = price_cents
    for tier in tiers:
        if tier["price_cents"] > ceiling:
            raise InvalidInput(
                f"the tier from {tier['min_quantity']} units costs "
                f"{tier['price_cents']} cents, above the {ceiling} cents for fewer "
                f"units; set it to {ceiling} cents or less",
                field=field,
            )
        ceiling = tier["price_cents"]


def _is_int(value: Any) -> bool:
    # bool is an int subclass, and true must not pass as a quantity of 1.
    return isinstance(value, int) and not isinstance(value, bool)
