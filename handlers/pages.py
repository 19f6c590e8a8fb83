"""The storefront's HTML pages, one static file each whatever the path."""

from __future__ import annotations

from pathlib import Path

import tornado.web


class PageHandler(tornado.web.RequestHandler):
    def initialize(self, path: Path) -> None:
        self.path = path

    def get(self, *args: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(self.path.read_bytes())
