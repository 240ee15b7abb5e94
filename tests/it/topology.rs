//! The topology of deploy/docker-compose.yml with real processes: two
//! `shipgate serve` (the built binary) on one PostgreSQL, deploy/haproxy.cfg
//! in front of them (addresses rewritten to loopback), the fake GitHub
//! behind. One replica is killed with SIGKILL in the middle of the load.
//!
//! haproxy must be installed (`.ci/run` installs it with apt-get); the test
//! fails, not skips, when it is missing. The deploy/ files' metric names are
//! checked against the registry here as well.

use crate::common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Child, FakeGitHub};
use reqwest::StatusCode;
use shipgate::config::settings::DatabaseUrl;
use shipgate::store::DeliveryState;

const CONFIG: &str = ".github/shipgate.yml";
const VALID_CONFIG: &str = "environments:\n  staging: {}\n";
const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

fn haproxy_binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|dir| dir.join("haproxy"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "haproxy is not installed: tests/topology.rs runs deploy/haproxy.cfg with it \
             (CI installs it in .ci/run; here: apt-get install -y haproxy)"
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// haproxy running deploy/haproxy.cfg with the replicas at `a` and `b`.
struct Haproxy {
    _process: tokio::process::Child,
    port: u16,
    stats_port: u16,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    async fn start(a: &str, b: &str) -> Haproxy {
        let shipped = std::fs::read_to_string(format!("{DEPLOY}/haproxy.cfg")).unwrap();
        let (port, stats_port) = (free_port(), free_port());
        let mut cfg = shipped.clone();
        for (from, to) in [
            ("server a shipgate-a:3000", format!("server a {a}")),
            ("server b shipgate-b:3000", format!("server b {b}")),
            ("bind :3000", format!("bind 127.0.0.1:{port}")),
            ("bind :8404", format!("bind 127.0.0.1:{stats_port}")),
        ] {
            assert_eq!(
                cfg.matches(from).count(),
                1,
                "deploy/haproxy.cfg spells `{from}` once (this test rewrites it)"
            );
            cfg = cfg.replace(from, &to);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let process = tokio::process::Command::new(haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy starts");
        Haproxy {
            _process: process,
            port,
            stats_port,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Each replica's state as haproxy's health checks see it (`UP`, `DOWN`…).
    async fn servers(&self, http: &reqwest::Client) -> Option<Vec<(String, String)>> {
        let csv = http
            .get(format!("http://127.0.0.1:{}/stats;csv", self.stats_port))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(
            csv.lines()
                .filter(|l| l.starts_with("shipgate,"))
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(',').collect();
                    (f[1] != "BACKEND").then(|| (f[1].to_string(), f[17].to_string()))
                })
                .collect(),
        )
    }

    async fn wait_for_servers(&self, http: &reqwest::Client, want: &[(&str, &str)]) {
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(s, st)| (s.to_string(), st.to_string()))
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self.servers(http).await;
            if seen.as_ref() == Some(&want) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "haproxy's servers: want {want:?}, see {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One signed webhook through haproxy; `None` when the connection failed.
async fn post(
    http: &reqwest::Client,
    url: &str,
    delivery: &str,
    body: &[u8],
) -> Option<StatusCode> {
    let sig = shipgate::github::signature::sign(common::SECRET.as_bytes(), body);
    http.post(url)
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sig)
        .body(body.to_vec())
        .send()
        .await
        .ok()
        .map(|r| r.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_behind_haproxy_lose_and_double_nothing_when_one_is_killed() {
    // Before anything starts: a missing haproxy fails with its reason.
    haproxy_binary();
    let gh = FakeGitHub::start().await;
    let repos: Vec<String> = (0..6).map(|i| format!("acme/svc{i}")).collect();
    // In the conformance run one prism process validates every request in
    // turn: a smaller load, and more time to process it.
    let (per_repo, limit) = if gh.conformance() {
        (10, Duration::from_secs(120))
    } else {
        (40, Duration::from_secs(60))
    };
    let mut prs = Vec::new();
    for repo in &repos {
        gh.add_repo(repo, &[(CONFIG, VALID_CONFIG)]);
        for i in 0..per_repo {
            let branch = format!("feature-{i}");
            gh.commit(repo, &branch, &[("f.txt", Some(&format!("{i}")))]);
            let pr = gh.open_pr(repo, &branch, "alice");
            let payload = gh.pull_request_payload(repo, pr, "opened");
            prs.push((
                repo.clone(),
                serde_json::to_vec(&payload).unwrap(),
                gh.pr(repo, pr).head_sha,
            ));
        }
    }
    let total = prs.len();
    // The senders' share; the rest is sent once haproxy has taken the killed
    // replica out.
    let first_phase = total - total / 6;

    let db = postgres_or_skip!();
    // A short lease, so the killed replica's claims are taken over soon.
    let env = [
        ("SHIPGATE_HANDLER_TIMEOUT_SECS", "2"),
        ("SHIPGATE_LEASE_SECS", "3"),
    ];
    let a = Child::serve(&gh, &db, &env).await;
    let b = Child::serve(&gh, &db, &env).await;
    let haproxy = Haproxy::start(&a.addr, &b.addr).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    haproxy
        .wait_for_servers(&http, &[("a", "UP"), ("b", "UP")])
        .await;

    // Eight senders, like GitHub: each delivery is sent until it is
    // acknowledged (202 stored, or 200 already stored), as GitHub's
    // redelivery would. Replica `a` is killed a third of the way through.
    let prs = Arc::new(prs);
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let url = haproxy.url("/webhook");
    let mut senders = Vec::new();
    for _ in 0..8 {
        let (prs, next, acknowledged, http, url) = (
            prs.clone(),
            next.clone(),
            acknowledged.clone(),
            http.clone(),
            url.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((_, body, _)) = prs.get(i).filter(|_| i < first_phase) else {
                    return failures;
                };
                let delivery = format!("pr-{i}");
                let mut tries = 0;
                loop {
                    tries += 1;
                    match post(&http, &url, &delivery, body).await {
                        Some(StatusCode::ACCEPTED | StatusCode::OK) => break,
                        other => {
                            failures.push((i, other));
                            assert!(tries < 20, "{delivery} never acknowledged: {other:?}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                acknowledged.fetch_add(1, Ordering::SeqCst);
                // About 300 deliveries a second from all senders, so the
                // load goes on while the replica dies.
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }));
    }
    common::eventually("a third of the deliveries acknowledged", || async {
        acknowledged.load(Ordering::SeqCst) >= total / 3
    })
    .await;
    let killed_at = acknowledged.load(Ordering::SeqCst);
    a.kill_hard().await;
    let after_kill = acknowledged.load(Ordering::SeqCst);

    // haproxy takes the dead replica out and keeps routing to the other.
    haproxy
        .wait_for_servers(&http, &[("a", "DOWN"), ("b", "UP")])
        .await;
    let down_at = acknowledged.load(Ordering::SeqCst);
    let mut failures = Vec::new();
    for s in senders {
        failures.extend(s.await.unwrap());
    }
    assert_eq!(acknowledged.load(Ordering::SeqCst), first_phase);
    assert!(
        after_kill < first_phase,
        "the kill came in the middle of the load ({killed_at}..{after_kill} of {first_phase} acknowledged)"
    );
    // With `a` out of the rotation, every delivery is stored on its first
    // try: nothing is routed to the dead replica any more.
    let late: Vec<_> = (first_phase..total)
        .map(|i| {
            let (http, url, body) = (http.clone(), url.clone(), prs[i].1.clone());
            tokio::spawn(async move { (i, post(&http, &url, &format!("pr-{i}"), &body).await) })
        })
        .collect();
    for send in late {
        let (i, status) = send.await.unwrap();
        assert_eq!(
            status,
            Some(StatusCode::ACCEPTED),
            "pr-{i} after `a` was out"
        );
    }
    let health = http.get(haproxy.url("/readyz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // Every delivery is processed, each once in effect: one status per pull
    // request's head, written by one POST; the killed replica's claims were
    // taken over by the other after their lease.
    let deadline = tokio::time::Instant::now() + limit;
    while !gh.with(|w| {
        prs.iter()
            .all(|(repo, _, sha)| w.repo(repo).statuses.iter().any(|s| &s.sha == sha))
    }) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no status on every pull request within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let store = shipgate::store::connect(&DatabaseUrl::new(db))
        .await
        .unwrap();
    while store.queue_depth().await.unwrap() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queue did not drain within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = store
        .list_deliveries(&shipgate::store::DeliveryFilter {
            state: None,
            repository: None,
            limit: 10_000,
        })
        .await
        .unwrap();
    // Webhooks, and the internal deliveries handlers stored for them.
    let webhooks = stored
        .iter()
        .filter(|d| d.delivery_id.starts_with("pr-"))
        .count();
    assert_eq!(webhooks, total, "each delivery stored once");
    for d in &stored {
        assert_eq!(d.state, DeliveryState::Done, "{d:?}");
    }
    for i in 0..total {
        let st = store
            .delivery_status(&format!("pr-{i}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("pr-{i} was acknowledged, so it is stored"));
        assert_eq!(st.state, DeliveryState::Done, "pr-{i}: {st:?}");
        assert!((1..=2).contains(&st.attempts), "pr-{i}: {st:?}");
    }
    let retried = stored.iter().filter(|d| d.attempts > 1).count();
    eprintln!(
        "topology: {total} deliveries; `a` killed at {killed_at}..{after_kill} acknowledged, \
         out of haproxy's rotation at {down_at}; {} sends refused or failed, {retried} \
         deliveries claimed again after the kill",
        failures.len()
    );
    for (repo, _, sha) in prs.iter() {
        assert_eq!(gh.statuses(repo, sha).len(), 1, "{repo}@{sha}");
        assert_eq!(
            gh.requests_to("POST", &format!("/repos/{repo}/statuses/{sha}"))
                .len(),
            1,
            "{repo}@{sha} written once"
        );
    }
    let metrics = common::metrics_text(&http, b.url("/metrics")).await;
    assert!(
        common::metric_value(
            &metrics,
            r#"shipgate_deliveries_processed_total{outcome="done"}"#
        ) > 0.0
    );
    assert_eq!(
        common::metric_value(&metrics, "shipgate_queue_oldest_age_seconds"),
        0.0
    );
    // The fake, like GitHub, reports the rate limit left on each answer.
    let remaining = common::metric_value(
        &metrics,
        r#"shipgate_github_rate_limit_remaining{resource="core"}"#,
    );
    assert!((1.0..5000.0).contains(&remaining), "{metrics}");
    assert!(
        common::metric_value(
            &metrics,
            r#"shipgate_handler_run_duration_seconds_count{handler="config_check"}"#
        ) > 0.0,
        "{metrics}"
    );
    drop(haproxy);
    b.terminate().await;
    gh.assert_no_unexpected();
}

// ------------------------------------------------------ the deploy/ files

/// `shipgate_…` names in `text`, without histogram suffixes.
fn metric_names(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"shipgate_[a-z_]+").unwrap();
    let mut names: Vec<String> = re
        .find_iter(text)
        .map(|m| {
            let n = m.as_str();
            ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n)
                .to_string()
        })
        .filter(|n| n != "shipgate_lock_released")
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_alerts_and_the_dashboard_name_only_metrics_that_exist_and_the_readme_lists_them_all() {
    let known = shipgate::metrics::Metrics::new().names();
    let alerts = std::fs::read_to_string(format!("{DEPLOY}/prometheus/alerts.yml")).unwrap();
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(&alerts).unwrap();
    let rules = rules["groups"][0]["rules"].as_sequence().unwrap();
    let alert_names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    for needed in [
        "ShipgateQueueStalled",
        "ShipgateDeliveriesFailed",
        "ShipgateGitHubRateLimitLow",
        "ShipgateReplicaDown",
    ] {
        assert!(alert_names.contains(&needed), "{needed} in {alert_names:?}");
    }
    for r in rules {
        assert!(r["expr"].as_str().is_some_and(|e| !e.is_empty()));
        assert!(r["annotations"]["summary"].as_str().is_some());
    }
    let dashboard = std::fs::read_to_string(format!("{DEPLOY}/grafana/shipgate.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert!(dash["panels"].as_array().unwrap().len() >= 8);
    for (file, text) in [("alerts.yml", &alerts), ("shipgate.json", &dashboard)] {
        for name in metric_names(text) {
            assert!(
                known.contains(&name),
                "{file} names {name}, which /metrics does not have"
            );
        }
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for name in &known {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README's metrics table lacks {name}"
        );
    }
    let compose = std::fs::read_to_string(format!("{DEPLOY}/docker-compose.yml")).unwrap();
    let compose: serde_yaml_ng::Value = serde_yaml_ng::from_str(&compose).unwrap();
    for service in ["postgres", "shipgate-a", "shipgate-b", "haproxy"] {
        assert!(
            compose["services"][service].is_mapping(),
            "docker-compose.yml has {service}"
        );
    }
}
