"""Settings read once from ``VITRINE_*`` environment variables."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _unmapped(network: Network) -> Network:
    """Return an IPv4-mapped IPv6 network (::ffff:a.b.c.d) as IPv4, the form peers
    are compared in."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


class SettingsError(ValueError):
    """A ``VITRINE_*`` variable is missing or malformed."""


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


_PARSERS: dict[Any, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": _parse_bool,
}


@dataclass(frozen=True)
class Settings:
    """Every setting of a Vitrine process. See the README for what each one does."""

    env: str = "development"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    # Peers whose X-Real-Ip and X-Forwarded-For headers give the client's address:
    # comma-separated addresses or networks, or "none". Any other peer could forge
    # those headers, so its own address is the client's.
    trusted_proxies: str = "127.0.0.0/8,::1"
    port: int = 8101
    database_url: str = "postgresql://127.0.0.1:5432/vitrine"
    db_pool_min: int = 2
    db_pool_max: int = 10
    db_command_timeout: float = 10.0
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout: float = 5.0
    jwt_secret: str = ""
    access_token_ttl: int = 8 * 3600
    refresh_token_ttl: int = 7 * 24 * 3600
    max_body_bytes: int = 1024 * 1024
    shutdown_timeout: float = 20.0
    retry_after_seconds: int = 5
    ws_ping_interval: float = 25.0
    ws_ping_timeout: float = 8.0
    # History kept per topic for clients that reconnect: live topics are busy and
    # public, the others (orders, chats, managers) are small and private.
    history_live_size: int = 1000
    history_live_ttl: int = 24 * 3600
    history_private_size: int = 200
    history_private_ttl: int = 6 * 3600
    max_sockets: int = 18_000
    ws_connect_rate: float = 20.0
    ws_connect_burst: int = 60
    ws_message_rate: float = 20.0
    ws_message_burst: int = 60
    reconnect_window: float = 10.0
    # Seconds between viewer count reports; 0 turns presence off.
    presence_interval: float = 1.0
    default_currency: str = "BRL"
    # Product images: an S3 bucket, or a local folder served at /media/ without one.
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_endpoint_url: str = ""
    s3_public_base_url: str = ""
    media_dir: str = "var/media"
    max_image_bytes: int = 5 * 1024 * 1024

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``VITRINE_<FIELD>`` variables, defaults elsewhere."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}

        for field in fields(cls):
            name = f"VITRINE_{field.name.upper()}"
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            parse = _PARSERS[field.type]
            try:
                values[field.name] = parse(raw)
            except ValueError as exc:
                raise SettingsError(
                    f"{name}={raw!r} is invalid: {exc}; expected a {field.type}"
                ) from None

        settings = cls(**values)
        settings.validate()
        return settings

    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        """Parse ``trusted_proxies``, raising SettingsError for an invalid entry."""
        if self.trusted_proxies.strip().lower() == "none":
            return ()
        networks = []
        for entry in self.trusted_proxies.split(","):
            text = entry.strip()
            if not text:
                continue
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise SettingsError(
                    f"VITRINE_TRUSTED_PROXIES contains {text!r}, which is not an IP "
                    "address or network; use comma-separated entries such as "
                    "127.0.0.1,10.0.0.0/8, or none to trust no proxy"
                ) from None
            networks.append(_unmapped(network))
        if not networks:
            raise SettingsError(
                f"VITRINE_TRUSTED_PROXIES={self.trusted_proxies!r} lists no address; "
                "use comma-separated entries such as 127.0.0.1,10.0.0.0/8, or none to "
                "trust no proxy"
            )
        return tuple(networks)

    def with_max_sockets(self, max_sockets: int) -> Settings:
        return replace(self, max_sockets=max_sockets)

    def validate(self) -> None:
        """Raise SettingsError for values no process can run with."""
        if self.env not in ("development", "production"):
            raise SettingsError(
                f"VITRINE_ENV={self.env!r} is invalid; use development or production"
            )
        if self.production and len(self.jwt_secret) < 32:
            raise SettingsError(
                "VITRINE_JWT_SECRET must be set to at least 32 characters in production"
            )
        if self.db_pool_min < 1 or self.db_pool_max < self.db_pool_min:
            raise SettingsError(
                "VITRINE_DB_POOL_MIN must be at least 1 and at most VITRINE_DB_POOL_MAX"
            )
        self.trusted_proxy_networks()
        if self.ws_ping_timeout >= self.ws_ping_interval:
            raise SettingsError(
                "VITRINE_WS_PING_TIMEOUT must be shorter than VITRINE_WS_PING_INTERVAL"
            )
