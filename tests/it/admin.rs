//! The operator's toolbox through the real binary: `shipgate deliveries`,
//! `shipgate locks`, `shipgate requests`, on SQLite and PostgreSQL, with the
//! exit codes and one-line errors the README promises, and nothing from
//! outside (or from DATABASE_URL) reaching the terminal unescaped.

use crate::common;

use serde_json::Value;
use shipgate::config::settings::DatabaseUrl;
use shipgate::store::{
    self, DeliveryFilter, DeliveryState, DynStore, Lock, LockKind, LockOutcome, NewDelivery,
    ProtectionRequest, QueuedDeploy,
};

/// A database of a backend, migrated, and the URL the binary gets.
struct Db {
    url: String,
    store: DynStore,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shipgate.db").display());
    open(url, Some(dir)).await
}

async fn postgres() -> Option<Db> {
    Some(open(common::fresh_postgres_url().await?, None).await)
}

async fn open(url: String, dir: Option<tempfile::TempDir>) -> Db {
    let store = store::connect(&DatabaseUrl::new(url.clone()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Db {
        url,
        store,
        _dir: dir,
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn shipgate(database_url: &str, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipgate"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .output()
        .await
        .expect("the binary runs");
    let run = Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    // Nothing a terminal acts on, whatever the outcome.
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "raw control characters in the output of {args:?}: {text:?}"
        );
    }
    run
}

/// An error: exit `code`, one line on stderr naming `what`, nothing on stdout.
fn assert_error(run: &Run, code: i32, what: &str) {
    assert_eq!(run.code, code, "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "one line: {:?}", run.stderr);
    assert!(run.stderr.contains(what), "{what} in {:?}", run.stderr);
}

const EVIL_REPO: &str = "acme/\u{1b}]0;owned\u{7}app";
const EVIL_ERROR: &str = "GitHub answered 422: \u{1b}[2J\u{1b}[31mref \u{9b}1m\u{202e}nepo";

fn delivery(id: &str, repo: &str, installation: Option<i64>) -> NewDelivery {
    NewDelivery {
        delivery_id: id.into(),
        event: "pull_request".into(),
        action: Some("opened".into()),
        installation_id: installation,
        repository: Some(repo.into()),
        payload: format!(r#"{{"action":"opened","title":"\u001b[5mblink","id":"{id}"}}"#).into(),
    }
}

/// `ok-1` done, `failed-1` failed (with an error quoting escapes), `evil-1`
/// of a repository whose name holds escapes, `waiting-1` received.
async fn seed_deliveries(s: &DynStore) {
    for (i, d) in [
        delivery("ok-1", "acme/app", Some(42)),
        delivery("failed-1", "acme/app", Some(42)),
        delivery("evil-1", EVIL_REPO, None),
        delivery("waiting-1", "acme/app", Some(42)),
    ]
    .iter()
    .enumerate()
    {
        s.insert_delivery(d, 1_000 + i as i64).await.unwrap();
    }
    let ok = s
        .claim_next("w", 2_000, 60_000, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ok.delivery_id, "ok-1");
    s.mark_done(&ok, 2_001).await.unwrap();
    let evil = s
        .claim_next("w", 2_002, 60_000, &[])
        .await
        .unwrap()
        .unwrap();
    let failed = s
        .claim_next("w", 2_002, 60_000, &[])
        .await
        .unwrap()
        .unwrap();
    let (evil, failed) = if evil.delivery_id == "failed-1" {
        (failed, evil)
    } else {
        (evil, failed)
    };
    assert_eq!(failed.delivery_id, "failed-1");
    s.mark_failed(&failed, EVIL_ERROR, 2_003).await.unwrap();
    s.mark_failed(&evil, "boom", 2_003).await.unwrap();
}

async fn deliveries_list_filters_and_prints_tables_or_json(db: Db) {
    seed_deliveries(&db.store).await;
    let all = shipgate(&db.url, &["deliveries", "list"]).await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    let lines: Vec<&str> = all.stdout.lines().collect();
    assert!(lines[0].starts_with("ID ") && lines[0].contains("LAST ERROR"));
    // Newest first.
    let order: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(order, ["waiting-1", "evil-1", "failed-1", "ok-1"]);
    assert!(
        all.stdout.contains("acme/\\x1b]0;owned\\x07app"),
        "{}",
        all.stdout
    );
    assert!(all
        .stdout
        .contains("\\x1b[2J\\x1b[31mref \\u{9b}1m\\u{202e}nepo"));

    let failed = shipgate(
        &db.url,
        &["deliveries", "list", "--status", "failed", "--json"],
    )
    .await;
    assert_eq!(failed.code, 0, "{}", failed.stderr);
    let v: Value = serde_json::from_str(&failed.stdout).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["evil-1", "failed-1"]);
    // JSON keeps the text exactly, escaped.
    assert_eq!(v[1]["last_error"], EVIL_ERROR);
    assert_eq!(v[0]["repository"], EVIL_REPO);
    assert_eq!(v[1]["attempts"], 1);

    let repo = shipgate(
        &db.url,
        &["deliveries", "list", "--repo", "acme/app", "--limit", "2"],
    )
    .await;
    assert_eq!(repo.code, 0);
    assert_eq!(repo.stdout.lines().count(), 3, "{}", repo.stdout);

    let none = shipgate(
        &db.url,
        &[
            "deliveries",
            "list",
            "--repo",
            "acme/app",
            "--status",
            "processing",
        ],
    )
    .await;
    assert_eq!(
        (none.code, none.stdout.as_str()),
        (0, "no deliveries match\n")
    );

    assert_error(
        &shipgate(&db.url, &["deliveries", "list", "--repo", "acme/unknown"]).await,
        1,
        "repository acme/unknown not found",
    );
    assert_error(
        &shipgate(&db.url, &["deliveries", "list", "--repo", "acme"]).await,
        2,
        "acme is not OWNER/NAME",
    );
    for bad in [
        &["deliveries", "list", "--status", "lost"][..],
        &["deliveries", "list", "--limit", "0"],
        &["deliveries", "frobnicate"],
        &["locks", "release", "acme/app"],
    ] {
        let run = shipgate(&db.url, bad).await;
        assert_eq!(run.code, 2, "{bad:?}: {}", run.stderr);
    }
}

async fn deliveries_show_names_everything_and_unknown_ids_exit_1(db: Db) {
    seed_deliveries(&db.store).await;
    let show = shipgate(&db.url, &["deliveries", "show", "failed-1", "--payload"]).await;
    assert_eq!(show.code, 0, "{}", show.stderr);
    let field = |k: &str, v: &str| format!("{:<14}{v}\n", format!("{k}:"));
    for expected in [
        field("id", "failed-1"),
        field("event", "pull_request"),
        field("action", "opened"),
        field("repository", "acme/app"),
        field("state", "failed"),
        field("attempts", "1"),
        field("installation", "42"),
        field(
            "last error",
            "GitHub answered 422: \\x1b[2J\\x1b[31mref \\u{9b}1m\\u{202e}nepo",
        ),
        // serde_json writes the escape as \u001b: inert too.
        "\"title\": \"\\u001b[5mblink\"".to_string(),
    ] {
        assert!(
            show.stdout.contains(&expected),
            "{expected} in:\n{}",
            show.stdout
        );
    }
    let json = shipgate(
        &db.url,
        &["deliveries", "show", "failed-1", "--json", "--payload"],
    )
    .await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["payload"]["title"], "\u{1b}[5mblink");
    assert_eq!(v["state"], "failed");

    assert_error(
        &shipgate(&db.url, &["deliveries", "show", "no-such-id"]).await,
        1,
        "no delivery with id no-such-id",
    );
    assert_error(
        &shipgate(&db.url, &["deliveries", "show", "x\u{1b}[31m"]).await,
        1,
        "no delivery with id x\\x1b[31m",
    );
}

async fn deliveries_retry_puts_a_failed_delivery_back_for_any_worker(db: Db) {
    seed_deliveries(&db.store).await;
    let retry = shipgate(&db.url, &["deliveries", "retry", "failed-1"]).await;
    assert_eq!(retry.code, 0, "{}", retry.stderr);
    assert!(retry.stdout.contains("failed-1: failed -> received"));
    let st = db.store.delivery_status("failed-1").await.unwrap().unwrap();
    assert_eq!((st.state, st.attempts), (DeliveryState::Received, 0));
    // Any worker takes it now, ahead of its repository's later delivery.
    let claimed = db
        .store
        .claim_next("replica-b", shipgate::now_ms(), 60_000, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.delivery_id.as_str(), claimed.attempts),
        ("failed-1", 1)
    );

    assert_error(
        &shipgate(&db.url, &["deliveries", "retry", "ok-1"]).await,
        1,
        "delivery ok-1 is done, not failed",
    );
    assert_error(
        &shipgate(&db.url, &["deliveries", "retry", "nope"]).await,
        1,
        "no delivery with id nope",
    );
    let json = shipgate(&db.url, &["deliveries", "retry", "evil-1", "--json"]).await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["state"], "received");
}

