"""The console's static files: served at / and /console/<file>, nothing else, with a strict CSP."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch

from api.console_files import CONSOLE_DIR
from ops.embedded import REPO_ROOT


async def test_index_and_assets_are_served_with_their_types_and_policy(api) -> None:
    resp = await api.get("/")
    html = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    assert '<script type="module" src="/console/app.js">' in html
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    resp = await api.get("/console/app.js")
    assert resp.status == 200 and resp.content_type == "text/javascript"
    again = await api.get("/console/app.js", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304
    assert (await api.get("/console/style.css")).content_type == "text/css"


async def test_only_the_shipped_files_are_served(api) -> None:
    for path in ("/console/nope.js", "/console/..%2Fapp.py", "/console/%2e%2e%2fsettings.py", "/console/"):
        resp = await api.get(path)
        assert resp.status == 404, path
        assert (await resp.json())["error"]["code"] in ("not_found",), path


def test_every_module_the_console_imports_is_shipped() -> None:
    shipped = {p.name for p in CONSOLE_DIR.iterdir()}
    globs = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["api"]
    for name in shipped:
        assert any(fnmatch(f"console/{name}", g) for g in globs), f"{name} is not in the package data"
        if name.endswith(".js"):
            for imported in re.findall(r"from '\./([\w.-]+)'", (CONSOLE_DIR / name).read_text()):
                assert imported in shipped, f"{name} imports {imported}, which is not shipped"
