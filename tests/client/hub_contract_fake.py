"""A CONTRACT FAKE of the config hub's HTTP API, for the client's HTTP path only.

It mimics what the client relies on (DESIGN.md "HTTP API", api/views.py, api/sse.py):

- ``GET /api/v1/config/{service}`` → 200 ``{"service", "version", "config", "updated_at", ...}``
  with ``ETag: "<version>"``; ``If-None-Match: "<version>"`` → 304; unknown or deleted service
  → 404 ``{"error": {"code": "not_found", "message": "Config not found for service: <name>",
  "details": {"service", "deleted"?, "version"?}}}`` (api/config_handlers.py);
- optional bearer token → 401 without it;
- ``GET /api/v1/config/{service}/watch`` → SSE: ``retry``, the current state (``event: config``)
  or, with ``Last-Event-ID: N``, every version after N (``event: change``), then live changes;
  ``id:`` is the version, ``data`` carries ``version``, ``kind``, ``config``, ``occurred_at``.

It is not the API: the API's own tests cover the other side of this contract.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class _Version:
    version: int
    config: dict[str, Any] | None
    occurred_at: str

    @property
    def kind(self) -> str:
        return "deleted" if self.config is None else "replaced"

    def view(self, service: str) -> dict[str, Any]:
        return {
            "service": service,
            "service_name": service,
            "version": self.version,
            "kind": self.kind,
            "config": self.config,
            "updated_at": self.occurred_at,
            "occurred_at": self.occurred_at,
        }


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]
    status: int = 0


@dataclass
class HubContractFake:
    token: str | None = None
    history: dict[str, list[_Version]] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    fail_with: int | None = None  # answer every GET with this status (e.g. 503)
    _watchers: dict[str, list[asyncio.Queue[_Version | None]]] = field(default_factory=dict)
    _server: TestServer | None = None

    # --- what the tests drive --------------------------------------------------------------

    def set(self, service: str, config: dict[str, Any] | None) -> int:
        """Append a version (``None``: a deletion) and push it to watchers; returns the version."""
        versions = self.history.setdefault(service, [])
        v = _Version(len(versions) + 1, config, datetime.now(UTC).isoformat())
        versions.append(v)
        for queue in self._watchers.get(service, []):
            queue.put_nowait(v)
        return v.version

    def delete(self, service: str) -> int:
        return self.set(service, None)

    def gets(self, service: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.path == f"/api/v1/config/{service}"]

    def drop_watchers(self) -> None:
        """End every SSE stream (as a restarting hub would)."""
        for queues in self._watchers.values():
            for queue in queues:
                queue.put_nowait(None)

    # --- server ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> HubContractFake:
        app = web.Application()
        app.router.add_get("/api/v1/config/{service}", self._get)
        app.router.add_get("/api/v1/config/{service}/watch", self._watch)
        self._server = TestServer(app)
        await self._server.start_server()
        return self

    async def close(self) -> None:
        self.drop_watchers()
        if self._server is not None:
            await self._server.close()

    def _refusal(self, request: web.Request) -> web.Response | None:
        if self.fail_with is not None:
            return web.json_response(
                {"error": {"code": "unavailable", "message": "down"}}, status=self.fail_with
            )
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": {"code": "unauthorized", "message": "bad token"}}, status=401)
        return None

    def _current(self, service: str) -> _Version | None:
        versions = self.history.get(service)
        if not versions or versions[-1].config is None:
            return None
        return versions[-1]

    async def _get(self, request: web.Request) -> web.Response:
        service = request.match_info["service"]
        seen = SeenRequest(request.path, dict(request.headers))
        self.requests.append(seen)
        response = self._refusal(request) or self._answer(request, service)
        seen.status = response.status
        return response

    def _answer(self, request: web.Request, service: str) -> web.Response:
        current = self._current(service)
        if current is None:
            versions = self.history.get(service)
            details = {"service": service}
            if versions:  # deleted: the API says so, with the deletion's version
                details.update(deleted=True, version=versions[-1].version)
            return web.json_response(
                {"error": {"code": "not_found", "message": f"Config not found for service: {service}",
                           "details": details}},
                status=404,
            )
        etag = f'"{current.version}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=orjson.dumps(current.view(service)),
            content_type="application/json",
            headers={"ETag": etag},
        )

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        service = request.match_info["service"]
        self.requests.append(SeenRequest(request.path, dict(request.headers), 200))
        refused = self._refusal(request)
        if refused is not None:
            return refused
        queue: asyncio.Queue[_Version | None] = asyncio.Queue()
        self._watchers.setdefault(service, []).append(queue)
        try:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(b"retry: 1000\n\n")
            last_id = request.headers.get("Last-Event-ID")
            if last_id is None:
                current = self._current(service)
                if current is not None:
                    await self._send(resp, "config", service, current)
            else:
                for v in self.history.get(service, [])[int(last_id) :]:
                    await self._send(resp, "change", service, v)
            await resp.write(b": keepalive\n\n")
            while (v := await queue.get()) is not None:
                await self._send(resp, "change", service, v)
            return resp
        finally:
            self._watchers[service].remove(queue)

    @staticmethod
    async def _send(resp: web.StreamResponse, event: str, service: str, v: _Version) -> None:
        data = orjson.dumps(v.view(service))
        await resp.write(b"id: %d\nevent: %s\ndata: %s\n\n" % (v.version, event.encode(), data))
