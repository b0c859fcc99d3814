"""Config Ledger HTTP API (aiohttp): reads from the projection, writes to the ledger.

    from api import ApiSettings, create_app
    app = create_app(ApiSettings.from_env(os.environ))     # or: python -m api

Endpoints: see ``api.routes.ROUTES`` and ``GET /api/v1/openapi.json``.
"""

from .app import AUTH_OFF_BANNER, create_app
from .auth import Action, Principal, TokenStore, load_tokens
from .diff import apply_diff, diff
from .openapi import build_openapi
from .routes import ROUTES
from .settings import ApiSettings

__all__ = [
    "AUTH_OFF_BANNER",
    "Action",
    "ApiSettings",
    "Principal",
    "ROUTES",
    "TokenStore",
    "apply_diff",
    "build_openapi",
    "create_app",
    "diff",
    "load_tokens",
]
