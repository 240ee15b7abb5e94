-- Pull requests closed with their previews retired: later deployment
-- statuses and smoke runs of their commits leave the comment closed until
-- the pull request is reopened (which deletes the row).
CREATE TABLE preview_closed (
    repository TEXT   NOT NULL,
    pr         INTEGER NOT NULL,
    closed_at  INTEGER NOT NULL,
    PRIMARY KEY (repository, pr)
);
