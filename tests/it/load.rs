//! Deliveries under load, against the real binary: every acknowledged
//! delivery is processed, none twice in effect — with the worker running,
//! across a `kill -9` and restart, and with two replicas on one PostgreSQL.
//!
//! Each delivery is a `/help` comment, whose effect (one reply, marked with
//! its comment id) shows a lost delivery (no reply) and a doubled one (two).
//! Sizes come from the environment so the same tests make the long run:
//! `SHIPGATE_LOAD_DELIVERIES` (default 500) at `SHIPGATE_LOAD_RATE` per
//! second (default 1000). `bench/faults.sh` runs them with 10,000.
//!
//! The fake GitHub here is not behind prism in the conformance run
//! (`FakeGitHub::start_direct`): the requests are the `/help` and `/deploy`
//! ones the ChatOps stories already send through it.
//!
//! GitHub never retries a failed delivery; here, as in production, the
//! redelivery sweeper (App mode) asks the fake GitHub to redeliver what
//! shipgate never stored, and the fake does.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use common::{Child, FakeGitHub, SECRET};
use rand::Rng;
use shipgate::config::settings::DatabaseUrl;
use shipgate::store::{DeliveryState, DynStore};

const REPOS: usize = 8;

/// The load tests run one at a time: each one is the machine's whole load.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const CONFIG_PATH: &str = ".github/shipgate.yml";
const CONFIG: &str = "environments:\n  staging:\n    deployers: write\n";

fn deliveries() -> usize {
    std::env::var("SHIPGATE_LOAD_DELIVERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

fn rate() -> u64 {
    std::env::var("SHIPGATE_LOAD_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn app_env(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut vars = common::app_auth(&[
        ("SHIPGATE_REDELIVER_INTERVAL_SECS", "1"),
        ("SHIPGATE_REDELIVER_MAX", "100000"),
        ("SHIPGATE_WORKER_CONCURRENCY", "8"),
        ("RUST_LOG", "warn,shipgate::serve=info"),
    ]);
    vars.extend_from_slice(extra);
    vars
}

/// One delivery of the load: a `/help` comment.
struct Delivery {
    guid: String,
    repo: String,
    comment: u64,
    payload: serde_json::Value,
    body: Vec<u8>,
}

/// `n` `/help` comments spread over `REPOS` repositories (4 PRs each).
fn prepare(gh: &FakeGitHub, n: usize) -> Vec<Delivery> {
    let mut prs = Vec::new();
    for r in 0..REPOS {
        let repo = format!("load/repo-{r}");
        gh.add_repo(&repo, &[(CONFIG_PATH, CONFIG)]);
        // Past the reply allowance only writers get answers; alice comments thousands of times.
        gh.set_role(&repo, "alice", "write");
        for p in 0..4 {
            let branch = format!("b{p}");
            gh.commit(&repo, &branch, &[("f.txt", Some(&branch))]);
            prs.push((repo.clone(), gh.open_pr(&repo, &branch, "alice")));
        }
    }
    (0..n)
        .map(|i| {
            let (repo, pr) = &prs[i % prs.len()];
            let comment = gh.add_comment(repo, *pr, "alice", "/help");
            let payload = gh.issue_comment_payload(repo, comment, "created", None);
            Delivery {
                guid: format!("load-{i}"),
                repo: repo.clone(),
                comment,
                body: serde_json::to_vec(&payload).unwrap(),
                payload,
            }
        })
        .collect()
}

/// Sends every delivery once at `rate` per second (open loop: a slow answer
/// does not slow the sending), round-robin over `targets`, which may change
/// while it runs. Each attempt goes into the fake GitHub's delivery log as
/// GitHub records it (2xx, or failed). Returns the statuses (0: no answer).
async fn drive(
    gh: &FakeGitHub,
    items: &Arc<Vec<Delivery>>,
    targets: Arc<RwLock<Vec<String>>>,
    rate: u64,
) -> Vec<u16> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..items.len() {
        tokio::time::sleep_until(start + Duration::from_micros(i as u64 * 1_000_000 / rate)).await;
        let url = {
            let t = targets.read().unwrap();
            format!("{}/webhook", t[i % t.len()])
        };
        let (http, items, gh) = (http.clone(), items.clone(), gh.clone());
        tasks.spawn(async move {
            let d = &items[i];
            let sig = shipgate::github::signature::sign(SECRET.as_bytes(), &d.body);
            let status = http
                .post(url)
                .header("content-type", "application/json")
                .header("x-github-event", "issue_comment")
                .header("x-github-delivery", &d.guid)
                .header("x-hub-signature-256", sig)
                .body(d.body.clone())
                .send()
                .await;
            let status = status.map(|r| r.status().as_u16()).unwrap_or(0);
            let logged = if status == 0 { 502 } else { status };
            gh.log_hook_delivery(&d.guid, "issue_comment", &d.payload, logged, 0);
            (i, status)
        });
    }
    let mut statuses = vec![0u16; items.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, status) = done.unwrap();
        statuses[i] = status;
    }
    statuses
}

