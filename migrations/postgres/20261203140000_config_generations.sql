-- Pushes processed per repository. A replica that found a branch without
-- .github/shipgate.yml believes it only while this count is unchanged, so a
-- push that adds the file is seen by every replica's next delivery.
CREATE TABLE config_generations (
    repository TEXT   NOT NULL PRIMARY KEY,
    generation BIGINT NOT NULL
);
