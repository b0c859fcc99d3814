-- Change sets: the members of one atomic change set (several services, all or nothing) share a
-- changeset_id; NULL for an event outside a set. The projector applies a set in one transaction.
ALTER TABLE config_versions ADD COLUMN changeset_id uuid;
CREATE INDEX config_versions_changeset ON config_versions (changeset_id) WHERE changeset_id IS NOT NULL;
