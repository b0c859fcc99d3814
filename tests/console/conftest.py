"""Browser tests of the web console: a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium, against the API serving on a real loopback port.

- ``console_stack`` (session): NATS, a fresh database and the projector (as ``tests/api``).
- ``console_api`` / ``console_api_auth`` (session): the API with ``API_AUTH=off`` / on, each
  served from a thread with its own event loop (the browser and the test's blocking calls then
  never wait on the test's loop).
- ``browser`` (session): one headless Chromium with a fresh profile; ``console`` (per test): the
  page helper, which fails the test on any browser console error it was not told to expect and
  saves screenshots to ``CONSOLE_SCREENSHOTS`` (default: a temporary folder, printed).

Without chromium/chromedriver the tests skip with the install command (``make test`` installs
them as root); with ``CI`` set they fail instead, so CI cannot silently skip them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from api import ApiSettings, create_app
from ledger import LedgerSettings
from ops.embedded import NatsServer
from tests.api.helpers import TOKENS_YAML, Stack, bring_up, create_database

from .page import Console, http

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver (as root; `make test` does it when apt is usable)"


class ServedApi:
    """``create_app(settings)`` on 127.0.0.1:<free port>, in a thread with its own event loop."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="console-api", daemon=True)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runner = web.AppRunner(create_app(self.settings), access_log=None, shutdown_timeout=2.0)
        try:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.url = f"http://{host}:{port}"
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._started.set()
            await runner.cleanup()
            return
        self._started.set()
        await self._stop.wait()
        await runner.cleanup()

    def start(self) -> ServedApi:
        self._thread.start()
        if not self._started.wait(30):
            raise AssertionError("the API did not start within 30 s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        self._loop.close()


@pytest.fixture(scope="session")
def console_stack(work_dir: Path, pg_cluster: str) -> Iterator[Stack]:
    server = NatsServer(work_dir / f"nats-console-{uuid.uuid4().hex[:6]}").start()
    db = asyncio.run(create_database(pg_cluster))
    s = Stack(LedgerSettings(nats_url=server.url), db, work_dir)
    try:
        asyncio.run(bring_up(s))
        yield s
    finally:
        s.stop_projector()
        server.kill()


def _served(stack: Stack, **overrides: Any) -> Iterator[ServedApi]:
    api = ServedApi(stack.api_settings(poll_interval_ms=100, **overrides)).start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="session")
def console_api(console_stack: Stack) -> Iterator[ServedApi]:
    yield from _served(console_stack, auth=False, tokens=None)


@pytest.fixture(scope="session")
def console_api_auth(console_stack: Stack) -> Iterator[ServedApi]:
    yield from _served(console_stack, auth=True, tokens=TOKENS_YAML)


def _missing_browser() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not found: {INSTALL}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[dev]'"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    missing = _missing_browser()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the console's browser tests must run in CI: {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tempfile.mkdtemp(prefix="console-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {folder}")
    return folder


@pytest.fixture
def console(browser: Any, console_api: ServedApi, screenshots: Path) -> Iterator[Console]:
    page = Console(browser, console_api.url, screenshots)
    page.reset()
    yield page
    page.check_log()


NAMES = ("billing", "checkout", "search", "payments", "inventory", "mailer", "pricing", "ingest")


@pytest.fixture
def svc(request: pytest.FixtureRequest) -> str:
    """A service name no other test uses (readable in the screenshots)."""
    return f"{NAMES[hash(request.node.name) % len(NAMES)]}-{uuid.uuid4().hex[:6]}"


__all__ = ["ServedApi", "http"]
