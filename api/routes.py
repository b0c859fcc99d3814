"""The route table: method, path, handler, name and the access rule of every endpoint.

Order matters where paths overlap: ``/api/v1/config/history/{service}`` is registered before
``/api/v1/config/{service}/…``, so a service named ``history`` cannot use diff/watch/rollback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from . import blame_handlers as blame
from . import changeset_handlers as cs
from . import config_handlers as cfg
from . import contract as c
from . import fleet_handlers as fleet
from . import ops_handlers as ops
from . import safety_models as sm
from . import schema_handlers as sch
from .auth import Action
from .console_files import console_asset, console_index
from .errors import ErrorBody
from .sse import watch
from .verify import ChainVerification, verify_config

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


def _errors(*statuses: int) -> dict[int, type[BaseModel] | None]:
    return {status: ErrorBody for status in statuses}


_AUTH = (401, 403)
_WRITTEN: dict[int, type[BaseModel] | None] = {200: sm.WriteOrPlan}
_WRITE_ERRORS = (*_AUTH, 400, 404, 408, 409, 413, 415, 422, 503)

ROUTES: list[Route] = [
    Route("GET", "/healthz", ops.healthz, "healthz", Action.PUBLIC,
          summary="Liveness", responses={200: c.Health}),
    Route("GET", "/readyz", ops.readyz, "readyz", Action.PUBLIC,
          summary="Readiness: NATS connected, PostgreSQL reachable, projector running and caught up",
          responses={200: c.Readiness, 503: c.Readiness}),
    Route("GET", "/metrics", ops.metrics, "metrics", Action.PUBLIC,
          summary="Prometheus metrics", responses={200: c.MetricsText, **_errors(503)}),
    Route("GET", "/api/v1/openapi.json", ops.openapi, "openapi", Action.PUBLIC,
          summary="This document", responses={200: c.OpenApiDocument}),
    Route("GET", "/api/v1/config", cfg.list_configs, "config.list", Action.AUDIT,
          summary="Every service with its current version",
          responses={200: c.ServiceList, **_errors(*_AUTH, 503)}),
    Route("GET", "/api/v1/snapshot", cfg.snapshot, "snapshot", Action.AUDIT,
          summary="Every service's config as of one instant (fleet-wide time travel)",
          query=c.SnapshotParams, responses={200: c.Snapshot, **_errors(*_AUTH, 400, 503)}),
    Route("GET", "/api/v1/config/history/{service}", cfg.history, "config.history", Action.AUDIT,
          summary="Versions of one service, newest first, paginated",
          query=c.HistoryParams, responses={200: c.HistoryPage, **_errors(*_AUTH, 400, 404, 503)}),
    Route("GET", "/api/v1/config/{service}/history", cfg.history, "config.history_v2", Action.AUDIT,
          summary="A service's versions, newest first, each with its key diff (beside the reference "
          "path /api/v1/config/history/{service}); cursor pagination with a Link header",
          query=c.HistoryParams, responses={200: c.HistoryPage, **_errors(*_AUTH, 400, 404, 503)}),
    Route("GET", "/api/v1/config/{service}", cfg.get_config, "config.get", Action.READ,
          summary="Current config of a service, or as of a version or an instant",
          query=c.GetConfigParams,
          responses={200: c.CurrentConfig, 304: None, **_errors(*_AUTH, 400, 404, 503)}),
    Route("PUT", "/api/v1/config/{service}", cfg.put_config, "config.put", Action.WRITE,
          summary="Replace the whole document (as the reference POST); 201 + Location when it creates "
          "the service; a document equal to the current one answers 200 \"unchanged\" and appends nothing",
          body=c.ConfigDocument, query=sm.WriteQuery,
          responses={**_WRITTEN, 201: sm.WriteOrPlan, **_errors(*_WRITE_ERRORS)}),
    Route("POST", "/api/v1/config/{service}", cfg.post_config, "config.post", Action.WRITE,
          summary="Replace the whole config document (creates the service if new)",
          body=c.ConfigDocument, query=sm.WriteQuery, responses={**_WRITTEN, **_errors(*_WRITE_ERRORS)}),
    Route("PATCH", "/api/v1/config/{service}", cfg.patch_config, "config.patch", Action.WRITE,
          summary="RFC 7396 merge patch of the current document",
          body=c.MergePatch, query=sm.WriteQuery, responses={**_WRITTEN, **_errors(*_WRITE_ERRORS)}),
    Route("DELETE", "/api/v1/config/{service}", cfg.delete_config, "config.delete", Action.WRITE,
          summary="Tombstone the service (its history stays)",
          query=sm.WriteQuery, responses={**_WRITTEN, **_errors(*_WRITE_ERRORS)}),
    Route("POST", "/api/v1/config/{service}/rollback", cfg.rollback_config, "config.rollback", Action.WRITE,
          summary="Roll back to an earlier version or to the state at an instant (a new version)",
          body=c.RollbackRequest, query=sm.WriteQuery, responses={**_WRITTEN, **_errors(*_WRITE_ERRORS)}),
    Route("GET", "/api/v1/config/{service}/diff", cfg.diff_config, "config.diff", Action.AUDIT,
          summary="Key-level diff between two versions or instants",
          query=c.DiffParams, responses={200: c.Diff, **_errors(*_AUTH, 400, 404, 503)}),
    Route("GET", "/api/v1/config/{service}/watch", watch, "config.watch", Action.WATCH,
          summary="Server-Sent Events: the current state, then one event per version",
          query=c.WatchParams, responses={200: c.WatchStream, **_errors(*_AUTH, 400, 503)}),
    Route("GET", "/api/v1/config/{service}/verify", verify_config, "config.verify", Action.AUDIT,
          summary="Verify one service's hash chain and version continuity on the stream",
          responses={200: ChainVerification, **_errors(*_AUTH, 400, 404, 503)}),
    # the web console (static files; it uses the public API with the caller's token)
    Route("GET", "/", console_index, "console.index", Action.PUBLIC,
          summary="The web console", responses={200: None, 304: None}),
    Route("GET", "/console/{file}", console_asset, "console.asset", Action.PUBLIC,
          summary="A file of the web console", responses={200: None, 304: None, 404: ErrorBody}),
    # safe changes: schemas, change sets, blame (dry_run plans on every write)
    Route("GET", "/api/v1/config/{service}/blame", blame.blame_config, "config.blame", Action.AUDIT,
          summary="For every leaf of the document: the version, instant, actor, reason and change set "
          "that last set it", query=sm.AtQuery, responses={200: sm.BlameView, **_errors(*_AUTH, 400, 404, 503)}),
    Route("GET", "/api/v1/schema/{service}", sch.get_schema, "schema.get", Action.READ,
          summary="The service's JSON Schema in force, or as of ?at= / ?version=",
          query=sm.AtVersionQuery, responses={200: sm.SchemaView, **_errors(*_AUTH, 400, 404, 503)}),
    Route("PUT", "/api/v1/schema/{service}", sch.put_schema, "schema.put", Action.WRITE,
          summary="Set the service's JSON Schema (draft 2020-12); 422 if invalid or if the current "
          "config fails it", body=sm.JsonSchemaBody, query=sm.DryRunQuery,
          responses={200: sm.SchemaWriteOrPlan, **_errors(*_WRITE_ERRORS)}),
    Route("DELETE", "/api/v1/schema/{service}", sch.delete_schema, "schema.delete", Action.WRITE,
          summary="Remove the service's JSON Schema (its history stays)", query=sm.DryRunQuery,
          responses={200: sm.SchemaWriteOrPlan, **_errors(*_WRITE_ERRORS)}),
    Route("POST", "/api/v1/changesets", cs.post_changeset, "changeset.post", Action.WRITE,
          summary="Change several services atomically: every change stored, or none",
          body=sm.ChangeSetIn, query=sm.DryRunQuery,
          responses={200: sm.ChangeSetOrPlan, **_errors(*_WRITE_ERRORS)}),
    Route("GET", "/api/v1/changesets/{changeset_id}", cs.get_changeset, "changeset.get", Action.AUDIT,
          summary="The events of one change set", responses={200: sm.ChangeSetView, **_errors(*_AUTH, 400, 404, 422, 503)}),
    Route("POST", "/api/v1/changesets/{changeset_id}/rollback", cs.rollback_changeset, "changeset.rollback",
          Action.WRITE, summary="Undo a change set as one new atomic change set",
          body=sm.ChangeSetRollbackIn, query=sm.DryRunQuery,
          responses={200: sm.ChangeSetOrPlan, **_errors(*_WRITE_ERRORS)}),
    # the fleet: instances, staged rollouts, scheduled changes
    Route("GET", "/api/v1/config/{service}/instances", fleet.instances, "fleet.instances", Action.AUDIT,
          summary="Live instances with labels, applied version, status and last seen, plus a summary",
          query=fleet.InstancesQuery, responses={200: fleet.InstancesView, **_errors(*_AUTH, 400, 404, 422, 503)}),
    Route("POST", "/api/v1/config/{service}/instances/{instance}", fleet.report_instance, "fleet.report",
          Action.READ, summary="An apply acknowledgement or heartbeat from a client without NATS",
          body=fleet.AckBody, responses={202: None, **_errors(*_AUTH, 400, 404, 413, 415, 422, 503)}),
    Route("POST", "/api/v1/config/{service}/rollouts", fleet.start_rollout, "rollout.start", Action.WRITE,
          summary="Start (or schedule, with not_before) a staged rollout of a change",
          body=fleet.RolloutSpec, responses={201: fleet.RolloutView, **_errors(*_WRITE_ERRORS)}),
    Route("GET", "/api/v1/config/{service}/rollouts/{rollout}", fleet.get_rollout, "rollout.get", Action.AUDIT,
          summary="A rollout's state, current stage and per-stage counts",
          responses={200: fleet.RolloutView, **_errors(*_AUTH, 400, 404, 422, 503)}),
    Route("POST", "/api/v1/config/{service}/rollouts/{rollout}/promote", fleet.rollout_action,
          "rollout.promote", Action.WRITE, summary="Promote the rollout's next stage", query=c.WriteParams,
          responses={200: fleet.RolloutView, **_errors(*_WRITE_ERRORS)}),
    Route("POST", "/api/v1/config/{service}/rollouts/{rollout}/pause", fleet.rollout_action,
          "rollout.pause", Action.WRITE, summary="Pause the rollout", query=c.WriteParams,
          responses={200: fleet.RolloutView, **_errors(*_WRITE_ERRORS)}),
    Route("POST", "/api/v1/config/{service}/rollouts/{rollout}/abort", fleet.rollout_action,
          "rollout.abort", Action.WRITE, summary="Abort the rollout: every instance back to the base version", query=c.WriteParams,
          responses={200: fleet.RolloutView, **_errors(*_WRITE_ERRORS)}),
    Route("POST", "/api/v1/config/{service}/schedules", fleet.schedule_change, "schedule.create", Action.WRITE,
          summary="Store a write now, applied by the rollout controller at not_before",
          body=fleet.ScheduleBody, responses={201: fleet.ScheduleView, **_errors(*_WRITE_ERRORS)}),
    Route("DELETE", "/api/v1/config/{service}/schedules/{schedule}", fleet.cancel_schedule, "schedule.cancel",
          Action.WRITE, summary="Cancel a pending scheduled change", responses={200: fleet.ScheduleView, **_errors(*_WRITE_ERRORS)}),
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
