"""A live's catalog as CSV: export, and import applied all or nothing."""

from __future__ import annotations

import csv
import io
import itertools
import logging
from typing import Any

from asyncpg import Record

from handlers.auth import ManagerHandler
from handlers.errors import ApiError
from handlers.manager_lives import parse_product_fields, product_change_events
from handlers.order_desk import safe_cell as _safe_cell
from store import lives, products
from store.errors import Conflict, InvalidInput
from store.pool import Connection

log = logging.getLogger(__name__)

# Every editable product field but the flash offer, which is set during a live.
COLUMNS = tuple(
    name for name in products.EDITABLE_FIELDS if not name.startswith("flash_")
)
REQUIRED_COLUMNS = ("sku", "name", "price_cents")
INTEGER_COLUMNS = {
    "price_cents",
    "min_quantity",
    "step",
    "max_quantity",
    "stock",
    "position",
    "low_stock_threshold",
}
MAX_ROWS = 20_000


def format_tiers(tiers: list[dict[str, int]]) -> str:
    return ";".join(f"{tier['min_quantity']}:{tier['price_cents']}" for tier in tiers)


class CatalogCsvHandler(ManagerHandler):
    async def get(self, slug: str) -> None:
        async with self.connection() as connection:
            live = await lives.get_by_slug(connection, slug)
            rows = await products.list_all(connection, live["id"])

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(
                [
                    _safe_cell(row["sku"]),
                    _safe_cell(row["name"]),
                    _safe_cell(row["description"]),
                    row["image_url"],
                    row["price_cents"],
                    format_tiers(row["tiers"]),
                    row["min_quantity"],
                    row["step"],
                    "" if row["max_quantity"] is None else row["max_quantity"],
                    row["stock"],
                    "true" if row["visible"] else "false",
                    row["position"],
                    row["low_stock_threshold"],
                ]
            )
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header(
            "Content-Disposition", f'attachment; filename="catalog-{slug}.csv"'
        )
        self.finish(buffer.getvalue().encode())

    async def post(self, slug: str) -> None:
        parsed, errors = parse_catalog(self.request.body)

        async with self.connection() as connection, connection.transaction():
            live = await lives.get_by_slug(connection, slug)
            existing = {
                row["sku"]: row
                for row in await products.list_all(connection, live["id"])
            }
            events: list[tuple[str, dict[str, Any]]] = []
            created = updated = 0
            for line, fields in parsed:
                current = existing.get(fields["sku"])
                try:
                    async with connection.transaction():
                        await apply_row(connection, live["id"], current, fields, events)
                except (InvalidInput, Conflict) as exc:
                    # Rules that need the stored product, such as tiers that must not
                    # cost more than a new price. Each row has its own savepoint, so
                    # the import goes on to report every such row.
                    errors.append(
                        {"line": line, "field": exc.field, "message": exc.message}
                    )
                    continue
                if current is None:
                    created += 1
                else:
                    updated += 1
            # The valid rows are applied even when others are invalid, so the
            # errors list the rows that break a stored product's rules too. The
            # transaction then rolls every row back.
            if errors:
                errors.sort(key=lambda error: error["line"])
                raise csv_rows_invalid(errors)
            pending = await self.ctx.outbox.add(connection, f"live:{slug}")

        log.info(
            "catalog of %s imported by manager %s: %d created, %d updated",
            slug,
            self.manager_id,
            created,
            updated,
        )
        for event_type, data in events:
            await self.ctx.broker.publish(f"live:{slug}", event_type, data)
        self.ctx.outbox.mark_published(pending)
        self.write_json({"created": created, "updated": updated})


async def apply_row(
    connection: Connection,
    live_id: int,
    current: Record | None,
    fields: dict[str, Any],
    events: list[tuple[str, dict[str, Any]]],
) -> None:
    """Create or update one row's product and add the events it causes."""
    if current is None:
        row = await products.create(connection, live_id, fields)
        if row["visible"]:
            events.append(("product.created", products.product_to_wire(row)))
        return

    before, after = await products.update(connection, live_id, current["id"], fields)
    events.extend(product_change_events(before, after))


def csv_rows_invalid(errors: list[dict[str, Any]]) -> ApiError:
    return ApiError(
        400,
        "csv_invalid",
        f"{len(errors)} rows are invalid; nothing was imported",
        details={"errors": errors},
    )


