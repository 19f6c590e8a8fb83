"""The WebSocket opening handshake (RFC 6455 section 4.2), read from raw bytes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus

import orjson
from tornado.netutil import is_valid_ip

from server.settings import Network

# Fixed by RFC 6455 section 1.3 for computing Sec-WebSocket-Accept.
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HEAD_END = re.compile(rb"\r?\n\r?\n")
# The max size of a request head before a 431 response. Browsers send about 1 KB.
MAX_HEAD_SIZE = 8192


@dataclass(slots=True)
class UpgradeRequest:
    method: str
    target: str
    version: str
    # Header names in lower case; repeated headers joined with ", ".
    headers: dict[str, str]


class HandshakeError(Exception):
    """An upgrade request that cannot be accepted, with the HTTP response to send."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def response(self) -> bytes:
        return error_response(
            self.status, self.code, self.message, self.field, self.headers
        )


def head_end(data: bytes) -> int:
    """Return the offset just past the blank line that ends a request head, or -1.

    Lines may end with a bare LF, which HTTP/1.1 (RFC 9112 section 2.2) allows a
    server to accept.
    """
    match = _HEAD_END.search(data)
    return match.end() if match else -1


def parse_head(head: bytes) -> UpgradeRequest:
    """Parse an HTTP/1.1 request head (request line and headers, no body)."""
    # Latin-1 maps every byte, so a head with stray bytes still parses.
    lines = [line.removesuffix("\r") for line in head.decode("latin-1").split("\n")]
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise HandshakeError(
            400, "invalid_request", f"malformed request line {lines[0][:100]!r}"
        )
    method, target, version = parts

    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            break
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HandshakeError(
                400, "invalid_request", f"malformed header line {line[:100]!r}"
            )
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return UpgradeRequest(method, target, version, headers)


def _has_token(value: str, token: str) -> bool:
    return any(part.strip().lower() == token for part in value.split(","))


def accept_key(key: str) -> str:
    digest = hashlib.sha1(key.encode() + _ACCEPT_GUID).digest()
    return base64.b64encode(digest).decode()


def check_upgrade(request: UpgradeRequest) -> str:
    """Validate a WebSocket upgrade request and return its Sec-WebSocket-Accept."""
    headers = request.headers
    if request.method != "GET":
        raise HandshakeError(
            405,
            "method_not_allowed",
            f"a WebSocket opens with GET, not {request.method}",
            headers={"Allow": "GET"},
        )

    if request.version != "HTTP/1.1":
        raise HandshakeError(
            400,
            "invalid_upgrade",
            f"a WebSocket opens over HTTP/1.1, not {request.version}",
        )

    if not headers.get("host"):
        raise HandshakeError(
            400, "invalid_upgrade", "the Host header is missing", field="Host"
        )

    if not _has_token(headers.get("upgrade", ""), "websocket"):
        raise HandshakeError(
            426,
            "upgrade_required",
            "this endpoint only serves WebSockets; send Upgrade: websocket",
            field="Upgrade",
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )

    if not _has_token(headers.get("connection", ""), "upgrade"):
        raise HandshakeError(
            400,
            "invalid_upgrade",
            "the Connection header must contain Upgrade",
            field="Connection",
        )

    if headers.get("sec-websocket-version") != "13":
        raise HandshakeError(
            426,
            "unsupported_version",
            "only WebSocket version 13 is supported",
            field="Sec-WebSocket-Version",
            headers={"Sec-WebSocket-Version": "13"},
        )

    if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
        raise HandshakeError(
            400,
            "invalid_upgrade",
            "an upgrade request has no body; send it without one",
            field="Content-Length",
        )

    key = headers.get("sec-websocket-key", "")
    try:
        valid_key = len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        valid_key = False

    if not valid_key:
        raise HandshakeError(
            400,
            "invalid_upgrade",
            "Sec-WebSocket-Key must be 16 random bytes in base64",
            field="Sec-WebSocket-Key",
        )
    return accept_key(key)


def switching_protocols(accept: str) -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
    ).encode()


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """Build an HTTP error with the API's JSON error body; the connection closes."""
    body = orjson.dumps({"error": {"code": code, "message": message, "field": field}})
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def client_address(
    headers: Mapping[str, str],
    peer: str,
    trusted_proxies: Sequence[Network],
) -> str:
    """Return the client's address as a trusted proxy passed it on, else the peer's.

    The same rule as Tornado's ``xheaders``: X-Real-Ip first, then the last entry of
    X-Forwarded-For. HAProxy deletes a client's own X-Real-Ip and appends the
    address it saw to X-Forwarded-For. Both headers count only when ``peer`` is in
    ``trusted_proxies``, because any other peer could set them to dodge the limits
    per address.
    """
    if not is_trusted_proxy(peer, trusted_proxies):
        return peer

    forwarded = headers.get("x-forwarded-for")
    address = forwarded.split(",")[-1].strip() if forwarded else peer
    address = headers.get("x-real-ip", address)
    return address if is_valid_ip(address) else peer


def is_trusted_proxy(peer: str, trusted_proxies: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    # A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in trusted_proxies)