fn lock(repo: &str, env: &str, holder: &str, reason: Option<&str>) -> Lock {
    Lock {
        repository: repo.into(),
        environment: env.into(),
        kind: LockKind::Sticky,
        holder: holder.into(),
        pr: Some(12),
        owner_token: format!("token-{repo}-{env}"),
        deployment_id: None,
        reason: reason.map(str::to_string),
        expires_at: None,
        created_at: 1_000,
    }
}

async fn locks_release_frees_the_lock_and_starts_its_queue_on_a_server(db: Db) {
    let s = &db.store;
    for l in [
        lock(
            "acme/app",
            "staging",
            "alice",
            Some("testing \u{1b}[8mhidden"),
        ),
        lock("acme/app", "production", "bob", None),
        lock(EVIL_REPO, "prod\u{202e}", "mallory\u{1b}[0m", None),
    ] {
        assert_eq!(
            s.acquire_lock(&l, 1_000).await.unwrap(),
            LockOutcome::Acquired
        );
    }
    s.enqueue_deploy(&QueuedDeploy {
        seq: 0,
        repository: "acme/app".into(),
        environment: "staging".into(),
        pr: 13,
        comment_id: 99,
        line: 0,
        actor: "carol".into(),
        git_ref: None,
        installation_id: Some(77),
        created_at: 1_001,
    })
    .await
    .unwrap();

    let list = shipgate(&db.url, &["locks", "list"]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.stdout.lines().count(), 4, "{}", list.stdout);
    assert!(list.stdout.contains("testing \\x1b[8mhidden"));
    assert!(list.stdout.contains("mallory\\x1b[0m"));
    assert!(
        !list.stdout.contains("token-"),
        "owner tokens stay in the database"
    );
    let json = shipgate(&db.url, &["locks", "list", "--json"]).await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert!(!json.stdout.contains("token-"));

    let release = shipgate(&db.url, &["locks", "release", "acme/app", "staging"]).await;
    assert_eq!(release.code, 0, "{}", release.stderr);
    assert!(
        release
            .stdout
            .contains("released the sticky lock on staging of acme/app (held by alice, #12)"),
        "{}",
        release.stdout
    );
    let now = shipgate::now_ms();
    assert!(s
        .get_lock("acme/app", "staging", now)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .get_lock("acme/app", "production", now)
        .await
        .unwrap()
        .is_some());
    // The same internal delivery the server stores after a release, so a
    // running server's worker runs the queue and re-checks the requests.
    let stored = s
        .list_deliveries(&DeliveryFilter {
            state: Some(DeliveryState::Received),
            repository: Some("acme/app".into()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event, "shipgate_lock_released");
    assert_eq!(
        stored[0].installation_id,
        Some(77),
        "the queued deploy's installation"
    );
    let (_, payload) = s
        .delivery_record(&stored[0].delivery_id)
        .await
        .unwrap()
        .unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(
        payload,
        serde_json::json!({ "repository": "acme/app", "environment": "staging", "installation": 77 })
    );
    assert!(shipgate::handlers::Handlers::default().wants("shipgate_lock_released", None));

    assert_error(
        &shipgate(&db.url, &["locks", "release", "acme/app", "staging"]).await,
        1,
        "no lock on environment staging of acme/app",
    );
    assert_error(
        &shipgate(&db.url, &["locks", "release", "acme/other", "staging"]).await,
        1,
        "no lock on environment staging of acme/other",
    );
    assert_error(
        &shipgate(&db.url, &["locks", "release", "not-a-repo", "staging"]).await,
        2,
        "not-a-repo is not OWNER/NAME",
    );
}

fn request(repo: &str, deployment_id: i64, git_ref: &str) -> ProtectionRequest {
    ProtectionRequest {
        id: 0,
        repository: repo.into(),
        environment: "production".into(),
        deployment_id,
        callback_url: "https://api.github.com/x".into(),
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        git_ref: git_ref.into(),
        pr: Some(5),
        reviewed_sha: None,
        installation_id: Some(1),
        state: "pending".into(),
        deadline: 10_000,
        next_check_at: 1_000,
        progress_posts: 0,
        last_comment: None,
        created_at: 500,
    }
}

async fn requests_list_shows_pending_protection_rule_requests(db: Db) {
    let empty = shipgate(&db.url, &["requests", "list"]).await;
    assert_eq!(
        (empty.code, empty.stdout.as_str()),
        (0, "no pending protection rule requests\n")
    );
    let s = &db.store;
    let answered = s
        .save_protection_request(&request("acme/app", 1, "main"))
        .await
        .unwrap();
    s.answer_protection_request(answered.id, "approved")
        .await
        .unwrap();
    s.save_protection_request(&request("acme/app", 2, "feature/\u{1b}[31mred"))
        .await
        .unwrap();
    let list = shipgate(&db.url, &["requests", "list"]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.stdout.lines().count(), 2, "{}", list.stdout);
    assert!(list.stdout.contains("feature/\\x1b[31mred"));
    assert!(list.stdout.contains("0123456"));
    let json = shipgate(&db.url, &["requests", "list", "--json"]).await;
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["deployment_id"], 2);
    assert_eq!(v[0]["ref"], "feature/\u{1b}[31mred");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::sqlite().await).await;
            })*
        }
        mod on_postgres {
            $(#[tokio::test]
            async fn $name() {
                let Some(db) = super::postgres().await else { return };
                super::$name(db).await;
            })*
        }
    };
}

