-- Closes one projector batch, inside the caller's transaction, after its rows were COPYed into
-- config_versions: fence on the leader lock, advance the checkpoint (compare-and-set), upsert
-- config_current from the batch's rows, refresh the status row, NOTIFY. The projector sends
-- `SELECT projector_commit_batch(...); COMMIT` as one round trip.
--   PJ001: the leader lock is not held by p_lock_pid   -> the batch is rolled back
--   PJ002: the checkpoint is not at p_prev_seq         -> the batch is rolled back
CREATE FUNCTION projector_commit_batch(
    p_prev_seq bigint,
    p_last_seq bigint,
    p_last_stored_at timestamptz,
    p_lock_pid integer,   -- NULL: not fenced (tests, tools)
    p_lock_ns integer,
    p_lock_key integer
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_current bigint;
BEGIN
    IF p_lock_pid IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 2
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND classid::bigint = p_lock_ns AND objid::bigint = p_lock_key AND pid = p_lock_pid
    ) THEN
        RAISE EXCEPTION 'the leader lock is no longer held by this projector: batch not applied'
            USING ERRCODE = 'PJ001';
    END IF;

    UPDATE projector_checkpoint
       SET last_seq = p_last_seq, last_stored_at = p_last_stored_at, updated_at = now()
     WHERE id = 1 AND last_seq = p_prev_seq;
    IF NOT FOUND THEN
        SELECT last_seq INTO v_current FROM projector_checkpoint WHERE id = 1;
        RAISE EXCEPTION 'checkpoint is at %, not %: another writer advanced it; batch not applied',
            v_current, p_prev_seq USING ERRCODE = 'PJ002';
    END IF;

    INSERT INTO config_current (service, version, kind, config, hash, actor, reason, updated_at,
                                stored_at, stream_seq)
    SELECT DISTINCT ON (service) service, version, kind, config, hash, actor, reason, occurred_at,
           stored_at, stream_seq
      FROM config_versions
     WHERE stream_seq > p_prev_seq AND stream_seq <= p_last_seq
     ORDER BY service, stream_seq DESC
    ON CONFLICT (service) DO UPDATE SET
        version = EXCLUDED.version, kind = EXCLUDED.kind, config = EXCLUDED.config,
        hash = EXCLUDED.hash, actor = EXCLUDED.actor, reason = EXCLUDED.reason,
        updated_at = EXCLUDED.updated_at, stored_at = EXCLUDED.stored_at,
        stream_seq = EXCLUDED.stream_seq;

    -- A recorded fail-stop stays until the projection has moved past its sequence.
    UPDATE projector_status SET
        state = CASE WHEN state = 'failed' AND (failed_seq IS NULL OR failed_seq > p_last_seq)
                     THEN 'failed' ELSE 'running' END,
        reason = CASE WHEN state = 'failed' AND (failed_seq IS NULL OR failed_seq > p_last_seq)
                      THEN reason END,
        failed_seq = CASE WHEN state = 'failed' AND (failed_seq IS NULL OR failed_seq > p_last_seq)
                          THEN failed_seq END,
        stream_last_seq = GREATEST(stream_last_seq, p_last_seq),
        stream_last_at = GREATEST(stream_last_at, p_last_stored_at),
        pending_since = CASE WHEN stream_last_seq > p_last_seq THEN pending_since END,
        heartbeat_at = now(),
        updated_at = now()
    WHERE id = 1;

    PERFORM pg_notify('config_ledger_projected', p_last_seq::text);
END
$$;
