"""The process's listening socket: WebSocket upgrades apart, HTTP to Tornado.

Every connection is accepted here and its first bytes are peeked at without reading
them. A request for ``GET /ws`` is read and upgraded by the WebSocket code, which
skips Tornado's HTTP connection, request and handler objects on the path taken by
every socket of a reconnect storm. Any other connection goes to Tornado's HTTPServer
untouched. An upgrade that arrives later on a kept-alive HTTP connection still works
through the Tornado route for /ws.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable

from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream
from tornado.netutil import bind_sockets

from realtime.handshake import MAX_HEAD_SIZE, error_response, head_end

log = logging.getLogger(__name__)

# The first bytes of a request line for the WebSocket endpoint, with or without a
# query string.
_UPGRADE_PREFIXES = (b"GET /ws ", b"GET /ws?")
_PREFIX_SIZE = len(_UPGRADE_PREFIXES[0])
# Seconds a new connection may take to send its request head.
HEAD_TIMEOUT = 10.0
# Seconds to read and drop what a rejected client still sends before closing.
LINGER_TIMEOUT = 2.0
# Seconds before peeking again at a connection that sent fewer bytes than the prefix.
# It doubles on each retry up to _MAX_PEEK_RETRY_DELAY, so connections that stall
# inside the prefix cost little CPU.
_PEEK_RETRY_DELAY = 0.01
_MAX_PEEK_RETRY_DELAY = 1.0
# Seconds between log lines about connections closed for sending no request.
_EXPIRED_LOG_INTERVAL = 10.0
# Connections accepted per readiness event, so a storm of connects does not starve
# the sockets already open.
_ACCEPTS_PER_EVENT = 128
# Seconds to stop accepting when the process is out of file descriptors. The
# connections wait in the listen backlog meanwhile.
_DESCRIPTORS_EXHAUSTED_PAUSE = 0.1

# Called with the connection, the peer's address, the request head and any bytes
# that arrived after it.
UpgradeCallback = Callable[[socket.socket, str, bytes, bytes], None]


class Listener:
    """Accepts connections on one or more listening sockets and routes each one."""

    def __init__(self, http_server: HTTPServer, on_upgrade: UpgradeCallback) -> None:
        self._http_server = http_server
        self.on_upgrade = on_upgrade
        self._sockets: list[socket.socket] = []
        self._exhausted_warnings = 0
        # Connections closed for sending no request since the last log line.
        self._expired = 0
        self._expired_last_address = ""

    def listen(self, port: int, address: str, backlog: int) -> None:
        self.add_sockets(bind_sockets(port, address, backlog=backlog))

    def add_sockets(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for sock in sockets:
            sock.setblocking(False)
            self._sockets.append(sock)
            loop.add_reader(sock.fileno(), self._accept, sock)

    def stop(self) -> None:
        """Stop accepting and close the listening sockets; open connections stay."""
        loop = asyncio.get_running_loop()
        for sock in self._sockets:
            loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(_ACCEPTS_PER_EVENT):
            try:
                connection, address = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE):
                    raise
                self._pause_accepting(sock)
                return
            connection.setblocking(False)
            _NewConnection(self, connection, address).start()

    def _pause_accepting(self, sock: socket.socket) -> None:
        # Accepting again at once would fail again: wait for sockets to close.
        self._exhausted_warnings += 1
        if self._exhausted_warnings % 1000 == 1:
            log.warning(
                "out of file descriptors; not accepting for %.1fs (%d times so far)",
                _DESCRIPTORS_EXHAUSTED_PAUSE,
                self._exhausted_warnings,
            )
        loop = asyncio.get_running_loop()
        loop.remove_reader(sock.fileno())
        loop.call_later(_DESCRIPTORS_EXHAUSTED_PAUSE, self._resume_accepting, sock)

    def _resume_accepting(self, sock: socket.socket) -> None:
        if sock in self._sockets:
            asyncio.get_running_loop().add_reader(sock.fileno(), self._accept, sock)

    def note_expired(self, address: str) -> None:
        """Count a connection closed for sending no request. The count is logged
        _EXPIRED_LOG_INTERVAL seconds after the first of a batch, one line a batch."""
        self._expired += 1
        self._expired_last_address = address
        if self._expired == 1:
            asyncio.get_running_loop().call_later(
                _EXPIRED_LOG_INTERVAL, self._log_expired
            )

    def _log_expired(self) -> None:
        log.info(
            "connections closed for sending no request in %.0fs: %d, the last from %s",
            HEAD_TIMEOUT,
            self._expired,
            self._expired_last_address,
        )
        self._expired = 0

    def serve_http(self, connection: socket.socket, address: tuple[str, int]) -> None:
        server = self._http_server
        stream = _HttpStream(
            connection,
            max_buffer_size=server.max_buffer_size,
            read_chunk_size=server.read_chunk_size,
        )
        server.handle_stream(stream, address)


class _HttpStream(IOStream):
    """An IOStream that sends the API's JSON error for a request Tornado cannot parse.

    Tornado (6.x) answers such a request, for example one with a control character
    in a header, with a fixed "400 Bad Request" and no body, then closes.
    """

    def write(self, data: bytes | memoryview) -> asyncio.Future[None]:
        if data == _TORNADO_BAD_REQUEST:
            data = _BAD_REQUEST
        return super().write(data)


_TORNADO_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\n\r\n"
_BAD_REQUEST = error_response(
    400,
    "bad_request",
    "the request is not valid HTTP/1.1; check the request line and the headers "
    "for control characters or missing colons",
)


class _NewConnection:
    """A connection until its first bytes show where it goes."""

    __slots__ = (
        "_address",
        "_connection",
        "_head",
        "_lingering",
        "_listener",
        "_loop",
        "_peek_delay",
        "_timer",
    )

    def __init__(
        self, listener: Listener, connection: socket.socket, address: tuple[str, int]
    ) -> None:
        self._listener = listener
        self._connection = connection
        self._address = address
        self._loop = asyncio.get_running_loop()
        # None while peeking; the bytes read so far once it is an upgrade.
        self._head: bytes | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._lingering = False
        self._peek_delay = _PEEK_RETRY_DELAY

    def start(self) -> None:
        self._timer = self._loop.call_later(HEAD_TIMEOUT, self._expire)
        self._loop.add_reader(self._connection.fileno(), self._on_readable)

    def _finish(self) -> None:
        self._loop.remove_reader(self._connection.fileno())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        if not self._lingering:
            self._listener.note_expired(self._address[0])
        self._timer = None
        self._finish()
        self._connection.close()

    def _on_readable(self) -> None:
        if self._lingering:
            self._discard()
        elif self._head is None:
            self._peek()
        else:
            self._read_head()

    def _receive(self, size: int, flags: int = 0) -> bytes | None:
        """Receive up to ``size`` bytes, or return None when there are none to
        handle: none arrived yet, or the peer closed and so did this side."""
        try:
            data = self._connection.recv(size, flags)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b""
        if not data:
            self._finish()
            self._connection.close()
            return None
        return data

    def _peek(self) -> None:
        first = self._receive(_PREFIX_SIZE, socket.MSG_PEEK)
        if first is None:
            return

        if first in _UPGRADE_PREFIXES:
            self._head = b""
            self._read_head()
        elif len(first) < _PREFIX_SIZE and _UPGRADE_PREFIXES[0].startswith(first):
            # Too few bytes to tell. The socket stays readable until more arrive,
            # so peek again after a pause instead of spinning.
            self._loop.remove_reader(self._connection.fileno())
            self._loop.call_later(self._peek_delay, self._peek_again)
            self._peek_delay = min(self._peek_delay * 2, _MAX_PEEK_RETRY_DELAY)
        else:
            self._finish()
            self._listener.serve_http(self._connection, self._address)

    def _peek_again(self) -> None:
        if self._timer is not None:
            self._loop.add_reader(self._connection.fileno(), self._on_readable)

    def _read_head(self) -> None:
        assert self._head is not None
        data = self._receive(MAX_HEAD_SIZE - len(self._head))
        if data is None:
            return

        self._head += data
        end = head_end(self._head)
        if end >= 0:
            self._finish()
            # A client should wait for the 101 response before it sends frames, but
            # bytes that came early are passed on and read as frames.
            self._listener.on_upgrade(
                self._connection, self._address[0], self._head[:end], self._head[end:]
            )
        elif len(self._head) >= MAX_HEAD_SIZE:
            with contextlib.suppress(OSError):
                self._connection.send(
                    error_response(
                        431,
                        "request_too_large",
                        f"request headers are limited to {MAX_HEAD_SIZE} bytes",
                    )
                )
            self._linger()

    def _linger(self) -> None:
        """Close after the client stops sending.

        Closing a socket with unread data makes the kernel send a reset, which can
        destroy the response before the client reads it. So the write side is shut,
        and what the client still sends is read and dropped until it closes or
        LINGER_TIMEOUT passes.
        """
        with contextlib.suppress(OSError):
            self._connection.shutdown(socket.SHUT_WR)
        self._head = None
        self._lingering = True
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(LINGER_TIMEOUT, self._expire)

    def _discard(self) -> None:
        # Read and drop until the peer closes; _receive then closes this side too.
        self._receive(65536)