on_both_backends!(
    deliveries_list_filters_and_prints_tables_or_json,
    deliveries_show_names_everything_and_unknown_ids_exit_1,
    deliveries_retry_puts_a_failed_delivery_back_for_any_worker,
    locks_release_frees_the_lock_and_starts_its_queue_on_a_server,
    requests_list_shows_pending_protection_rule_requests,
);

// ------------------------------------------------- DATABASE_URL's password

const PASSWORD: &str = "hunter2-Sup3rSecret";

#[tokio::test]
async fn a_password_in_database_url_never_reaches_the_output() {
    // Nothing listens on port 1; an unknown scheme; a bad port.
    for url in [
        format!("postgres://app:{PASSWORD}@127.0.0.1:1/shipgate"),
        format!("mysql://app:{PASSWORD}@127.0.0.1/shipgate"),
        format!("postgres://app:{PASSWORD}@127.0.0.1:99999/shipgate"),
        PASSWORD.to_string(),
    ] {
        let run = shipgate(&url, &["deliveries", "list"]).await;
        assert_eq!(run.code, 2, "{url}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{:?}", run.stderr);
        assert!(run.stderr.contains("DATABASE_URL"), "{}", run.stderr);
        assert!(
            !run.stderr.contains(PASSWORD) && !run.stdout.contains(PASSWORD),
            "{}",
            run.stderr
        );
    }
    // A password the server ignores (trust authentication) is not echoed either.
    let base = postgres_or_skip!();
    let with_password = base.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{PASSWORD}@"),
        1,
    );
    let db = open(with_password.clone(), None).await;
    seed_deliveries(&db.store).await;
    for args in [
        &["deliveries", "list"][..],
        &["deliveries", "show", "nope"],
        &["locks", "list", "--json"],
    ] {
        let run = shipgate(&with_password, args).await;
        assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    }
}

