"""Pure rules: pricing, CNPJ check digits, settings, client addresses, log redaction."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from handlers.redaction import redact
from handlers.validation import (
    CURRENCY_PATTERN,
    EMAIL_PATTERN,
    SLUG_PATTERN,
    is_valid_cnpj,
    normalize_tax_id,
)
from realtime import topics
from realtime.handshake import client_address
from realtime.hub import Hub
from realtime.presence import worth_publishing
from server.logs import JsonFormatter
from server.settings import Settings, SettingsError
from store.errors import InvalidInput
from store.pricing import (
    MAX_ORDER_ITEM_COUNT,
    MAX_ORDER_TOTAL_CENTS,
    check_order_size,
    normalize_tiers,
    unit_price_cents,
)

TIERS = [
    {"min_quantity": 12, "price_cents": 900},
    {"min_quantity": 48, "price_cents": 800},
]


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [(1, 1000), (11, 1000), (12, 900), (47, 900), (48, 800), (10_000, 800)],
)
def test_unit_price_by_tier(quantity, expected):
    assert unit_price_cents(1000, TIERS, quantity) == expected


def test_tiers_rejects_duplicates():
    with pytest.raises(InvalidInput) as raised:
        normalize_tiers([{"min_quantity": 5, "price_cents": 1}] * 2)
    assert raised.value.field == "tiers"


def test_order_size_at_maximum_passes():
    check_order_size(MAX_ORDER_TOTAL_CENTS, MAX_ORDER_ITEM_COUNT, "items")


@pytest.mark.parametrize(
    ("total_cents", "item_count", "code"),
    [
        (MAX_ORDER_TOTAL_CENTS + 1, 1, "total_too_large"),
        (10**19, 10**7, "total_too_large"),
        (0, MAX_ORDER_ITEM_COUNT + 1, "item_count_too_large"),
    ],
)
def test_order_size_above_maximum(total_cents, item_count, code):
    with pytest.raises(InvalidInput) as raised:
        check_order_size(total_cents, item_count, "items")
    assert raised.value.code == code
    assert raised.value.field == "items"


@pytest.mark.parametrize(
    "cnpj",
    ["11222333000181", "11444777000161", "12ABC34501DE35", "00623904000173"],
)
def test_valid_cnpj(cnpj):
    assert is_valid_cnpj(cnpj)


@pytest.mark.parametrize(
    "cnpj",
    ["11222333000180", "11111111111111", "12ABC34501DE36", "1122233300018A", "abc"],
)
def test_invalid_cnpj(cnpj):
    assert not is_valid_cnpj(cnpj)


def test_tax_id_accepts_foreign_ids():
    assert normalize_tax_id("DE 123456789") == "DE123456789"


def test_settings_from_env():
    settings = Settings.from_env(
        {
            "VITRINE_PORT": "9000",
            "VITRINE_ENV": "development",
            "VITRINE_WS_PING_INTERVAL": "30",
        }
    )
    assert settings.port == 9000
    assert settings.ws_ping_interval == 30.0


def test_settings_name_bad_variable():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"VITRINE_PORT": "eighty"})
    assert "VITRINE_PORT" in str(raised.value)


def test_production_needs_jwt_secret():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"VITRINE_ENV": "production"})
    assert "VITRINE_JWT_SECRET" in str(raised.value)


def test_trusted_proxies_parse():
    settings = Settings.from_env({"VITRINE_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7"})

    assert settings.trusted_proxy_networks() == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.7/32"),
    )
    assert Settings(trusted_proxies="none").trusted_proxy_networks() == ()
    assert Settings(trusted_proxies="::ffff:10.1.2.3").trusted_proxy_networks() == (
        ipaddress.ip_network("10.1.2.3/32"),
    )


def test_trusted_proxies_reject_bad_entry():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"VITRINE_TRUSTED_PROXIES": "127.0.0.1,proxy.local"})

    assert "VITRINE_TRUSTED_PROXIES" in str(raised.value)
    assert "'proxy.local'" in str(raised.value)
    for empty in (",", " , "):
        with pytest.raises(SettingsError) as raised:
            Settings.from_env({"VITRINE_TRUSTED_PROXIES": empty})
        assert "lists no address" in str(raised.value)


def test_client_address_from_trusted_proxy():
    loopback = Settings().trusted_proxy_networks()
    forwarded = {"x-forwarded-for": "198.51.100.1, 203.0.113.5"}
    real_ip = {"x-real-ip": "203.0.113.9", **forwarded}

    assert client_address(forwarded, "127.0.0.1", loopback) == "203.0.113.5"
    assert client_address(real_ip, "127.0.0.1", loopback) == "203.0.113.9"
    assert client_address(real_ip, "::1", loopback) == "203.0.113.9"
    assert client_address(real_ip, "::ffff:127.0.0.1", loopback) == "203.0.113.9"
    assert client_address({}, "127.0.0.1", loopback) == "127.0.0.1"
    assert client_address({"x-real-ip": "x"}, "127.0.0.1", loopback) == "127.0.0.1"


def test_client_address_ignores_other_peers():
    loopback = Settings().trusted_proxy_networks()
    real_ip = {"x-real-ip": "203.0.113.9", "x-forwarded-for": "203.0.113.5"}

    assert client_address(real_ip, "198.51.100.7", loopback) == "198.51.100.7"
    assert client_address(real_ip, "127.0.0.1", ()) == "127.0.0.1"
    assert client_address(real_ip, "unknown", loopback) == "unknown"


def test_redact_hides_token_query():
    uri = "/api/v1/orders/K7QX?token=secret-value&x=1"
    assert redact(uri) == "/api/v1/orders/K7QX?token=[redacted]&x=1"
    assert "secret" not in redact("/x?a=1&TOKEN=secret")
    assert "secret" not in redact("/x?%74oken=secret")
    assert "secret" not in redact("/x?tok%65n=secret&b=2")
    assert redact("/x?status=new") == "/x?status=new"


def test_json_log_line_has_request_fields():
    record = logging.LogRecord(
        "vitrine.access", logging.INFO, "", 0, "GET /x 200", (), None
    )
    record.request = {"method": "GET", "status": 200, "ms": 1.5, "request_id": "abc"}

    line = JsonFormatter().format(record)

    assert '"method":"GET"' in line
    assert '"status":200' in line
    assert '"request_id":"abc"' in line


def test_viewer_counts_published_on_real_change():
    assert worth_publishing(10, 11, 100.0, 100.5)
    assert not worth_publishing(10, 10, 100.0, 200.0)
    assert worth_publishing(None, 1, 0.0, 100.5)
    # A large crowd: 0.5% is held back until the count is stale, 1% is not.
    assert not worth_publishing(10_000, 10_050, 100.0, 101.0)
    assert worth_publishing(10_000, 10_100, 100.0, 101.0)
    assert worth_publishing(10_000, 10_050, 100.0, 106.0)


def test_parse_message_with_publish_time():
    assert topics.parse_message(b"k3l0x9 12 1796382000123\n{}") == (
        "k3l0x9",
        12,
        1796382000123,
        b"{}",
    )


def test_parse_message_without_publish_time():
    assert topics.parse_message(b"k3l0x9 12\n{}") == ("k3l0x9", 12, None, b"{}")


@pytest.mark.parametrize(
    ("pattern", "valid"),
    [
        (topics.TOPIC_PATTERN, "live:demo"),
        (SLUG_PATTERN, "demo"),
        (EMAIL_PATTERN, "ana@example.com"),
        (CURRENCY_PATTERN, "BRL"),
    ],
)
def test_pattern_rejects_trailing_newline(pattern, valid):
    assert pattern.match(valid)
    assert not pattern.match(valid + "\n")


class FrameSink:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send_frame(self, frame: bytes) -> None:
        self.frames.append(frame)


def test_hub_records_only_live_fanouts():
    hub = Hub()
    sink = FrameSink()
    for topic in ("live:demo", "order:ABCD1234"):
        hub.add_pending(topic, sink)
        hub.promote(topic, sink, 0)

    hub.deliver("order:ABCD1234", 1, b"{}", published_ms=1000)
    hub.deliver("live:demo", 1, b"{}", published_ms=1000)

    assert len(sink.frames) == 2
    assert [fanout.topic for fanout in hub.recent_fanouts] == ["live:demo"]
    assert hub.recent_fanouts[0].sockets == 1
