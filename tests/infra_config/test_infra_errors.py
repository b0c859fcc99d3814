"""Error messages: file:line for broken files, key path for bad types, the variable for a
missing interpolation — always one of our exceptions, never a parser traceback."""

from __future__ import annotations

import pytest

from infra_config import (
    ConfigFileError,
    ConfigValidationError,
    InfraConfigError,
    InfrastructureConfigManager,
    MissingVariableError,
)

pytestmark = pytest.mark.timeout(10)


async def load(tmp_path, files: dict[str, str], environ=None) -> InfrastructureConfigManager:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    config = InfrastructureConfigManager(
        "central-hub", "production", config_dir=tmp_path, environ=environ or {}
    )
    await config.load_config()
    return config


def assert_clean(exc: BaseException) -> None:
    """Ours, one line, and not chained to a parser exception."""
    assert isinstance(exc, InfraConfigError)
    assert "\n" not in str(exc)
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("databases:\n  postgresql:\n    host: a\n   port: 5\n", 4),
        ("a: 1\nb: [1, 2\nc: 3\n", 3),
        ("a: 1\nb:\n\t- x\n", 3),
        ("a: 1\n---\nb: 2\n", 2),
        ("a: !Ref foo\n", 1),
        ("a: 1\nb: 2\na: 3\n", 3),
        ("- just\n- a list\n", 1),
        ("a: &x [*x]\n", 1),
        ("a:\n  b: 2025-13-45\n", 2),
        ("a: !!int abc\n", 1),
    ],
)
async def test_bad_yaml_names_file_and_line(tmp_path, text, line):
    with pytest.raises(ConfigFileError) as info:
        await load(tmp_path, {"production.yaml": text})
    err = info.value
    assert_clean(err)
    assert (err.path, err.line) == (str(tmp_path / "production.yaml"), line)
    assert str(err).startswith(f"{tmp_path / 'production.yaml'}:{line}: ")


async def test_duplicate_key_message(tmp_path):
    with pytest.raises(ConfigFileError, match=r":3: duplicate key 'a' \(first at line 1\)"):
        await load(tmp_path, {"infrastructure.yaml": "a: 1\nb: 2\na: 3\n"})


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('{\n  "a": 1,\n  "b": \n}\n', 4),
        ('{"a": 1}\n{"b": 2}', 2),
        ("[1, 2]", 1),
        ('{\n\t"a": 1,\n\t"a": 2\n}', 3),
    ],
)
async def test_bad_json_names_file_and_line(tmp_path, text, line):
    with pytest.raises(ConfigFileError) as info:
        await load(tmp_path, {"default.json": text})
    assert_clean(info.value)
    assert info.value.line == line


async def test_non_utf8_file(tmp_path):
    (tmp_path / "infrastructure.yaml").write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(ConfigFileError, match="not valid UTF-8"):
        await load(tmp_path, {})


async def test_wrong_type_names_file_key_path_and_line(tmp_path):
    text = "databases:\n  postgresql:\n    host: h\n    port: fivefourthreetwo\n"
    with pytest.raises(ConfigValidationError) as info:
        await load(tmp_path, {"central-hub.yaml": text})
    err = info.value
    assert_clean(err)
    assert err.key == "databases.postgresql.port"
    assert (err.file, err.line) == (str(tmp_path / "central-hub.yaml"), 4)
    assert str(err).startswith(f"{tmp_path / 'central-hub.yaml'}:4: databases.postgresql.port: ")
    assert "'fivefourthreetwo'" in str(err)  # not a secret: the value helps


async def test_wrong_type_inside_a_list_and_a_union(tmp_path):
    text = "alerts:\n  - severity: critical\n  - severity: loud\n"
    with pytest.raises(ConfigValidationError) as info:
        await load(tmp_path, {"infrastructure.yaml": text})
    assert info.value.key == "alerts.1.severity"
    assert info.value.line == 3


async def test_several_problems_are_all_reported(tmp_path):
    text = "messaging:\n  nats-1:\n    port: 70000\n    management_port: x\ncache: 5\n"
    with pytest.raises(ConfigValidationError) as info:
        await load(tmp_path, {"infrastructure.yaml": text})
    keys = [key for _, key, _ in info.value.problems]
    assert keys == ["messaging.nats-1.port", "messaging.nats-1.management_port", "cache"]
    assert [s.line for s, _, _ in info.value.problems] == [3, 4, 5]


async def test_wrong_type_from_an_environment_variable_names_it(tmp_path):
    with pytest.raises(ConfigValidationError) as info:
        await load(tmp_path, {}, {"INFRA__DATABASES__POSTGRESQL__PORT": "not-a-port"})
    assert info.value.variable == "INFRA__DATABASES__POSTGRESQL__PORT"
    assert str(info.value).startswith(
        "$INFRA__DATABASES__POSTGRESQL__PORT: databases.postgresql.port: "
    )


async def test_missing_variable_names_variable_file_and_key(tmp_path):
    text = "databases:\n  postgresql:\n    password: ${PG_PASSWORD}\n"
    with pytest.raises(MissingVariableError) as info:
        await load(tmp_path, {"production.yaml": text})
    err = info.value
    assert_clean(err)
    assert (err.variable, err.file, err.key, err.line) == (
        "PG_PASSWORD",
        str(tmp_path / "production.yaml"),
        "databases.postgresql.password",
        3,
    )
    assert "PG_PASSWORD" in str(err) and "databases.postgresql.password" in str(err)


@pytest.mark.parametrize("value", ["${}", "${1X}", "${A B}", "${A:-${B}}", "pre ${OPEN"])
async def test_malformed_placeholders(tmp_path, value):
    with pytest.raises(ConfigFileError, match=r"production.yaml:2: a.b: "):
        await load(tmp_path, {"production.yaml": f"a:\n  b: '{value}'\n"})