#[tokio::test]
async fn a_missing_sqlite_file_is_a_usage_error_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing-here.db");
    let run = shipgate(&format!("sqlite://{}", path.display()), &["locks", "list"]).await;
    assert_error(&run, 2, "no database at");
    assert!(!path.exists());
}

// ------------------------------------------- a release on a running server

const STAGING_CONFIG: &str =
    "environments:\n  staging:\n    deployers: write\n    required_checks: [ci]\n";

/// `/deploy staging` holds the lock and `/deploy staging queue` waits; the
/// operator releases the lock from the command line, and the running server
/// (another process: no signal reaches it but the stored delivery) starts
/// the queued deploy, updating its reply in place.
async fn a_release_from_the_command_line_starts_the_queue_on_a_running_server(db: Db) {
    // The lock sweep (which also starts a queue left waiting on a free lock)
    // does not run again during the test: only the released delivery can.
    let t = common::Harness::start_with(&[
        ("DATABASE_URL", db.url.as_str()),
        ("SHIPGATE_PROTECTION_SWEEP_MS", "3600000"),
    ])
    .await;
    t.gh.add_repo("acme/app", &[(".github/shipgate.yml", STAGING_CONFIG)]);
    let mut prs = Vec::new();
    for (branch, user) in [("a", "alice"), ("b", "bob")] {
        t.gh.commit("acme/app", branch, &[("f.txt", Some(branch))]);
        let pr = t.gh.open_pr("acme/app", branch, user);
        let head = t.gh.pr("acme/app", pr).head_sha;
        t.gh.set_role("acme/app", user, "write");
        t.gh.check_run("acme/app", &head, "ci", "completed", Some("success"));
        prs.push((pr, head));
    }
    let ((pr_a, _), (pr_b, head_b)) = (prs[0].clone(), prs[1].clone());
    t.comment("acme/app", pr_a, "alice", "/deploy staging")
        .await;
    t.next_reply("acme/app", pr_a).await;
    t.comment("acme/app", pr_b, "bob", "/deploy staging queue")
        .await;
    let queued = t.next_reply("acme/app", pr_b).await;
    assert!(
        queued.body.contains("queued (position 1)"),
        "{}",
        queued.body
    );
    assert_eq!(t.gh.deployments("acme/app").len(), 1);

    let list = shipgate(&db.url, &["locks", "list"]).await;
    assert!(
        list.stdout
            .contains("acme/app    staging      deploy  alice"),
        "{}",
        list.stdout
    );
    let release = shipgate(&db.url, &["locks", "release", "acme/app", "staging"]).await;
    assert_eq!(release.code, 0, "{}", release.stderr);
    t.settle().await;
    let deployments = t.gh.deployments("acme/app");
    assert_eq!(deployments.len(), 2, "the queued deploy ran");
    assert_eq!(deployments[1].sha, head_b);
    let body = t.gh.comment_body("acme/app", queued.id);
    assert!(
        body.starts_with("### 🚀 Deploy to `staging` created"),
        "the queued reply is updated in place: {body}"
    );
    // Bob's deploy holds the lock now.
    let list = shipgate(&db.url, &["locks", "list", "--json"]).await;
    let v: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(v[0]["holder"], "bob");
    t.finish().await;
}

mod running_server {
    #[tokio::test]
    async fn on_sqlite() {
        super::a_release_from_the_command_line_starts_the_queue_on_a_running_server(
            super::sqlite().await,
        )
        .await;
    }

    #[tokio::test]
    async fn on_postgres() {
        let Some(db) = super::postgres().await else {
            return;
        };
        super::a_release_from_the_command_line_starts_the_queue_on_a_running_server(db).await;
    }
}

/// `shipgate deliveries list | head -1` once head has exited: quiet, 141
/// (src/stdio.rs), never a panic or a pass.
#[tokio::test]
async fn a_list_into_a_closed_pipe_exits_141_quietly() {
    let db = sqlite().await;
    seed_deliveries(&db.store).await;
    // The write end of a pipe whose reader (`true`) has exited.
    let mut reader = std::process::Command::new("true")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let writer = reader.stdin.take().unwrap();
    assert!(reader.wait().unwrap().success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shipgate"))
        .args(["deliveries", "list"])
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .stdout(std::process::Stdio::from(writer))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr, "", "nothing on stderr");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}
