"""The API's documentation page, served offline: Swagger UI from the app itself.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script; the app's
Content-Security-Policy (scripts and styles from 'self' only) blocks both, and a clinic network
may have no internet at all. So the assets come from the ``fastapi-offline`` package (Swagger UI
5, Apache-2.0, shipped inside its wheel) under :data:`ASSETS_URL`, and the page starts Swagger UI
from ``static/api-docs.js``; the CSP stays 'self'-only.
"""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

DOCS_URL = "/api/docs"
ASSETS_URL = "/api/docs/assets"
_ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"


def install_api_docs(app: FastAPI, openapi_url: str) -> None:
    """Serve the Swagger UI page at :data:`DOCS_URL` (public, like the OpenAPI spec)."""
    app.mount(ASSETS_URL, StaticFiles(directory=_ASSETS_DIR), name="api-docs-assets")
    page = _page(app.title, openapi_url)

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    app.add_route(DOCS_URL, docs, methods=["GET"], include_in_schema=False)


def _page(title: str, openapi_url: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}: API documentation</title>
<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">
<link rel="icon" href="{ASSETS_URL}/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{html.escape(openapi_url)}"></div>
<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""
