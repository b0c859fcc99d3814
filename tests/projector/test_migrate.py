"""Migrations: versioned plain SQL, applied once, safe for concurrent starters, edits refused."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from projector import MigrationError, migrate
from projector.migrate import MIGRATIONS_DIR, load_migrations

from .helpers import connect


def test_migrations_are_numbered_and_ordered() -> None:
    names = [m.name for m in load_migrations()]
    assert names[:2] == ["0001_init.sql", "0002_projector_runtime.sql"]
    assert names == sorted(names)


async def test_applies_once_and_records_versions(database_url: str) -> None:
    async with connect(database_url) as conn:
        assert await migrate(conn) == [m.name for m in load_migrations()]
        assert await migrate(conn) == []
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [r["name"] for r in rows] == [m.name for m in load_migrations()]
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"config_current", "config_versions", "projector_checkpoint", "projector_status"} <= tables
        indexes = {r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'config_versions'")}
        assert "config_versions_service_occurred_at" in indexes
        assert await conn.fetchval("SELECT count(*) FROM projector_status") == 1


async def test_concurrent_starters_apply_each_migration_once(database_url: str) -> None:
    conns = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    applied = [name for r in results for name in r]
    assert sorted(applied) == [m.name for m in load_migrations()]  # each exactly once, no error


async def test_an_edited_applied_migration_is_refused(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    async with connect(database_url) as conn:
        await migrate(conn, directory=folder)
        (folder / "0002_projector_runtime.sql").write_text("-- edited\nSELECT 1;\n")
        with pytest.raises(MigrationError, match="0002_projector_runtime.sql was changed"):
            await migrate(conn, directory=folder)
        (folder / "0003_bad name.sql").write_text("SELECT 1;")
        with pytest.raises(MigrationError, match="must be named"):
            await migrate(conn, directory=folder)


async def test_a_failing_migration_applies_nothing(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    (folder / "0099_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    async with connect(database_url) as conn:
        with pytest.raises(Exception, match="no_such_function"):
            await migrate(conn, directory=folder)
        assert await conn.fetchval("SELECT to_regclass('config_versions')") is None  # all rolled back
        assert await conn.fetchval("SELECT to_regclass('schema_migrations')") is None
