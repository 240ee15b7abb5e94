-- Coalesced policy evaluations: events for a commit store one job per epoch;
-- a job bumps the epoch before it reads GitHub, so later events store the next.
CREATE TABLE policy_epochs (
    repository TEXT    NOT NULL,
    sha        TEXT    NOT NULL,
    epoch      INTEGER NOT NULL,
    PRIMARY KEY (repository, sha)
);

-- The one check run shipgate keeps per commit and name (updated in place),
-- with a digest of what it last said.
CREATE TABLE posted_check_runs (
    repository   TEXT    NOT NULL,
    sha          TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    check_run_id INTEGER NOT NULL,
    digest       TEXT    NOT NULL,
    PRIMARY KEY (repository, sha, name)
);
