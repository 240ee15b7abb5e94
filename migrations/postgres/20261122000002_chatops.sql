-- Environment locks: one row per repository and environment, so acquiring
-- is one atomic INSERT ... ON CONFLICT.
CREATE TABLE env_locks (
    repository    TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('deploy', 'sticky')),
    holder        TEXT    NOT NULL,
    pr            BIGINT,
    owner_token   TEXT    NOT NULL,
    deployment_id BIGINT,
    reason        TEXT,
    expires_at    BIGINT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repository, environment)
);
CREATE INDEX env_locks_pr ON env_locks (repository, pr);

-- One row per command line of a comment: what was done for it, so a
-- reprocessed comment never posts a second reply or deployment.
CREATE TABLE command_runs (
    repository       TEXT    NOT NULL,
    comment_id       BIGINT NOT NULL,
    line             BIGINT NOT NULL,
    command          TEXT    NOT NULL,
    environment      TEXT,
    actor            TEXT    NOT NULL,
    pr               BIGINT,
    reply_comment_id BIGINT,
    deployment_id    BIGINT,
    model            TEXT,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (repository, comment_id, line)
);
CREATE INDEX command_runs_deployment ON command_runs (repository, deployment_id);

-- `/deploy ENV queue` requests waiting for a lock.
CREATE TABLE deploy_queue (
    seq             BIGSERIAL PRIMARY KEY,
    repository      TEXT    NOT NULL,
    environment     TEXT    NOT NULL,
    pr              BIGINT NOT NULL,
    comment_id      BIGINT NOT NULL,
    line            BIGINT NOT NULL,
    actor           TEXT    NOT NULL,
    git_ref         TEXT,
    installation_id BIGINT,
    created_at      BIGINT NOT NULL,
    UNIQUE (repository, comment_id, line)
);
CREATE INDEX deploy_queue_env ON deploy_queue (repository, environment, seq);
