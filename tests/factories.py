"""Helpers that build lives, products, carts and managers through the real API."""

from __future__ import annotations

from typing import Any

import asyncpg

from store import managers
from tests.conftest import Api, Response

MANAGER_PASSWORD = "correct horse battery"

BUYER = {
    "company_name": "Loja Azul Ltda",
    "tax_id": "11.222.333/0001-81",
    "contact_name": "Ana Souza",
    "phone": "+55 11 98765-4321",
    "email": "compras@lojaazul.com.br",
}


async def login_manager(
    api: Api, database_url: str, username: str = "host1", role: str = "admin"
) -> dict[str, Any]:
    connection = await asyncpg.connect(database_url)
    try:
        await managers.create(connection, username, MANAGER_PASSWORD, role)
    finally:
        await connection.close()
    response = await api.post(
        "/api/v1/manager/login", {"username": username, "password": MANAGER_PASSWORD}
    )
    assert response.status == 200, response
    api.access_token = response.json["access_token"]
    tokens: dict[str, Any] = response.json
    return tokens


async def create_live(api: Api, slug: str = "summer-24", **fields: Any) -> Response:
    body = {"slug": slug, "title": "Summer wholesale", **fields}
    response = await api.post("/api/v1/manager/lives", body)
    assert response.status == 201, response
    return response


async def create_product(
    api: Api, slug: str = "summer-24", **fields: Any
) -> dict[str, Any]:
    body = {
        "sku": fields.pop("sku", "TSH-001"),
        "name": fields.pop("name", "Basic T-shirt"),
        "price_cents": fields.pop("price_cents", 2990),
        "stock": fields.pop("stock", 100),
        **fields,
    }
    response = await api.post(f"/api/v1/manager/lives/{slug}/products", body)
    assert response.status == 201, response
    product: dict[str, Any] = response.json
    return product


async def open_cart(api: Api, slug: str = "summer-24") -> tuple[str, dict[str, str]]:
    """Create a cart; return its id and the headers that open it."""
    response = await api.post(f"/api/v1/lives/{slug}/carts")
    assert response.status == 201, response
    return response.json["session_id"], {
        "X-Session-Token": response.json["session_token"]
    }


async def set_line(
    api: Api, cart_id: str, headers: dict[str, str], product_id: int, quantity: Any
) -> Response:
    return await api.put(
        f"/api/v1/carts/{cart_id}/items/{product_id}",
        {"quantity": quantity},
        headers=headers,
    )


async def checkout(
    api: Api,
    cart_id: str,
    headers: dict[str, str],
    key: str = "key-1",
    buyer: dict[str, Any] | None = None,
) -> Response:
    return await api.post(
        f"/api/v1/carts/{cart_id}/checkout",
        buyer if buyer is not None else BUYER,
        headers={**headers, "Idempotency-Key": key},
    )


async def insert_lives(database_url: str, slugs: list[str]) -> None:
    """Create bare lives straight in the database, for tests that need many."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.executemany(
            "INSERT INTO lives (slug, title) VALUES ($1, $1)",
            [(slug,) for slug in slugs],
        )
    finally:
        await connection.close()
