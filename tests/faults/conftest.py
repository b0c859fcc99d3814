"""Fixtures of the fault-injection suite.

- ``FAULTS_SCALE`` (environment, default 1; ``make test-faults-long`` sets 10) scales cycles,
  durations and writers of every scenario: the ``scale`` fixture, ``scaled(n)``.
- ``procs``: a ``ProcGroup`` that kills every process it started at teardown (their logs are
  printed when the test failed).
- ``stack``: private nats-server + a fresh database + (on demand) projector and API processes.
- ``fault_report``: per-scenario figures, printed at the end of the session and written as JSON
  to ``bench/results/faults.json`` (``faults-scale<N>.json`` when scaled) and
  ``<pytest basetemp>/faults.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.embedded import REPO_ROOT, NatsServer

from .history import CheckResult
from .procs import ProcGroup
from .stack import Stack

SCALE = max(1, int(os.environ.get("FAULTS_SCALE", "1") or "1"))
# CI-sized figures in faults.json; scaled runs (make test-faults-long) beside them.
RESULTS_PATH = REPO_ROOT / "bench" / "results" / ("faults.json" if SCALE == 1 else f"faults-scale{SCALE}.json")
_RESULTS = pytest.StashKey[dict[str, dict[str, Any]]]()
_REPORT = pytest.StashKey[pytest.TestReport]()


def scaled(n: float) -> int:
    return max(1, int(round(n * SCALE)))


@pytest.fixture(scope="session")
def scale() -> int:
    return SCALE


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.failed):
        item.stash[_REPORT] = report
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    report = request.node.stash.get(_REPORT, None)
    return report is not None and report.failed


@pytest.fixture
def procs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProcGroup]:
    group = ProcGroup(tmp_path / "logs")
    yield group
    group.kill_all()
    if _failed(request):
        print(f"\n===== process logs ({tmp_path / 'logs'}) =====\n{group.describe()}")


@pytest.fixture
async def stack(procs: ProcGroup, nats_server: NatsServer, database_url: str,
                tmp_path: Path) -> AsyncIterator[Stack]:
    """nats-server (provisioned) + fresh database; start the projector/API with the methods."""
    s = Stack(procs=procs, nats=nats_server, database_url=database_url, work_dir=tmp_path)
    await s.provision()
    yield s
    procs.kill_all()  # before the nats/database fixtures tear their servers down


class FaultReport:
    """Figures of one scenario; stored in the session's results when the test finishes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.data: dict[str, Any] = {"scale": SCALE}
        self.t0 = time.monotonic()

    def counts(self, result: CheckResult) -> None:
        t = result.totals()
        self.data.update({
            "attempted": t.get("attempted", 0),
            "acknowledged": t.get("acknowledged", 0),
            "lost": t.get("lost", 0),
            "unknown": t.get("unknown", 0),
            "unknown_landed": t.get("unknown_landed", 0),
            "failed": t.get("failed", 0),
            "duplicates": t.get("duplicates", 0),
            "attempts": t.get("attempts", 0),
            "reads": t.get("reads", 0),
            "observations": t.get("observations", 0),
        })

    def set(self, **values: Any) -> None:
        self.data.update(values)

    def max(self, key: str, value: float | None) -> None:
        if value is None:
            return
        self.data[key] = round(max(self.data.get(key, 0.0), value), 3)

    def line(self) -> str:
        d = self.data
        parts = [f"{k}={d[k]}" for k in ("attempted", "acknowledged", "lost", "unknown", "duplicates")
                 if k in d]
        for k in ("max_convergence_s", "max_write_recovery_s"):
            if k in d:
                parts.append(f"{k}={d[k]}")
        return f"{self.name}: " + " ".join(parts)


@pytest.fixture(scope="session")
def _faults_results(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    results = request.config.stash[_RESULTS]
    yield results
    if not results:
        return
    payload = {"scale": SCALE, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "totals": _totals(results), "scenarios": results}
    text = json.dumps(payload, indent=2, default=str)
    (tmp_path_factory.getbasetemp() / "faults.json").write_text(text)
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(text)


def _scenario_name(request: pytest.FixtureRequest) -> str:
    """``s07_poison[broken_chain]``: the module's scenario id, the test's parameters, and the
    test's name when the module holds several scenarios (``s10_pressure/request_flood``)."""
    module = request.node.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    tests = [n for n in dir(request.node.module) if n.startswith("test_")]
    name = module
    if len(tests) > 1:
        name += "/" + request.node.originalname.removeprefix("test_")
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None:
        name += f"[{callspec.id}]"
    return name


def _totals(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("attempted", "acknowledged", "lost", "unknown", "unknown_landed", "failed", "duplicates"):
        out[key] = sum(int(d.get(key, 0) or 0) for d in results.values())
    for key in ("max_convergence_s", "max_write_recovery_s"):
        out[key] = max((d[key] for d in results.values() if key in d), default=None)
    out["scenarios"] = len(results)
    out["passed"] = sum(1 for d in results.values() if d.get("passed") is True)
    out["duration_s"] = round(sum(d.get("duration_s", 0.0) for d in results.values()), 1)
    return out


@pytest.fixture
def fault_report(request: pytest.FixtureRequest,
                 _faults_results: dict[str, dict[str, Any]]) -> Iterator[FaultReport]:
    report = FaultReport(_scenario_name(request))
    name = report.name
    yield report
    report.data["duration_s"] = round(time.monotonic() - report.t0, 1)
    outcome = request.node.stash.get(_REPORT, None)
    if outcome is not None and hasattr(outcome, "wasxfail"):
        report.data["passed"] = "xfail"
    else:
        report.data["passed"] = outcome is not None and outcome.passed
    _faults_results[name] = report.data
    print(f"\n[faults] {report.line()}")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS, {})
    if not results:
        return
    tr = terminalreporter
    tr.section(f"fault-injection figures (FAULTS_SCALE={SCALE})")
    cols = ("attempted", "acknowledged", "lost", "unknown", "duplicates", "max_convergence_s",
            "max_write_recovery_s", "duration_s", "passed")
    heads = ("attempted", "acked", "lost", "unknown", "dups", "converge_s", "w_recover_s",
             "duration_s", "passed")
    tr.write_line(f"{'scenario':<52}" + "".join(f"{h:>12}" for h in heads))
    for name, d in results.items():
        tr.write_line(f"{name[:52]:<52}" + "".join(f"{str(d.get(c, '-')):>12}" for c in cols))
    tot = _totals(results)
    tr.write_line(f"{'TOTAL':<52}" + "".join(f"{str(tot.get(c, '-')):>12}" for c in cols))
    tr.write_line(f"written to {RESULTS_PATH}")

