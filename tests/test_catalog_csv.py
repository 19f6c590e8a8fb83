"""Catalog CSV: export, and an import that applies every row or none."""

from __future__ import annotations

import csv
import io

import pytest

from tests.factories import create_live, create_product, login_manager
from tests.wsclient import Socket

CSV_PATH = "/api/v1/manager/lives/summer-24/products.csv"
HEADERS = {"Content-Type": "text/csv"}


async def _setup(api, database_url):
    await login_manager(api, database_url)
    await create_live(api)


@pytest.mark.gen_test
async def test_export_then_import_round_trip(api, database_url):
    await _setup(api, database_url)
    await create_product(
        api,
        sku="TSH-1",
        tiers=[{"min_quantity": 12, "price_cents": 2690}],
        min_quantity=6,
        step=6,
        max_quantity=600,
    )

    exported = await api.get(CSV_PATH)
    rows = list(csv.DictReader(io.StringIO(exported.raw.decode())))
    reimported = await api.post(CSV_PATH, raw_body=exported.raw, headers=HEADERS)

    assert exported.status == 200
    assert rows[0]["sku"] == "TSH-1"
    assert rows[0]["tiers"] == "12:2690"
    assert rows[0]["max_quantity"] == "600"
    assert reimported.status == 200
    assert reimported.json == {"created": 0, "updated": 1}


@pytest.mark.gen_test
async def test_import_creates_updates_and_broadcasts(api, database_url, base_url):
    await _setup(api, database_url)
    await create_product(api, sku="OLD-1", price_cents=1000, stock=5)
    socket = await Socket.open(base_url)
    await socket.subscribe("live:summer-24")
    body = (
        "sku,name,price_cents,stock,tiers,visible\n"
        "OLD-1,Old shirt,1200,5,,true\n"
        "NEW-1,New cap,990,40,10:890;50:790,true\n"
        "NEW-2,Hidden bag,1500,3,,false\n"
    )

    response = await api.post(CSV_PATH, raw_body=body.encode(), headers=HEADERS)
    events = [await socket.receive(), await socket.receive()]
    live = await api.get("/api/v1/manager/lives/summer-24")

    assert response.json == {"created": 2, "updated": 1}
    assert {event["type"] for event in events} == {"product.updated", "product.created"}
    await socket.receive_none()
    by_sku = {product["sku"]: product for product in live.json["products"]}
    assert by_sku["OLD-1"]["price_cents"] == 1200
    assert by_sku["NEW-1"]["tiers"] == [
        {"min_quantity": 10, "price_cents": 890},
        {"min_quantity": 50, "price_cents": 790},
    ]
    assert by_sku["NEW-2"]["visible"] is False
    socket.close()


@pytest.mark.gen_test
async def test_bad_rows_reported_nothing_applied(api, database_url):
    await _setup(api, database_url)
    body = (
        "sku,name,price_cents,stock,tiers\n"
        "OK-1,Fine,1000,5,\n"
        "BAD-1,Bad price,12.50,5,\n"
        "BAD-2,,1000,5,\n"
        "BAD-3,Bad tier,1000,5,12-900\n"
        "OK-1,Duplicate,1000,5,\n"
        "BAD-4,Negative stock,1000,-1,\n"
        "BAD-5,Pricier tier,1000,5,12:1100\n"
    )

    response = await api.post(CSV_PATH, raw_body=body.encode(), headers=HEADERS)
    live = await api.get("/api/v1/manager/lives/summer-24")

    assert response.status == 400
    assert response.error["code"] == "csv_invalid"
    assert [(e["line"], e["field"]) for e in response.error["errors"]] == [
        (3, "price_cents"),
        (4, "name"),
        (5, "tiers"),
        (6, "sku"),
        (7, "stock"),
        (8, "tiers"),
    ]
    assert all(e["message"] for e in response.error["errors"])
    assert live.json["products"] == []


@pytest.mark.gen_test
async def test_stored_rule_errors_reported(api, database_url):
    await _setup(api, database_url)
    tiers = [{"min_quantity": 10, "price_cents": 900}]
    await create_product(api, sku="U-1", price_cents=1000, tiers=tiers)
    await create_product(api, sku="B-1", price_cents=1000, tiers=tiers)
    await create_product(api, sku="M-1", price_cents=1000, max_quantity=5)
    body = (
        "sku,name,price_cents,min_quantity\n"
        "U-1,Renamed,777,\n"
        "NEW-1,New,500,\n"
        "B-1,Also,850,\n"
        "M-1,Above the stored maximum,1000,8\n"
        "BAD-1,,1000,\n"
    )

    response = await api.post(CSV_PATH, raw_body=body.encode(), headers=HEADERS)
    live = await api.get("/api/v1/manager/lives/summer-24")

    assert response.status == 400
    assert response.error["code"] == "csv_invalid"
    assert [(e["line"], e["field"]) for e in response.error["errors"]] == [
        (2, "price_cents"),
        (4, "price_cents"),
        (5, None),
        (6, "name"),
    ]
    assert "max_quantity" in response.error["errors"][2]["message"]
    assert sorted(product["sku"] for product in live.json["products"]) == [
        "B-1",
        "M-1",
        "U-1",
    ]
    assert {product["price_cents"] for product in live.json["products"]} == {1000}
    assert {product["min_quantity"] for product in live.json["products"]} == {1}


