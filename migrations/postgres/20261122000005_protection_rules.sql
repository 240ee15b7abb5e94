-- Deployment protection rule requests: answered at once, or kept pending
-- until the blocking gate opens or the deadline passes (survives restarts).
CREATE TABLE protection_requests (
    id              BIGSERIAL PRIMARY KEY,
    repository      TEXT    NOT NULL,
    environment     TEXT    NOT NULL,
    deployment_id   BIGINT NOT NULL,
    callback_url    TEXT    NOT NULL,
    sha             TEXT    NOT NULL,
    git_ref         TEXT    NOT NULL,
    pr              BIGINT,
    installation_id BIGINT,
    state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),
    deadline        BIGINT NOT NULL,
    next_check_at   BIGINT NOT NULL,
    progress_posts  BIGINT NOT NULL DEFAULT 0,
    last_comment    TEXT,
    created_at      BIGINT NOT NULL,
    UNIQUE (repository, deployment_id, environment)
);
CREATE INDEX protection_requests_due ON protection_requests (next_check_at) WHERE state = 'pending';
