"""``GET /api/v1/config/{service}/blame``: who set each leaf of the document, when and why.

Computed from the projected events (``config_versions``) with ``ledger.blame``. The fold of the
latest version is kept per service (``BlameCache``, bounded): a later request folds only the
versions projected since, so blame of a service with a long history costs one fold, once.
``?at=`` folds the history up to that instant afresh.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from aiohttp import web

from ledger import NotFound
from ledger.blame import Blame, Origin, leaves
from ledger.event import format_time

from .keys import REPO
from .params import parse_instant, service_param
from .views import dumps

__all__ = ["BlameCache", "BLAME_CACHE", "blame_config"]


class BlameCache:
    """The latest fold per service, least recently used evicted."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._folds: OrderedDict[str, Blame] = OrderedDict()

    def get(self, service: str) -> Blame:
        fold = self._folds.pop(service, None) or Blame()
        self._folds[service] = fold
        while len(self._folds) > self.size:
            self._folds.popitem(last=False)
        return fold


BLAME_CACHE = web.AppKey("blame_cache", BlameCache)


def _advance(fold: Blame, rows: list[Any]) -> None:
    for r in rows:
        if r["version"] != fold.version + 1:
            continue  # another request folded it already
        origin = Origin(r["version"], r["occurred_at"], r["stored_at"], r["actor"], r["reason"], r["cs"])
        if r["kind"] == "patched":
            fold.advance_patch(r["version"], r["patch"], origin)
        else:
            fold.advance(r["version"], r["config"], origin)


async def blame_config(request: web.Request) -> web.Response:
    service = service_param(request.match_info["service"])
    at_q = request.query.get("at")
    repo = request.app[REPO]
    if at_q is not None:
        instant = parse_instant(at_q)
        fold = Blame()
        _advance(fold, await repo.blame_rows(service, 0, instant))
    else:
        instant = None
        fold = request.app[BLAME_CACHE].get(service)
        _advance(fold, await repo.blame_rows(service, fold.version, None))
    if fold.config is None:
        where = {"at": format_time(instant)} if instant else {}
        raise NotFound(f"Config not found for service: {service}",
                       details={"service": service, "deleted": fold.version > 0, **where})
    origins = fold.lines()
    lines = [
        {
            "pointer": pointer, "value": value, "version": o.version,
            "occurred_at": format_time(o.occurred_at),
            "stored_at": format_time(o.stored_at) if o.stored_at else None,
            "actor": o.actor, "reason": o.reason, "changeset_id": o.changeset_id,
        }
        for pointer, value in leaves(fold.config)
        for o in (origins[pointer],)
    ]
    lines.sort(key=lambda x: x["pointer"])
    body = {"service": service, "version": fold.version, "at": format_time(instant) if instant else None,
            "lines": lines}
    return web.Response(body=dumps(body), content_type="application/json")
