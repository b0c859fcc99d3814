"""Client settings: one frozen model, read through the project's layered settings
(``ledger.settings.SettingsModel``) when a ``ConfigClient`` is constructed (never at import).

Explicit constructor arguments are the top layer (``explicit_layer``), so they win over the
environment and ``explain`` shows them as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from ledger.settings import HUB_TOKEN, HUB_URL, NATS_URL, LedgerSettings, Setting, SettingsModel

__all__ = ["ClientSettings", "DEFAULT_HUB_URL", "default_lkg_dir"]

DEFAULT_HUB_URL: str = HUB_URL.default

_LKG_DIR = Setting("client.lkg_dir", "CONFIG_LEDGER_LKG_DIR", None, "last-known-good files (default: user cache)")
_HTTP_TIMEOUT = Setting("client.http_timeout", "CONFIG_LEDGER_HTTP_TIMEOUT", 2.0, "seconds per HTTP request")
_STREAM_STARTUP_TIMEOUT = Setting(
    "client.stream_startup_timeout", "CONFIG_LEDGER_STREAM_STARTUP_TIMEOUT", 0.5,
    "how long init_async waits for the stream before the next source",
)


def default_lkg_dir(environ: Mapping[str, str]) -> Path | None:
    """The user's cache directory (``$XDG_CACHE_HOME``, else ``~/.cache``)/config-ledger, or None."""
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]) / "config-ledger"
    if environ.get("HOME"):
        return Path(environ["HOME"]) / ".cache" / "config-ledger"
    return None


class ClientSettings(SettingsModel):
    """Where a ``ConfigClient`` finds its sources."""

    SERVICE: ClassVar[str] = "client"

    central_hub_url: str = DEFAULT_HUB_URL
    # None: the stream is not used (HTTP API, last-known-good file and safe defaults only).
    nats_url: str | None = None
    lkg_dir: Path | None = None
    token: str | None = None
    http_timeout: float = Field(default=_HTTP_TIMEOUT.default, gt=0)
    stream_startup_timeout: float = Field(default=_STREAM_STARTUP_TIMEOUT.default, gt=0)
    ledger: LedgerSettings = LedgerSettings()

    FIELDS: ClassVar[Mapping[str, Setting]] = {
        "central_hub_url": HUB_URL,
        "nats_url": NATS_URL,
        "lkg_dir": _LKG_DIR,
        "token": HUB_TOKEN,
        "http_timeout": _HTTP_TIMEOUT,
        "stream_startup_timeout": _STREAM_STARTUP_TIMEOUT,
    }
    NESTED: ClassVar[Mapping[str, type[SettingsModel]]] = {"ledger": LedgerSettings}
    # A client uses the stream only when told where it is (not the built-in NATS default).
    UNLESS_DEFAULT: ClassVar[frozenset[str]] = frozenset({"nats_url"})

    def with_lkg_default(self, environ: Mapping[str, str]) -> Any:
        """These settings with ``lkg_dir`` defaulted to the user's cache directory when unset."""
        if self.lkg_dir is not None:
            return self
        return self.model_copy(update={"lkg_dir": default_lkg_dir(environ)})
