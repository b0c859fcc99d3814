"""The defaults several processes share, written once and importable without pydantic (the CLI's
start-up reads them; ``ledger.settings`` builds its ``Setting`` table from them)."""

from __future__ import annotations

__all__ = ["API_HOST", "API_PORT", "HUB_URL", "NATS_URL"]

NATS_URL = "nats://127.0.0.1:4222"
API_HOST = "127.0.0.1"
API_PORT = 7000
HUB_URL = f"http://{API_HOST}:{API_PORT}"
