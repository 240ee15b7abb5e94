//! Reaction benchmark: time from a `/deploy` comment's webhook being sent to
//! the fake GitHub receiving shipgate's first API call for it (the 👀
//! reaction), and the GitHub API calls each `/deploy` makes.
//!
//! `cargo bench --bench reaction` (optionally `-- 500` for the number of
//! commands). The fake GitHub answers at once; the server runs in process on
//! a fresh SQLite file, as `shipgate serve` does by default.
//!
//! `cargo bench --bench reaction -- ci-load [LATENCY_MS]`: the same first
//! reaction while CI finishes jobs on a PR's head — 40 `check_run`
//! `completed` deliveries a second for 12 s to a repository under a
//! protection policy, four `/deploy` commands sent meanwhile — with every
//! GitHub answer taking LATENCY_MS (default 0; the real API takes 100–300).
//! Prints each `/deploy`'s reaction time, the GitHub API calls the check
//! runs cost (a second run without commands), and the `shipgate/policy`
//! check runs written.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

const REPO: &str = "bench/app";
const CONFIG: &str = "default_environment: staging\nenvironments:\n  staging:\n    deployers: write\n    required_checks: [ci]\n";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "ci-load") {
        let latency = args.get(i + 1).and_then(|a| a.parse().ok()).unwrap_or(0u64);
        ci_load(Duration::from_millis(latency)).await;
        return;
    }
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let t = common::Harness::start().await;
    t.gh.add_repo(REPO, &[(".github/shipgate.yml", CONFIG)]);
    t.gh.commit(REPO, "feature", &[("f.txt", Some("x"))]);
    let pr = t.gh.open_pr(REPO, "feature", "alice");
    let head = t.gh.pr(REPO, pr).head_sha;
    t.gh.set_role(REPO, "alice", "write");
    t.gh.check_run(REPO, &head, "ci", "completed", Some("success"));

    let mut latencies = Vec::with_capacity(n);
    let mut calls = Vec::with_capacity(n);
    for i in 0..n {
        let id = t.gh.add_comment(REPO, pr, "alice", "/deploy staging");
        let payload = t.gh.issue_comment_payload(REPO, id, "created", None);
        let before = t.gh.with(|w| w.requests.len());
        let sent = Instant::now();
        let (status, _) = t
            .send_with_id("issue_comment", &format!("bench-{i}"), &payload)
            .await;
        assert!(status.is_success());
        let path = format!("/repos/{REPO}/issues/comments/{id}/reactions");
        t.gh.wait_for("the 👀 reaction", |w| {
            w.requests[before..].iter().any(|r| r.path == path)
        })
        .await;
        let reacted = t.gh.with(|w| {
            w.requests[before..]
                .iter()
                .find(|r| r.path == path)
                .unwrap()
                .at
        });
        latencies.push(reacted - sent);
        t.settle().await;
        calls.push(t.gh.with(|w| w.requests.len()) - before);
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("reaction latency over {n} /deploy commands (webhook sent → first GitHub API call received):");
    println!(
        "  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap())
    );
    calls.sort();
    println!(
        "GitHub API calls per /deploy: min {} max {} (config fetch included; later ones are 304 revalidations)",
        calls[0],
        calls[calls.len() - 1]
    );
    // The replies are the bench's output, not something to check.
    t.gh.with(|_| ());
}

const POLICY: &str = "protection:\n  branches:\n    main:\n      required_approvals: 1\n      required_checks: [ci]\nenvironments:\n  staging:\n    deployers: write\n";

