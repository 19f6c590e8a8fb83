"""Events and WebSocket frames, each encoded once and shared by every socket."""

from __future__ import annotations

import struct
from typing import Any

import orjson

_FIN_TEXT = 0x81


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def text_frame(payload: bytes) -> bytes:
    """Build an unmasked, uncompressed text frame (RFC 6455 section 5.2).

    Server-to-client frames carry no mask, so one frame serves every socket that has
    not negotiated compression.
    """
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", _FIN_TEXT, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", _FIN_TEXT, 126, length)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, length)
    return header + payload


def ping_frame() -> bytes:
    """Build an empty ping frame; the client replies with a pong."""
    return bytes((0x89, 0))
