"""The projection's PostgreSQL contract, named once: tables, columns, the NOTIFY channel and the
read queries the projector and the API share.

The tables themselves are created by ``projector/migrations/*.sql`` (immutable once applied);
``tests/projector/test_schema.py`` checks that the names here are the ones the migrations use.
Pure: strings only, no I/O.
"""

from __future__ import annotations

from .rows import CURRENT_COLUMNS, VERSION_COLUMNS

__all__ = [
    "VERSIONS",
    "CURRENT",
    "CHECKPOINT",
    "STATUS",
    "NOTIFY_CHANNEL",
    "VERSION_COLUMNS",
    "CURRENT_COLUMNS",
    "SELECT_CHECKPOINT",
    "SELECT_VERSION",
    "SELECT_CURRENT_AS_VERSION",
    "CHANGED_SINCE",
    "READ_STATUS",
]

# Tables (0001_init.sql).
VERSIONS = "config_versions"
CURRENT = "config_current"
CHECKPOINT = "projector_checkpoint"
STATUS = "projector_status"

# After every committed batch the projector sends NOTIFY <channel>, '<last_seq>'
# (projector_commit_batch() in 0003_projector_commit_batch.sql, and rebuild's swap).
NOTIFY_CHANNEL = "config_ledger_projected"

# The checkpoint (0 before the first batch): the one row of projector_checkpoint.
SELECT_CHECKPOINT = f"SELECT COALESCE(last_seq, 0) FROM {CHECKPOINT} WHERE id = 1"

# A version as readers see it: one row of config_versions ...
SELECT_VERSION = (
    "service, version, kind, change, config, actor, reason, occurred_at, stored_at, stream_seq, "
    "event_id::text AS event_id, prev_hash, hash, changeset_id::text AS changeset_id"
)
# ... or of config_current, in the same shape (no change, event_id or prev_hash there).
SELECT_CURRENT_AS_VERSION = (
    "service, version, kind, NULL::jsonb AS change, config, actor, reason, updated_at AS occurred_at, "
    "stored_at, stream_seq, NULL::text AS event_id, NULL::text AS prev_hash, hash, "
    f"(SELECT v.changeset_id::text FROM {VERSIONS} v WHERE v.stream_seq = {CURRENT}.stream_seq) "
    "AS changeset_id"
)

# (checkpoint, config_current rows with stream_seq > $1; every row when $1 is NULL) in one
# statement, hence one snapshot: the rows are exactly those the checkpoint covers.
CHANGED_SINCE = (
    f"SELECT k.checkpoint, c.* FROM (SELECT coalesce(max(last_seq), 0) AS checkpoint "
    f"FROM {CHECKPOINT}) k LEFT JOIN (SELECT {SELECT_CURRENT_AS_VERSION} FROM {CURRENT} "
    "WHERE $1::bigint IS NULL OR stream_seq > $1) c ON true"
)

# The projector's state, checkpoint and the database clock, in one row (projector.status).
READ_STATUS = f"""
SELECT s.state, s.reason, s.failed_seq, s.stream_last_seq, s.stream_last_at, s.pending_since,
       s.instance, s.heartbeat_at, s.updated_at,
       c.stream, COALESCE(c.last_seq, 0) AS last_seq, c.last_stored_at,
       clock_timestamp() AS now
FROM (SELECT 1) AS one
LEFT JOIN {STATUS} s ON s.id = 1
LEFT JOIN {CHECKPOINT} c ON c.id = 1
"""
