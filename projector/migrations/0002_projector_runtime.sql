-- Runtime columns the projector needs for lag reporting, and the status row itself, so that
-- projector.status.read_status() finds one from the first migration on.

-- Store time of the message at last_seq: lag in seconds without a join.
ALTER TABLE projector_checkpoint ADD COLUMN last_stored_at timestamptz;

-- Store time of the oldest message not applied yet (as of heartbeat_at); NULL when caught up.
-- lag_seconds = now() - pending_since.
ALTER TABLE projector_status ADD COLUMN pending_since timestamptz;

INSERT INTO projector_status (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
