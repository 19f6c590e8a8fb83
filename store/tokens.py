"""Secret tokens: made with ``secrets``, stored as SHA-256 digests only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# 32 random bytes, URL-safe base64: 43 characters.
TOKEN_BYTES = 32

# Compared against when no row matches, so a miss costs the same as a wrong token.
_MISSING_DIGEST = hashlib.sha256(b"no such row").digest()


def new_token() -> tuple[str, bytes]:
    """Return a fresh token and the digest to store in its place."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, digest(token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def matches(stored_digest: bytes | None, token: str) -> bool:
    """Compare in constant time; a missing row never matches."""
    expected = _MISSING_DIGEST if stored_digest is None else stored_digest
    found = hmac.compare_digest(expected, digest(token))
    return found and stored_digest is not None


def derive_read_token(session_token: str, idempotency_key: str) -> str:
    """Derive an order's read token from the cart's session token.

    A checkout retried with the same key must return the same read token, yet only its
    digest is stored. An HMAC keyed by the session token, which only the buyer holds,
    rebuilds it on each retry and is as unguessable as the session token itself.
    """
    mac = hmac.new(
        session_token.encode(),
        b"order-read-token:" + idempotency_key.encode(),
        "sha256",
    )
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
