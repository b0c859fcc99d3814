"""A local JetStream cluster: N ``nats-server`` processes on loopback, routed to each other.

For ``config-ledger up --cluster 3`` (try failover on one machine) and the cluster tests. Every
node runs the shipped ``nats-server.conf`` (``sync_interval: always``) with its own name
(``-n``), client port, monitor port, cluster port and store, and routes to every node. Each node
can be killed (SIGKILL), stopped, paused and restarted on its store like ``NatsServer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import Unavailable

from .embedded import SHIPPED_NATS_CONF, NatsServer, free_port

__all__ = ["CLUSTER_NAME", "ConsumerHost", "NatsCluster", "consumer_hosts", "stream_leader",
           "wait_stream_leader"]

CLUSTER_NAME = "config-ledger"


class NatsCluster:
    """``size`` nats-server nodes named ``<prefix>-1`` … in one JetStream cluster."""

    def __init__(self, base_dir: str | Path, size: int = 3, *, prefix: str = "nats",
                 ports: list[int] | None = None, log_dir: str | Path | None = None,
                 config: str | Path | None = SHIPPED_NATS_CONF) -> None:
        if size < 3:
            raise ValueError("a JetStream cluster needs at least 3 nodes to survive the loss of one")
        self.base_dir = Path(base_dir)
        cluster_ports = [free_port() for _ in range(size)]
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in cluster_ports)
        self.nodes: list[NatsServer] = []
        for i in range(size):
            name = f"{prefix}-{i + 1}"
            args = ["--cluster_name", CLUSTER_NAME, "--cluster", f"nats://127.0.0.1:{cluster_ports[i]}",
                    "--routes", routes]
            log = Path(log_dir) / f"{name}.log" if log_dir else self.base_dir / f"{name}.log"
            self.nodes.append(NatsServer(self.base_dir / name, port=ports[i] if ports else None,
                                         config=config, log_file=log, name=name, cluster_args=args))

    @property
    def url(self) -> str:
        """Every node, comma-separated (what ``NATS_URL`` and ``Ledger.connect`` take)."""
        return ",".join(n.url for n in self.nodes)

    def node(self, name: str) -> NatsServer:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def start(self, timeout: float = 30.0) -> NatsCluster:
        """Start every node (each waits for its client port), then for a JetStream meta leader."""
        for n in self.nodes:
            if not n.running():
                n.start(timeout)
        self.wait_meta_leader(timeout)
        return self

    def kill(self) -> None:
        for n in self.nodes:
            n.resume()
            n.kill()

    def stop(self) -> None:
        for n in self.nodes:
            n.resume()
            n.stop()

    def running(self) -> list[NatsServer]:
        return [n for n in self.nodes if n.running()]

    # --- what the cluster says about itself (monitoring endpoints of the live nodes) ----------

    def _monitor(self, node: NatsServer, path: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{node.monitor_port}{path}"
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback monitor
            data: dict[str, Any] = json.loads(resp.read())
            return data

    def stream_states(self, stream: str) -> dict[str, dict[str, Any] | None]:
        """Each live node's own copy of ``stream``: its state (messages, first/last seq, …)."""
        out: dict[str, dict[str, Any] | None] = {}
        for n in self.running():
            out[n.name] = None
            with contextlib.suppress(OSError, ValueError):
                data = self._monitor(n, "/jsz?accounts=true&streams=true")
                for account in data.get("account_details") or []:
                    for s in account.get("stream_detail") or []:
                        if s.get("name") == stream:
                            out[n.name] = s.get("state")
        return out

    def meta_leader(self) -> str | None:
        for n in self.running():
            with contextlib.suppress(OSError, ValueError):
                leader = (self._monitor(n, "/jsz").get("meta_cluster") or {}).get("leader")
                if leader:
                    return str(leader)
        return None

    def wait_meta_leader(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.meta_leader()
            if leader and any(n.name == leader for n in self.running()):
                return leader
            time.sleep(0.1)
        raise Unavailable(f"the NATS cluster elected no JetStream meta leader in {timeout:g} s")


async def stream_leader(nc: Any, stream: str, timeout: float = 2.0) -> str | None:
    """The name of the node leading ``stream`` now (None while electing)."""
    with contextlib.suppress(Exception):
        info = await nc.jetstream(timeout=timeout).stream_info(stream)
        return info.cluster.leader if info.cluster else None
    return None


@dataclass(frozen=True)
class ConsumerHost:
    """Where a consumer of the stream lives, and what it reads."""

    name: str
    node: str
    filter_subject: str
    push: bool  # a push consumer (a watcher); else pull (the projector)
    bound: bool  # push: someone listens on its deliver subject now


async def consumer_hosts(nc: Any, stream: str, timeout: float = 2.0) -> list[ConsumerHost]:
    """Every consumer of ``stream`` with the node holding it (its leader)."""
    out: list[ConsumerHost] = []
    with contextlib.suppress(Exception):
        for info in await nc.jetstream(timeout=timeout).consumers_info(stream):
            if info.cluster and info.cluster.leader:
                push = bool(info.config.deliver_subject)
                out.append(ConsumerHost(info.name, info.cluster.leader, info.config.filter_subject or "",
                                        push, bool(info.push_bound)))
    return out


async def wait_stream_leader(nc: Any, stream: str, *, exclude: str | None = None,
                             timeout: float = 30.0) -> tuple[str, float]:
    """Wait until ``stream`` has a leader other than ``exclude``; (leader, monotonic time seen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = await stream_leader(nc, stream, timeout=1.0)
        if leader and leader != exclude:
            return leader, time.monotonic()
        await asyncio.sleep(0.05)
    raise Unavailable(f"stream {stream} has no leader after {timeout:g} s")
