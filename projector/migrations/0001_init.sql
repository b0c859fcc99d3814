-- Config Ledger projections. Nothing writes these tables except the projector; they can be
-- dropped and rebuilt from the stream at any time (`python -m projector rebuild`).
-- Time travel uses stored_at: the stream's store time (monotonic with stream_seq), the same
-- instant the stream-side readers (ledger.at, client.AuditReader) use.

CREATE TABLE config_versions (
    stream_seq  bigint      PRIMARY KEY,
    service     text        NOT NULL,
    version     integer     NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('replaced', 'patched', 'rolled_back', 'deleted')),
    change      jsonb,
    config      jsonb,                       -- the full document after the change; NULL if deleted
    actor       text        NOT NULL,
    reason      text        NOT NULL,
    occurred_at timestamptz NOT NULL,        -- the writer's clock
    stored_at   timestamptz NOT NULL,        -- the stream's clock (time travel)
    event_id    uuid        NOT NULL UNIQUE,
    prev_hash   text        NOT NULL,
    hash        text        NOT NULL,
    UNIQUE (service, version)
);
CREATE INDEX config_versions_service_stored_at ON config_versions (service, stored_at);
CREATE INDEX config_versions_service_occurred_at ON config_versions (service, occurred_at);
CREATE INDEX config_versions_stored_at ON config_versions (stored_at);

CREATE TABLE config_current (
    service     text        PRIMARY KEY,
    version     integer     NOT NULL,
    kind        text        NOT NULL,
    config      jsonb,                       -- NULL when the latest event is a deletion
    hash        text        NOT NULL,
    actor       text        NOT NULL,
    reason      text        NOT NULL,
    updated_at  timestamptz NOT NULL,        -- occurred_at of the latest event
    stored_at   timestamptz NOT NULL,
    stream_seq  bigint      NOT NULL
);

-- Exactly one row: the last stream sequence whose effects are in the tables above. Written in
-- the same transaction as the rows, so a crash can never leave the two out of step.
CREATE TABLE projector_checkpoint (
    id          smallint    PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    stream      text        NOT NULL,
    last_seq    bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Exactly one row: the projector's health, read by the API's /readyz and /metrics.
CREATE TABLE projector_status (
    id              smallint    PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    state           text        NOT NULL DEFAULT 'starting'
                    CHECK (state IN ('starting', 'running', 'failed', 'stopped', 'rebuilding')),
    reason          text,                    -- why it failed (fail-stop), NULL otherwise
    failed_seq      bigint,                  -- the stream sequence it stopped at
    stream_last_seq bigint      NOT NULL DEFAULT 0,
    stream_last_at  timestamptz,             -- store time of the stream's last message
    instance        text,                    -- host:pid of the active projector
    heartbeat_at    timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
