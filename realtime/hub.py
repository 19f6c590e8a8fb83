"""Local topic subscriptions of one process and the fan-out to its sockets."""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from typing import NamedTuple, Protocol

from realtime.frames import text_frame

log = logging.getLogger(__name__)


class Subscriber(Protocol):
    """A socket as the hub uses it: an object that takes whole frames."""

    def send_frame(self, frame: bytes) -> None:
        """Queue an already-encoded frame without waiting for the network."""


# Fan-outs kept for /healthz.
RECENT_FANOUTS = 256


class Fanout(NamedTuple):
    """One event handed to this process's sockets, and how late the last send was."""

    topic: str
    published_ms: int
    sockets: int
    # From the publish in Redis until the last socket's send returned.
    lag_ms: float


class Hub:
    """The local sockets of each topic.

    A socket that is catching up on a topic is *pending*: events that arrive meanwhile
    are queued for it and handed over once its recovered events are sent, so it
    receives each event once and in order.
    """

    def __init__(self) -> None:
        self._live: dict[str, set[Subscriber]] = defaultdict(set)
        self._pending: dict[str, dict[Subscriber, list[tuple[int, bytes]]]] = (
            defaultdict(dict)
        )
        self.deliveries = 0
        self.recent_fanouts: deque[Fanout] = deque(maxlen=RECENT_FANOUTS)

    def topics(self) -> set[str]:
        return {topic for topic in self._live if self._live[topic]} | {
            topic for topic in self._pending if self._pending[topic]
        }

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._live.get(topic)) or bool(self._pending.get(topic))

    def subscriber_count(self, topic: str) -> int:
        return len(self._live.get(topic, ())) + len(self._pending.get(topic, ()))

    def add_pending(self, topic: str, subscriber: Subscriber) -> None:
        self._pending[topic][subscriber] = []

    def promote(self, topic: str, subscriber: Subscriber, last_offset: int) -> None:
        """Send what was queued after ``last_offset`` and make the socket live."""
        queued = self._pending[topic].pop(subscriber, None)
        if queued is None:
            return
        for offset, frame in queued:
            if offset > last_offset:
                subscriber.send_frame(frame)
        self._live[topic].add(subscriber)

    def remove(self, topic: str, subscriber: Subscriber) -> bool:
        """Drop the socket from the topic; return True if no local socket is left."""
        self._pending.get(topic, {}).pop(subscriber, None)
        live = self._live.get(topic)
        if live is not None:
            live.discard(subscriber)
        empty = not self.has_subscribers(topic)
        if empty:
            self._live.pop(topic, None)
            self._pending.pop(topic, None)
        return empty

    def deliver(
        self, topic: str, offset: int, event: bytes, published_ms: int | None = None
    ) -> None:
        """Frame the event once and hand the same bytes to every local socket.

        With ``published_ms`` the fan-out's lag behind the publish is recorded for
        live topics.
        """
        frame = text_frame(event)
        for queue in self._pending.get(topic, {}).values():
            queue.append((offset, frame))

        live = self._live.get(topic)
        if not live:
            return
        # A copy, because a send may close a slow socket and remove it from the set.
        sockets = tuple(live)
        for subscriber in sockets:
            subscriber.send_frame(frame)
        self.deliveries += len(sockets)
        # Only live topics are recorded: /healthz is public, and the names of order
        # and manager topics are not.
        if published_ms is not None and topic.startswith("live:"):
            lag_ms = round(time.time() * 1000 - published_ms, 1)
            self.recent_fanouts.append(
                Fanout(topic, published_ms, len(sockets), lag_ms)
            )

    def drop_topic(self, topic: str) -> set[Subscriber]:
        """Remove every local subscriber of ``topic`` and return them."""
        dropped = set(self._live.pop(topic, set()))
        dropped.update(self._pending.pop(topic, {}))
        return dropped
