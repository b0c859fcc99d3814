"""``config-ledger settings explain``: each setting's value and where it came from, and the
admin commands taking the API URL from the same layers (flag > variable > file > default)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.embedded import free_port

from .conftest import CliRunner


@pytest.fixture
def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_explain_one_key_says_which_layer_won(cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "api.yaml").write_text("api:\n  port: 7100\n")
    result = cli("settings", "explain", "API_PORT", "--process", "api", env={"INFRA_CONFIG_DIR": str(tmp_path)})
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].startswith("api.port = 7100")
    assert f"set by      {tmp_path / 'api.yaml'}:2 (service file, priority 40)" in result.out
    assert "overrides   <defaults> (built-in default, priority 0)" in result.out


def test_explain_everything_as_json_with_secrets_masked(cli: CliRunner) -> None:
    env = {"DATABASE_URL": "postgresql://u:hunter2@db/x", "CONFIG_LEDGER_TOKEN": "s3cret", "CENTRAL_HUB_URL": "http://old:1"}
    result = cli("settings", "explain", "--json", env=env)
    assert result.code == 0, result.err
    rows = {row["key"]: row for row in json.loads(result.out)}
    assert {"api.port", "projector.batch_size", "stack.data_dir", "client.lkg_dir", "hub.url"} <= rows.keys()
    assert rows["database.url"]["value"] == "postgresql://u:***@db/x"
    assert rows["hub.token"]["value"] == "***"
    assert (rows["hub.url"]["value"], rows["hub.url"]["source"].split()[0]) == ("http://old:1", "$CENTRAL_HUB_URL")
    assert rows["api.tokens"]["source"] == "not set"
    assert "hunter2" not in result.out and "s3cret" not in result.out


def test_an_unknown_key_is_a_usage_error(cli: CliRunner) -> None:
    result = cli("settings", "explain", "NO_SUCH_THING")
    assert result.code == 2 and "unknown setting 'NO_SUCH_THING'" in result.err and "API_PORT" in result.err


def test_the_url_flag_beats_the_variable_which_beats_the_default(cli: CliRunner, dead_url: str) -> None:
    # Nothing listens there: the error names the URL the command used.
    assert dead_url in cli("services", env={"CONFIG_LEDGER_URL": dead_url}).err
    assert dead_url in cli("services", env={"CENTRAL_HUB_URL": dead_url}).err
    assert dead_url in cli("services", "--url", dead_url, env={"CONFIG_LEDGER_URL": "http://127.0.0.1:9"}).err