def csv_syntax_error(line: int, exc: csv.Error) -> ApiError:
    return ApiError(
        400,
        "csv_invalid",
        f"line {line}: {exc}; check that every quoted cell is closed and that no "
        f"cell is longer than {csv.field_size_limit()} characters",
        details={"errors": [{"line": line, "field": None, "message": str(exc)}]},
    )


def parse_catalog(
    raw: bytes,
) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]]]:
    """Parse and validate every row.

    Returns the valid rows' fields with their line numbers, and an error per invalid
    row. A row's line number is the line where its record starts. A file that cannot
    be read as a catalog at all raises ApiError.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "csv_invalid", "the file must be UTF-8 text") from None
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = next(reader, [])
    except csv.Error as exc:
        raise csv_syntax_error(1, exc) from None
    if len(set(header)) != len(header):
        raise ApiError(
            400, "csv_invalid", "the header names a column twice: " + ", ".join(header)
        )
    unknown = [name for name in header if name not in COLUMNS]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if unknown or missing:
        problems = []
        if missing:
            problems.append("missing columns " + ", ".join(missing))
        if unknown:
            problems.append("unknown columns " + ", ".join(unknown))
        raise ApiError(
            400,
            "csv_invalid",
            "the header has "
            + " and ".join(problems)
            + "; columns are "
            + ", ".join(COLUMNS),
            details={
                "errors": [{"line": 1, "field": None, "message": "; ".join(problems)}]
            },
        )

    errors: list[dict[str, Any]] = []
    parsed: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    while True:
        # reader.line_num counts the lines read so far. A record starts on a fresh
        # line, so the next one starts on the line after. Once read, a record whose
        # quoted cell spans lines would leave line_num at its last line.
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise csv_syntax_error(line, exc) from None
        if not cells:
            # csv.reader returns an empty record for a blank line.
            continue
        # As csv.DictReader does: a missing cell is None, and cells beyond the
        # header go under the key None.
        record = dict(itertools.zip_longest(header, cells))
        if len(parsed) + len(errors) >= MAX_ROWS:
            raise ApiError(
                400, "csv_invalid", f"a catalog file may have at most {MAX_ROWS} rows"
            )
        try:
            body = _row_to_body(record)
            fields = parse_product_fields(body, partial=False)
        except InvalidInput as exc:
            errors.append({"line": line, "field": exc.field, "message": exc.message})
            continue
        if fields["sku"] in seen:
            errors.append(
                {
                    "line": line,
                    "field": "sku",
                    "message": f"SKU {fields['sku']!r} is also on line "
                    f"{seen[fields['sku']]}",
                }
            )
            continue
        seen[fields["sku"]] = line
        parsed.append((line, fields))

    if not parsed and not errors:
        raise ApiError(400, "csv_invalid", "the file has no product rows")
    return parsed, errors


def _row_to_body(record: dict[str | None, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, value in record.items():
        if name is None:
            raise InvalidInput("the row has more cells than the header", field=None)
        value = _unescape_cell((value or "").strip())
        if name in INTEGER_COLUMNS:
            if value == "":
                if name == "max_quantity":
                    body[name] = None
                continue
            try:
                body[name] = int(value)
            except ValueError:
                raise InvalidInput(
                    f"{name} must be a whole number, got {value!r}", field=name
                ) from None
        elif name == "visible":
            if value:
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise InvalidInput(
                        f"visible must be true or false, got {value!r}", field=name
                    )
                body[name] = value.lower() in ("true", "1", "yes")
        elif name == "tiers":
            body[name] = _parse_tiers(value)
        else:
            body[name] = value
    return body


def _unescape_cell(value: str) -> str:
    """Undo the export's formula escape, so an unchanged export imports as is."""
    if len(value) > 1 and value[0] == "'" and value[1] in "=+-@\t\r":
        return value[1:]
    return value


def _parse_tiers(value: str) -> list[dict[str, int]]:
    """Read tiers written as MIN:PRICE pairs joined by semicolons: 12:2690;48:2390."""
    tiers = []
    for part in filter(None, (piece.strip() for piece in value.split(";"))):
        minimum, _, price = part.partition(":")
        try:
            tiers.append({"min_quantity": int(minimum), "price_cents": int(price)})
        except ValueError:
            raise InvalidInput(
                f"tier {part!r} must be MIN:PRICE_CENTS, such as 12:2690", field="tiers"
            ) from None
    return tiers
