"""The server side of one WebSocket (RFC 6455) on a plain non-blocking socket.

A process keeps tens of thousands of sockets that mostly sit idle. Tornado's
WebSocketHandler keeps an IOStream, a request coroutine and its task per socket
(14 KiB each as measured by scripts/bench), and its write path creates a task per
message. Here a socket is
one object whose file descriptor is registered for reading on the event loop. Frames
go straight to ``socket.send``, and only what the kernel does not take at once is
buffered, up to a limit that closes a socket too slow to keep up.

The protocol is RFC 6455 without extensions: no compression is negotiated, so one
encoded frame serves every socket.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
import struct
from collections.abc import Awaitable

from realtime.frames import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    close_frame,
    frame,
)

log = logging.getLogger(__name__)

# Bytes read per recv call. Inbound messages are small commands, so one read
# usually contains whole frames.
RECV_SIZE = 65536
# Seconds to wait for the client's close frame, or for a slow client to take the
# rest of its buffer, after the server sent its own close frame.
CLOSE_TIMEOUT = 5.0
# Fragments per message. Empty continuation frames add nothing to the message size,
# so without this a client could grow the fragment list forever.
MAX_FRAGMENTS = 64


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013


class ProtocolError(Exception):
    """A client frame that breaks RFC 6455. The socket is closed with ``code``."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the repeated 4-byte ``mask`` (RFC 6455 section 5.3)."""
    length = len(payload)
    if length == 0:
        return payload
    key = (mask * (length // 4 + 1))[:length]
    # One big-integer XOR runs in C over the whole payload.
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        length, "little"
    )


def parse_frame(
    data: bytes, start: int, max_size: int
) -> tuple[bool, int, bytes, int] | None:
    """Parse the client frame at ``data[start:]``.

    Returns (fin, opcode, unmasked payload, end offset), or None while the frame is
    incomplete. Raises ProtocolError for an unmasked frame, reserved bits, a bad
    control frame or a payload over ``max_size``, as soon as its header shows it.
    """
    available = len(data) - start
    if available < 2:
        return None
    first, second = data[start], data[start + 1]
    if first & 0x70:
        raise ProtocolError(
            CloseCode.PROTOCOL_ERROR, "reserved bits are set but no extension is on"
        )
    if not second & 0x80:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "client frames must be masked")

    fin = bool(first & 0x80)
    opcode = first & 0x0F
    length = second & 0x7F
    header = 2
    if length == 126:
        if available < 4:
            return None
        (length,) = struct.unpack_from("!H", data, start + 2)
        header = 4
    elif length == 127:
        if available < 10:
            return None
        (length,) = struct.unpack_from("!Q", data, start + 2)
        header = 10

    if opcode >= OPCODE_CLOSE and (not fin or length > 125):
        raise ProtocolError(
            CloseCode.PROTOCOL_ERROR,
            "control frames must be unfragmented and at most 125 bytes",
        )
    if length > max_size:
        raise ProtocolError(
            CloseCode.MESSAGE_TOO_BIG, f"messages are limited to {max_size} bytes"
        )
    payload_start = start + header + 4
    end = payload_start + length
    if len(data) < end:
        return None
    mask = data[start + header : payload_start]
    return fin, opcode, unmask(data[payload_start:end], mask), end


