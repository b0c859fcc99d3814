"""The in-process cache of every service's current config (pure data; fed by ``ProjectionFeed``).

Each entry keeps the serialised GET body and the ETag, so a cached read is a dict lookup and one
``web.Response``. ``seq`` is the projector checkpoint the whole cache reflects: the cache holds
exactly the state of PostgreSQL at that checkpoint, which is what read-your-writes compares with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .repository import Version
from .views import current_view, dumps, etag_of

__all__ = ["CachedConfig", "ConfigCache"]


@dataclass(frozen=True)
class CachedConfig:
    version: Version
    etag: str
    body: bytes  # the GET response body (meaningless for a deletion)

    @classmethod
    def of(cls, version: Version) -> CachedConfig:
        return cls(version, etag_of(version.version), dumps(current_view(version)))


class ConfigCache:
    """service → current config, as of projector checkpoint ``seq`` (-1: never loaded)."""

    def __init__(self) -> None:
        self.seq = -1
        self._entries: dict[str, CachedConfig] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, service: str) -> CachedConfig | None:
        return self._entries.get(service)

    def entries(self) -> list[CachedConfig]:
        return [self._entries[k] for k in sorted(self._entries)]

    def apply(self, checkpoint: int, rows: Iterable[Version], *, full: bool) -> set[str]:
        """Take ``rows`` (changed since ``seq``, or all when ``full``); return the changed services."""
        changed: set[str] = set()
        if full:
            fresh = {r.service: CachedConfig.of(r) for r in rows}
            for name in set(fresh) | set(self._entries):
                old, new = self._entries.get(name), fresh.get(name)
                if old is None or new is None or old.version.stream_seq != new.version.stream_seq:
                    changed.add(name)
            self._entries = fresh
        else:
            for r in rows:
                old = self._entries.get(r.service)
                if old is None or old.version.stream_seq < r.stream_seq:
                    self._entries[r.service] = CachedConfig.of(r)
                    changed.add(r.service)
        self.seq = checkpoint
        return changed
