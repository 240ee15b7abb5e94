-- Webhook deliveries: stored before GitHub gets its 2xx, then worked off.
CREATE TABLE deliveries (
    seq             BIGSERIAL PRIMARY KEY,
    delivery_id     TEXT    NOT NULL UNIQUE,
    event           TEXT    NOT NULL,
    action          TEXT,
    installation_id BIGINT,
    repository      TEXT,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'received'
                    CHECK (state IN ('received', 'processing', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    received_at     BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_by       TEXT,
    locked_until    BIGINT,
    finished_at     BIGINT
);

-- Work still to do, in arrival order.
CREATE INDEX deliveries_pending ON deliveries (seq) WHERE state IN ('received', 'processing');
-- Per-repository ordering: "is there an earlier unfinished delivery for this repo?"
CREATE INDEX deliveries_repo_pending ON deliveries (repository, seq) WHERE state IN ('received', 'processing');
-- Retention sweep.
CREATE INDEX deliveries_finished ON deliveries (finished_at) WHERE state IN ('done', 'failed');
