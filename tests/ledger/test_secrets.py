"""The secrets policy against a corpus: what must be refused and what must pass.

Credential-shaped strings are assembled from parts so that this file itself does not look like
it leaks one to a repository scanner.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from ledger import Replace
from ledger.errors import InvalidConfig
from ledger.event import new_event
from ledger.secrets import RULES, find_secret, key_words, scan_text
from ledger.validate import validate_document

BEGIN, END = "-----" + "BEGIN", "-----" + "END"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"
GH = "gh" + "p_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
SLACK = "xo" + "xb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
JWT = "ey" + "JhbGciOiJIUzI1NiJ9.ey" + "JzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
GCP = "AI" + "za" + "SyA1234567890abcdefghijklmnopqrstuv"
BASIC = base64.b64encode(b"admin:hunter2").decode()

MUST_REJECT: list[tuple[str, object, str]] = [
    # private keys of every kind
    ("pem rsa", {"tls": f"{BEGIN} RSA PRIVATE KEY-----\nMIIE...\n{END} RSA PRIVATE KEY-----"}, "secret.private_key"),
    ("pem pkcs8", {"k": f"{BEGIN} PRIVATE KEY-----"}, "secret.private_key"),
    ("pem encrypted", {"k": f"{BEGIN} ENCRYPTED PRIVATE KEY-----"}, "secret.private_key"),
    ("pem ec", {"k": f"{BEGIN} EC PRIVATE KEY-----"}, "secret.private_key"),
    ("openssh", {"k": f"{BEGIN} OPENSSH PRIVATE KEY-----"}, "secret.private_key"),
    ("pgp", {"k": f"{BEGIN} PGP PRIVATE KEY BLOCK-----"}, "secret.private_key"),
    ("ssh2", {"k": f"---- {BEGIN[5:]} SSH2 ENCRYPTED PRIVATE KEY ----".replace("---- BEGIN", "-----BEGIN")
              .replace("KEY ----", "KEY-----")}, "secret.private_key"),
    ("putty", {"k": "PuTTY-User-Key-File-3: ssh-ed25519"}, "secret.private_key"),
    ("key in a list", {"keys": ["x", f"{BEGIN} DSA PRIVATE KEY-----"]}, "secret.private_key"),
    # credentials in URLs, with or without a user
    ("postgres url", {"db": "postgres://app:s3cret@db:5432/app"}, "secret.url_credentials"),
    ("redis no user", {"cache": "redis://:pw@host:6379/0"}, "secret.url_credentials"),
    ("amqp", {"mq": "amqps://guest:guest@rabbit/"}, "secret.url_credentials"),
    ("url in prose", {"note": "use https://bob:pa55@example.com/x"}, "secret.url_credentials"),
    # authorization values
    ("basic", {"headers": {"Authorization": f"Basic {BASIC}"}}, "secret.authorization_basic"),
    ("basic lowercase", {"h": f"basic {BASIC}"}, "secret.authorization_basic"),
    ("bearer", {"h": "Bearer abcdef0123456789abcdef"}, "secret.authorization_bearer"),
    # cloud and SaaS keys
    ("aws value", {"aws": AWS}, "secret.aws_access_key"),
    ("aws sts", {"aws": "ASIA" + "Y34FZKBOKMUTVV7A"}, "secret.aws_access_key"),
    ("aws as key name", {AWS: "x"}, "secret.aws_access_key"),
    ("aws nested key name", {"a": {"b": {AWS: 1}}}, "secret.aws_access_key"),
    ("gcp api key", {"maps": GCP}, "secret.gcp_api_key"),
    ("gcp oauth secret", {"oauth": "GOCSPX-" + "abcdefghijklmnopqrstuvwx12"}, "secret.gcp_oauth"),
    ("gcp access token", {"t": "ya29." + "a0AfH6SMBx1234567890abcdefgh"}, "secret.gcp_oauth"),
    ("azure storage", {"conn": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=" + "A" * 86 + "=="},
     "secret.azure_storage_key"),
    ("azure sas", {"blob": "https://x.blob.core.windows.net/c?sv=2022&s" + "ig=" + "abcdEFGH1234%2Babcd5678efgh"},
     "secret.azure_sas"),
    ("azure client secret", {"app": "abc8Q~" + "abcdefghijklmnopqrstuvwxyz0123456"}, "secret.azure_client_secret"),
    ("github", {"gh": GH}, "secret.github_token"),
    ("github fine-grained", {"gh": "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnop"}, "secret.github_token"),
    ("slack token", {"slack": SLACK}, "secret.slack_token"),
    ("slack webhook", {"hook": "https://hooks.slack.com/services/" + "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"},
     "secret.slack_webhook"),
    ("stripe", {"pay": "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"}, "secret.stripe_key"),
    ("jwt", {"session": JWT}, "secret.jwt"),
    # key names, normalised
    *[(f"key {k!r}", {k: "hunter2"}, "secret.key_name") for k in [
        "password", "secrets", "pwd", "pass", "tokens", "passwords", "signing_key", "DBPassword",
        "password ", "ｐａｓｓｗｏｒｄ", "db.password", "db-password", "DB_PASSWORD", "dbPassword",
        "apiKey", "API-KEY", "apikeys", "client_secret", "clientSecret", "privateKey", "accessKey",
        "aws_secret_access_key", "auth_token", "refreshTokens", "credentials", "passphrase",
        "smtp pass", "encryption_key", "masterKey", "  Secret\t", "PASSWD", "Pass",
    ]],
    ("number under password", {"pin_password": 1234}, "secret.key_name"),
    ("nested under password", {"password": {"value": "x"}}, "secret.key_name"),
    ("list under tokens", {"tokens": ["a", "b"]}, "secret.key_name"),
    ("deep under secret", {"secret": {"a": {"b": "c"}}}, "secret.key_name"),
    # ${VAR:-default}: a literal default is a literal
    ("env default under key", {"password": "${DB_PASSWORD:-hunter2}"}, "secret.env_default"),
    ("env assign default", {"token": "${T:=abc}"}, "secret.env_default"),
    ("aws in an env default", {"region": "${AWS_KEY:-" + AWS + "}"}, "secret.aws_access_key"),
    ("url in an env default", {"db": "${DB_URL:-postgres://u:pw@h/db}"}, "secret.url_credentials"),
]

MUST_ACCEPT: list[tuple[str, object]] = [
    ("reference", {"password": "${DB_PASSWORD}"}),
    ("reference braces-less", {"password": "$DB_PASSWORD"}),
    ("empty default", {"password": "${DB_PASSWORD:-}"}),
    ("required reference", {"token": "${TOKEN:?TOKEN must be set}"}),
    ("empty", {"password": ""}),
    ("null", {"password": None}),
    ("flag", {"token": True}),
    ("empty list", {"tokens": []}),
    ("url with user only", {"git": "https://git@example.com/repo.git"}),
    ("url with port", {"api": "http://localhost:8080/path?q=1"}),
    ("ipv6 url", {"api": "http://[::1]:8080/"}),
    ("url with referenced password", {"db": "postgres://app:${PGPASSWORD}@db:5432/app"}),
    ("public key", {"pub": f"{BEGIN} PUBLIC KEY-----\nMFkw\n{END} PUBLIC KEY-----"}),
    ("certificate", {"ca": f"{BEGIN} CERTIFICATE-----\nMIIB\n{END} CERTIFICATE-----"}),
    ("bearer prose", {"doc": "Bearer authentication is required"}),
    ("basic prose", {"auth_mode": "basic"}),
    ("basic word", {"note": "Basic settings for the batch job"}),
    ("max tokens", {"max_tokens": 4096}),
    ("token ttl", {"token_ttl_seconds": 3600}),
    ("password policy", {"password_min_length": 12, "password_policy": "strict"}),
    ("nested quantity", {"tokens": {"max": 10, "ttl": 60}}),
    ("password file", {"password_file": "/run/secrets/db"}),
    ("token url", {"token_url": "https://auth.example.com/oauth/token"}),
    ("secret name", {"secret_name": "db-credentials"}),
    ("key id", {"key_id": "k-2026-01"}),
    ("bypass", {"bypass": "on", "compass": "north", "passenger_limit": 3}),
    ("tokenizer", {"tokenizer": "whitespace"}),
    ("hash", {"sha": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}),
    ("uuid", {"id": "123e4567-e89b-12d3-a456-426614174000"}),
    ("reference document", {"operational": {"batch_size": 200, "gap_check_interval_hours": 1}}),
    ("aws-like lowercase", {"name": "akiaiosfodnn7example"}),
    ("short AKIA", {"code": "AKIA123"}),
    ("eyJ alone", {"x": "eyJhbGciOiJIUzI1NiJ9"}),
    ("email", {"owner": "ops@example.com"}),
    ("keyboard", {"keyboard_layout": "us", "monkey": "banana", "turkey": 1}),
    ("region", {"region": "${AWS_REGION:-eu-west-1}"}),
    ("unicode", {"名前": "値", "ｎａｍｅ": "full-width name"}),
    ("secret flag", {"secrets_enabled": False, "use_secret_manager": True}),
]


def test_corpus_sizes() -> None:
    assert len(MUST_REJECT) >= 70 and len(MUST_ACCEPT) >= 35
    assert {rule for _, _, rule in MUST_REJECT} == RULES  # every rule has a case


@pytest.mark.parametrize(("name", "doc", "rule"), MUST_REJECT, ids=[c[0] for c in MUST_REJECT])
def test_must_reject(name: str, doc: dict, rule: str) -> None:
    found = find_secret(doc)
    assert found is not None and found[0] == rule, found
    with pytest.raises(InvalidConfig) as caught:
        validate_document(doc)
    assert caught.value.rule == rule
    assert "hunter2" not in caught.value.message and AWS not in caught.value.message


@pytest.mark.parametrize(("name", "doc"), MUST_ACCEPT, ids=[c[0] for c in MUST_ACCEPT])
def test_must_accept(name: str, doc: dict) -> None:
    assert find_secret(doc) is None
    validate_document(doc)


def test_key_names_are_normalised() -> None:
    assert key_words("DBPassword") == ("db", "password")
    assert key_words("ｐａｓｓｗｏｒｄ ") == ("password",)
    assert key_words("refreshTokens") == ("refresh", "token")
    assert key_words("API-KEYS") == ("api", "key")


def _event(reason: str = "", actor: str = "alice"):
    return new_event(None, "svc", Replace({"a": 1}), actor=actor, reason=reason,
                     occurred_at=datetime.now(UTC), event_id="6f1c7e52-9d0a-4c55-9a67-1f3c1c0de1ed")


@pytest.mark.parametrize(
    ("reason", "rule"),
    [
        (f"rotate {AWS}", "secret.aws_access_key"),
        (f"pasted {BEGIN} RSA PRIVATE KEY-----", "secret.private_key"),
        (f"curl -H 'Authorization: Basic {BASIC}'", "secret.authorization_basic"),
        ("moved to redis://:pw@cache", "secret.url_credentials"),
        (f"token {GH}", "secret.github_token"),
    ],
)
def test_reasons_and_actors_are_checked_by_the_same_policy(reason: str, rule: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        _event(reason=reason)
    assert caught.value.rule == rule and caught.value.path == "reason"
    with pytest.raises(InvalidConfig) as caught:
        _event(actor=reason[-60:].strip())
    assert caught.value.rule == rule and caught.value.path == "actor"


def test_ordinary_reasons_pass() -> None:
    for reason in ("INC-1234: raise the batch size", "rotate the password (now in ${DB_PASSWORD})",
                   "Bearer tokens now expire after 1h", "see https://wiki.example.com/runbook#db"):
        assert scan_text(reason) is None
        _event(reason=reason)
