"""Every process's settings through the one layered mechanism (``infra_config.settings`` +
``ledger.settings.SettingsModel``): the order of the layers, ``explain``, deprecated names, and
errors that name where a bad value came from. Tests pass dicts and layers, never os.environ."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import ApiSettings
from client.settings import ClientSettings
from infra_config.settings import Setting, explicit_layer, settings_config
from ledger.errors import UsageError
from ledger.settings import HUB_URL, NATS_URL, LedgerSettings
from ops.cli_settings import PROCESSES
from ops.stack_settings import StackSettings
from projector.settings import ProjectorSettings

PORT = Setting("api.port", "API_PORT", 7000)
DB = "postgresql://u@h/db"


def _files(tmp_path: Path, **files: str) -> dict[str, str]:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    return {"INFRA_CONFIG_DIR": str(tmp_path)}


def test_layers_lowest_first_defaults_files_variables_infra_explicit(tmp_path: Path) -> None:
    env = _files(tmp_path, default="api: {port: 7001}\n", api="api: {port: 7002}\n")
    assert settings_config([PORT], environ={}, service_name="api").get_all()["api"]["port"] == 7000
    config = settings_config([PORT], environ=env, service_name="api")
    assert config.get_all()["api"]["port"] == 7002
    assert str(config.explain("api.port").source).startswith(f"{tmp_path / 'api.yaml'}:1")
    env["API_PORT"] = "7003"
    assert settings_config([PORT], environ=env, service_name="api").get_all()["api"]["port"] == "7003"
    env["INFRA__API__PORT"] = "7004"
    assert settings_config([PORT], environ=env, service_name="api").get_all()["api"]["port"] == 7004
    top = settings_config([PORT], environ=env, service_name="api", layers=[explicit_layer({"api.port": 7005})])
    explanation = top.explain("api.port")
    assert explanation.value == 7005
    assert [o.source.location for o in explanation.overridden] == [
        "$INFRA__API__PORT", "$API_PORT", f"{tmp_path / 'api.yaml'}:1", f"{tmp_path / 'default.yaml'}:1", "<defaults>",
    ]


def test_files_are_read_only_when_infra_config_dir_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "default.yaml").write_text("api: {port: 9999}\n")
    assert ApiSettings.from_env({"DATABASE_URL": DB}).port == 7000
    with pytest.raises(UsageError, match="configuration directory not found"):
        ApiSettings.from_env({"INFRA_CONFIG_DIR": str(tmp_path / "missing")})


def test_every_process_model_is_built_from_the_same_names(tmp_path: Path) -> None:
    env = {"DATABASE_URL": DB, "NATS_URL": "nats://n:1", "API_PORT": "7100", "LEDGER_STREAM": "S"}
    api = ApiSettings.from_env(env)
    projector = ProjectorSettings.from_env(env)
    stack = StackSettings.from_env(env)
    assert (api.port, stack.api_port) == (7100, 7100)
    assert api.ledger.nats_url == projector.nats_url == stack.nats_url == "nats://n:1"
    assert api.ledger.stream == projector.stream == "S"
    names: dict[str, str] = {}
    for model in PROCESSES.values():
        for setting in model.settings():
            assert names.setdefault(setting.key, setting.env) == setting.env, setting.key  # one name per key


def test_a_bad_value_names_the_variable_or_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^API_PORT: "):
        ApiSettings.from_env({"API_PORT": "seventy"})
    env = _files(tmp_path, projector="projector:\n  batch_size: 0\n")
    with pytest.raises(UsageError, match=r"projector.batch_size in .*projector.yaml:2: "):
        ProjectorSettings.from_env({**env, "DATABASE_URL": DB})
    with pytest.raises(UsageError, match=r"^DATABASE_URL: Field required"):
        ProjectorSettings.from_env({})
    (tmp_path / "default.yaml").write_text("api: [unclosed\n")
    with pytest.raises(UsageError, match="default.yaml"):
        ApiSettings.from_env(env)


def test_the_hub_url_has_one_name_and_the_reference_documents_as_a_fallback() -> None:
    assert ClientSettings.from_env({}).central_hub_url == HUB_URL.default
    old = ClientSettings.config({"CENTRAL_HUB_URL": "http://old:1"})
    assert old.explain("hub.url").source.location == "$CENTRAL_HUB_URL"
    both = {"CENTRAL_HUB_URL": "http://old:1", "CONFIG_LEDGER_URL": "http://new:2"}
    assert ClientSettings.from_env(both).central_hub_url == "http://new:2"


def test_values_meaning_start_one_count_only_when_set() -> None:
    """The stack starts its own NATS and runs without auth unless told; a client uses the stream
    only when given its URL — not because of the built-in NATS default the API uses."""
    assert (StackSettings.from_env({}).nats_url, StackSettings.from_env({}).auth) == (None, False)
    assert StackSettings.from_env({"API_AUTH": "on"}).auth is True
    assert ApiSettings.from_env({}).auth is True
    assert ClientSettings.from_env({}).nats_url is None
    assert ClientSettings.from_env({"NATS_URL": "nats://n:1"}).nats_url == "nats://n:1"
    assert LedgerSettings.from_env({}).nats_url == NATS_URL.default
