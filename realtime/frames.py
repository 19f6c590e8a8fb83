"""Events and WebSocket frames, each encoded once and shared by every socket."""

from __future__ import annotations

import struct
from typing import Any

import orjson

OPCODE_CONTINUATION = 0x0
OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA

_FIN = 0x80
# A close frame's payload is a 2-byte code and a UTF-8 reason, 125 bytes at most.
MAX_CLOSE_REASON = 123


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def frame(opcode: int, payload: bytes) -> bytes:
    """Build an unmasked, uncompressed, unfragmented frame (RFC 6455 section 5.2).

    Server-to-client frames carry no mask, so one frame serves every socket that has
    not negotiated compression.
    """
    first = _FIN | opcode
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, 126, length)
    else:
        header = struct.pack("!BBQ", first, 127, length)
    return header + payload


def text_frame(payload: bytes) -> bytes:
    return frame(OPCODE_TEXT, payload)


def ping_frame() -> bytes:
    """Build an empty ping frame; the client replies with a pong."""
    return frame(OPCODE_PING, b"")


def close_frame(code: int, reason: str) -> bytes:
    """Build a close frame; a reason longer than the frame allows is cut."""
    encoded = reason.encode()[:MAX_CLOSE_REASON]
    # Cutting may split a character, which the client would reject as invalid UTF-8.
    encoded = encoded.decode(errors="ignore").encode()
    return frame(OPCODE_CLOSE, struct.pack("!H", code) + encoded)
