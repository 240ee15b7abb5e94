-- One reply per comment: each command line's section, in line order.
ALTER TABLE command_runs ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
-- Replies to users without write access are counted per repository and actor.
CREATE INDEX command_runs_actor ON command_runs (repository, actor, created_at);

-- A foreign deployment from a pull request's workflow: the PR head it ran
-- for, whose approvals count.
ALTER TABLE protection_requests ADD COLUMN reviewed_sha TEXT;

-- The last `.github/shipgate.yml` of each repository's default branch that
-- loaded, kept so a broken file does not switch protection off.
CREATE TABLE valid_configs (
    repository TEXT   NOT NULL PRIMARY KEY,
    blob_sha   TEXT   NOT NULL,
    config     TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Locks whose TTL ran out are found (and removed) by the sweeper.
CREATE INDEX env_locks_expiry ON env_locks (expires_at) WHERE expires_at IS NOT NULL;
