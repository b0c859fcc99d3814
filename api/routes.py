"""The route table: method, path, handler, name and the access rule of every endpoint.

Order matters where paths overlap: ``/api/v1/config/history/{service}`` is registered before
``/api/v1/config/{service}/…``, so a service named ``history`` cannot use diff/watch/rollback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from . import config_handlers as cfg
from . import fleet_handlers as fleet
from . import ops_handlers as ops
from .auth import Action
from .sse import watch

__all__ = ["Route", "ROUTES", "route_defs"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    name: str
    action: Action
    # The contract of the route, from which the OpenAPI document is generated:
    summary: str = ""
    body: type[BaseModel] | None = None  # the JSON request body
    query: type[BaseModel] | None = None  # the query parameters
    responses: Mapping[int, type[BaseModel] | None] = field(default_factory=dict)  # status -> body


ROUTES: list[Route] = [
    Route("GET", "/healthz", ops.healthz, "healthz", Action.PUBLIC),
    Route("GET", "/readyz", ops.readyz, "readyz", Action.PUBLIC),
    Route("GET", "/metrics", ops.metrics, "metrics", Action.PUBLIC),
    Route("GET", "/api/v1/openapi.json", ops.openapi, "openapi", Action.PUBLIC),
    Route("GET", "/api/v1/config", cfg.list_configs, "config.list", Action.AUDIT),
    Route("GET", "/api/v1/snapshot", cfg.snapshot, "snapshot", Action.AUDIT),
    Route("GET", "/api/v1/config/history/{service}", cfg.history, "config.history", Action.AUDIT),
    Route("GET", "/api/v1/config/{service}", cfg.get_config, "config.get", Action.READ),
    Route("POST", "/api/v1/config/{service}", cfg.post_config, "config.post", Action.WRITE),
    Route("PATCH", "/api/v1/config/{service}", cfg.patch_config, "config.patch", Action.WRITE),
    Route("DELETE", "/api/v1/config/{service}", cfg.delete_config, "config.delete", Action.WRITE),
    Route("POST", "/api/v1/config/{service}/rollback", cfg.rollback_config, "config.rollback", Action.WRITE),
    Route("GET", "/api/v1/config/{service}/diff", cfg.diff_config, "config.diff", Action.AUDIT),
    Route("GET", "/api/v1/config/{service}/watch", watch, "config.watch", Action.WATCH),
    # the fleet (issue 16): convergence view, acknowledgements, staged rollouts, scheduled changes
    Route("GET", "/api/v1/config/{service}/instances", fleet.instances, "fleet.instances", Action.AUDIT,
          summary="Live instances with labels, applied version, status and last seen, plus a summary",
          query=fleet.InstancesQuery, responses={200: fleet.InstancesView}),
    Route("POST", "/api/v1/config/{service}/instances/{instance}", fleet.report_instance, "fleet.report",
          Action.READ, summary="An apply acknowledgement or heartbeat from a client without NATS",
          body=fleet.AckBody, responses={202: None}),
    Route("POST", "/api/v1/config/{service}/rollouts", fleet.start_rollout, "rollout.start", Action.WRITE,
          summary="Start (or schedule, with not_before) a staged rollout of a change",
          body=fleet.RolloutSpec, responses={201: fleet.RolloutView}),
    Route("GET", "/api/v1/config/{service}/rollouts/{rollout}", fleet.get_rollout, "rollout.get", Action.AUDIT,
          summary="A rollout's state, current stage and per-stage counts", responses={200: fleet.RolloutView}),
    Route("POST", "/api/v1/config/{service}/rollouts/{rollout}/{action:promote|pause|abort}", fleet.rollout_action,
          "rollout.action", Action.WRITE, summary="Promote the next stage, pause, or abort (back to the base)",
          responses={200: fleet.RolloutView}),
    Route("POST", "/api/v1/config/{service}/schedules", fleet.schedule_change, "schedule.create", Action.WRITE,
          summary="Store a write now, applied by the rollout controller at not_before",
          body=fleet.ScheduleBody, responses={201: fleet.ScheduleView}),
    Route("DELETE", "/api/v1/config/{service}/schedules/{schedule}", fleet.cancel_schedule, "schedule.cancel",
          Action.WRITE, summary="Cancel a pending scheduled change", responses={200: fleet.ScheduleView}),
]


def route_defs() -> list[web.RouteDef]:
    """aiohttp route definitions; GET routes also answer HEAD (except the endless watch)."""
    defs = []
    for r in ROUTES:
        if r.method == "GET":
            defs.append(web.get(r.path, r.handler, name=r.name, allow_head=r.handler is not watch))
        else:
            defs.append(web.route(r.method, r.path, r.handler, name=r.name))
    return defs
