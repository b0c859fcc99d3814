"""Apply acknowledgements: tell the fleet which version this instance runs.

``AckReporter`` keeps the latest acknowledgement (``applied`` or ``rejected``) and sends it at
once, then again every ``heartbeat_s`` seconds, so an instance that stops sending leaves the
convergence view after its TTL. With NATS it publishes on ``config.acks.<service>.<instance>``
(a bounded stream: the latest message per instance); without NATS it POSTs to the API
(``/api/v1/config/{service}/instances/{instance}``). A failed send is retried at the next beat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote

import orjson

from ledger.acks import Ack, safe_instance_id, validate_instance_id
from ledger.errors import LedgerError, UsageError

from .hub_http import HubHttp

__all__ = ["AckReporter", "default_instance_id", "http_publisher"]

log = logging.getLogger("client.acks")

Publish = Callable[[Ack], Awaitable[None]]


def default_instance_id() -> str:
    return safe_instance_id(f"{socket.gethostname()}-{os.getpid()}")


class AckReporter:
    def __init__(self, service: str, instance: str | None, labels: Mapping[str, str] | None, heartbeat_s: float) -> None:
        if heartbeat_s <= 0:
            raise UsageError(f"heartbeat_s must be > 0, not {heartbeat_s}")
        self.service = service
        self.instance = validate_instance_id(instance) if instance is not None else default_instance_id()
        self.labels = {str(k): str(v) for k, v in (labels or {}).items()}
        self.heartbeat_s = heartbeat_s
        self.staged = False  # True once rollouts are followed (the stream is connected)
        self.last: Ack | None = None
        self.sent = 0
        self._wake = asyncio.Event()

    def report(self, version: int | None, rollout: str | None, status: Literal["applied", "rejected"],
               error: str | None = None) -> None:
        self.last = Ack(
            service=self.service, instance=self.instance, labels=self.labels, version=version, rollout=rollout,
            status=status, error=(error or None) and error[:2000], staged=self.staged, at=datetime.now(UTC),
        )
        self._wake.set()

    async def run(self, publish: Publish) -> None:
        """Send the latest acknowledgement now and on every beat (until cancelled)."""
        task = asyncio.current_task()
        while True:
            if task is not None and task.cancelling():
                # nats-py's request may swallow a cancellation (CPython gh-86296 in wait_for)
                raise asyncio.CancelledError
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.heartbeat_s):
                    await self._wake.wait()
            self._wake.clear()
            last = self.last
            if last is None:
                continue
            try:
                await publish(last.model_copy(update={"at": datetime.now(UTC), "staged": self.staged}))
                self.sent += 1
            except LedgerError as exc:
                log.debug("ack of %s/%s not sent: %s", self.service, self.instance, exc.message)


def http_publisher(base_url: str, token: str | None, timeout: float) -> Publish:
    """POST acknowledgements to the API (clients without NATS), through the hub's HTTP client."""

    async def publish(ack: Ack) -> None:
        path = f"/api/v1/config/{quote(ack.service, safe='')}/instances/{quote(ack.instance, safe='')}"
        body = orjson.loads(ack.model_dump_json(exclude={"service", "instance", "at"}))
        async with HubHttp(base_url, token=token, timeout=timeout, user_agent="config-ledger-client") as hub:
            await hub.request("POST", path, body=body)

    return publish
