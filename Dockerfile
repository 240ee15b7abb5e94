# shipgate: the webhook server (`docker run IMAGE serve`) and the GitHub
# Action (action.yml runs this image with the argument `check`).

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /build

# Dependencies first, against stub sources, so this layer stays cached until
# Cargo.toml or Cargo.lock change. The stubs match the two targets Cargo.toml
# declares (src/lib.rs, src/main.rs).
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src

# The crate itself. migrations/ must be present: sqlx::migrate! embeds it at
# compile time. COPY keeps the files' original mtimes, which can be older than
# the stubs' build, so touch the crate roots to make cargo rebuild them.
COPY src ./src
COPY migrations ./migrations
RUN touch src/lib.rs src/main.rs \
 && cargo build --release --locked \
 && mkdir /data

# ---- runtime ----------------------------------------------------------------
# debian-slim (bookworm, like the builder) rather than distroless: the
# Action's `release` and `secrets` (diff/history) gates run `git`. The CA
# bundle is needed too: octocrab's hyper-rustls connector loads the system's
# native roots. SQLite is compiled into the binary (sqlx "sqlite" = bundled).
#
# The image runs as root because GitHub requires Docker actions to run as
# the default (root) user: the workspace and the files behind $GITHUB_OUTPUT
# belong to the runner. For `serve`, run it unprivileged with
# `docker run --user 65532:65532 ...` (/data is owned by that uid).
FROM debian:bookworm-slim
# Not version-pinned (hadolint DL3008): the base tag fixes the Debian release,
# and within it a pin would only hold back security updates and break the
# build when Debian replaces the pinned version.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /build/target/release/shipgate /usr/local/bin/shipgate
# The default DATABASE_URL, sqlite://shipgate.db, is relative to the working
# directory: /data, owned by the runtime user, so a volume mounted there
# keeps the queue. (The Action runs with --workdir /github/workspace.)
COPY --from=builder --chown=65532:65532 /data /data
WORKDIR /data
EXPOSE 3000
ENTRYPOINT ["shipgate"]
# No default command that would start something: `docker run IMAGE` prints
# the help; pass `serve`, `migrate`, `check`, ... explicitly.
CMD ["--help"]
