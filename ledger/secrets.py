"""The secrets policy: no credential enters the ledger (pure, no I/O).

Events are kept forever and readable by every auditor, so a credential written once cannot be
taken back. Three checks, each with a rule id (HTTP 422, ``details.rule``; the value is never
echoed):

- **Key names** (``secret.key_name``): a key that names a secret (``password``, ``pwd``,
  ``pass``, ``secret``, ``token``, ``api_key``, ``signing_key``, ``credentials``, …) may hold only
  an environment reference (``"${VAR}"``), an empty value, ``null`` or a boolean — also deeper
  down (``{"password": {"value": …}}``). Names are normalised before matching: Unicode NFKC
  (full-width letters), case, whitespace and separators, camelCase (``DBPassword``), plurals.
  Keys about a quantity of the secret (``max_tokens``, ``password_min_length``, ``token_ttl``)
  are not secrets.
- **Defaults** (``secret.env_default``): ``"${VAR:-literal}"`` under a secret key is a literal.
- **Values** anywhere — string values, key names, change reasons and actors — are scanned for:
  private key blocks of every kind (PEM, PGP, OpenSSH, PuTTY), credentials in URLs (with or
  without a user), ``Basic``/``Bearer`` authorization values, AWS access key ids, GCP API keys
  and OAuth secrets/tokens, Azure storage keys, SAS signatures and client secrets, GitHub and
  Slack tokens, Slack webhooks, Stripe live keys and JWTs.

Why not a library: detect-secrets (Yelp, the best kept of them) was considered. It scans *lines
of files* through plugins configured by global mutable settings, has no notion of a key/value
document (its keyword plugin matches assignments in source code), misses URL credentials without
a user (``redis://:pw@host``) and GCP keys, and its entropy plugins would reject ordinary config
hashes. Its patterns for private keys, AWS, Slack, GitHub, JWT, Azure and Basic auth are the
source of the ones below; the corpus test (``tests/ledger/test_secrets.py``) pins the behaviour.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from .errors import InvalidConfig
from .paths import join_path

__all__ = ["find_secret", "check_text", "scan_text", "is_secret_key", "key_words", "RULES"]

# One alternation: a single pass over each string finds the first candidate of any rule.
_VALUE_RULES: tuple[tuple[str, str], ...] = (
    ("private_key", r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-\d"),
    ("aws_access_key", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
    ("gcp_api_key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("gcp_oauth", r"\bGOCSPX-[A-Za-z0-9_-]{20,}|\bya29\.[0-9A-Za-z_-]{20,}"),
    ("azure_storage_key", r"(?i:AccountKey|SharedAccessKey)\s*=\s*[A-Za-z0-9+/]{20,}={0,2}"),
    ("azure_sas", r"[?&;]sig=[A-Za-z0-9%+/]{20,}"),
    ("azure_client_secret", r"(?<![A-Za-z0-9])[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}"),
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("slack_token", r"\bxox[abposre]-[A-Za-z0-9-]{10,}"),
    ("slack_webhook", r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,}"),
    ("stripe_key", r"\b[rs]k_live_[0-9A-Za-z]{16,}"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("url_credentials", r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,30}://[^/\s:@]{0,256}:(?P<pw>[^/\s@]{1,256})@"),
    ("authorization_basic", r"(?i:\bbasic)\s+(?P<basic>[A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])"),
    ("authorization_bearer", r"(?i:\bbearer)\s+(?P<bearer>[A-Za-z0-9._~+/-]{16,}=*)"),
)
_SCAN = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _VALUE_RULES))
#: Every rule id this module raises.
RULES = frozenset({f"secret.{name}" for name, _ in _VALUE_RULES} | {"secret.key_name", "secret.env_default"})

# A reference to an environment variable is how a secret *should* appear.
_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-=?+])(?P<default>[^}]*))?\}|\$[A-Za-z_][A-Za-z0-9_]*")

_ENV_OPEN = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?[-=?+]")

# Normalised key names (words joined) that name a secret when they end the key.
_SECRET_ENDINGS = (
    "password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey", "secretkey",
    "signingkey", "accesskey", "encryptionkey", "masterkey", "credential", "pwd", "authkey",
    "sessionkey", "clientkey",
)
_SECRET_LAST_WORDS = frozenset({"pass", "pw", "psk"})
# Words saying the key is about a quantity or property of the secret, not the secret itself.
_QUANTITY_WORDS = frozenset({
    "max", "min", "num", "count", "limit", "length", "len", "ttl", "timeout", "expiry", "expires",
    "expiration", "lifetime", "age", "size", "bytes", "rotation", "interval", "seconds", "minutes",
    "hours", "days", "enabled", "required", "policy", "strength", "rounds", "iterations",
})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


@functools.lru_cache(maxsize=8192)
def key_words(key: str) -> tuple[str, ...]:
    """The normalised words of a key name: ``"DB Passwords"`` → ``("db", "password")``."""
    text = unicodedata.normalize("NFKC", key)
    text = _CAMEL.sub("_", text).casefold()
    return tuple(_singular(w) for w in _NOT_WORD.split(text) if w)


@functools.lru_cache(maxsize=8192)
def _key_class(key: str) -> str | None:
    words = key_words(key)
    if not words:
        return None
    if _QUANTITY_WORDS.intersection(words):
        return "quantity"
    if words[-1] in _SECRET_LAST_WORDS or "".join(words).endswith(_SECRET_ENDINGS):
        return "secret"
    return None


def is_secret_key(key: str) -> bool:
    """True when a value under ``key`` must be a reference, not a literal."""
    return _key_class(key) == "secret"


def _is_basic_credential(token: str) -> bool:
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def _is_reference(text: str) -> bool:
    match = _ENV_REF.fullmatch(text)
    return match is not None and not match["default"]


def scan_text(text: str) -> str | None:
    """The rule id of the first credential-looking part of ``text``, or None."""
    # Documents are written again and again with mostly the same keys and values: remember the
    # verdict on short strings (a pure function of the text).
    return _scan_short(text) if len(text) <= 256 else _scan(text)


@functools.lru_cache(maxsize=16384)
def _scan_short(text: str) -> str | None:
    return _scan(text)


def _scan(text: str) -> str | None:
    if "${" in text:
        text = _ENV_OPEN.sub(" ", text)  # a default is scanned as a value of its own
    for match in _SCAN.finditer(text):
        rule = match.lastgroup
        if rule == "url_credentials":
            if _is_reference(match["pw"]):
                continue  # scheme://user:${PASSWORD}@host: the recommended form
        elif rule == "authorization_basic":
            if not _is_basic_credential(match["basic"]):
                continue
        elif rule == "authorization_bearer":
            token = match["bearer"]
            if not (any(c.isdigit() for c in token) and any(c.isalpha() for c in token)):
                continue  # "Bearer authentication is required": prose, not a token
        return f"secret.{rule}"
    return None


def _literal_rule(value: str) -> str | None:
    """Under a secret key: the rule a string breaks, or None when it is a bare reference."""
    if not value:
        return None
    match = _ENV_REF.fullmatch(value)
    if match is None:
        return "secret.key_name"
    if match["default"] and match["op"] in ("-", ":-", "=", ":="):
        return "secret.env_default"
    return None


def find_secret(value: Any, path: str = "", under_secret: bool = False) -> tuple[str, str] | None:
    """``(rule, path)`` of the first credential-looking part of a JSON value, or None."""
    found = _find(value, under_secret)
    if found is None:
        return None
    rule, reversed_path = found
    return rule, join_path([path, *reversed_path[::-1]] if path else reversed_path[::-1])


def _find(value: Any, under_secret: bool) -> tuple[str, list[str | int]] | None:
    """The rule and the *reversed* key path of the first hit: each level adds its key on the way
    back up, so a clean document (the usual case) never builds a path."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            rule = scan_text(key)
            if rule:
                return rule, ["<this key>"]  # the key itself is the secret: not shown
            kind = _key_class(key)
            found = _find(child, (under_secret or kind == "secret") and kind != "quantity")
            if found:
                found[1].append(key)
                return found
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found = _find(child, under_secret)
            if found:
                found[1].append(index)
                return found
    elif isinstance(value, str):
        rule = scan_text(value)
        if rule is None and under_secret:
            rule = _literal_rule(value)
        if rule:
            return rule, []
    elif under_secret and isinstance(value, int | float) and not isinstance(value, bool):
        return "secret.key_name", []
    return None


def check_text(text: str, what: str) -> None:
    """Refuse a free text (a change reason, an actor) that carries a credential."""
    rule = scan_text(text) if text else None
    if rule:
        raise InvalidConfig(
            rule, f"{what} looks like it contains a credential; it would be kept forever", path=what
        )
