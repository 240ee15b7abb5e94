-- The one preview comment per pull request, and its rows (one per environment).
CREATE TABLE preview_comments (
    repository TEXT    NOT NULL,
    pr         BIGINT NOT NULL,
    comment_id BIGINT NOT NULL,
    PRIMARY KEY (repository, pr)
);

CREATE TABLE preview_rows (
    repository  TEXT    NOT NULL,
    pr          BIGINT NOT NULL,
    environment TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (repository, pr, environment)
);
