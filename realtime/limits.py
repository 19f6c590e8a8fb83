"""Token buckets for rates: messages per socket and new sockets per client address."""

from __future__ import annotations

import time


class TokenBucket:
    """Allows ``rate`` events a second on average and bursts of ``burst``."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def seconds_until_token(self) -> float:
        return max(0.0, (1 - self.tokens) / self.rate)


class AddressLimiter:
    """A token bucket per client address, forgetting addresses idle for a minute."""

    def __init__(self, rate: float, burst: float, max_addresses: int = 100_000):
        self._rate = rate
        self._burst = burst
        self._max_addresses = max_addresses
        self._buckets: dict[str, TokenBucket] = {}
        self._last_sweep = time.monotonic()

    def allow(self, address: str) -> tuple[bool, float]:
        """Return whether a new socket from ``address`` may open, and if not, after
        how many seconds it may."""
        now = time.monotonic()
        if now - self._last_sweep > 60 or len(self._buckets) > self._max_addresses:
            self._sweep(now)
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = self._buckets[address] = TokenBucket(self._rate, self._burst)
        if bucket.take(now):
            return True, 0.0
        return False, bucket.seconds_until_token()

    def _sweep(self, now: float) -> None:
        # A bucket idle long enough to be full again carries no information.
        full_after = self._burst / self._rate
        self._buckets = {
            address: bucket
            for address, bucket in self._buckets.items()
            if now - bucket.updated < full_after
        }
        self._last_sweep = now
