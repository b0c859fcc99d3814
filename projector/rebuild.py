"""Rebuild the projection from the whole stream, then swap it in atomically.

``python -m projector rebuild`` (or ``await rebuild(settings, instance=...)``):

1. announce a rebuild (exclusive ``REBUILD_KEY`` advisory lock), then take the **leader lock**
   (waiting up to ``lock_timeout``). The active projector sees the intent on its next heartbeat
   (~1 s), finishes its batch and steps down to standby; standbys do not take the lock while the
   intent is held. Holding the leader lock — rather than requiring the operator to stop the
   runners — means nothing can race the rebuild, and the runners keep running: they resume from
   the rebuilt checkpoint by themselves afterwards.
2. replay the stream from sequence 1 to its last sequence *as of now*, verifying every chain
   exactly like the runner, into ``config_versions_rebuild`` (binary COPY, batches);
   ``config_current_rebuild`` is derived from it server side.
3. swap in ONE transaction: drop the live tables, rename the rebuilt ones (and their indexes, to
   the live names), set the checkpoint to the replayed sequence, clear a recorded fail-stop,
   ``NOTIFY``. Readers see the old projection until the commit and the new one after it — never
   an empty or half-built one. The swap waits at most 5 s for readers' locks (``lock_timeout``),
   and is retried, so a long-running reader cannot stall reads behind it.

Because the stop sequence is read *after* the leader lock is held, the rebuilt projection is
never behind what readers saw before. A stream whose last sequence is behind the checkpoint
(a regression) is refused unless ``accept_regression`` is given: the rebuilt projection would
then drop applied events, which is the operator's call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger import nats_io
from ledger.errors import LedgerError, ProjectionDiverged
from ledger.fold import ChainState

from . import db, status
from .db import pg_errors
from .errors import (
    OPERATOR_HINT,
    DuplicateEvent,
    LeaderLockTimeout,
    LeadershipLost,
    StreamRegression,
)
from .leader import Fence
from .migrate import migrate
from .repository import Repository
from .rows import VERSION_COLUMNS, VersionRow, version_row
from .runner import Resources, open_resources
from .schema import NOTIFY_CHANNEL
from .settings import ProjectorSettings
from .stream import StreamReader, stream_head
from .verify import verify_message

__all__ = ["RebuildResult", "ProgressCallback", "rebuild", "REBUILD_TABLES"]

log = logging.getLogger("projector.rebuild")

ProgressCallback = Callable[[int, int], None]
"""Called with (last sequence replayed, sequence the rebuild stops at)."""

# live table -> the table it is rebuilt into
REBUILD_TABLES = {"config_versions": "config_versions_rebuild", "config_current": "config_current_rebuild"}

_SWAP_ATTEMPTS = 5


@dataclass(frozen=True)
class RebuildResult:
    events: int
    services: int
    last_seq: int
    previous_seq: int
    seconds: float


async def rebuild(
    settings: ProjectorSettings,
    *,
    instance: str,
    on_progress: ProgressCallback | None = None,
    lock_timeout: float = 30.0,
    accept_regression: bool = False,
) -> RebuildResult:
    """Rebuild the projection (see the module docstring); raises ProjectionDiverged on a bad stream."""
    never = asyncio.Event()
    async with open_resources(settings, instance) as res:
        await migrate(res.conn)
        if not await res.lock.take_rebuild_intent():
            raise LeaderLockTimeout("another rebuild is already running on this database")
        try:
            await res.lock.acquire(never, poll=settings.lock_poll_interval, timeout=lock_timeout)
            return await _rebuild(settings, res, instance, on_progress, accept_regression)
        finally:
            with contextlib.suppress(LedgerError):
                await res.lock.release()
            with contextlib.suppress(LedgerError):
                await res.lock.release_rebuild_intent()


async def _rebuild(
    settings: ProjectorSettings,
    res: Resources,
    instance: str,
    on_progress: ProgressCallback | None,
    accept_regression: bool,
) -> RebuildResult:
    started = time.monotonic()
    conn = res.conn
    cp = await Repository(conn, stream=settings.stream).checkpoint()
    head = await stream_head(res.nc, settings.stream)
    last = await nats_io.direct_last(res.nc, settings.stream, settings.subject_wildcard)
    stop_seq = last.seq if last is not None else 0
    if head.last_seq < cp.last_seq and cp.stream == settings.stream and not accept_regression:
        raise StreamRegression(
            f"refusing to rebuild: stream {settings.stream} ends at sequence {head.last_seq}, behind "
            f"the projection's checkpoint {cp.last_seq}; the rebuilt projection would drop applied "
            "events. Rebuild with --accept-regression if this stream is the one to keep",
            seq=cp.last_seq,
        )
    log.info("rebuilding from stream %s up to sequence %d (checkpoint was %d)", settings.stream, stop_seq, cp.last_seq)
    await status.set_state(res.lock.conn, "rebuilding", instance=instance)
    try:
        await _create_tables(conn)
        services = await _replay(settings, res, stop_seq, on_progress)
        stored_at = last.stored_at if last is not None else None
        await _swap(conn, res.lock.fence, settings.stream, stop_seq, stored_at, instance)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await asyncio.shield(_drop_tables(conn))
        if isinstance(exc, ProjectionDiverged):
            with contextlib.suppress(LedgerError):
                await status.record_failure(
                    res.lock.conn, reason=f"rebuild: {exc.message}. {OPERATOR_HINT}", seq=exc.seq, instance=instance
                )
        else:
            with contextlib.suppress(Exception):
                await asyncio.shield(status.set_state(res.lock.conn, "stopped", instance=instance))
        raise
    result = RebuildResult(
        events=await _count(conn),
        services=services,
        last_seq=stop_seq,
        previous_seq=cp.last_seq,
        seconds=time.monotonic() - started,
    )
    log.info("rebuilt %d events of %d services in %.1fs", result.events, result.services, result.seconds)
    return result


async def _create_tables(conn: Any) -> None:
    with pg_errors("create rebuild tables"):
        await _drop_tables(conn)
        for live, fresh in REBUILD_TABLES.items():
            await conn.execute(f"CREATE TABLE {fresh} (LIKE {live} INCLUDING ALL)")


async def _drop_tables(conn: Any) -> None:
    with pg_errors("drop rebuild tables"):
        await conn.execute("DROP TABLE IF EXISTS " + ", ".join(REBUILD_TABLES.values()))


async def _replay(
    settings: ProjectorSettings, res: Resources, stop_seq: int, on_progress: ProgressCallback | None
) -> int:
    """Verify and copy sequences 1..stop_seq into the rebuild tables; return the service count."""
    if on_progress:
        on_progress(0, stop_seq)
    chains: dict[str, ChainState] = {}
    if stop_seq == 0:
        return 0
    size = max(settings.batch_size, 2000)
    async with StreamReader(
        res.nc,
        stream=settings.stream,
        subject=settings.subject_wildcard,
        start_seq=1,
        high_water=4 * size,
        pull_size=size,
    ) as reader:
        done = 0
        while done < stop_seq:
            rows: list[VersionRow] = []
            failure: ProjectionDiverged | None = None
            for m in await reader.batch(size, 0):
                if m.seq > stop_seq:
                    break
                try:
                    event, chain = verify_message(chains, settings.subject_prefix, m.subject, m.seq, m.data)
                except ProjectionDiverged as exc:
                    failure = exc
                    break
                chains[event.service] = chain
                rows.append(version_row(event, m.seq, m.stored_at))
            if rows:
                await _copy(res.conn, rows)
                done = rows[-1].stream_seq
                if on_progress:
                    on_progress(done, stop_seq)
            if failure is not None:
                raise failure
    with pg_errors("derive config_current"):
        await res.conn.execute(
            """
            INSERT INTO config_current_rebuild (service, version, kind, config, hash, actor, reason,
                                                updated_at, stored_at, stream_seq)
            SELECT DISTINCT ON (service) service, version, kind, config, hash, actor, reason,
                   occurred_at, stored_at, stream_seq
            FROM config_versions_rebuild ORDER BY service, stream_seq DESC
            """
        )
    return len(chains)


async def _copy(conn: Any, rows: list[VersionRow]) -> None:
    with pg_errors("copy rebuilt rows"):
        try:
            await conn.copy_records_to_table(
                REBUILD_TABLES["config_versions"], records=rows, columns=VERSION_COLUMNS
            )
        except db.UniqueViolation as exc:
            raise DuplicateEvent(
                f"the stream repeats an event ({exc.constraint_name}: {exc.detail})", seq=rows[0].stream_seq
            ) from None


_INDEX_DEF = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ ")


async def _index_names(conn: Any, table: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        """SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           WHERE i.indrelid = $1::regclass ORDER BY c.relname""",
        table,
    )
    return [(r["name"], _INDEX_DEF.sub(r"CREATE \1INDEX ON ", r["def"])) for r in rows]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _swap(
    conn: Any, fence: Fence, stream: str, last_seq: int, last_stored_at: datetime | None, instance: str
) -> None:
    """Replace the live tables by the rebuilt ones, with the checkpoint, in one transaction."""
    for attempt in range(1, _SWAP_ATTEMPTS + 1):
        with pg_errors("swap rebuilt tables"):
            try:
                async with conn.transaction():
                    await _swap_once(conn, fence, stream, last_seq, last_stored_at, instance)
                return
            except db.LockNotAvailable:
                if attempt == _SWAP_ATTEMPTS:
                    raise LeaderLockTimeout(
                        "could not swap the rebuilt tables in: readers held their locks for "
                        f"{_SWAP_ATTEMPTS} x 5 s (long-running transactions on config_versions?)"
                    ) from None
                log.warning("swap waited 5 s for readers' locks; retrying (%d/%d)", attempt, _SWAP_ATTEMPTS)


async def _swap_once(
    conn: Any, fence: Fence, stream: str, last_seq: int, last_stored_at: datetime | None, instance: str
) -> None:
    await conn.execute("SET LOCAL lock_timeout = '5s'")
    if not await conn.fetchval("SELECT " + fence.sql("$1", "$2", "$3"), *fence.args):
        raise LeadershipLost("rebuild lost the leader lock before the swap; nothing was swapped")
    renames: list[tuple[str, str]] = []
    for live, fresh in REBUILD_TABLES.items():
        live_defs = await _index_names(conn, live)
        for name, definition in await _index_names(conn, fresh):
            match = next((ln for ln, ld in live_defs if ld == definition), None)
            if match is not None:
                live_defs = [(ln, ld) for ln, ld in live_defs if ln != match]
                renames.append((name, match))
    await conn.execute("LOCK TABLE " + ", ".join(REBUILD_TABLES) + " IN ACCESS EXCLUSIVE MODE")
    for live, fresh in REBUILD_TABLES.items():
        await conn.execute(f"DROP TABLE {live}")
        await conn.execute(f"ALTER TABLE {fresh} RENAME TO {live}")
    for new, old in renames:
        await conn.execute(f"ALTER INDEX {_quote(new)} RENAME TO {_quote(old)}")
    await conn.execute(
        """UPDATE projector_checkpoint SET stream = $1, last_seq = $2, last_stored_at = $3, updated_at = now()
           WHERE id = 1""",
        stream,
        last_seq,
        last_stored_at,
    )
    await conn.execute(
        """UPDATE projector_status SET state = 'starting', reason = NULL, failed_seq = NULL,
                  stream_last_seq = GREATEST(stream_last_seq, $1), pending_since = NULL,
                  instance = $2, updated_at = now()
           WHERE id = 1""",
        last_seq,
        instance,
    )
    await conn.execute(f"SELECT pg_notify('{NOTIFY_CHANNEL}', $1)", str(last_seq))


async def _count(conn: Any) -> int:
    with pg_errors("count rows"):
        return int(await conn.fetchval("SELECT count(*) FROM config_versions"))