@pytest.mark.gen_test
async def test_bad_header_and_encoding(api, database_url):
    await _setup(api, database_url)

    unknown = await api.post(
        CSV_PATH, raw_body=b"sku,name,price_cents,colour\nA,B,1,red\n", headers=HEADERS
    )
    missing = await api.post(CSV_PATH, raw_body=b"sku,name\nA,B\n", headers=HEADERS)
    latin1 = await api.post(
        CSV_PATH,
        raw_body="sku,name,price_cents\nA,Caf\xe9,1\n".encode("latin-1"),
        headers=HEADERS,
    )
    empty = await api.post(
        CSV_PATH, raw_body=b"sku,name,price_cents\n", headers=HEADERS
    )

    assert unknown.status == 400
    assert "colour" in unknown.error["message"]
    assert missing.status == 400
    assert "price_cents" in missing.error["message"]
    assert latin1.status == 400
    assert "UTF-8" in latin1.error["message"]
    assert empty.status == 400


@pytest.mark.gen_test
async def test_malformed_csv_rejected(api, database_url):
    await _setup(api, database_url)

    twice = await api.post(
        CSV_PATH, raw_body=b"sku,sku,name,price_cents\nA,A,B,1\n", headers=HEADERS
    )
    quote = await api.post(
        CSV_PATH, raw_body=b'sku,name,price_cents\nQ-1,"abc,100\n', headers=HEADERS
    )
    live = await api.get("/api/v1/manager/lives/summer-24")

    assert twice.status == 400
    assert "twice" in twice.error["message"]
    assert quote.status == 400
    assert quote.error["code"] == "csv_invalid"
    assert live.json["products"] == []


@pytest.mark.gen_test
async def test_syntax_errors_report_start_line(api, database_url):
    await _setup(api, database_url)
    long_cell = "x" * (131_072 + 1)
    too_long = (
        "sku,name,price_cents\n"
        "A-1,A,100\n"
        "B-1,B,100\n"
        "C-1,C,100\n"
        f"D-1,{long_cell},100\n"
        "E-1,E,100\n"
    )
    unclosed = 'sku,name,price_cents\nA-1,A,100\nB-1,"never closed,100\nC-1,C,100\n'

    long_response = await api.post(
        CSV_PATH, raw_body=too_long.encode(), headers=HEADERS
    )
    quote_response = await api.post(
        CSV_PATH, raw_body=unclosed.encode(), headers=HEADERS
    )

    assert long_response.status == 400
    assert long_response.error["code"] == "csv_invalid"
    assert long_response.error["message"].startswith("line 5: ")
    assert "131072 characters" in long_response.error["message"]
    assert [e["line"] for e in long_response.error["errors"]] == [5]
    assert quote_response.status == 400
    assert quote_response.error["code"] == "csv_invalid"
    assert quote_response.error["message"].startswith("line 3: ")
    assert "quoted cell is closed" in quote_response.error["message"]
    assert [e["line"] for e in quote_response.error["errors"]] == [3]


@pytest.mark.gen_test
async def test_multiline_record_reported_at_start(api, database_url):
    await _setup(api, database_url)
    body = (
        "sku,name,description,price_cents\n"
        "\n"
        'A-1,Two lines,"first line\nsecond line",1.5\n'
        "B-1,,,100\n"
        'C-1,Three lines,"one\ntwo\nthree",100,extra\n'
        "D-1,Short row\n"
    )

    response = await api.post(CSV_PATH, raw_body=body.encode(), headers=HEADERS)

    assert response.status == 400
    assert [(e["line"], e["field"]) for e in response.error["errors"]] == [
        (3, "price_cents"),
        (5, "name"),
        (6, None),
        (9, "price_cents"),
    ]


@pytest.mark.gen_test
async def test_export_neutralises_formulas(api, database_url):
    await _setup(api, database_url)
    await create_product(api, sku="F-1", name="=HYPERLINK(1)")

    exported = await api.get(CSV_PATH)
    rows = list(csv.DictReader(io.StringIO(exported.raw.decode())))

    assert rows[0]["name"] == "'=HYPERLINK(1)"


@pytest.mark.gen_test
async def test_unchanged_export_imports_as_is(api, database_url):
    await _setup(api, database_url)
    await create_product(api, sku="F-1", name="-20% pack", description="=1+1")

    exported = await api.get(CSV_PATH)
    await api.post(CSV_PATH, raw_body=exported.raw, headers=HEADERS)
    live = await api.get("/api/v1/manager/lives/summer-24")

    assert live.json["products"][0]["name"] == "-20% pack"
    assert live.json["products"][0]["description"] == "=1+1"
