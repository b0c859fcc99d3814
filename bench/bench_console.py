"""Web console benchmark: time to first render of the services page in headless Chromium.

Private nats-server and PostgreSQL, the projector and the API (``API_AUTH=off``) as subprocesses.
The console marks ``services-rendered`` (``performance.mark``) once the first list is in the DOM;
its ``startTime`` is milliseconds since the navigation started (HTML, modules, the list request,
the table). Each figure is beside a baseline measured in the same run, in the same browser: the
same page while the ledger holds 1 service (the console's fixed cost), then with 500 services.
Also reported: the bytes the console ships (its files, and what the browser transferred).

Run: ``python -m bench.bench_console`` (or ``python -m bench console``); needs Debian's
``chromium`` and ``chromium-driver`` and selenium (the dev extra). Results: bench/results/console.json.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

from api.console_files import CONSOLE_DIR
from ledger import Ledger, LedgerSettings, Replace
from ledger.streams import apply_streams, load_streams_file
from ops.embedded import REPO_ROOT, free_port
from projector import migrate

from .bench_api import spawn, wait_caught_up, wait_http
from .common import line, private_nats, private_pg, write_results

SERVICES = 500
ROUNDS = 8  # measured page loads per case (after 2 warm-up loads)
DOC = {"operational": {"batch_size": 200, "gap_check_interval_hours": 1}, "features": {"verify": True}}

_PROBE = """
const m = performance.getEntriesByName('services-rendered')[0];
const res = performance.getEntriesByType('resource');
const nav = performance.getEntriesByType('navigation')[0];
const list = res.filter((r) => r.name.endsWith('/api/v1/config')).pop();
return {rendered: m ? m.startTime : null,
        list_ms: list ? list.duration : null,
        table_ms: m && list ? m.startTime - list.responseEnd : null,
        list_bytes: list ? list.encodedBodySize : null,
        console_bytes: res.filter((r) => r.name.includes('/console/'))
          .reduce((n, r) => n + r.transferSize, 0) + nav.transferSize,
        rows: document.querySelectorAll('#services tbody tr[data-service]').length};
"""


def chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    driver.profile_dir = profile
    return driver


def measure(driver: Any, url: str, expected: int) -> dict[str, Any]:
    from selenium.webdriver.support.ui import WebDriverWait

    samples: list[dict[str, Any]] = []
    for i in range(ROUNDS + 2):
        driver.get("about:blank")
        driver.get(f"{url}/#/")
        WebDriverWait(driver, 30, poll_frequency=0.01).until(
            lambda d: d.execute_script("return document.getElementById('main').dataset.ready === 'true'"))
        got = driver.execute_script(_PROBE)
        if got["rows"] < expected:
            raise RuntimeError(f"the page shows {got['rows']} services, expected {expected}")
        if i >= 2:
            samples.append(got)
    rendered = sorted(s["rendered"] for s in samples)
    return {
        "first_render_p50_ms": round(statistics.median(rendered), 1),
        "first_render_max_ms": round(rendered[-1], 1),
        "list_request_p50_ms": round(statistics.median(s["list_ms"] for s in samples), 1),
        "table_build_p50_ms": round(statistics.median(s["table_ms"] for s in samples), 1),
        "list_response_bytes": samples[-1]["list_bytes"],
        "rows": samples[-1]["rows"],
        "rounds": len(samples),
    }


def shipped_bytes() -> dict[str, int]:
    files = [p for p in CONSOLE_DIR.iterdir() if p.is_file()]
    raw = sum(p.stat().st_size for p in files)
    zipped = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    return {"files": len(files), "bytes": raw, "gzip_bytes": zipped}


async def _seed(settings: LedgerSettings, names: list[str]) -> None:
    async with Ledger.connect(settings=settings) as led:
        for start in range(0, len(names), 50):
            await asyncio.gather(*(led.append(n, Replace(DOC), actor="bench", reason=f"seed {n}")
                                   for n in names[start:start + 50]))


async def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp, private_nats() as nats_srv, private_pg() as pg:
        work = Path(tmp)
        settings = LedgerSettings(nats_url=nats_srv.url)
        async with Ledger.connect(settings=settings) as led:
            await apply_streams(led.js, load_streams_file(REPO_ROOT / "streams.yaml"))
        conn = await asyncpg.connect(pg.url())
        try:
            await migrate(conn)
        finally:
            await conn.close()
        names = [f"service-{i:04d}" for i in range(SERVICES)]
        await _seed(settings, names[:1])
        port = free_port()
        env = {**os.environ, "NATS_URL": settings.nats_url, "DATABASE_URL": pg.url(), "API_PORT": str(port),
               "API_AUTH": "off", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO_ROOT)}
        url = f"http://127.0.0.1:{port}"
        with (
            spawn([sys.executable, "-m", "projector", "run"], env, work / "projector.log"),
            spawn([sys.executable, "-m", "api"], env, work / "api.log") as api_proc,
        ):
            await wait_http(f"{url}/healthz", api_proc, work / "api.log")
            await wait_caught_up(url)
            driver = chromium()
            try:
                one = measure(driver, url, 1)
                await _seed(settings, names[1:])
                await wait_caught_up(url)
                full = measure(driver, url, SERVICES)
                transferred = driver.execute_script(_PROBE)["console_bytes"]
            finally:
                driver.quit()
                shutil.rmtree(driver.profile_dir, ignore_errors=True)
    size = shipped_bytes()
    print(line(f"services page, {SERVICES} services: first render", full["first_render_p50_ms"], "ms p50",
               "same page, 1 service", one["first_render_p50_ms"]))
    print(line(f"  the list request ({full['list_response_bytes']:,} B)", full["list_request_p50_ms"], "ms p50",
               f"1 service ({one['list_response_bytes']:,} B)", one["list_request_p50_ms"]))
    print(line("  building the table (list → DOM)", full["table_build_p50_ms"], "ms p50",
               "1 service", one["table_build_p50_ms"]))
    print(f"   console shipped: {size['files']} files, {size['bytes']:,} bytes ({size['gzip_bytes']:,} gzipped); "
          f"the last page load transferred {transferred:,} bytes of it (304s after the first load)")
    results = {"services": SERVICES, "with_500": full, "baseline_1_service": one, "shipped": size}
    write_results("console", results)
    return results


if __name__ == "__main__":
    asyncio.run(main())
