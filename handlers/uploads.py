"""Image uploads: a manager requests an upload URL, the browser sends the file there."""

from __future__ import annotations

import logging
import re

from handlers.auth import ManagerHandler
from handlers.base import ApiHandler
from handlers.errors import ApiError
from handlers.validation import get_int, get_str, reject_unknown
from store import images

log = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"^products/[0-9a-f]{32}\.(jpg|png|webp)\Z")


class UploadRequestHandler(ManagerHandler):
    async def post(self) -> None:
        body = self.json_body()
        reject_unknown(body, ["filename", "content_type", "size"])
        get_str(body, "filename", max_length=255)
        content_type = get_str(body, "content_type", max_length=100)
        if content_type not in images.ALLOWED_TYPES:
            raise ApiError(
                400,
                "unsupported_type",
                "content_type must be one of " + ", ".join(images.ALLOWED_TYPES),
                field="content_type",
            )
        size = get_int(
            body, "size", minimum=1, maximum=self.ctx.settings.max_image_bytes
        )

        key = images.new_key(content_type)
        upload = self.ctx.images.presign(key, content_type, size)
        log.info(
            "upload of %s (%d bytes) granted to manager %s", key, size, self.manager_id
        )
        self.write_json(upload, 201)


class LocalUploadHandler(ApiHandler):
    """Receives a file PUT to a URL signed by UploadRequestHandler (no bucket)."""

    def body_limit(self) -> int:
        return self.ctx.settings.max_image_bytes

    def put(self, key: str) -> None:
        storage = self.ctx.images
        if not isinstance(storage, images.LocalStorage) or not KEY_PATTERN.match(key):
            raise ApiError(404, "not_found", "no such upload")
        content_type = self.request.headers.get("Content-Type", "")
        try:
            size = int(self.get_query_argument("size"))
            expires = int(self.get_query_argument("expires"))
        except ValueError:
            raise ApiError(403, "forbidden", "the upload URL is invalid") from None
        signature = self.get_query_argument("signature", "")
        if not storage.verify(key, content_type, size, expires, signature):
            raise ApiError(
                403,
                "forbidden",
                "the upload URL is invalid or expired; ask for a new one",
            )

        data = self.request.body
        if len(data) != size:
            raise ApiError(
                400,
                "size_mismatch",
                f"the file has {len(data)} bytes, the upload was granted for {size}",
                field="size",
            )
        if not images.looks_like(content_type, data):
            raise ApiError(
                400,
                "invalid_image",
                f"the file is not a {content_type} image",
                field="content_type",
            )
        if storage.exists(key):
            raise ApiError(
                409, "already_uploaded", "this upload URL was used; ask for a new one"
            )
        storage.save(key, data)
        self.write_json({"image_url": f"/media/{key}"}, 201)
