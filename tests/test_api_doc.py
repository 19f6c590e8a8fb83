"""docs/API.md documents exactly the routes the application serves."""

from __future__ import annotations

import re
from pathlib import Path

from server.app import make_app

API_DOC = Path(__file__).parent.parent / "docs" / "API.md"


def _normalize_doc_path(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "{}", path.split("?")[0])


def _normalize_route(pattern: str) -> str:
    return re.sub(r"\([^)]*\)", "{}", pattern).rstrip("$")


def test_every_api_route_is_documented(ctx):
    app = make_app(ctx)
    routes = {
        _normalize_route(rule.matcher.regex.pattern)
        for rule in app.wildcard_router.rules
        if "/api/" in rule.matcher.regex.pattern
    }
    documented = {
        _normalize_doc_path(path)
        for path in re.findall(
            r"`(?:GET|POST|PUT|PATCH|DELETE) (/api/v1/[^`\s]*)", API_DOC.read_text()
        )
    }

    assert routes - documented == set(), "routes missing from docs/API.md"
    assert documented - routes == set(), "docs/API.md lists routes that do not exist"
