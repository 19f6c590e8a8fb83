"""Secrets kept out of log lines."""

from __future__ import annotations

from urllib.parse import unquote_plus

# Query parameters whose values are secrets and never reach a log line.
SECRET_PARAMETERS = frozenset({"token", "session_token", "read_token", "access_token"})


def redact(uri: str) -> str:
    """Replace the values of secret query parameters with ``[redacted]``.

    Names are compared after percent-decoding, as the application reads them, so
    ``%74oken`` is redacted like ``token``.
    """
    path, separator, query = uri.partition("?")
    if not separator:
        return uri
    parts = []
    for pair in query.split("&"):
        raw_name, equals, _ = pair.partition("=")
        name = unquote_plus(raw_name).strip().lower()
        if equals and name in SECRET_PARAMETERS:
            parts.append(f"{raw_name}=[redacted]")
        else:
            parts.append(pair)
    return f"{path}?{'&'.join(parts)}"
