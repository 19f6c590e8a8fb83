"""Logging setup and the access log: plain text in development, JSON in production."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson
import tornado.web

from handlers.redaction import redact

access_log = logging.getLogger("vitrine.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request = getattr(record, "request", None)
        if isinstance(request, dict):
            entry.update(request)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def setup_logging(level: str, json_lines: bool, process_name: str) -> None:
    """Configure the root logger once, from the process entry point."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s %(levelname)s [{process_name}] %(name)s: %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Tornado's own access logger would write a second line per request.
    logging.getLogger("tornado.access").propagate = False


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Write one access line per request handled by Tornado."""
    request = handler.request
    log_access(
        request.method or "",
        _route_of(handler),
        request.uri or "",
        handler.get_status(),
        1000.0 * request.request_time(),
        getattr(handler, "request_id", None),
    )


def log_access(
    method: str,
    route: str,
    uri: str,
    status: int,
    duration_ms: float,
    request_id: str | None,
) -> None:
    """Write one access line; the level follows the status, secrets are redacted."""
    if status < 400:
        level = logging.INFO
    elif status < 500:
        level = logging.WARNING
    else:
        level = logging.ERROR
    path = redact(uri)
    if path.partition("?")[0] in ("/healthz", "/readyz") and status < 400:
        level = logging.DEBUG
    if not access_log.isEnabledFor(level):
        return

    duration_ms = round(duration_ms, 2)
    fields = {
        "method": method,
        "route": route,
        "path": path,
        "status": status,
        "ms": duration_ms,
        "request_id": request_id,
    }
    access_log.log(
        level,
        "%s %s %d %.2fms",
        method,
        path,
        status,
        duration_ms,
        extra={"request": fields},
    )


def _route_of(handler: tornado.web.RequestHandler) -> str:
    return getattr(handler, "route_name", type(handler).__name__)
