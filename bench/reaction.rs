//! Reaction benchmark: time from a `/deploy` comment's webhook being sent to
//! the fake GitHub receiving shipgate's first API call for it (the 👀
//! reaction), and the GitHub API calls each `/deploy` makes.
//!
//! `cargo bench --bench reaction` (optionally `-- 500` for the number of
//! commands). The fake GitHub answers at once; the server runs in process on
//! a fresh SQLite file, as `shipgate serve` does by default.

#[path = "../tests/common/mod.rs"]
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
