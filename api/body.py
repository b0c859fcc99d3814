"""Request bodies: content type, size limit, strict JSON (duplicate keys, NaN, encoding)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ledger.canonical import parse_strict

from .errors import PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from .keys import SETTINGS

__all__ = ["JSON", "MERGE_PATCH", "read_body", "read_json", "media_type"]

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"

_CHUNK = 64 * 1024


def media_type(request: web.Request) -> str:
    """The Content-Type without parameters, lower-cased ('' when absent)."""
    raw = request.headers.get("Content-Type", "")
    return raw.split(";", 1)[0].strip().lower()


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, refusing (413) before reading more than ``limit`` bytes, and (408) when
    it does not arrive within ``API_BODY_TIMEOUT_S``."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    timeout = request.app[SETTINGS].body_timeout_s
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await request.content.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(f"request body not complete within {timeout:g} s", "body.timeout") from None
    return b"".join(chunks)


async def read_json(request: web.Request, *, limit: int, media_types: tuple[str, ...] = (JSON,)) -> Any:
    """Check the content type (415), the size (413), then parse strictly (InvalidConfig → 400)."""
    got = media_type(request)
    if got not in media_types:
        raise UnsupportedMediaType(request.headers.get("Content-Type", ""), media_types)
    return parse_strict(await read_body(request, limit))
