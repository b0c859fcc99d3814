"""``python -m infra_config show | get KEY | explain KEY``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra_config.cli import main

pytestmark = pytest.mark.timeout(20)

ROOT = Path(__file__).resolve().parents[2]
INFRA = "databases:\n  postgresql:\n    host: suho-postgresql\n    port: 5432\n"


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "infrastructure.yaml").write_text(INFRA)
    (tmp_path / "production.yaml").write_text("databases:\n  postgresql:\n    port: 6432\n")
    return tmp_path


def run(argv, environ=None):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_show_yaml_and_json(config_dir):
    code, out, err = run(["show", "--dir", str(config_dir)])
    assert code == 0 and err == ""
    assert yaml.safe_load(out) == {
        "databases": {"postgresql": {"host": "suho-postgresql", "port": 5432}}
    }
    code, out, _ = run(["--dir", str(config_dir), "--environment", "production", "show", "--json"])
    assert code == 0
    assert json.loads(out)["databases"]["postgresql"]["port"] == 6432


def test_get_scalar_and_mapping(config_dir):
    assert run(["get", "databases.postgresql.host", "--dir", str(config_dir)])[1] == (
        "suho-postgresql\n"
    )
    assert run(["get", "databases.postgresql.port", "--dir", str(config_dir)])[1] == "5432\n"
    code, out, _ = run(["get", "databases", "--dir", str(config_dir), "--json"])
    assert json.loads(out) == {"postgresql": {"host": "suho-postgresql", "port": 5432}}


def test_explain_names_file_and_line(config_dir):
    code, out, _ = run(
        [
            "explain",
            "databases.postgresql.port",
            "--dir",
            str(config_dir),
            "--environment",
            "production",
        ]
    )
    assert code == 0
    assert f"{config_dir / 'production.yaml'}:3" in out
    assert f"{config_dir / 'infrastructure.yaml'}:4" in out
    code, out, _ = run(
        ["explain", "databases.postgresql.port", "--dir", str(config_dir), "--json"],
        {"INFRA__DATABASES__POSTGRESQL__PORT": "7"},
    )
    data = json.loads(out)
    assert data["value"] == 7 and data["source"]["variable"] == "INFRA__DATABASES__POSTGRESQL__PORT"
    assert data["overridden"][0]["source"]["line"] == 4


def test_dir_from_environ_and_service_option(config_dir):
    (config_dir / "billing.yaml").write_text("databases:\n  postgresql:\n    port: 1\n")
    code, out, _ = run(
        ["get", "databases.postgresql.port", "--service", "billing"],
        {"INFRA_CONFIG_DIR": str(config_dir)},
    )
    assert (code, out) == (0, "1\n")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "required: COMMAND"),
        (["bogus"], "invalid choice"),
        (["get"], "required: KEY"),
        (["show", "--nope"], "unrecognized arguments"),
        (["get", "databases.nope"], "key not found: databases.nope"),
        (["get", "a..b"], "malformed key"),
        (["show", "--service", "../x"], "service_name must be"),
        (["show", "--dir", "/nonexistent/dir"], "configuration directory not found"),
    ],
)
def test_user_errors_are_one_line_exit_2(config_dir, argv, fragment):
    environ = {"INFRA_CONFIG_DIR": str(config_dir)}
    code, out, err = run(argv, environ)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("infra_config: error: ")
    assert fragment in err


def test_broken_file_is_one_line_with_file_and_line(config_dir):
    (config_dir / "production.yaml").write_text("databases:\n  postgresql: [\n")
    code, _, err = run(["show", "--dir", str(config_dir), "--environment", "production"])
    assert code == 2 and err.count("\n") == 1
    assert f"{config_dir / 'production.yaml'}:3: invalid YAML" in err
    assert "Traceback" not in err


def test_python_dash_m_entry_point(config_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRA")}
    env["PYTHONPATH"] = str(ROOT)
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra_config",
            "get",
            "databases.postgresql.host",
            "--dir",
            str(config_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=15,
        check=False,
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "suho-postgresql\n", "")
    bad = subprocess.run(
        [sys.executable, "-m", "infra_config", "get", "nope", "--dir", str(config_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=15,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr == "infra_config: error: key not found: nope\n"
