"""Bearer-token authentication and role-based authorisation.

Tokens come from ``API_TOKENS_FILE`` and/or ``API_TOKENS`` (same content: a YAML or JSON list of
``{token: ..., identity: ..., role: ...}`` or ``{token_sha256: <hex>, ...}``, optionally under a
top-level ``tokens:`` key). Only SHA-256 digests are kept in memory; a presented token is hashed
and compared against every digest with ``hmac.compare_digest`` (constant time, no early exit).

Roles: ``admin`` (everything), ``auditor`` (read every config, list, history, diff, snapshot,
watch), ``service:<name>`` (read and watch its own config only).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ledger.errors import UsageError
from ledger.validate import SERVICE_NAME_RE

from .errors import Forbidden, Unauthorized

__all__ = ["Action", "Principal", "TokenStore", "DEV_PRINCIPAL", "load_tokens", "authorize"]

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class Action(Enum):
    """What a route does, for authorisation. PUBLIC routes need no token."""

    PUBLIC = "public"
    READ = "read"  # one service's config (service-scoped)
    WATCH = "watch"  # one service's change stream (service-scoped)
    AUDIT = "audit"  # list, history, diff, snapshot
    WRITE = "write"  # POST, PATCH, DELETE, rollback


@dataclass(frozen=True)
class Principal:
    identity: str
    role: str

    @property
    def service(self) -> str | None:
        return self.role[len("service:") :] if self.role.startswith("service:") else None

    def may(self, action: Action, service: str | None) -> bool:
        if action is Action.PUBLIC or self.role == "admin":
            return True
        if self.role == "auditor":
            return action in (Action.READ, Action.WATCH, Action.AUDIT)
        own = self.service
        return own is not None and action in (Action.READ, Action.WATCH) and service == own


DEV_PRINCIPAL = Principal(identity="dev", role="admin")


class _TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str | None = Field(None, min_length=16)
    token_sha256: str | None = None
    identity: str = Field(min_length=1, max_length=200)
    role: str

    @model_validator(mode="after")
    def _check(self) -> _TokenEntry:
        if (self.token is None) == (self.token_sha256 is None):
            raise ValueError("give exactly one of token or token_sha256")
        if self.token_sha256 is not None and not _SHA256_HEX.match(self.token_sha256.lower()):
            raise ValueError("token_sha256 must be 64 hex digits")
        if self.role not in ("admin", "auditor"):
            name = self.role[len("service:") :] if self.role.startswith("service:") else None
            if name is None or not SERVICE_NAME_RE.match(name):
                raise ValueError(f"role {self.role!r} must be admin, auditor or service:<name>")
        return self

    def digest(self) -> bytes:
        if self.token is not None:
            return hashlib.sha256(self.token.encode()).digest()
        assert self.token_sha256 is not None
        return bytes.fromhex(self.token_sha256.lower())


def _parse_entries(text: str, origin: str) -> list[_TokenEntry]:
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UsageError(f"{origin}: not valid YAML/JSON") from None  # never echo token text
    if isinstance(raw, dict) and "tokens" in raw:
        raw = raw["tokens"]
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise UsageError(f"{origin}: expected a list of {{token|token_sha256, identity, role}}")
    entries = []
    for index, item in enumerate(raw):
        try:
            entries.append(_TokenEntry.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UsageError(f"{origin}: entry {index}: {first['msg']}") from None
    return entries


class TokenStore:
    """SHA-256 digests of the configured tokens, each with its principal."""

    def __init__(self, entries: Iterable[tuple[bytes, Principal]]) -> None:
        self._entries = list(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, token: str) -> Principal | None:
        """The principal of ``token``, comparing against every digest in constant time."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found: Principal | None = None
        for stored, principal in self._entries:
            if hmac.compare_digest(stored, digest) and found is None:
                found = principal
        return found

    def authenticate(self, authorization: str | None) -> Principal:
        """Principal from an ``Authorization: Bearer <token>`` header, else Unauthorized (401)."""
        if not authorization:
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        principal = self.lookup(token)
        if principal is None:
            raise Unauthorized("invalid bearer token")
        return principal


def load_tokens(tokens_file: Path | None, tokens_text: str | None) -> TokenStore:
    """Read the tokens file and/or inline text; any problem raises UsageError naming its origin."""
    entries: list[_TokenEntry] = []
    if tokens_file is not None:
        try:
            text = tokens_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"API_TOKENS_FILE {tokens_file}: cannot read: {exc.strerror}") from None
        entries += _parse_entries(text, f"API_TOKENS_FILE {tokens_file}")
    if tokens_text and tokens_text.strip():
        entries += _parse_entries(tokens_text, "API_TOKENS")
    seen: set[bytes] = set()
    pairs = []
    for entry in entries:
        digest = entry.digest()
        if digest in seen:
            raise UsageError(f"token of {entry.identity!r} is configured twice")
        seen.add(digest)
        pairs.append((digest, Principal(entry.identity, entry.role)))
    return TokenStore(pairs)


def authorize(principal: Principal, action: Action, service: str | None) -> None:
    """Raise Forbidden (403) unless ``principal`` may do ``action`` on ``service``."""
    if not principal.may(action, service):
        what = f" on {service[:80]!r}" if service else ""
        raise Forbidden(f"role {principal.role!r} may not {action.value}{what}")
