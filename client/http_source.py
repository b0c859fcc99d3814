"""The HTTP API as a config source: ``GET /api/v1/config/{service}`` with ETag, and the SSE watch.

The contract (see DESIGN.md, "HTTP API"): 200 with ``{"service", "version", "config",
"updated_at", ...}`` and ``ETag: "<version>"``; ``If-None-Match: "<version>"`` gives 304;
an unknown service gives 404. ``GET .../watch`` is Server-Sent Events (``api/sse.py``): the
current state first (``event: config``), then one ``event: change`` per version, ``id:`` the
version, ``data`` a JSON object with ``version``, ``kind``, ``config`` (null for a deletion) and
``occurred_at``; ``Last-Event-ID: N`` resumes after version N.

Every request is bounded by ``timeout`` and runs in a session of its own: the client asks at
most once per cache TTL, so there is no long-lived HTTP resource to leak or close. The transport
and the status mapping are the hub's HTTP edge (``client.hub_http``); here only what a config
source adds: 304 is "unchanged", a 404 of the config API is "unknown or deleted", ``WorldError``
for a body that breaks the contract.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from ledger.errors import UsageError, WorldError

from .hub_http import HubHttp, HubResponse
from .snapshot import Snapshot, Source

__all__ = ["HttpSource", "parse_body"]

log = logging.getLogger("client.http")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _error_code(body: Any) -> str | None:
    """``error.code`` of a JSON error body (``{"error": {"code", "message"}}``), if it is one."""
    try:
        value = body["error"]["code"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _deleted_version(body: Any) -> int | None:
    """The version of the deletion a 404 reports (``details: {"deleted": true, "version": N}``)."""
    try:
        details = body["error"]["details"]
        version = details["version"] if details.get("deleted") is True else None
    except (KeyError, TypeError, AttributeError):
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
        self.hub = HubHttp(base_url, token=token, timeout=timeout)
        self.service = service
        self.path = HubHttp.path("config", service)
        self.url = self.hub.base_url + self.path
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"HttpSource({self.url!r})"

    async def fetch(self, have_version: int | None = None) -> Snapshot | None:
        """The current config; None when it is still ``have_version`` (HTTP 304).

        A service the hub does not know comes back as ``Snapshot(None, None, api)``; a deleted
        one as ``Snapshot(<version of the deletion>, None, api)`` when the 404 says which.
        """
        headers = {"If-None-Match": f'"{have_version}"'} if have_version is not None else {}
        resp: HubResponse = await self.hub.request("GET", self.path, headers=headers, ok=(404,))
        if resp.status == 304:
            return None
        if resp.status == 404:
            if _error_code(resp.body) != "not_found":
                # Not the config API's answer (a wrong URL, a proxy): nothing is known about the
                # service, and what the client holds must not be dropped for it.
                raise UsageError(
                    f"GET {self.url} answered 404 without the config API's not_found error: "
                    "is the hub URL right?"
                )
            return Snapshot(_deleted_version(resp.body), None, Source.API)
        if resp.status != 200:
            raise WorldError(f"config hub answered GET {self.url} with HTTP {resp.status}")
        if isinstance(resp.body, str):
            raise WorldError(f"config hub answered GET {self.url} with a body that is not JSON")
        return parse_body(resp.body)

    async def watch(
        self, *, after_version: int | None = None, idle_timeout: float = 60.0
    ) -> AsyncIterator[Snapshot | None]:
        """Snapshots from the SSE watch until the connection ends (the caller reconnects).

        Yields None once connected, then a snapshot per event (after ``after_version`` when
        given, via ``Last-Event-ID``). Events whose data carries no version are skipped; an
        event that breaks the contract is logged and skipped.
        """
        last_id = str(after_version) if after_version is not None else None
        async for sse in self.hub.events(self.path + "/watch", last_event_id=last_id, idle_timeout=idle_timeout):
            if sse is None:
                yield None
                continue
            snapshot = self._event(sse.event, sse.json())
            if snapshot is not None:
                yield snapshot

    def _event(self, event: str, payload: Any) -> Snapshot | None:
        if isinstance(payload, str):
            log.warning("skipping SSE event %r from %s: data is not JSON", event, self.url)
            return None
        if not isinstance(payload, dict) or "version" not in payload:
            return None
        try:
            return parse_body(payload, deleted=event == "deleted")
        except WorldError as exc:
            log.warning("skipping SSE event %r from %s: %s", event, self.url, exc.message)
            return None
