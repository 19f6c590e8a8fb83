"""Password hashing with scrypt, a memory-hard function from the standard library."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

# 2**14 * 8 * 128 bytes = 16 MiB of memory per hash, about 50 ms of CPU.
_N = 2**14
_R = 8
_P = 1
_MAXMEM = 64 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str) -> str:
    """Return ``scrypt$n$r$p$salt$hash`` for storage."""
    salt = secrets.token_bytes(16)
    derived = hashlib.scrypt(
        password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32
    )
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(derived)}"


def verify_password(stored: str, password: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    derived = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=_MAXMEM,
        dklen=32,
    )
    return hmac.compare_digest(derived, base64.b64decode(expected))


# A hash to verify against when the username is unknown, so a miss takes as long as a
# wrong password and the timing does not reveal which usernames exist.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


async def verify_password_async(stored: str | None, password: str) -> bool:
    """Verify off the event loop: one scrypt call blocks for tens of milliseconds."""
    loop = asyncio.get_running_loop()
    ok = await loop.run_in_executor(
        None, verify_password, stored or _DUMMY_HASH, password
    )
    return ok and stored is not None
