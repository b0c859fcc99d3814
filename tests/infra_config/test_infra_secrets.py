"""No secret value is ever shown: repr, explain, errors, CLI output and logs."""

from __future__ import annotations

import io
import logging

import pytest

from infra_config import (
    MASK,
    ConfigValidationError,
    DatabaseConfig,
    InfrastructureConfigManager,
    is_secret_key,
    redact,
)
from infra_config.cli import main

pytestmark = pytest.mark.timeout(10)

SECRET = "S3cr3t-Value-7f2a"
TOKEN = "tok-9b1c-Secret"
ENVIRON = {
    "PG_PASSWORD": SECRET,
    "DB_URL_PART": SECRET,
    "INFRA__MESSAGING__NATS_1__TOKEN": TOKEN,
}
FILES = {
    "infrastructure.yaml": (
        "databases:\n"
        "  postgresql:\n"
        "    host: suho-postgresql\n"
        "    username: suho_admin\n"
        "    password: ${PG_PASSWORD}\n"
        "    dsn: postgres://suho_admin:${DB_URL_PART}@suho-postgresql/suho\n"
        "    servers: ['${DB_URL_PART}', plain]\n"
        "messaging:\n"
        "  nats-1:\n"
        "    host: nats-1\n"
        "    api-key: literal-in-file\n"
    ),
    "production.yaml": "databases:\n  postgresql:\n    dsn: ${DB_URL_PART:-unused}\n",
}


@pytest.fixture
def config_dir(tmp_path):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


async def loaded(config_dir, environ=ENVIRON) -> InfrastructureConfigManager:
    config = InfrastructureConfigManager(
        "central-hub", "production", config_dir=config_dir, environ=dict(environ)
    )
    await config.load_config()
    return config


def assert_no_secret(text: str) -> None:
    assert SECRET not in text
    assert TOKEN not in text
    assert "literal-in-file" not in text


async def test_real_values_are_available_to_the_program(config_dir):
    config = await loaded(config_dir)
    db = await config.get_database_config()
    assert db["password"] == SECRET
    assert db["dsn"] == SECRET
    assert await config.get("messaging.nats-1.token") == TOKEN


async def test_redacted_view(config_dir):
    shown = (await loaded(config_dir)).redacted()
    db = shown["databases"]["postgresql"]
    assert db["password"] == MASK and db["dsn"] == MASK
    assert db["servers"] == [MASK, "plain"]  # only the interpolated element
    assert db["host"] == "suho-postgresql" and db["username"] == "suho_admin"
    assert shown["messaging"]["nats-1"]["api-key"] == MASK
    assert shown["messaging"]["nats-1"]["token"] == MASK
    assert_no_secret(repr(shown))


async def test_repr_and_explain(config_dir):
    config = await loaded(config_dir)
    assert_no_secret(repr(config))
    for key in (
        "databases.postgresql.password",
        "databases.postgresql.dsn",  # an interpolated value overriding an interpolated one
        "databases.postgresql.servers",
        "databases.postgresql.servers.0",
        "databases.postgresql",
        "databases",
        "messaging.nats-1.token",
        "messaging.nats-1.api-key",
        "messaging.nats-1",
    ):
        why = config.explain(key)
        assert_no_secret(repr(why))
        assert_no_secret(str(why))
    why = config.explain("databases.postgresql.dsn")
    assert why.value == MASK and [o.value for o in why.overridden] == [MASK]


async def test_overridden_secret_is_hidden_but_plain_override_is_not(config_dir):
    environ = {**ENVIRON, "INFRA__DATABASES__POSTGRESQL__DSN": "postgres://public"}
    why = (await loaded(config_dir, environ)).explain("databases.postgresql.dsn")
    assert why.value == "postgres://public"  # a plain env value, key not secret-named
    assert [o.value for o in why.overridden] == [MASK, MASK]
    assert_no_secret(str(why))


async def test_validation_error_hides_secret_input(config_dir):
    (config_dir / "central-hub.yaml").write_text(
        "databases:\n  postgresql:\n    port: ${PG_PASSWORD}\n    password: [1]\n"
    )
    with pytest.raises(ConfigValidationError) as info:
        await loaded(config_dir)
    assert [k for _, k, _ in info.value.problems] == [
        "databases.postgresql.port",
        "databases.postgresql.password",
    ]
    assert_no_secret(str(info.value))
    assert_no_secret(repr(info.value))


async def test_logs_never_contain_secrets(config_dir, caplog):
    caplog.set_level(logging.DEBUG)
    config = await loaded(config_dir)
    await config.reload()
    # A long interval: the test drives check() itself, so the poller never races it.
    async with config.watch(lambda cfg: None, interval=3600) as watcher:
        (config_dir / "production.yaml").write_text("databases: {postgresql: {port: [}}\n")
        assert not await watcher.check()
        (config_dir / "production.yaml").write_text("databases:\n  postgresql:\n    port: 1\n")
        assert await watcher.check()
    messages = [r.getMessage() for r in caplog.records]
    assert any("effective infrastructure config" in m for m in messages)
    assert any("reload failed" in m for m in messages)
    assert_no_secret(caplog.text)
    assert_no_secret("\n".join(messages))


@pytest.mark.parametrize(
    "argv",
    [
        ["show"],
        ["show", "--json"],
        ["get", "databases.postgresql"],
        ["get", "databases.postgresql.password"],
        ["get", "databases.postgresql.dsn", "--json"],
        ["get", "messaging.nats-1.token"],
        ["explain", "databases.postgresql.dsn"],
        ["explain", "databases.postgresql.password", "--json"],
    ],
)
def test_cli_output_is_redacted(config_dir, argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(
        [*argv, "--dir", str(config_dir), "--environment", "production"],
        environ=ENVIRON,
        stdout=out,
        stderr=err,
    )
    assert code == 0, err.getvalue()
    assert_no_secret(out.getvalue() + err.getvalue())
    assert MASK in out.getvalue()


def test_model_repr_masks_secret_named_fields():
    model = DatabaseConfig(host="h", password=SECRET, client_secret=SECRET)  # type: ignore[call-arg]
    assert_no_secret(repr(model))
    assert "host='h'" in repr(model)


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("DB_PASSWORD", True),
        ("db-passwd", True),
        ("client_secret", True),
        ("api_key", True),
        ("apiKey", True),
        ("private_key", True),
        ("auth_token", True),
        ("pass", True),
        ("credentials", True),
        ("host", False),
        ("port", False),
        ("bypass", False),
        ("passive", False),
        ("username", False),
    ],
)
def test_secret_key_names(key, secret):
    assert is_secret_key(key) is secret


def test_redact_keeps_none_and_masks_subtrees():
    data = {"a": {"password": None, "secrets": {"x": 1}, "list": [{"token": "t"}]}}
    assert redact(data) == {"a": {"password": None, "secrets": MASK, "list": [{"token": MASK}]}}
