"""Layer discovery, priorities between every pair of layers, and the INFRA__ convention."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from infra_config import (
    ConfigFileError,
    ConfigUsageError,
    ConfigValidationError,
    InfrastructureConfigManager,
)

pytestmark = pytest.mark.timeout(10)

# Lowest priority first. "default" and "infrastructure" share priority 10; within it
# infrastructure.yaml is applied last and wins.
LAYERS = ["default", "infrastructure", "service", "environment", "env"]
SERVICE, ENVIRONMENT = "central-hub", "staging"


def put(kind: str, config_dir: Path, environ: dict[str, str], value: int) -> None:
    """Set probe.value = value in the layer ``kind``."""
    if kind == "env":
        environ["INFRA__PROBE__VALUE"] = str(value)
        return
    name = {
        "default": "default.json",
        "infrastructure": "infrastructure.yaml",
        "service": f"{SERVICE}.yml",
        "environment": f"{ENVIRONMENT}.yaml",
    }[kind]
    if name.endswith(".json"):
        (config_dir / name).write_text(json.dumps({"probe": {"value": value, kind: True}}))
    else:
        (config_dir / name).write_text(f"probe:\n  value: {value}\n  {kind}: true\n")


def manager(config_dir: Path, environ: dict[str, str], **kw) -> InfrastructureConfigManager:
    return InfrastructureConfigManager(
        kw.pop("service_name", SERVICE),
        kw.pop("environment", ENVIRONMENT),
        config_dir=config_dir,
        environ=environ,
        **kw,
    )


@pytest.mark.parametrize(("low", "high"), list(itertools.combinations(LAYERS, 2)))
async def test_higher_layer_wins_for_every_pair(tmp_path, low, high):
    environ: dict[str, str] = {}
    put(low, tmp_path, environ, 1)
    put(high, tmp_path, environ, 2)
    config = manager(tmp_path, environ)
    await config.load_config()

    assert await config.get("probe.value") == 2
    why = config.explain("probe.value")
    assert why.source.layer == high
    assert [o.source.layer for o in why.overridden] == [low]
    assert [o.value for o in why.overridden] == [1]
    # the rest of the mapping is merged, not replaced
    for kind in (low, high):
        if kind != "env":
            assert await config.get(f"probe.{kind}") is True


async def test_all_layers_at_once_chain_in_priority_order(tmp_path):
    environ: dict[str, str] = {}
    for value, kind in enumerate(LAYERS):
        put(kind, tmp_path, environ, value)
    config = manager(tmp_path, environ)
    await config.load_config()
    why = config.explain("probe.value")
    assert why.value == 4 and why.source.variable == "INFRA__PROBE__VALUE"
    assert [o.source.layer for o in why.overridden] == LAYERS[-2::-1]
    assert [o.source.priority for o in why.overridden] == [50, 40, 10, 10]
    assert config.files == tuple(
        str(tmp_path / n)
        for n in ("default.json", "infrastructure.yaml", f"{SERVICE}.yml", f"{ENVIRONMENT}.yaml")
    )


async def test_lists_replace_and_null_replaces(tmp_path):
    (tmp_path / "infrastructure.yaml").write_text(
        "dependencies:\n  hub:\n    requires: [postgresql, nats, kafka]\nextra:\n  a: {b: 1}\n"
    )
    (tmp_path / f"{ENVIRONMENT}.yaml").write_text(
        "dependencies:\n  hub:\n    requires: [postgresql]\nextra:\n  a: null\n"
    )
    config = manager(tmp_path, {})
    await config.load_config()
    assert await config.get("dependencies.hub.requires") == ["postgresql"]
    assert await config.get("extra.a", "missing") is None


async def test_missing_config_dir_is_an_error(tmp_path):
    config = manager(tmp_path / "nope", {})
    with pytest.raises(ConfigFileError, match="configuration directory not found"):
        await config.load_config()


async def test_empty_config_dir_gives_environment_only(tmp_path):
    config = manager(tmp_path, {"INFRA__CACHE__HOST": "dragonfly"})
    await config.load_config()
    assert config.get_all() == {"cache": {"host": "dragonfly"}}
    assert config.files == ()


async def test_two_files_for_one_layer_is_an_error(tmp_path):
    (tmp_path / "default.yaml").write_text("a: 1\n")
    (tmp_path / "default.json").write_text('{"a": 2}')
    with pytest.raises(ConfigFileError, match="ambiguous"):
        await manager(tmp_path, {}).load_config()


async def test_config_dir_from_environ_mapping(tmp_path):
    (tmp_path / "infrastructure.yaml").write_text("cache:\n  host: from-env-dir\n")
    config = InfrastructureConfigManager("central-hub", environ={"INFRA_CONFIG_DIR": str(tmp_path)})
    assert config.config_dir == tmp_path
    await config.load_config()
    assert await config.get("cache.host") == "from-env-dir"


def test_config_dir_defaults_to_dot_config():
    assert InfrastructureConfigManager("central-hub", environ={}).config_dir == Path("config")


def test_environ_defaults_to_os_environ_at_construction(tmp_path, monkeypatch):
    # The one place that needs the real os.environ: the documented default.
    monkeypatch.setenv("INFRA_CONFIG_DIR", str(tmp_path))
    assert InfrastructureConfigManager("central-hub").config_dir == tmp_path


@pytest.mark.parametrize(
    ("service", "environment"),
    [
        ("", "dev"),
        ("../etc", "dev"),
        ("hub", "a/b"),
        ("default", "dev"),
        ("x", "infrastructure"),
        ("same", "same"),
    ],
)
def test_bad_names_are_usage_errors(service, environment):
    with pytest.raises(ConfigUsageError):
        InfrastructureConfigManager(service, environment, environ={})


# -- the INFRA__ environment variable convention ------------------------------------------


async def test_env_convention_nesting_lowercase_and_yaml_scalars(tmp_path):
    environ = {
        "INFRA__DATABASES__POSTGRESQL__PORT": "5433",
        "INFRA__DATABASES__POSTGRESQL__CRITICAL": "false",
        "INFRA__DATABASES__POSTGRESQL__HOST": "db.internal",
        "INFRA__DATABASES__POSTGRESQL__OPTIONS": "[a, b]",
        "INFRA__DATABASES__POSTGRESQL__NOTE": "",
        "INFRA__DATABASES__POSTGRESQL__PASSWORD": "0123",  # secret keys stay strings
        "INFRA_CONFIG_DIR_NOT_A_KEY": "x",
        "OTHER": "y",
    }
    config = manager(tmp_path, environ)
    await config.load_config()
    assert await config.get_database_config("postgresql") == {
        "critical": False,
        "host": "db.internal",
        "note": "",
        "options": "[a, b]",
        "password": "0123",
        "port": 5433,
    }


async def test_env_underscore_matches_dashed_file_key(tmp_path):
    (tmp_path / "infrastructure.yaml").write_text(
        "messaging:\n  nats-1:\n    host: nats-1\n    port: 4222\n"
    )
    config = manager(tmp_path, {"INFRA__MESSAGING__NATS_1__PORT": "4333"})
    await config.load_config()
    assert await config.get("messaging.nats-1.port") == 4333
    assert await config.get("messaging.nats_1") is None
    assert config.explain("messaging.nats-1.port").source.variable == (
        "INFRA__MESSAGING__NATS_1__PORT"
    )


@pytest.mark.parametrize(
    "environ",
    [
        {"INFRA__A": "1", "INFRA__A__B": "2"},
        {"INFRA__A__B": "1", "INFRA__a__b": "2"},
        {"INFRA__A____B": "1"},
        {"INFRA__": "1"},
    ],
)
async def test_env_conflicts_and_empty_parts_name_the_variable(tmp_path, environ):
    with pytest.raises(ConfigValidationError) as info:
        await manager(tmp_path, environ).load_config()
    assert info.value.variable in environ
    assert info.value.variable in str(info.value)


async def test_env_values_are_not_interpolated(tmp_path):
    config = manager(tmp_path, {"INFRA__X__Y": "${HOME}", "HOME": "/root"})
    await config.load_config()
    assert await config.get("x.y") == "${HOME}"


async def test_reload_rereads_environ_mapping(tmp_path):
    environ = {"INFRA__CACHE__PORT": "6379"}
    config = manager(tmp_path, environ)
    await config.load_config()
    environ["INFRA__CACHE__PORT"] = "6380"
    await config.reload()
    assert await config.get("cache.port") == 6380
