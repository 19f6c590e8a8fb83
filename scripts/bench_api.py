"""The manager API calls scripts/bench makes: login, the bench live, stock changes."""

from __future__ import annotations

import http.client
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("bench")

BENCH_SKU = "BENCH-1"
HTTP_TIMEOUT = 15.0


class ApiError(RuntimeError):
    """A manager API request that did not return the expected status."""


@dataclass
class Publication:
    """A stock change: the stock value and time.time() just before the PATCH."""

    stock: int
    published_at: float


class ManagerApi:
    """A keep-alive HTTP/1.1 connection to one Vitrine listener, logged in as a manager.

    Not thread-safe: the bench publishes from one thread.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.token: str | None = None
        # Durations of the stock PATCH requests, seconds, until the caller clears it.
        self.request_seconds: list[float] = []
        self._connection: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: dict[str, Any] | None, expected: int
    ) -> Any:
        """Send one request, reconnecting once if the kept-alive connection closed."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            connection = self._connect()
            try:
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        if response.status != expected:
            raise ApiError(
                f"{method} http://{self.host}:{self.port}{path} returned "
                f"{response.status}, expected {expected}: {data[:300]!r}"
            )
        return json.loads(data) if data else None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                self.host, self.port, timeout=HTTP_TIMEOUT
            )
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def login(self, username: str, password: str) -> None:
        reply = self.request(
            "POST",
            "/api/v1/manager/login",
            {"username": username, "password": password},
            200,
        )
        self.token = reply["access_token"]

    def ensure_live(self, slug: str) -> None:
        """Create the live ``slug`` unless it exists, and make sure it is on air."""
        try:
            reply = self.request("GET", f"/api/v1/manager/lives/{slug}", None, 200)
        except ApiError as exc:
            if " returned 404" not in str(exc):
                raise
            log.info("creating the live %r", slug)
            self.request(
                "POST",
                "/api/v1/manager/lives",
                {"slug": slug, "title": "Benchmark (scripts/bench)"},
                201,
            )
            reply = self.request("GET", f"/api/v1/manager/lives/{slug}", None, 200)
        if reply["live"]["status"] == "scheduled":
            self.request(
                "PATCH", f"/api/v1/manager/lives/{slug}", {"status": "live"}, 200
            )
        elif reply["live"]["status"] == "ended":
            raise ApiError(
                f"the live {slug!r} has ended and cannot go on air again; "
                "pass another --live"
            )

    def ensure_product(self, slug: str) -> int:
        """Return the id of the bench product in ``slug``, creating it if missing."""
        reply = self.request("GET", f"/api/v1/manager/lives/{slug}", None, 200)
        for product in reply["products"]:
            if product["sku"] == BENCH_SKU:
                return int(product["id"])
        log.info("creating the product %s in the live %r", BENCH_SKU, slug)
        product = self.request(
            "POST",
            f"/api/v1/manager/lives/{slug}/products",
            {
                "sku": BENCH_SKU,
                "name": "Benchmark product",
                "price_cents": 100,
                "stock": 0,
            },
            201,
        )
        return int(product["id"])

    def set_stock(self, slug: str, product_id: int, stock: int) -> Publication:
        """PATCH the stock. The publish time is taken just before the request."""
        published_at = time.time()
        self.request(
            "PATCH",
            f"/api/v1/manager/lives/{slug}/products/{product_id}",
            {"stock": stock},
            200,
        )
        self.request_seconds.append(time.time() - published_at)
        return Publication(stock, published_at)

    def topic_offset(self, slug: str) -> int:
        reply = self.request("GET", f"/api/v1/lives/{slug}", None, 200)
        return int(reply["topic"]["offset"])


def read_password(var_dir: Path) -> str:
    path = var_dir / "secrets" / "demo_password"
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise SystemExit(
            f"cannot read the demo manager password from {path}: {exc}; run "
            "scripts/run first or pass --var-dir of the running topology"
        ) from exc


def fanout_lags(ports: list[int], topic: str, since_ms: float) -> list[float]:
    """Return each process's fan-out lags (ms) of events on ``topic`` published at
    or after ``since_ms``, read from GET /healthz on 127.0.0.1."""
    lags: list[float] = []
    for port in ports:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
        try:
            connection.request("GET", "/healthz")
            health = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        for fanout_topic, published_ms, _sockets, lag_ms in health.get(
            "recent_fanouts", []
        ):
            if fanout_topic == topic and published_ms >= since_ms:
                lags.append(lag_ms)
    return lags