/// Waits until every delivery is done in `store` (a budget that grows with
/// the load), failing on any that failed.
async fn all_done(store: &DynStore, items: &[Delivery]) {
    let deadline = Instant::now() + Duration::from_secs(120 + items.len() as u64 / 20);
    let mut pending: Vec<&str> = items.iter().map(|d| d.guid.as_str()).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for guid in pending {
            match store.delivery_status(guid).await.unwrap() {
                Some(s) if s.state == DeliveryState::Done => {}
                Some(s) if s.state == DeliveryState::Failed => {
                    panic!("{guid} failed: {:?}", s.last_error)
                }
                _ => still.push(guid),
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} deliveries not done, e.g. {:?}",
            pending.len(),
            &pending[..pending.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Exactly one reply per `/help` comment.
fn one_reply_each(gh: &FakeGitHub, items: &[Delivery]) {
    let mut replies: HashMap<(String, u64), usize> = HashMap::new();
    gh.with(|w| {
        for (name, repo) in &w.repos {
            for c in repo.comments.iter().filter(|c| c.user.ends_with("[bot]")) {
                if let Some(rest) = c.body.split("<!-- shipgate:run ").nth(1) {
                    let id: u64 = rest.split(':').next().unwrap().parse().unwrap();
                    *replies.entry((name.clone(), id)).or_default() += 1;
                }
            }
        }
    });
    let lost: Vec<_> = items
        .iter()
        .filter(|d| !replies.contains_key(&(d.repo.clone(), d.comment)))
        .map(|d| d.guid.as_str())
        .collect();
    assert!(
        lost.is_empty(),
        "{} deliveries without a reply: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let doubled: Vec<_> = items
        .iter()
        .filter(|d| replies[&(d.repo.clone(), d.comment)] > 1)
        .map(|d| d.guid.as_str())
        .collect();
    assert!(doubled.is_empty(), "replied more than once: {doubled:?}");
}

/// Answers by status (0: no answer).
fn tally(statuses: &[u16]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for s in statuses {
        *counts.entry(*s).or_default() += 1;
    }
    counts
}

async fn sqlite_store(db: &str) -> DynStore {
    shipgate::store::connect(&DatabaseUrl::new(db.to_string()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_delivery_is_processed_once_under_load() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let gh = FakeGitHub::start_direct().await;
    let items = Arc::new(prepare(&gh, deliveries()));
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shipgate.db").display());
    let child = Child::serve(&gh, &db, &app_env(&[])).await;
    gh.set_hook_target(&child.url("/webhook"), SECRET);

    let targets = Arc::new(RwLock::new(vec![format!("http://{}", child.addr)]));
    let started = Instant::now();
    let statuses = drive(&gh, &items, targets, rate()).await;
    let sent_in = started.elapsed();
    eprintln!(
        "sent {} in {sent_in:?}; answers {:?}",
        items.len(),
        tally(&statuses)
    );
    // Acknowledged deliveries are processed from the store; any shed with a
    // 503 under overload come back through the redelivery sweeper.
    let store = sqlite_store(&db).await;
    all_done(&store, &items).await;
    eprintln!(
        "all done {:?} after the first delivery; {} redeliveries asked for",
        started.elapsed(),
        gh.redelivery_requests().len()
    );
    one_reply_each(&gh, &items);
    gh.assert_no_unexpected();
    child.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_kill_under_load_loses_nothing_and_doubles_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let gh = FakeGitHub::start_direct().await;
    let items = Arc::new(prepare(&gh, deliveries()));
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shipgate.db").display());
    let child = Child::serve(&gh, &db, &app_env(&[])).await;
    let targets = Arc::new(RwLock::new(vec![format!("http://{}", child.addr)]));

    let load_time = Duration::from_micros(items.len() as u64 * 1_000_000 / rate());
    let kill_at = load_time.mul_f64(rand::rng().random_range(0.2..0.8));
    let driver = {
        let (gh, items, targets) = (gh.clone(), items.clone(), targets.clone());
        tokio::spawn(async move { drive(&gh, &items, targets, rate()).await })
    };
    tokio::time::sleep(kill_at).await;
    child.kill_hard().await;
    eprintln!("killed at {kill_at:?} of {load_time:?}");
    let child = Child::serve(&gh, &db, &app_env(&[])).await;
    *targets.write().unwrap() = vec![format!("http://{}", child.addr)];
    gh.set_hook_target(&child.url("/webhook"), SECRET);

    let statuses = driver.await.unwrap();
    let refused = statuses.iter().filter(|s| !(200..300).contains(*s)).count();
    eprintln!(
        "{refused} deliveries not acknowledged (down or shedding load); answers {:?}",
        tally(&statuses)
    );

    let store = sqlite_store(&db).await;
    all_done(&store, &items).await;
    one_reply_each(&gh, &items);
    gh.assert_no_unexpected();
    eprintln!(
        "{} redeliveries asked for {refused} failed deliveries",
        gh.redelivery_requests().len()
    );
    child.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_process_each_delivery_once_and_share_locks() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let gh = FakeGitHub::start_direct().await;
    let items = Arc::new(prepare(&gh, deliveries()));
    // Twenty PRs of one repository ask for the same environment, spread over
    // both replicas: the lock lets exactly one deploy.
    let locks_repo = "load/locks";
    gh.add_repo(locks_repo, &[(CONFIG_PATH, CONFIG)]);
    let mut deploys = Vec::new();
    for p in 0..20 {
        let branch = format!("d{p}");
        gh.commit(locks_repo, &branch, &[("f.txt", Some(&branch))]);
        let pr = gh.open_pr(locks_repo, &branch, "alice");
        let comment = gh.add_comment(locks_repo, pr, "alice", "/deploy staging");
        let payload = gh.issue_comment_payload(locks_repo, comment, "created", None);
        deploys.push(Delivery {
            guid: format!("deploy-{p}"),
            repo: locks_repo.into(),
            comment,
            body: serde_json::to_vec(&payload).unwrap(),
            payload,
        });
    }
    gh.set_role(locks_repo, "alice", "write");

    let db = postgres_or_skip!();
    let a = Child::serve(&gh, &db, &app_env(&[])).await;
    let b = Child::serve(&gh, &db, &app_env(&[])).await;
    gh.set_hook_target(&a.url("/webhook"), SECRET);
    let targets = Arc::new(RwLock::new(vec![
        format!("http://{}", a.addr),
        format!("http://{}", b.addr),
    ]));
    let deploys = Arc::new(deploys);
    let (statuses, deploy_statuses) = tokio::join!(
        drive(&gh, &items, targets.clone(), rate()),
        drive(&gh, &deploys, targets.clone(), 100),
    );
    eprintln!(
        "answers {:?}; deploys {:?}",
        tally(&statuses),
        tally(&deploy_statuses)
    );

    let store = shipgate::store::connect(&DatabaseUrl::new(db.clone()))
        .await
        .unwrap();
    all_done(&store, &items).await;
    all_done(&store, &deploys).await;
    for d in items.iter().chain(deploys.iter()) {
        let s = store.delivery_status(&d.guid).await.unwrap().unwrap();
        assert_eq!(s.attempts, 1, "{} processed {} times", d.guid, s.attempts);
    }
    one_reply_each(&gh, &items);
    assert_eq!(
        gh.deployments(locks_repo).len(),
        1,
        "one deploy holds the lock; the others were refused"
    );
    gh.assert_no_unexpected();
    a.terminate().await;
    b.terminate().await;
}
