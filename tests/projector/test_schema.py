"""``projector.schema`` names what the migrations create (the migrations are immutable, so the
names live in SQL too; this test keeps the two in step)."""

from __future__ import annotations

import re
from pathlib import Path

from projector import schema

MIGRATIONS = Path(schema.__file__).parent / "migrations"


def _sql() -> str:
    return "\n".join(p.read_text() for p in sorted(MIGRATIONS.glob("*.sql")))


def test_tables_are_the_ones_the_migrations_create() -> None:
    created = set(re.findall(r"CREATE TABLE (\w+)", _sql()))
    assert {schema.VERSIONS, schema.CURRENT, schema.CHECKPOINT, schema.STATUS} <= created


def test_notify_channel_is_the_one_the_commit_function_uses() -> None:
    assert set(re.findall(r"pg_notify\('(\w+)'", _sql())) == {schema.NOTIFY_CHANNEL}


def test_row_columns_exist_in_their_tables() -> None:
    sql = _sql()
    for table, columns in ((schema.VERSIONS, schema.VERSION_COLUMNS), (schema.CURRENT, schema.CURRENT_COLUMNS)):
        body = re.search(rf"CREATE TABLE {table} \((.*?)\n\);", sql, re.S)
        assert body is not None, table
        declared = set(re.findall(r"^\s+(\w+)\s", body.group(1), re.M))
        declared |= set(re.findall(rf"ALTER TABLE {table} ADD COLUMN (\w+)", sql))
        assert set(columns) <= declared, (table, set(columns) - declared)
