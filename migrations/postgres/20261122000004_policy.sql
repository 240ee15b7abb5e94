-- Branch protection drift and changes, as found and as restored.
CREATE TABLE policy_log (
    seq        BIGSERIAL PRIMARY KEY,
    repository TEXT    NOT NULL,
    branch     TEXT    NOT NULL,
    trigger    TEXT    NOT NULL,
    actor      TEXT,
    action     TEXT    NOT NULL CHECK (action IN ('restored', 'audited', 'failed')),
    detail     TEXT    NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX policy_log_repo ON policy_log (repository, seq);

-- Problems reported once (missing admin rights, plan limits), by key.
CREATE TABLE reported_problems (
    repository TEXT NOT NULL,
    problem    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repository, problem)
);

-- Comments and issues shipgate keeps one of: the policy tracking issue
-- (pr = 0), the plan comment of a PR.
CREATE TABLE sticky_comments (
    repository TEXT    NOT NULL,
    pr         BIGINT NOT NULL,
    kind       TEXT    NOT NULL,
    comment_id BIGINT NOT NULL,
    PRIMARY KEY (repository, pr, kind)
);
