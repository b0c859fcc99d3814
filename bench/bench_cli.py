"""CLI start-up: ``config-ledger --help`` and ``config-ledger get`` (median of 10 runs each).

Beside the same-run baseline ``python -c pass`` (the interpreter alone). The ``get`` runs
talk to a local stub HTTP server (stdlib, in a thread) that answers one fixed document, so the
figure is the CLI's own cost, not the API's. ``CLI_BENCH_TREE=/path/to/old/checkout`` measures
another tree (e.g. ``git archive <commit> | tar -x -C /tmp/old``) with the same interpreter,
for a before/after; ``python -X importtime -m ops.cli --help`` shows where the time goes.
"""

from __future__ import annotations

import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import REPO_ROOT, line, write_results

RUNS = 10
DOCUMENT = json.dumps({"service": "billing", "version": 3, "config": {"db": {"pool": 10}}}).encode()


class _Stub(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(DOCUMENT)))
        self.end_headers()
        self.wfile.write(DOCUMENT)

    def log_message(self, *args: object) -> None:
        pass


def _median_s(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) medians in seconds. CPU time (user + system of the child) is what start-up
    costs the machine; on a shared, loaded machine the wall time mostly measures the queue."""
    walls, cpus = [], []
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


async def main() -> None:
    tree = Path(os.environ.get("CLI_BENCH_TREE") or REPO_ROOT)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    env = {**os.environ, "PYTHONPATH": str(tree), "CONFIG_LEDGER_URL": url, "NO_COLOR": "1"}
    env.pop("CONFIG_LEDGER_ENDPOINTS", None)
    cli = [sys.executable, "-m", "ops.cli"]
    for package in ("ops", "ledger", "client", "api", "projector", "infra_config"):
        if (tree / package).is_dir():  # bytecode for both trees alike (PYTHONDONTWRITEBYTECODE may be set)
            compileall.compile_dir(tree / package, quiet=1)
    try:
        bare, bare_cpu = _median_s([sys.executable, "-c", "pass"], env, tree)
        results = {"tree": str(tree), "runs": RUNS, "python_bare_ms": round(bare * 1000, 1),
                   "python_bare_cpu_ms": round(bare_cpu * 1000, 1)}
        for name, argv in (("help", [*cli, "--help"]), ("get", [*cli, "get", "billing"])):
            wall, cpu = _median_s(argv, env, tree)
            results[f"{name}_ms"], results[f"{name}_cpu_ms"] = round(wall * 1000, 1), round(cpu * 1000, 1)
            print(line(f"cli {name} wall (median of {RUNS})", wall * 1000, "ms", "python -c pass", bare * 1000,
                       target="<= 150 ms"))
            print(line(f"cli {name} CPU (median of {RUNS})", cpu * 1000, "ms", "python -c pass", bare_cpu * 1000,
                       target="<= 150 ms"))
    finally:
        server.shutdown()
    write_results("cli", results)
