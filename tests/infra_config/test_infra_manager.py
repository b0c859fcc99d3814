"""The manager's accessors: get, section helpers, get_all, reload, typed coercion."""

from __future__ import annotations

import pytest

from infra_config import ConfigFileError, InfrastructureConfigManager, KeyNotFoundError

pytestmark = pytest.mark.timeout(10)


async def make(tmp_path, text: str, environ=None, name="infrastructure.yaml"):
    (tmp_path / name).write_text(text)
    config = InfrastructureConfigManager("central-hub", config_dir=tmp_path, environ=environ or {})
    await config.load_config()
    return config


async def test_get_paths_defaults_and_copies(tmp_path):
    config = await make(tmp_path, "a:\n  b:\n    c: [1, 2]\n  'x.y': 3\n")
    assert await config.get("a.b.c") == [1, 2]
    assert await config.get("a.b.c.1") == 2
    assert await config.get("a.b.missing", default=7) == 7
    assert await config.get("a.b.c.9") is None
    assert await config.get(["a", "x.y"]) == 3
    got = await config.get("a.b")
    got["c"].append(99)
    assert await config.get("a.b.c") == [1, 2]
    everything = config.get_all()
    everything["a"]["b"]["c"].clear()
    assert config.get_all()["a"]["b"]["c"] == [1, 2]


async def test_database_selection(tmp_path):
    text = "databases:\n  clickhouse: {host: ch}\n  postgresql: {host: pg}\n"
    config = await make(tmp_path, text)
    assert (await config.get_database_config())["host"] == "pg"  # postgresql preferred
    assert (await config.get_database_config("clickhouse"))["host"] == "ch"
    with pytest.raises(KeyNotFoundError, match="known: clickhouse, postgresql"):
        await config.get_database_config("mysql")


async def test_primary_flag_and_first_entry(tmp_path):
    text = (
        "databases:\n  a: {host: a}\n  postgresql: {host: pg}\n  b: {host: b, primary: true}\n"
        "messaging:\n  nats-1: {host: n1}\n  nats-2: {host: n2}\n"
    )
    config = await make(tmp_path, text)
    assert (await config.get_database_config())["host"] == "b"
    assert (await config.get_messaging_config())["host"] == "n1"
    assert (await config.get_messaging_config("nats-2"))["host"] == "n2"


async def test_empty_sections_raise(tmp_path):
    config = await make(tmp_path, "other: 1\n")
    with pytest.raises(KeyNotFoundError):
        await config.get_database_config()
    with pytest.raises(KeyNotFoundError):
        await config.get_messaging_config()
    with pytest.raises(KeyNotFoundError):
        await config.get_cache_config()


async def test_cache_section_or_cache_type_database(tmp_path):
    config = await make(tmp_path, "cache:\n  host: c\n  port: 6379\n  ttl: 30\n")
    assert await config.get_cache_config() == {"host": "c", "port": 6379, "ttl": 30}
    config = await make(
        tmp_path, "databases:\n  postgresql: {host: pg}\n  dragonflydb: {host: df, port: 6379}\n"
    )
    assert await config.get_cache_config() == {"host": "df", "port": 6379}


async def test_values_are_coerced_by_the_models(tmp_path):
    text = (
        "databases:\n  postgresql:\n    port: ${PG_PORT}\n    critical: 'yes'\n"
        "    health_check: {timeout: '2.5', interval: 30.0}\n"
    )
    config = await make(tmp_path, text, {"PG_PORT": "5433"})
    db = await config.get_database_config()
    assert db["port"] == 5433 and db["critical"] is True
    assert db["health_check"] == {"timeout": 2.5, "interval": 30}
    assert list(db) == ["port", "critical", "health_check"]  # file order kept


async def test_failed_reload_keeps_previous_config(tmp_path):
    config = await make(tmp_path, "cache:\n  port: 6379\n")
    (tmp_path / "infrastructure.yaml").write_text("cache:\n  port: [\n")
    with pytest.raises(ConfigFileError, match="infrastructure.yaml:3: invalid YAML"):
        await config.reload()
    assert await config.get("cache.port") == 6379


async def test_yaml_merge_keys_and_anchors(tmp_path):
    text = (
        "base: &hc {method: tcp, timeout: 5}\n"
        "databases:\n  postgresql:\n    health_check:\n      <<: *hc\n      timeout: 7\n"
    )
    config = await make(tmp_path, text)
    assert await config.get("databases.postgresql.health_check") == {"method": "tcp", "timeout": 7}


async def test_repr_is_informative(tmp_path):
    config = await make(tmp_path, "a: 1\n")
    assert "central-hub" in repr(config) and "1 files" in repr(config)
