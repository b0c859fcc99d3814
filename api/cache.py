"""One service's current config as the API serves it (pure data; kept by ``api.follower``).

Each entry keeps the serialised GET body and the ETag, so a served read is a dict lookup and one
``web.Response``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .repository import Version
from .views import current_view, dumps, etag_of

__all__ = ["CachedConfig"]


@dataclass(frozen=True)
class CachedConfig:
    version: Version
    etag: str
    body: bytes  # the GET response body (meaningless for a deletion)

    @classmethod
    def of(cls, version: Version) -> CachedConfig:
        return cls(version, etag_of(version.version), dumps(current_view(version)))
