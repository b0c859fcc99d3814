"""``config-ledger up``'s settings: one frozen model, read through the project's layered
settings (``ledger.settings.SettingsModel``), with the same names as the processes it starts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from api.settings import API_AUTH, API_TOKENS, API_TOKENS_FILE
from ledger.settings import API_HOST, API_PORT, DATABASE_URL, NATS_URL, Setting, SettingsModel

__all__ = ["StackSettings"]

_DATA_DIR = Setting("stack.data_dir", "LEDGER_DATA_DIR", ".ledger-data", "where `up` keeps its data")
_NATS_PORT = Setting("stack.nats_port", "LEDGER_NATS_PORT", None, "embedded NATS port (default: a free one)")
_PG_PORT = Setting("stack.pg_port", "LEDGER_PG_PORT", None, "embedded PostgreSQL port (default: a free one)")


class StackSettings(SettingsModel):
    """Where ``up`` keeps its data and which servers and ports it uses.

    ``NATS_URL`` / ``DATABASE_URL`` name servers to use instead of starting embedded ones; so
    they count only when set (the built-in NATS default means "start one"). ``API_AUTH`` too:
    the embedded dev stack runs without authentication (a banner says so) unless it is set.
    """

    SERVICE: ClassVar[str] = "stack"

    data_dir: Path = Path(_DATA_DIR.default)
    nats_url: str | None = None
    database_url: str | None = None
    api_host: str = API_HOST.default
    api_port: int = Field(default=API_PORT.default, ge=1, le=65535)
    nats_port: int | None = Field(default=None, ge=1, le=65535)
    pg_port: int | None = Field(default=None, ge=1, le=65535)
    auth: bool = False
    tokens_file: Path | None = None
    tokens: str | None = None

    FIELDS: ClassVar[Mapping[str, Setting]] = {
        "data_dir": _DATA_DIR,
        "nats_url": NATS_URL,
        "database_url": DATABASE_URL,
        "api_host": API_HOST,
        "api_port": API_PORT,
        "nats_port": _NATS_PORT,
        "pg_port": _PG_PORT,
        "auth": API_AUTH,
        "tokens_file": API_TOKENS_FILE,
        "tokens": API_TOKENS,
    }
    UNLESS_DEFAULT: ClassVar[frozenset[str]] = frozenset({"nats_url", "auth"})

    @property
    def external_tokens(self) -> bool:
        """API_TOKENS_FILE / API_TOKENS given: use them, generate none."""
        return bool(self.tokens_file or (self.tokens and self.tokens.strip()))

    @property
    def probe_host(self) -> str:
        """Where to reach the API from this machine (a wildcard address is reached on loopback)."""
        return "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host

    @property
    def api_url(self) -> str:
        host = f"[{self.probe_host}]" if ":" in self.probe_host else self.probe_host
        return f"http://{host}:{self.api_port}"
