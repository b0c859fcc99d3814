"""The HTTP API as a config source: ``GET /api/v1/config/{service}`` with ETag, and the SSE watch.

The contract (see DESIGN.md, "HTTP API"): 200 with ``{"service", "version", "config",
"updated_at", ...}`` and ``ETag: "<version>"``; ``If-None-Match: "<version>"`` gives 304;
an unknown service gives 404. ``GET .../watch`` is Server-Sent Events (``api/sse.py``): the
current state first (``event: config``), then one ``event: change`` per version, ``id:`` the
version, ``data`` a JSON object with ``version``, ``kind``, ``config`` (null for a deletion) and
``occurred_at``; ``Last-Event-ID: N`` resumes after version N.

Every request is bounded by ``timeout`` and runs in a session of its own: the client asks at
most once per cache TTL, so there is no long-lived HTTP resource to leak or close. No aiohttp
exception escapes: ``Unavailable`` / ``StoreTimeout`` for the network and 5xx, ``UsageError``
for a request the hub refuses (401, 403, other 4xx), ``WorldError`` for a body that breaks the
contract.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from ledger.errors import StoreTimeout, Unavailable, UsageError, WorldError

from .snapshot import Snapshot, Source

__all__ = ["HttpSource", "http_errors", "parse_body"]

log = logging.getLogger("client.http")


@contextlib.contextmanager
def http_errors(what: str) -> Iterator[None]:
    """Translate aiohttp and socket exceptions raised inside the block."""
    try:
        yield
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise StoreTimeout(f"the config hub did not answer in time ({what})") from None
    except aiohttp.InvalidURL as exc:
        raise UsageError(f"invalid config hub URL ({what}): {exc}") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise Unavailable(f"the config hub is unavailable ({what}): {type(exc).__name__}: {exc}") from None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _error_field(body: bytes, name: str) -> str | None:
    """``error.<name>`` of a JSON error body (``{"error": {"code", "message"}}``), if it is one."""
    try:
        value = orjson.loads(body)["error"][name]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _error_code(body: bytes) -> str | None:
    return _error_field(body, "code")


def _deleted_version(body: bytes) -> int | None:
    """The version of the deletion a 404 reports (``details: {"deleted": true, "version": N}``)."""
    try:
        details = orjson.loads(body)["error"]["details"]
        version = details["version"] if details.get("deleted") is True else None
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    return version if isinstance(version, int) and not isinstance(version, bool) and version >= 1 else None


def parse_body(payload: Any, *, deleted: bool = False) -> Snapshot:
    """A GET body (or SSE ``data``) as a snapshot; WorldError if it breaks the contract."""
    if not isinstance(payload, dict):
        raise WorldError("config hub answered with something that is not a JSON object")
    version, config = payload.get("version"), payload.get("config")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise WorldError(f"config hub answered without a valid version: {version!r}")
    if deleted or payload.get("deleted") is True or payload.get("kind") == "deleted":
        config = None
    elif not isinstance(config, dict):
        raise WorldError(f"config hub answered version {version} without a config object")
    updated_at = _parse_time(payload.get("updated_at") or payload.get("occurred_at"))
    return Snapshot(version, config, Source.API, updated_at)


class HttpSource:
    """Read one service's config from the config hub's HTTP API."""

    def __init__(self, base_url: str, service: str, *, token: str | None = None, timeout: float = 2.0):
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.url = f"{self.base_url}/api/v1/config/{quote(service, safe='')}"
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"HttpSource({self.url!r})"

    def _headers(self, **extra: str) -> dict[str, str]:
        headers = {"Accept": "application/json", **extra}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _refused(self, status: int, body: bytes) -> UsageError:
        message = _error_field(body, "message") or body[:200].decode(errors="replace")
        return UsageError(f"config hub refused GET {self.url}: HTTP {status}: {message}")

    async def fetch(self, have_version: int | None = None) -> Snapshot | None:
        """The current config; None when it is still ``have_version`` (HTTP 304).

        A service the hub does not know comes back as ``Snapshot(None, None, api)``; a deleted
        one as ``Snapshot(<version of the deletion>, None, api)`` when the 404 says which.
        """
        headers = self._headers()
        if have_version is not None:
            headers["If-None-Match"] = f'"{have_version}"'
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        with http_errors(f"GET {self.url}"):
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(self.url, headers=headers, allow_redirects=True) as resp,
            ):
                body = await resp.read()
                status = resp.status
        if status == 304:
            return None
        if status == 404:
            if _error_code(body) != "not_found":
                # Not the config API's answer (a wrong URL, a proxy): nothing is known about the
                # service, and what the client holds must not be dropped for it.
                raise UsageError(
                    f"GET {self.url} answered 404 without the config API's not_found error: "
                    "is the hub URL right?"
                )
            return Snapshot(_deleted_version(body), None, Source.API)
        if status >= 500 or status == 429:
            raise Unavailable(f"config hub answered HTTP {status} for GET {self.url}")
        if status != 200:
            raise self._refused(status, body)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise WorldError(f"config hub answered GET {self.url} with a body that is not JSON") from None
        return parse_body(payload)

    async def watch(
        self, *, after_version: int | None = None, idle_timeout: float = 60.0
    ) -> AsyncIterator[Snapshot | None]:
        """Snapshots from the SSE watch until the connection ends (the caller reconnects).

        Yields None once connected, then a snapshot per event (after ``after_version`` when
        given, via ``Last-Event-ID``). Events whose data carries no version are skipped; an
        event that breaks the contract is logged and skipped.
        """
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_read=idle_timeout)
        headers = self._headers(Accept="text/event-stream")
        if after_version is not None:
            headers["Last-Event-ID"] = str(after_version)
        url = f"{self.url}/watch"
        with http_errors(f"GET {url}"):
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, headers=headers) as resp,
            ):
                if resp.status == 404:
                    raise Unavailable(f"config hub has no watch endpoint at {url} (HTTP 404)")
                if resp.status >= 500 or resp.status == 429:
                    raise Unavailable(f"config hub answered HTTP {resp.status} for GET {url}")
                if resp.status != 200:
                    raise self._refused(resp.status, await resp.read())
                yield None
                event, data = "", []
                async for raw in resp.content:
                    line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                    if line:
                        field, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        if field == "event":
                            event = value
                        elif field == "data":
                            data.append(value)
                        continue
                    if data:
                        snapshot = self._event(event, "\n".join(data))
                        if snapshot is not None:
                            yield snapshot
                    event, data = "", []

    def _event(self, event: str, data: str) -> Snapshot | None:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.warning("skipping SSE event %r from %s: data is not JSON", event, self.url)
            return None
        if not isinstance(payload, dict) or "version" not in payload:
            return None
        try:
            return parse_body(payload, deleted=event == "deleted")
        except WorldError as exc:
            log.warning("skipping SSE event %r from %s: %s", event, self.url, exc.message)
            return None
