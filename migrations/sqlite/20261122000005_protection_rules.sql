-- Deployment protection rule requests: answered at once, or kept pending
-- until the blocking gate opens or the deadline passes (survives restarts).
CREATE TABLE protection_requests (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    repository      TEXT    NOT NULL,
    environment     TEXT    NOT NULL,
    deployment_id   INTEGER NOT NULL,
    callback_url    TEXT    NOT NULL,
    sha             TEXT    NOT NULL,
    git_ref         TEXT    NOT NULL,
    pr              INTEGER,
    installation_id INTEGER,
    state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),
    deadline        INTEGER NOT NULL,
    next_check_at   INTEGER NOT NULL,
    progress_posts  INTEGER NOT NULL DEFAULT 0,
    last_comment    TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (repository, deployment_id, environment)
);
CREATE INDEX protection_requests_due ON protection_requests (next_check_at) WHERE state = 'pending';
