"""The web console: static files shipped in ``api/console/``, served at ``/`` and ``/console/…``.

The console is plain HTML, CSS and ES modules that talk to the public HTTP API only (with the
same bearer tokens), so these handlers are public and serve nothing but the files found in the
folder when the app is built (no path from the request ever reaches the file system).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ledger import NotFound

__all__ = ["CONSOLE_DIR", "console_index", "console_asset", "load_console"]

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Only this origin: no CDN, no inline script; the API is same-origin.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class _File:
    body: bytes
    content_type: str
    etag: str


_FILES: dict[str, _File] = {}


def load_console() -> dict[str, _File]:
    """Read the console's files once (a few tens of kilobytes)."""
    if not _FILES:
        for path in sorted(CONSOLE_DIR.iterdir()):
            kind = _TYPES.get(path.suffix)
            if kind and path.is_file():
                body = path.read_bytes()
                _FILES[path.name] = _File(body, kind, f'"{hashlib.sha256(body).hexdigest()[:16]}"')
    return _FILES


def _serve(request: web.Request, name: str) -> web.Response:
    found = load_console().get(name)
    if found is None:
        raise NotFound(f"no console file {name[:80]!r}", details={"file": name[:80]})
    if request.headers.get("If-None-Match") == found.etag:
        return web.Response(status=304, headers={"ETag": found.etag, **_HEADERS})
    return web.Response(
        body=found.body, headers={"Content-Type": found.content_type, "ETag": found.etag, **_HEADERS}
    )


async def console_index(request: web.Request) -> web.Response:
    """The console's page (its pages are client-side routes: ``/#/services``, ``/#/s/<name>``…)."""
    return _serve(request, "index.html")


async def console_asset(request: web.Request) -> web.Response:
    """One of the console's files (modules, stylesheet)."""
    return _serve(request, request.match_info["file"])
