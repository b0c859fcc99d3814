"""ProjectorSettings: built from an injected mapping, errors naming the variable."""

from __future__ import annotations

import pytest

from ledger.errors import UsageError
from projector import ProjectorSettings

DB = "postgresql://postgres@127.0.0.1:5432/ledger"


def test_defaults_and_overrides() -> None:
    s = ProjectorSettings.from_env({"DATABASE_URL": DB})
    assert (s.batch_size, s.batch_delay_ms, s.stream, s.subject_prefix) == (500, 20, "CONFIG_LEDGER", "config.events")
    assert s.nats_url == "nats://127.0.0.1:4222" and s.subject_wildcard == "config.events.>"
    assert (s.batch_delay, s.heartbeat_interval, s.lock_poll_interval) == (0.02, 1.0, 0.2)
    s = ProjectorSettings.from_env(
        {
            "DATABASE_URL": DB,
            "NATS_URL": "nats://n:4222",
            "LEDGER_STREAM": "S1",
            "LEDGER_SUBJECT_PREFIX": "t1.events",
            "PROJECTOR_BATCH_SIZE": "100",
            "PROJECTOR_BATCH_DELAY_MS": "0",
            "UNRELATED": "x",
        }
    )
    assert (s.nats_url, s.stream, s.subject_prefix, s.batch_size, s.batch_delay_ms) == (
        "nats://n:4222", "S1", "t1.events", 100, 0,
    )
    assert s.ledger.subject("billing") == "t1.events.billing"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"DATABASE_URL": DB, "PROJECTOR_BATCH_SIZE": "0"}, "PROJECTOR_BATCH_SIZE"),
        ({"DATABASE_URL": DB, "PROJECTOR_BATCH_SIZE": "many"}, "PROJECTOR_BATCH_SIZE"),
        ({"DATABASE_URL": DB, "PROJECTOR_BATCH_DELAY_MS": "-1"}, "PROJECTOR_BATCH_DELAY_MS"),
        ({"DATABASE_URL": DB, "LEDGER_STREAM": "bad name"}, "LEDGER_STREAM"),
        ({"DATABASE_URL": DB, "LEDGER_SUBJECT_PREFIX": "config.>"}, "LEDGER_SUBJECT_PREFIX"),
    ],
)
def test_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(UsageError) as info:
        ProjectorSettings.from_env(env)
    assert info.value.message.startswith(f"{variable}:")
