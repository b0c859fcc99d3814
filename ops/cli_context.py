"""What every CLI command receives: the resolved options and the output, built once in ``main``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from ledger import defaults

from .cli_http import AdminApi
from .cli_render import Output

__all__ = ["CliContext", "DEFAULT_API_URL", "DEFAULT_NATS_URL"]

DEFAULT_API_URL: str = defaults.HUB_URL
DEFAULT_NATS_URL: str = defaults.NATS_URL


@dataclass(frozen=True)
class CliContext:
    """One invocation: the environment it was given (never ``os.environ`` itself), the streams,
    and the options every command shares, with flags already preferred over variables, and
    variables over the endpoints of a running ``config-ledger up`` (``cli_endpoints``)."""

    environ: Mapping[str, str]
    out: Output
    stdin: IO[bytes]
    api_url: str
    token: str | None
    nats_url: str
    nats_source: str = "default"  # where nats_url came from: --nats-url, NATS_URL, <file>, default

    def api(self, *, timeout: float = 30.0) -> AdminApi:
        return AdminApi(self.api_url, token=self.token, timeout=timeout)
