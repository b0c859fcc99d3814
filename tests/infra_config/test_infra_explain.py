"""explain(): the winning layer (file:line or variable) and what it overrode."""

from __future__ import annotations

import pytest

from infra_config import (
    ConfigNotLoadedError,
    ConfigUsageError,
    Explanation,
    InfrastructureConfigManager,
    KeyNotFoundError,
)

pytestmark = pytest.mark.timeout(10)

INFRA = """\
databases:
  postgresql:
    host: suho-postgresql
    port: 5432
    health_check:
      timeout: 5
alerts:
  - severity: critical
"""


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "default.yml").write_text("databases:\n  postgresql:\n    host: localhost\n")
    (tmp_path / "infrastructure.yaml").write_text(INFRA)
    (tmp_path / "central-hub.json").write_text(
        '{\n  "databases": {\n    "postgresql": {\n      "port": 5440\n    }\n  }\n}\n'
    )
    (tmp_path / "production.yaml").write_text(
        "# production\ndatabases:\n  postgresql:\n\n    health_check:\n      timeout: 9\n"
    )
    return tmp_path


async def loaded(config_dir, environ=None) -> InfrastructureConfigManager:
    config = InfrastructureConfigManager(
        "central-hub", "production", config_dir=config_dir, environ=environ or {}
    )
    await config.load_config()
    return config


async def test_value_from_default_file(config_dir):
    (config_dir / "default.yml").write_text("# c\ncache:\n  ttl: 60\n")
    why = (await loaded(config_dir)).explain("cache.ttl")
    assert (why.source.file, why.source.line, why.source.layer) == (
        str(config_dir / "default.yml"),
        3,
        "default",
    )
    assert why.value == 60 and why.overridden == ()


async def test_value_from_infrastructure_file_overrides_default(config_dir):
    why = (await loaded(config_dir)).explain("databases.postgresql.host")
    assert why.value == "suho-postgresql"
    assert why.source.file == str(config_dir / "infrastructure.yaml")
    assert why.source.line == 3
    [old] = why.overridden
    assert (old.source.file, old.source.line, old.value) == (
        str(config_dir / "default.yml"),
        3,
        "localhost",
    )


async def test_value_from_service_json_file_has_a_line(config_dir):
    why = (await loaded(config_dir)).explain("databases.postgresql.port")
    assert (why.source.layer, why.source.file, why.source.line) == (
        "service",
        str(config_dir / "central-hub.json"),
        4,
    )
    assert [(o.source.line, o.value) for o in why.overridden] == [(4, 5432)]


async def test_value_from_environment_file(config_dir):
    why = (await loaded(config_dir)).explain("databases.postgresql.health_check.timeout")
    assert (why.source.layer, why.source.line, why.value) == ("environment", 6, 9)
    assert why.overridden[0].source.line == 6 and why.overridden[0].value == 5


async def test_value_from_environment_variable(config_dir):
    config = await loaded(config_dir, {"INFRA__DATABASES__POSTGRESQL__PORT": "5433"})
    why = config.explain("databases.postgresql.port")
    assert why.source.variable == "INFRA__DATABASES__POSTGRESQL__PORT"
    assert why.source.priority == 100
    assert [o.value for o in why.overridden] == [5440, 5432]
    text = str(why)
    assert "$INFRA__DATABASES__POSTGRESQL__PORT" in text
    assert f"{config_dir / 'central-hub.json'}:4" in text
    assert f"{config_dir / 'infrastructure.yaml'}:4" in text
    assert text.splitlines()[0] == "databases.postgresql.port = 5433"


async def test_mapping_lists_every_contributor(config_dir):
    why = (await loaded(config_dir)).explain("databases.postgresql")
    assert [s.layer for s in why.merged_from] == [
        "default",
        "infrastructure",
        "service",
        "environment",
    ]
    assert why.source.layer == "environment"
    assert "merged from" in str(why)


async def test_inside_a_list_uses_the_list_source(config_dir):
    config = await loaded(config_dir)
    assert await config.get("alerts.0.severity") == "critical"
    why = config.explain("alerts.0.severity")
    assert why.value == "critical" and why.source.line == 7


async def test_explanation_is_frozen_and_keys_are_checked(config_dir):
    config = await loaded(config_dir)
    why = config.explain(("databases", "postgresql", "host"))
    assert isinstance(why, Explanation)
    with pytest.raises(AttributeError):
        why.value = "x"  # type: ignore[misc]
    with pytest.raises(KeyNotFoundError, match="databases.nope"):
        config.explain("databases.nope")
    with pytest.raises(ConfigUsageError):
        config.explain("databases..host")


async def test_accessors_before_load_raise(config_dir):
    config = InfrastructureConfigManager("central-hub", config_dir=config_dir, environ={})
    with pytest.raises(ConfigNotLoadedError):
        config.explain("a")
    with pytest.raises(ConfigNotLoadedError):
        config.get_all()
    with pytest.raises(ConfigNotLoadedError):
        await config.get("a")
