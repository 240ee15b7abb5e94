-- The one preview comment per pull request, and its rows (one per environment).
CREATE TABLE preview_comments (
    repository TEXT    NOT NULL,
    pr         INTEGER NOT NULL,
    comment_id INTEGER NOT NULL,
    PRIMARY KEY (repository, pr)
);

CREATE TABLE preview_rows (
    repository  TEXT    NOT NULL,
    pr          INTEGER NOT NULL,
    environment TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (repository, pr, environment)
);
