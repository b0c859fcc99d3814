"""``create_app(settings) -> web.Application``: the composition of the API.

Resources live in ``cleanup_ctx`` (opened at startup, closed at shutdown, in reverse order):

1. NATS connection + ``Ledger`` (required at startup: writes and the stream fallback need it;
   after that, nats-py reconnects forever and writes answer 503 while it is down) and the
   ``StreamFollower`` (the API's own ordered consumer: current documents, SSE);
2. PostgreSQL pool (lazy: the API starts while PostgreSQL is down; queries answer 503) and the
   ``ProjectionFeed`` (the projector's checkpoint by LISTEN/NOTIFY), then the reader and the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from ledger import Ledger, nats_io

from .auth import TokenStore, load_tokens
from .blame_handlers import BLAME_CACHE, BlameCache
from .follower import StreamFollower
from .keys import (
    ACTIONS,
    FEED,
    FOLLOWER,
    LEDGER,
    METRICS,
    OPENAPI,
    READER,
    REPO,
    SETTINGS,
    TOKENS,
    WRITER,
)
from .metrics import Metrics
from .middleware import api_middleware
from .openapi import build_openapi
from .projection_wait import ProjectionFeed
from .reads import ConfigReader
from .repository import Repository, create_pool
from .routes import ROUTES, route_defs
from .settings import ApiSettings
from .views import dumps
from .writes import ConfigWriter

__all__ = ["create_app", "AUTH_OFF_BANNER"]

log = logging.getLogger("api")

AUTH_OFF_BANNER = (
    "\n" + "!" * 78 + "\n"
    "!!  API_AUTH=off: AUTHENTICATION IS DISABLED. Anyone who can reach this port can\n"
    "!!  read and CHANGE every config (changes are recorded as actor 'dev').\n"
    "!!  This mode exists only for the embedded development stack.\n" + "!" * 78
)


def _each_reconnected(followers: list[StreamFollower]) -> None:
    for follower in followers:
        follower.reconnected()


async def _nats_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    followers: list[StreamFollower] = []
    nc = await nats_io.connect(
        settings.ledger.nats_url,
        name="config-ledger-api",
        connect_timeout=settings.ledger.connect_timeout,
        on_reconnect=lambda: _each_reconnected(followers),
    )
    app[LEDGER] = ledger = Ledger(nc, settings.ledger)
    log.info("connected to NATS %s (stream %s)", settings.ledger.nats_url, settings.ledger.stream)
    follower = StreamFollower(ledger, history=settings.follow_history, on_applied=app[METRICS].stream_seq.set)
    followers.append(follower)
    await follower.start(wait=settings.ledger.request_timeout)
    if not follower.caught_up:
        log.warning("not caught up with the stream yet (%s); reads ask the stream directly", follower.last_error)
    app[FOLLOWER] = follower
    yield
    await follower.close()
    try:
        await asyncio.wait_for(nc.drain(), 5)
    except Exception:  # noqa: BLE001 - the server may be gone; closing must not raise
        with contextlib.suppress(Exception):
            await nc.close()


async def _postgres_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, metrics = app[SETTINGS], app[METRICS]
    timeout = settings.ledger.request_timeout
    pool = await create_pool(settings.database_url, max_size=settings.pg_pool_max, timeout=timeout)
    repo = Repository(pool, timeout=timeout)
    feed = ProjectionFeed(
        settings.database_url,
        poll_interval=settings.poll_interval,
        timeout=timeout,
        on_refresh=metrics.projected_seq.set,
    )
    await feed.start(wait=timeout)
    if not feed.live:
        log.warning("PostgreSQL projection not reachable yet (%s); reads answer 503 until it is", feed.last_error)
    app[REPO], app[FEED] = repo, feed
    app[READER] = reader = ConfigReader(app[FOLLOWER], feed, repo, app[LEDGER], metrics, wait=settings.write_wait)
    app[WRITER] = ConfigWriter(app[LEDGER], reader, feed, repo, metrics)
    yield
    await feed.close()
    try:
        await asyncio.wait_for(pool.close(), 5)
    except Exception:  # noqa: BLE001
        pool.terminate()


async def _on_shutdown(app: web.Application) -> None:
    """Let open SSE streams end before the server waits for handlers to finish."""
    follower = app.get(FOLLOWER)
    if follower is not None:
        follower.end_watches()


def create_app(settings: ApiSettings) -> web.Application:
    """The aiohttp application. Raises UsageError for settings that cannot work."""
    settings.check()
    tokens = load_tokens(settings.tokens_file, settings.tokens) if settings.auth else TokenStore([])
    if settings.auth and not len(tokens):
        log.warning("API_AUTH is on and the token list is empty: every protected request gets 401")
    if not settings.auth:
        log.warning(AUTH_OFF_BANNER)
    app = web.Application(
        middlewares=[api_middleware],
        client_max_size=settings.max_body,
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[TOKENS] = tokens
    app[ACTIONS] = {r.name: r.action for r in ROUTES}
    app[BLAME_CACHE] = BlameCache()
    app[OPENAPI] = dumps(build_openapi(auth=settings.auth))
    app.add_routes(route_defs())
    app.cleanup_ctx.append(_nats_ctx)
    app.cleanup_ctx.append(_postgres_ctx)
    app.on_shutdown.append(_on_shutdown)
    return app
