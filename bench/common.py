"""Shared benchmark plumbing: private servers, percentiles, the report line, JSON results."""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ops.embedded import REPO_ROOT, NatsServer, PostgresServer

RESULTS = REPO_ROOT / "bench" / "results"


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {"p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3),
            "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"), "n": len(ms)}


def line(name: str, value: float, unit: str, baseline_name: str, baseline: float, target: str = "") -> str:
    ratio = value / baseline if baseline else float("nan")
    text = f"{name:<38} {value:>12,.1f} {unit:<8} | {baseline_name:<34} {baseline:>12,.1f} | ratio {ratio:6.2f}"
    return text + (f"  (target {target})" if target else "")


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


@contextmanager
def private_nats() -> Iterator[NatsServer]:
    """A nats-server with the shipped config (sync_interval: always) in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="bench-nats-") as d:
        server = NatsServer(Path(d) / "store").start()
        try:
            yield server
        finally:
            server.kill()


@contextmanager
def private_pg() -> Iterator[PostgresServer]:
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as d:
        Path(d).chmod(0o755)
        server = PostgresServer(Path(d) / "pg").start()
        try:
            yield server
        finally:
            server.stop("immediate")
