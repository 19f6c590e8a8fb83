"""Product images: uploaded straight from the browser to S3 with a presigned POST,
or, without a bucket, to a local folder through a signed URL of this app."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import boto3

from server.settings import Settings

ALLOWED_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
# The first bytes of each allowed type, checked on local uploads.
MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/webp": (b"RIFF",),
}
UPLOAD_TTL = 600


class ImageStorage(Protocol):
    def presign(self, key: str, content_type: str, size: int) -> dict[str, Any]: ...


def new_key(content_type: str) -> str:
    return f"products/{uuid.uuid4().hex}{ALLOWED_TYPES[content_type]}"


class S3Storage:
    """Presigned POSTs whose policy fixes the key, the type and the size range."""

    def __init__(self, settings: Settings) -> None:
        self._bucket = settings.s3_bucket
        self._max_bytes = settings.max_image_bytes
        self._client = boto3.client(
            "s3",
            region_name=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url or None,
        )
        base = settings.s3_public_base_url
        if not base:
            endpoint = settings.s3_endpoint_url or (
                f"https://{self._bucket}.s3.{settings.s3_region}.amazonaws.com"
            )
            base = (
                f"{endpoint.rstrip('/')}/{self._bucket}"
                if settings.s3_endpoint_url
                else endpoint
            )
        self._public_base = base.rstrip("/")

    def presign(self, key: str, content_type: str, size: int) -> dict[str, Any]:
        # Signing happens locally: no request reaches S3 here.
        post = self._client.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, min(size, self._max_bytes)],
            ],
            ExpiresIn=UPLOAD_TTL,
        )
        return {
            "method": "POST",
            "url": post["url"],
            "fields": post["fields"],
            "headers": {},
            "image_url": f"{self._public_base}/{key}",
        }


class LocalStorage:
    """Files under a folder this app serves at /media/, uploaded with a signed PUT."""

    def __init__(self, settings: Settings) -> None:
        self.root = Path(settings.media_dir)
        self._secret = (settings.jwt_secret or "development").encode()

    def signature(self, key: str, content_type: str, size: int, expires: int) -> str:
        message = f"{key}\n{content_type}\n{size}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def presign(self, key: str, content_type: str, size: int) -> dict[str, Any]:
        expires = int(time.time()) + UPLOAD_TTL
        signature = self.signature(key, content_type, size, expires)
        return {
            "method": "PUT",
            "url": f"/api/v1/uploads/{key}?size={size}&expires={expires}"
            f"&signature={signature}",
            "fields": {},
            "headers": {"Content-Type": content_type},
            "image_url": f"/media/{key}",
        }

    def verify(
        self, key: str, content_type: str, size: int, expires: int, signature: str
    ) -> bool:
        expected = self.signature(key, content_type, size, expires)
        return hmac.compare_digest(expected, signature) and expires >= time.time()

    def exists(self, key: str) -> bool:
        return (self.root / key).exists()

    def save(self, key: str, data: bytes) -> None:
        """Write atomically, so a half-written image is never served."""
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".part")
        partial.write_bytes(data)
        os.replace(partial, path)


def make_storage(settings: Settings) -> S3Storage | LocalStorage:
    return S3Storage(settings) if settings.s3_bucket else LocalStorage(settings)


def looks_like(content_type: str, data: bytes) -> bool:
    if not any(data.startswith(magic) for magic in MAGIC[content_type]):
        return False
    return content_type != "image/webp" or data[8:12] == b"WEBP"