/// One run of the CI load: `deploys` `/deploy` commands spread over 12 s
/// of 40 `check_run`s a second. Returns each command's reaction time and the
/// GitHub API calls made, and the policy check runs written (created, updated).
async fn ci_load_run(latency: Duration, deploys: usize) -> (Vec<Duration>, usize, usize, usize) {
    // The server's default policy delay (the test harness runs with none).
    let t = common::Harness::start_with(&[("SHIPGATE_POLICY_DELAY_MS", "2000")]).await;
    t.gh.add_repo(REPO, &[(".github/shipgate.yml", POLICY)]);
    t.gh.commit(REPO, "feature", &[("f.txt", Some("x"))]);
    let pr = t.gh.open_pr(REPO, "feature", "alice");
    let head = t.gh.pr(REPO, pr).head_sha;
    t.gh.set_role(REPO, "alice", "write");
    t.gh.set_latency(latency);
    let before = t.gh.with(|w| w.requests.len());
    let start = Instant::now();
    let mut waits = Vec::new();
    let mut sent = 0usize;
    let mut next_deploy = 0usize;
    // 40 a second for 12 s, open loop; a /deploy every 3 s from 1.5 s.
    while sent < 480 {
        let due = start + Duration::from_millis(25 * sent as u64);
        tokio::time::sleep_until(due.into()).await;
        let payload =
            t.gh.check_run_payload(REPO, &head, &format!("job-{sent}"), "success");
        let http = t.http.clone();
        let url = t.url("/webhook");
        let body = serde_json::to_vec(&payload).unwrap();
        let id = format!("ci-{sent}");
        tokio::spawn(async move { common::post_signed(&http, &url, "check_run", &id, body).await });
        sent += 1;
        let deploy_at = Duration::from_millis(1500 + 3000 * next_deploy as u64);
        if next_deploy < deploys && start.elapsed() >= deploy_at {
            let id = t.gh.add_comment(REPO, pr, "alice", "/deploy staging");
            let payload = t.gh.issue_comment_payload(REPO, id, "created", None);
            let sent_at = Instant::now();
            let http = t.http.clone();
            let url = t.url("/webhook");
            let body = serde_json::to_vec(&payload).unwrap();
            let delivery = format!("deploy-{next_deploy}");
            tokio::spawn(async move {
                common::post_signed(&http, &url, "issue_comment", &delivery, body).await
            });
            waits.push((id, sent_at));
            next_deploy += 1;
        }
    }
    let mut reactions = Vec::new();
    for (id, sent_at) in &waits {
        let path = format!("/repos/{REPO}/issues/comments/{id}/reactions");
        let reacted = tokio::time::timeout(Duration::from_secs(120), async {
            loop {
                if let Some(at) =
                    t.gh.with(|w| w.requests.iter().find(|r| r.path == path).map(|r| r.at))
                {
                    return at;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("a reaction within 120 s");
        reactions.push(reacted - *sent_at);
    }
    tokio::time::timeout(Duration::from_secs(600), async {
        while t.server.store.queue_depth().await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the backlog drains within 10 minutes");
    let calls = t.gh.with(|w| w.requests.len()) - before;
    let created =
        t.gh.requests_to("POST", &format!("/repos/{REPO}/check-runs"))
            .len();
    let updated = t.gh.with(|w| {
        w.requests
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.contains("/check-runs/"))
            .count()
    });
    t.gh.with(|_| ());
    (reactions, calls, created, updated)
}

async fn ci_load(latency: Duration) {
    let started = Instant::now();
    let (reactions, _, _, _) = ci_load_run(latency, 4).await;
    let ms = |d: &Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    println!(
        "GitHub answering in {} ms; 480 check_run deliveries at 40/s, 4 /deploy meanwhile:",
        latency.as_millis()
    );
    println!(
        "  /deploy first reaction: {}",
        reactions.iter().map(ms).collect::<Vec<_>>().join(", ")
    );
    let (_, calls, created, updated) = ci_load_run(latency, 0).await;
    println!(
        "  check runs alone: {calls} GitHub API calls for 480 deliveries ({:.2} per delivery); shipgate/policy check runs created {created}, updated {updated}",
        calls as f64 / 480.0
    );
    println!("  wall time {:.1} s", started.elapsed().as_secs_f64());
}
