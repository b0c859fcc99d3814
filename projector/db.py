"""The PostgreSQL edge: the only module that imports asyncpg.

Connections, the API's pool, and the one translator of asyncpg errors into the ledger hierarchy.
No asyncpg exception escapes a block run inside ``pg_errors()``:

==========================================  ===================================================
asyncpg / OS error                          becomes
==========================================  ===================================================
``TimeoutError``                            ``StoreTimeout``
unknown database, bad credentials           ``DatabaseRefused`` (fix DATABASE_URL)
``UndefinedTableError``                     ``NotMigrated`` (run ``python -m projector migrate``)
server gone, refused, shutting down, full   ``Unavailable``
connection closed under us                  ``Unavailable``
any other server error                      ``LedgerError`` naming the SQLSTATE
==========================================  ===================================================

Callers that must tell a few server errors apart (a unique violation is a duplicate event, a lock
timeout is a retry) catch the aliases below *inside* the block.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson

from ledger.errors import LedgerError, StoreTimeout, Unavailable

from .errors import DatabaseRefused, NotMigrated

__all__ = [
    "KEEPALIVE_SETTINGS",
    "Connection",
    "LockNotAvailable",
    "Pool",
    "PostgresError",
    "UniqueViolation",
    "close",
    "connect",
    "create_pool",
    "pg_errors",
    "redact_url",
]

Connection = asyncpg.Connection
Pool = asyncpg.Pool
PostgresError = asyncpg.PostgresError
UniqueViolation = asyncpg.UniqueViolationError
LockNotAvailable = asyncpg.LockNotAvailableError

# Server-side TCP keepalives: if the projector's host dies or the network drops, PostgreSQL ends
# the session within ~11 s and the advisory lock is released for a standby. (A killed *process*
# is noticed at once: the kernel closes its socket.)
KEEPALIVE_SETTINGS = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}


def redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", url)


@contextlib.contextmanager
def pg_errors(what: str) -> Iterator[None]:
    """Translate asyncpg / socket exceptions raised inside the block (see the table above)."""
    try:
        yield
    except LedgerError:
        raise
    except TimeoutError:  # asyncio.TimeoutError is TimeoutError (3.11): before OSError
        raise StoreTimeout(f"PostgreSQL did not answer in time ({what})") from None
    except (asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        raise DatabaseRefused(f"PostgreSQL refused the connection ({what}): {exc}; check DATABASE_URL") from None
    except asyncpg.UndefinedTableError as exc:
        raise NotMigrated(
            f"projector tables missing ({what}): {exc}; run `python -m projector migrate`"
        ) from None
    except (
        OSError,
        asyncpg.PostgresConnectionError,
        asyncpg.exceptions.OperatorInterventionError,
        asyncpg.exceptions.InsufficientResourcesError,
    ) as exc:
        raise Unavailable(f"PostgreSQL is unavailable ({what}): {type(exc).__name__}") from None
    except asyncpg.InterfaceError as exc:
        if "closed" in str(exc) or "connection" in str(exc):
            raise Unavailable(f"PostgreSQL connection lost ({what}): {exc}") from None
        raise LedgerError(f"PostgreSQL client error ({what}): {exc}") from None
    except asyncpg.PostgresError as exc:
        raise LedgerError(f"PostgreSQL refused {what}: [{exc.sqlstate}] {exc}") from None


async def _decode_jsonb(conn: Any) -> None:
    """jsonb as Python values (orjson) on a reader's connection."""
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
        format="text",
    )


async def connect(
    url: str,
    *,
    application_name: str,
    timeout: float = 5.0,
    command_timeout: float | None = 30.0,
    decode_jsonb: bool = False,
) -> Any:
    """One connection with keepalives; translated errors when the server cannot be reached.

    ``command_timeout`` bounds every statement, so a server that stops answering (paused,
    partitioned) surfaces as StoreTimeout instead of hanging. The projector writes jsonb as
    canonical text; readers (``decode_jsonb=True``) get Python values back.
    """
    settings = {"application_name": application_name[:63], **KEEPALIVE_SETTINGS}
    with pg_errors(f"connect to {redact_url(url)}"):
        conn = await asyncpg.connect(
            url, timeout=timeout, command_timeout=command_timeout, server_settings=settings
        )
        if decode_jsonb:
            try:
                await _decode_jsonb(conn)
            except BaseException:
                conn.terminate()
                raise
    return conn


async def create_pool(url: str, *, max_size: int, timeout: float, application_name: str) -> Any:
    """A lazy reader pool (no connection until first use: the API starts while PostgreSQL is
    down), jsonb decoded, every statement bounded by ``timeout``."""
    with pg_errors("create pool"):
        return await asyncpg.create_pool(
            url,
            min_size=0,
            max_size=max_size,
            init=_decode_jsonb,
            timeout=timeout,
            command_timeout=timeout,
            max_inactive_connection_lifetime=60,
            server_settings={"application_name": application_name[:63]},
        )


async def close(conn: Any, timeout: float = 2.0) -> None:
    """Close gracefully, then forcefully; never raises (the server may be gone)."""
    if conn is None or conn.is_closed():
        return
    try:
        await asyncio.wait_for(conn.close(), timeout)
    except Exception:  # noqa: BLE001 - closing must not raise
        conn.terminate()
