"""One active projector: a PostgreSQL session advisory lock on a dedicated connection.

The leader holds ``pg_advisory_lock(LOCK_NAMESPACE, LEADER_KEY)`` on a connection that does
nothing else; standbys poll ``pg_try_advisory_lock`` every ~200 ms. When the leader's process dies
its socket closes, PostgreSQL ends the session and releases the lock at once; a dead *host* is
noticed through the server-side TCP keepalives set on every projector connection
(``projector.db.KEEPALIVE_SETTINGS``).

Every batch transaction is additionally *fenced*: it commits only if ``pg_locks`` shows the lock
granted to this leader's lock session (``Fence``), and only if the checkpoint is still where this
instance left it. A leader that lost its lock can therefore never write, even before it notices.

Rebuild hand-over: ``rebuild`` first takes ``REBUILD_KEY`` exclusively (an *intent*), then waits
for the leader lock. Standbys do not take the leader lock while an intent is held, and the active
projector checks for one on every heartbeat and steps down between batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from .db import pg_errors
from .errors import LeaderLockTimeout, LeadershipLost

__all__ = ["LOCK_NAMESPACE", "LEADER_KEY", "REBUILD_KEY", "MIGRATE_KEY", "Fence", "LeaderLock"]

# Two-int advisory lock keys: (namespace, key). "CLED" as an int4.
LOCK_NAMESPACE = 0x434C4544
LEADER_KEY = 1
REBUILD_KEY = 2
MIGRATE_KEY = 3

_TRY_LEAD = """
SELECT CASE
    WHEN NOT pg_try_advisory_lock_shared($1, $3) THEN false   -- a rebuild waits: stay standby
    WHEN NOT pg_advisory_unlock_shared($1, $3) THEN false
    ELSE pg_try_advisory_lock($1, $2)
END
"""

_REBUILD_PENDING = """
SELECT CASE
    WHEN pg_try_advisory_lock_shared($1, $2) THEN NOT pg_advisory_unlock_shared($1, $2)
    ELSE true
END
"""

# True when the lock (namespace, key) is granted to backend ``pid`` in this database.
FENCE_SQL = """
EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 2
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND classid::bigint = {ns} AND objid::bigint = {key} AND pid = {pid}
)
"""


@dataclass(frozen=True)
class Fence:
    """What a fenced statement checks: the leader lock is held by backend ``pid``."""

    pid: int
    namespace: int = LOCK_NAMESPACE
    key: int = LEADER_KEY

    def sql(self, pid_param: str, ns_param: str, key_param: str) -> str:
        """The fence predicate with the given placeholders (e.g. ``"$4", "$5", "$6"``)."""
        return FENCE_SQL.format(pid=pid_param, ns=ns_param, key=key_param)

    @property
    def args(self) -> tuple[int, int, int]:
        return (self.pid, self.namespace, self.key)


class LeaderLock:
    """The leader lock, held on ``conn`` (a dedicated asyncpg connection)."""

    def __init__(self, conn: Any, *, namespace: int = LOCK_NAMESPACE) -> None:
        self.conn = conn
        self.namespace = namespace
        self.held = False
        self.intent_held = False

    @property
    def fence(self) -> Fence:
        return Fence(self.conn.get_server_pid(), self.namespace, LEADER_KEY)

    async def try_acquire(self) -> bool:
        """Take the leader lock if it is free and no rebuild is waiting for it."""
        if self.held:
            return True
        with pg_errors("leader lock"):
            if self.intent_held:  # the rebuild itself
                got = await self.conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", self.namespace, LEADER_KEY)
            else:
                got = await self.conn.fetchval(_TRY_LEAD, self.namespace, LEADER_KEY, REBUILD_KEY)
        self.held = bool(got)
        return self.held

    async def acquire(self, stop: asyncio.Event, *, poll: float, timeout: float | None = None) -> bool:
        """Poll until the lock is ours (True), ``stop`` is set (False) or ``timeout`` passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not stop.is_set():
            if await self.try_acquire():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                raise LeaderLockTimeout(
                    f"the leader lock was not free within {timeout:g}s: another projector is active "
                    "and did not hand over (is it stuck in a long batch?)"
                )
            with contextlib.suppress(TimeoutError):  # not wait_for: CPython gh-86296 (3.11)
                async with asyncio.timeout(poll):
                    await stop.wait()
        return False

    async def release(self) -> None:
        if not self.held:
            return
        self.held = False
        with pg_errors("leader unlock"):
            await self.conn.execute("SELECT pg_advisory_unlock($1, $2)", self.namespace, LEADER_KEY)

    async def check(self) -> None:
        """Raise LeadershipLost unless this session still holds the lock."""
        fence = self.fence
        with pg_errors("leader lock check"):
            ok = await self.conn.fetchval("SELECT " + fence.sql("$1", "$2", "$3"), *fence.args)
        if not ok:
            self.held = False
            raise LeadershipLost("the leader lock is no longer held by this projector")

    async def rebuild_pending(self) -> bool:
        """True while a rebuild holds (or waits with) the rebuild intent."""
        with pg_errors("rebuild intent check"):
            return bool(await self.conn.fetchval(_REBUILD_PENDING, self.namespace, REBUILD_KEY))

    async def take_rebuild_intent(self) -> bool:
        """Announce a rebuild (exclusive); False if another rebuild already runs."""
        with pg_errors("rebuild intent"):
            got = await self.conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", self.namespace, REBUILD_KEY)
        self.intent_held = bool(got)
        return self.intent_held

    async def release_rebuild_intent(self) -> None:
        if not self.intent_held:
            return
        self.intent_held = False
        with pg_errors("rebuild intent release"):
            await self.conn.execute("SELECT pg_advisory_unlock($1, $2)", self.namespace, REBUILD_KEY)
