"""Versioned, plain-SQL migrations: ``projector/migrations/NNNN_name.sql``, applied in order.

``await migrate(conn)`` applies every migration not yet recorded in ``schema_migrations``, all in
one transaction under a transaction-level advisory lock, so concurrent starters (two projectors,
the API, a test) serialise and each migration runs exactly once. An applied migration whose file
changed afterwards is refused (its checksum is recorded).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .db import pg_errors
from .errors import MigrationError
from .leader import LOCK_NAMESPACE, MIGRATE_KEY

__all__ = ["Migration", "MIGRATIONS_DIR", "load_migrations", "migrate"]

log = logging.getLogger("projector.migrate")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text        PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in ``directory``, ordered by version; malformed names are refused."""
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path.name!r} must be named NNNN_lowercase_name.sql")
        version = match.group(1)
        if version in found:
            raise MigrationError(f"two migrations with version {version}: {found[version].name}, {path.name}")
        found[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def migrate(conn: Any, *, directory: Path | None = None) -> list[str]:
    """Apply pending migrations on ``conn`` (an asyncpg connection); return the names applied."""
    migrations = load_migrations(directory or MIGRATIONS_DIR)
    applied_now: list[str] = []
    with pg_errors("migrate"):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_NAMESPACE, MIGRATE_KEY)
            await conn.execute(_CREATE_TABLE)
            rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
            applied = {r["version"]: r for r in rows}
            for migration in migrations:
                done = applied.get(migration.version)
                if done is not None:
                    if done["checksum"] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.name} was changed after it was applied "
                            f"(as {done['name']}); add a new migration instead of editing it"
                        )
                    continue
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
                applied_now.append(migration.name)
    if applied_now:
        log.info("applied migrations: %s", ", ".join(applied_now))
    return applied_now
