-- The last smoke outcome of each environment (1 passed, 0 failed) and the
-- one before it, so a run that passes after a failed one is a recovery.
CREATE TABLE smoke_outcomes (
    repository      TEXT   NOT NULL,
    environment     TEXT   NOT NULL,
    deployment_id   BIGINT NOT NULL,
    passed          BIGINT NOT NULL,
    previous_passed BIGINT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (repository, environment)
);
