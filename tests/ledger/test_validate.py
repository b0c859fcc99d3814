"""Every rejected input raises InvalidConfig with its rule id, and never echoes a secret."""

from __future__ import annotations

import pytest

from ledger import (
    InvalidConfig,
    InvalidServiceName,
    Limits,
    validate_document,
    validate_service_name,
)
from ledger.canonical import parse_strict

SECRET = "hunter2-very-secret-value"


@pytest.mark.parametrize(
    ("doc", "rule"),
    [
        ([1, 2], "document.type"),
        ("text", "document.type"),
        ({"a": float("nan")}, "json.non_finite"),
        ({"a": float("inf")}, "json.non_finite"),
        ({"a": 2**53 + 1}, "json.int_range"),
        ({"a": -(2**53) - 1}, "json.int_range"),
        ({"a": 1e300}, "json.number_range"),
        ({"a": "x\x00y"}, "json.nul_char"),
        ({"a\x00": 1}, "json.nul_char"),
        ({"a": "\ud800"}, "json.lone_surrogate"),
        ({"a": {"b": b"bytes"}}, "json.type"),
        ({"db": {"password": SECRET}}, "secret.key_name"),
        ({"clientSecret": SECRET}, "secret.key_name"),
        ({"api-key": SECRET}, "secret.key_name"),
        ({"x": "-----BEGIN RSA PRIVATE KEY-----\nabc"}, "secret.private_key"),
        ({"x": "AKIAIOSFODNN7EXAMPLE"}, "secret.aws_access_key"),
        ({"x": "ghp_" + "a" * 36}, "secret.github_token"),
        ({"x": "xoxb-1234567890-abcdef"}, "secret.slack_token"),
        ({"x": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijk"}, "secret.jwt"),
        ({"x": ["postgres://admin:" + SECRET + "@db:5432/app"]}, "secret.url_credentials"),
    ],
)
def test_rejections_name_their_rule(doc: object, rule: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        validate_document(doc)
    assert info.value.rule == rule
    assert SECRET not in str(info.value)


def test_depth_limit() -> None:
    doc: dict = {}
    node = doc
    for _ in range(32):
        node["n"] = {}
        node = node["n"]
    with pytest.raises(InvalidConfig) as info:
        validate_document(doc)
    assert info.value.rule == "json.depth"
    shallow: dict = {}
    node = shallow
    for _ in range(31):
        node["n"] = {}
        node = node["n"]
    validate_document(shallow)


def test_size_limit() -> None:
    doc = {"blob": "x" * 300}
    validate_document(doc, Limits(max_bytes=400))
    with pytest.raises(InvalidConfig) as info:
        validate_document(doc, Limits(max_bytes=200))
    assert info.value.rule == "document.size"


def test_secret_policy_allows_what_is_not_a_secret() -> None:
    validate_document(
        {
            "db": {"password": "", "password_env": "DB_PASSWORD", "token": "${API_TOKEN}"},
            "max_tokens": 100,
            "token_bucket": {"size": 5},
            "use_secret_manager": True,
            "url": "https://example.com/path",
        }
    )


def test_secret_policy_can_be_disabled() -> None:
    validate_document({"password": SECRET}, Limits(secrets_policy=False))


@pytest.mark.parametrize("name", ["billing", "a", "polygon-historical-downloader", "x_1", "9" * 63])
def test_good_service_names(name: str) -> None:
    assert validate_service_name(name) == name


@pytest.mark.parametrize("name", ["", "Billing", "-x", "_x", "a.b", "a b", "a/b", "x" * 64, "é", None])
def test_bad_service_names(name: object) -> None:
    with pytest.raises(InvalidServiceName) as info:
        validate_service_name(name)
    assert info.value.rule == "service_name"


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (b'{"a": 1, "a": 2}', "json.duplicate_key"),
        (b'{"a": NaN}', "json.non_finite"),
        (b'{"a": Infinity}', "json.non_finite"),
        (b'{"a": 1e999}', "json.non_finite"),
        (b'{"a": ', "json.syntax"),
        (b"\xff\xfe", "json.encoding"),
        (b"[" * 100000 + b"]" * 100000, "json.depth"),
    ],
)
def test_parse_strict(body: bytes, rule: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_strict(body)
    assert info.value.rule == rule