def _close_frame_error(payload: bytes) -> ProtocolError | None:
    """Check a client's close frame payload: a code that may be sent (RFC 6455
    section 7.4), then a UTF-8 reason."""
    if len(payload) == 1:
        return ProtocolError(CloseCode.PROTOCOL_ERROR, "invalid close frame")
    code = struct.unpack("!H", payload[:2])[0]
    # 1004-1006 and 1015 are reserved for reporting, never sent; 1016-2999 are
    # unassigned; 3000-4999 belong to libraries and applications.
    sendable = (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or (
        3000 <= code <= 4999
    )
    if not sendable:
        return ProtocolError(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        return ProtocolError(CloseCode.INVALID_DATA, "close reasons must be UTF-8")
    return None


class WebSocket:
    """One accepted WebSocket: reads client frames and sends prepared ones.

    Subclasses handle messages in ``on_message``, which may return an awaitable.
    Reading pauses until it completes, so a socket's messages are handled one at a
    time and in order. ``on_pong`` and ``on_close`` are the other hooks.
    """

    __slots__ = (
        "_closing_timer",
        "_first_opcode",
        "_fragments",
        "_fragments_size",
        "_inbox",
        "_input_ignored",
        "_loop",
        "_message_task",
        "_open",
        "_outbox",
        "_reading",
        "_sock",
        "max_buffer_size",
        "max_message_size",
        "remote_ip",
    )

    def __init__(
        self,
        sock: socket.socket,
        remote_ip: str,
        max_message_size: int,
        max_buffer_size: int,
    ) -> None:
        self._sock: socket.socket | None = sock
        self.remote_ip = remote_ip
        self._loop = asyncio.get_running_loop()
        self.max_message_size = max_message_size
        self.max_buffer_size = max_buffer_size
        self._open = True
        self._reading = False
        # Set once a flooding client is being closed: nothing more is read.
        self._input_ignored = False
        # Bytes received but not yet parsed: the start of an incomplete frame, or
        # frames that wait while a message is being handled.
        self._inbox = b""
        self._fragments: list[bytes] | None = None
        self._fragments_size = 0
        self._first_opcode = OPCODE_TEXT
        # Bytes the kernel did not take yet, or None while nothing waits.
        self._outbox: bytearray | None = None
        self._message_task: asyncio.Task[None] | None = None
        self._closing_timer: asyncio.TimerHandle | None = None

    @property
    def is_open(self) -> bool:
        """True until the server or the client started closing."""
        return self._open

    def start(self, handshake_response: bytes) -> None:
        """Send the 101 response and start reading frames."""
        self._write(handshake_response)
        self._resume_reading()

    def feed(self, data: bytes) -> None:
        """Handle bytes that arrived with the request head as received frames."""
        if data and self._sock is not None:
            self._consume(data)

    # Hooks for subclasses.

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        return None

    def on_pong(self) -> None:
        pass

    def allow_frame(self) -> bool:
        """Return False to close the socket with 1008 instead of handling a frame.

        Called for every data, continuation, ping and pong frame while the socket
        is open.
        """
        return True

    def on_close(self) -> None:
        pass

    # Sending.

    def send_frame(self, data: bytes) -> None:
        """Send a prepared frame without waiting, and close the socket if it lags.

        A socket whose unsent bytes pass ``max_buffer_size`` is closed with 1013, so
        one slow client never holds up the others.
        """
        if not self._open:
            return
        if self._outbox is None:
            self._write(data)
            return
        self._outbox += data
        if len(self._outbox) > self.max_buffer_size:
            self.on_overflow()
            self.close(CloseCode.TRY_AGAIN_LATER, "too slow to keep up")

    def on_overflow(self) -> None:
        """Note that the socket fell ``max_buffer_size`` bytes behind."""

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake: send a close frame, then wait for the client's.

        The close frame goes out even past the buffer limit, because the client may
        still read it. The socket is dropped when the client's close frame arrives,
        or after CLOSE_TIMEOUT seconds.
        """
        if not self._open:
            return
        self._open = False
        self._write(close_frame(code, reason))
        if self._sock is not None:
            self._closing_timer = self._loop.call_later(CLOSE_TIMEOUT, self.abort)

    def abort(self) -> None:
        """Close the TCP connection at once, without a closing handshake."""
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        self._open = False
        fd = sock.fileno()
        if self._reading:
            self._loop.remove_reader(fd)
            self._reading = False
        if self._outbox is not None:
            self._loop.remove_writer(fd)
            self._outbox = None
        if self._closing_timer is not None:
            self._closing_timer.cancel()
            self._closing_timer = None
        task = self._message_task
        if task is not None and task is not asyncio.current_task():
            # A message still being handled, such as a subscribe waiting on the
            # database, must not act for a socket that is gone.
            task.cancel()
        sock.close()
        self._inbox = b""
        self._fragments = None
        self.on_close()

    def _write(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            return
        if self._outbox is not None:
            self._outbox += data
            return
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            # The connection is gone: reset by the peer or a broken pipe.
            self.abort()
            return
        if sent < len(data):
            self._outbox = bytearray(memoryview(data)[sent:])
            self._loop.add_writer(sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        sock = self._sock
        outbox = self._outbox
        if sock is None or outbox is None:
            return
        try:
            sent = sock.send(outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.abort()
            return
        del outbox[:sent]
        if not outbox:
            self._outbox = None
            self._loop.remove_writer(sock.fileno())

    # Reading.

    def _resume_reading(self) -> None:
        if self._sock is not None and not self._reading and not self._input_ignored:
            self._loop.add_reader(self._sock.fileno(), self._on_readable)
            self._reading = True

    def _pause_reading(self) -> None:
        if self._sock is not None and self._reading:
            self._loop.remove_reader(self._sock.fileno())
            self._reading = False

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data = sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.abort()
            return
        if not data:
            # The client closed the connection, with or without a close frame.
            self.abort()
            return
        if self._inbox:
            data = self._inbox + data
            self._inbox = b""
        self._consume(data)

    def _consume(self, data: bytes) -> None:
        """Handle every whole frame in ``data`` and keep the rest for later."""
        position = 0
        while self._sock is not None:
            try:
                parsed = parse_frame(data, position, self.max_message_size)
                if parsed is None:
                    self._inbox = data[position:]
                    return
                fin, opcode, payload, position = parsed
                if opcode != OPCODE_CLOSE and self._open and not self.allow_frame():
                    self._close_flooding()
                    return
                pending = self._handle_frame(fin, opcode, payload)
            except ProtocolError as exc:
                self._fail(exc)
                return

            if pending is not None:
                self._inbox = data[position:]
                self._pause_reading()
                self._message_task = self._loop.create_task(
                    self._await_message(pending)
                )
                return

    def _close_flooding(self) -> None:
        """Close a socket that sends frames faster than ``allow_frame`` permits.

        A flood costs CPU, and unread pongs memory, whether or not its frames carry
        messages. Reading stops too, because parsing the rest of a flood costs as
        much as handling it, and the close timeout drops the connection.
        """
        self.close(CloseCode.POLICY_VIOLATION, "too many frames; slow down")
        self._inbox = b""
        self._pause_reading()
        self._input_ignored = True

    def _handle_frame(
        self, fin: bool, opcode: int, payload: bytes
    ) -> Awaitable[None] | None:
        if opcode == OPCODE_PING:
            # While earlier bytes wait to be sent, the pong is skipped: RFC 6455
            # section 5.5.3 lets an endpoint reply to only some pings, and queued
            # pongs for a client that does not read would grow without bound.
            if self._open and self._outbox is None:
                self._write(frame(OPCODE_PONG, payload))
            return None
        if opcode == OPCODE_PONG:
            self.on_pong()
            return None
        if opcode == OPCODE_CLOSE:
            self._on_close_frame(payload)
            return None
        if opcode not in (OPCODE_TEXT, OPCODE_BINARY, OPCODE_CONTINUATION):
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")

        message = self._assemble(fin, opcode, payload)
        if message is None or not self._open:
            # An incomplete message, or the server is closing and reads only the
            # client's close frame.
            return None
        return self.on_message(message)

    def _assemble(self, fin: bool, opcode: int, payload: bytes) -> str | bytes | None:
        """Join fragments into a whole message, or return None while they arrive.

        Raises ProtocolError for fragments out of order, too many or too large.
        """
        if opcode == OPCODE_CONTINUATION:
            if self._fragments is None:
                raise ProtocolError(
                    CloseCode.PROTOCOL_ERROR, "continuation frame with no message"
                )
            self._fragments.append(payload)
            self._fragments_size += len(payload)
            if len(self._fragments) > MAX_FRAGMENTS:
                raise ProtocolError(
                    CloseCode.POLICY_VIOLATION,
                    f"a message may have at most {MAX_FRAGMENTS} fragments",
                )
            if self._fragments_size > self.max_message_size:
                raise ProtocolError(
                    CloseCode.MESSAGE_TOO_BIG,
                    f"messages are limited to {self.max_message_size} bytes",
                )
            if not fin:
                return None
            # The first fragment carries the message's opcode.
            opcode = self._first_opcode
            payload = b"".join(self._fragments)
            self._fragments = None
        elif self._fragments is not None:
            raise ProtocolError(
                CloseCode.PROTOCOL_ERROR,
                "a new message started before the previous one ended",
            )
        elif not fin:
            self._fragments = [payload]
            self._fragments_size = len(payload)
            self._first_opcode = opcode
            return None

        if opcode == OPCODE_BINARY:
            return payload
        try:
            return payload.decode()
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                CloseCode.INVALID_DATA, "text messages must be UTF-8"
            ) from exc

    async def _await_message(self, pending: Awaitable[None]) -> None:
        try:
            await pending
        except Exception:
            log.exception(
                "handling a message from %s failed; closing its socket", self.remote_ip
            )
            self.close(CloseCode.INTERNAL_ERROR, "internal error")
        self._message_task = None
        if self._sock is None:
            return
        self._resume_reading()
        data, self._inbox = self._inbox, b""
        if data:
            self._consume(data)

    def _on_close_frame(self, payload: bytes) -> None:
        if not self._open:
            # The client replied to the server's close frame, so the handshake is done.
            self.abort()
            return
        code = CloseCode.NORMAL
        if payload:
            error = _close_frame_error(payload)
            if error is not None:
                # The client closed its side already, so nothing more will come.
                self._fail(error)
                self.abort()
                return
            code = struct.unpack("!H", payload[:2])[0]
        # Echo the client's code, then drop the connection: the client started
        # the handshake, so nothing more is expected from it.
        self.close(code)
        self.abort()

    def _fail(self, error: ProtocolError) -> None:
        if not self._open:
            # Already closing: more bad bytes only end the connection sooner.
            self.abort()
            return
        log.info(
            "closing the socket from %s with %d: %s",
            self.remote_ip,
            error.code,
            error.reason,
        )
        self._fragments = None
        self.close(error.code, error.reason)
