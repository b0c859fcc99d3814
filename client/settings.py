"""Client settings: one frozen model built from an injected environment mapping.

``ConfigClient`` reads its defaults here at construction (never at import); explicit
constructor arguments win over the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.settings import LedgerSettings, settings_error

__all__ = ["ClientSettings", "DEFAULT_HUB_URL"]

DEFAULT_HUB_URL = "http://127.0.0.1:7000"


def _default_lkg_dir(environ: Mapping[str, str]) -> Path | None:
    """``$CONFIG_LEDGER_LKG_DIR``, else the user's cache directory, else no LKG file."""
    if environ.get("CONFIG_LEDGER_LKG_DIR"):
        return Path(environ["CONFIG_LEDGER_LKG_DIR"])
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]) / "config-ledger"
    if environ.get("HOME"):
        return Path(environ["HOME"]) / ".cache" / "config-ledger"
    return None


class ClientSettings(BaseModel):
    """Where a ``ConfigClient`` finds its sources."""

    model_config = ConfigDict(frozen=True)

    central_hub_url: str = DEFAULT_HUB_URL
    # None: the stream is not used (HTTP API, last-known-good file and safe defaults only).
    nats_url: str | None = None
    lkg_dir: Path | None = None
    token: str | None = None
    http_timeout: float = Field(2.0, gt=0)
    # How long init_async waits for the stream before trying the next source.
    stream_startup_timeout: float = Field(0.5, gt=0)
    ledger: LedgerSettings = LedgerSettings()

    ENV: ClassVar[dict[str, str]] = {
        "central_hub_url": "CENTRAL_HUB_URL",
        "nats_url": "NATS_URL",
        "lkg_dir": "CONFIG_LEDGER_LKG_DIR",
        "token": "CONFIG_LEDGER_TOKEN",
        "http_timeout": "CONFIG_LEDGER_HTTP_TIMEOUT",
        "stream_startup_timeout": "CONFIG_LEDGER_STREAM_STARTUP_TIMEOUT",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ClientSettings:
        """Settings from ``environ``; stream name and subject prefix as ``LedgerSettings`` reads them."""
        values: dict[str, object] = {
            field: environ[var] for field, var in cls.ENV.items() if environ.get(var)
        }
        values["lkg_dir"] = _default_lkg_dir(environ)
        values["ledger"] = LedgerSettings.from_env(environ)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise settings_error(exc, cls.ENV) from None
