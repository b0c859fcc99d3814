"""The PostgreSQL edge: connecting, and translating asyncpg errors into the ledger hierarchy.

No asyncpg exception escapes the projector: every call runs inside ``pg_errors()``, which maps
"the server is not there" to ``Unavailable``, timeouts to ``StoreTimeout``, a wrong database or
credentials to ``UsageError`` and anything else to ``LedgerError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from typing import Any

import asyncpg

from ledger.errors import LedgerError, StoreTimeout, Unavailable, UsageError

from .errors import NotMigrated

__all__ = ["pg_errors", "connect", "close", "redact_url", "KEEPALIVE_SETTINGS"]

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
    """Translate asyncpg / socket exceptions raised inside the block."""
    try:
        yield
    except LedgerError:
        raise
    except TimeoutError:  # asyncio.TimeoutError is TimeoutError (3.11): before OSError
        raise StoreTimeout(f"PostgreSQL did not answer in time ({what})") from None
    except (asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        raise UsageError(f"PostgreSQL refused the connection ({what}): {exc}; check DATABASE_URL") from None
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


async def connect(
    url: str,
    *,
    application_name: str,
    timeout: float = 5.0,
    command_timeout: float | None = 30.0,
) -> Any:
    """One asyncpg connection with keepalives; Unavailable when the server cannot be reached.

    ``command_timeout`` bounds every statement, so a server that stops answering (paused,
    partitioned) surfaces as StoreTimeout instead of hanging the projector.
    """
    settings = {"application_name": application_name[:63], **KEEPALIVE_SETTINGS}
    with pg_errors(f"connect to {redact_url(url)}"):
        return await asyncpg.connect(
            url, timeout=timeout, command_timeout=command_timeout, server_settings=settings
        )


async def close(conn: Any, timeout: float = 2.0) -> None:
    """Close gracefully, then forcefully; never raises (the server may be gone)."""
    if conn is None or conn.is_closed():
        return
    try:
        await asyncio.wait_for(conn.close(), timeout)
    except Exception:  # noqa: BLE001 - closing must not raise
        conn.terminate()
