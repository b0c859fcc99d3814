"""Typed application and request keys (the app's state, set by ``create_app``'s cleanup_ctx)."""

from __future__ import annotations

from aiohttp import web

from ledger import Ledger

from .auth import Action, Principal, TokenStore
from .follower import StreamFollower
from .metrics import Metrics
from .projection_wait import ProjectionFeed
from .reads import ConfigReader
from .repository import Repository
from .settings import ApiSettings
from .writes import ConfigWriter

__all__ = [
    "SETTINGS",
    "METRICS",
    "TOKENS",
    "ACTIONS",
    "OPENAPI",
    "LEDGER",
    "REPO",
    "FEED",
    "FOLLOWER",
    "READER",
    "WRITER",
    "PRINCIPAL",
    "TRACE",
]

SETTINGS = web.AppKey("settings", ApiSettings)
METRICS = web.AppKey("metrics", Metrics)
TOKENS = web.AppKey("tokens", TokenStore)
ACTIONS = web.AppKey("actions", dict[str, Action])  # route name -> what it does
OPENAPI = web.AppKey("openapi", bytes)
LEDGER = web.AppKey("ledger", Ledger)
REPO = web.AppKey("repository", Repository)
FEED = web.AppKey("feed", ProjectionFeed)
FOLLOWER = web.AppKey("follower", StreamFollower)
READER = web.AppKey("reader", ConfigReader)
WRITER = web.AppKey("writer", ConfigWriter)

PRINCIPAL = web.RequestKey("principal", Principal)
# Where a request came from: {"request_id": ..., "traceparent": ...}; recorded in the event's metadata.
TRACE = web.RequestKey("trace", dict)
