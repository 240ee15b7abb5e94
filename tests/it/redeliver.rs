//! The redelivery sweeper against the fake GitHub's App delivery log: failed
//! deliveries shipgate never stored come back by themselves, once.

use crate::common;

use common::{app_auth, FakeGitHub, Harness, SECRET};

const REPO: &str = "acme/app";
const CONFIG_PATH: &str = ".github/shipgate.yml";
const CONFIG: &str = "environments:\n  staging: {}\n";
const HOUR: i64 = 3600;

/// A PR in a repository with a config; its `opened` payload.
fn pr_payload(gh: &FakeGitHub, branch: &str) -> (serde_json::Value, String) {
    if gh.with(|w| !w.repos.contains_key(REPO)) {
        gh.add_repo(REPO, &[(CONFIG_PATH, CONFIG)]);
    }
    gh.commit(REPO, branch, &[("f.txt", Some(branch))]);
    let pr = gh.open_pr(REPO, branch, "alice");
    (
        gh.pull_request_payload(REPO, pr, "opened"),
        gh.pr(REPO, pr).head_sha,
    )
}

#[tokio::test]
async fn a_delivery_missed_while_shipgate_was_down_is_redelivered_once() {
    let gh = FakeGitHub::start().await;
    // Missed: GitHub got no answer (shipgate was down) an hour ago.
    let (missed, missed_sha) = pr_payload(&gh, "missed");
    let missed_id = gh.log_hook_delivery("guid-missed", "pull_request", &missed, 502, HOUR);
    // Delivered fine.
    let (ok, _) = pr_payload(&gh, "ok");
    gh.log_hook_delivery("guid-ok", "pull_request", &ok, 202, 2 * HOUR);
    // Failed, but older than GitHub's 3-day redelivery window.
    let (old, _) = pr_payload(&gh, "old");
    gh.log_hook_delivery("guid-old", "pull_request", &old, 502, 80 * HOUR);
    // Failed, but no handler wants the event.
    gh.log_hook_delivery(
        "guid-star",
        "star",
        &serde_json::json!({ "action": "created", "installation": { "id": 42 } }),
        502,
        HOUR,
    );
    // Redelivered three times already and still failing: given up.
    let (hopeless, _) = pr_payload(&gh, "hopeless");
    gh.log_hook_delivery("guid-hopeless", "pull_request", &hopeless, 502, 3 * HOUR);
    for age in [3, 2, 1] {
        let id = gh.log_hook_delivery(
            "guid-hopeless",
            "pull_request",
            &hopeless,
            500,
            age * HOUR - 60,
        );
        gh.with_mut_hook(id, |d| d.redelivery = true);
    }

    let t = Harness::start_with_github(gh, &app_auth(&[("SHIPGATE_REDELIVER_INTERVAL_SECS", "1")]))
        .await;
    // shipgate's first sweep runs at start and asks for the missed one; GitHub
    // (the fake) holds the redelivery until it can reach shipgate.
    common::eventually("the first sweep asked", || async {
        !t.gh.redelivery_requests().is_empty()
    })
    .await;
    // Stored, but GitHub never saw the answer (it timed out on its side).
    let (stored, _) = pr_payload(&t.gh, "stored");
    t.send_with_id("pull_request", "guid-stored", &stored).await;
    t.gh.log_hook_delivery("guid-stored", "pull_request", &stored, 502, 0);
    // Two more sweeps see the stored one and the pending redelivery.
    let sweeps = t
        .metric("shipgate_redelivery_sweeps_total{outcome=\"done\"}")
        .await;
    common::eventually("two more sweeps", || async {
        t.metric("shipgate_redelivery_sweeps_total{outcome=\"done\"}")
            .await
            >= sweeps + 2.0
    })
    .await;

    t.gh.set_hook_target(&t.url("/webhook"), SECRET);
    t.gh.wait_for("the missed delivery's status", |w| {
        w.repo(REPO).statuses.iter().any(|s| s.sha == missed_sha)
    })
    .await;
    t.settle().await;
    assert_eq!(
        t.gh.redelivery_requests(),
        vec![missed_id],
        "only the missed delivery is asked for"
    );
    assert_eq!(
        t.state_of("guid-missed").await.unwrap().state,
        shipgate::store::DeliveryState::Done
    );
    assert_eq!(
        t.metric("shipgate_redeliveries_total{outcome=\"requested\"}")
            .await,
        1.0
    );
    t.finish().await;
}

#[tokio::test]
async fn the_next_sweep_asks_for_nothing_already_redelivered() {
    let gh = FakeGitHub::start().await;
    let (missed, _) = pr_payload(&gh, "missed");
    gh.log_hook_delivery("guid-missed", "pull_request", &missed, 502, HOUR);
    let t = Harness::start_with_github(gh, &app_auth(&[("SHIPGATE_REDELIVER_INTERVAL_SECS", "1")]))
        .await;
    t.gh.set_hook_target(&t.url("/webhook"), SECRET);
    // The redelivery succeeded and shows in the log as a 2xx attempt.
    t.gh.wait_for("the redelivery is logged", |w| {
        w.hook_deliveries.iter().any(|d| d.redelivery)
    })
    .await;
    let sweeps = t
        .metric("shipgate_redelivery_sweeps_total{outcome=\"done\"}")
        .await;
    common::eventually("two more sweeps", || async {
        t.metric("shipgate_redelivery_sweeps_total{outcome=\"done\"}")
            .await
            >= sweeps + 2.0
    })
    .await;
    assert_eq!(t.gh.redelivery_requests().len(), 1);
    t.settle().await;
    t.finish().await;
}

#[tokio::test]
async fn the_sweeper_pages_with_the_cursor_and_is_bounded_per_sweep() {
    let gh = FakeGitHub::start().await;
    // Five missed deliveries, older than 250 that went fine.
    let mut missed = Vec::new();
    for i in 0..5 {
        let (p, _) = pr_payload(&gh, &format!("missed-{i}"));
        missed.push(gh.log_hook_delivery(
            &format!("guid-missed-{i}"),
            "pull_request",
            &p,
            502,
            10 * HOUR + i,
        ));
    }
    let ping = serde_json::json!({ "zen": "ok", "hook_id": 1 });
    for i in 0..250 {
        gh.log_hook_delivery(&format!("guid-fine-{i}"), "ping", &ping, 200, HOUR);
    }
    let t = Harness::start_with_github(gh, &app_auth(&[("SHIPGATE_REDELIVER_MAX", "2")])).await;
    common::eventually("the first sweep asks for two", || async {
        t.gh.redelivery_requests().len() == 2
    })
    .await;
    let listed = t.gh.requests_to("GET", "/app/hook/deliveries");
    assert_eq!(listed.len(), 3, "255 deliveries, 100 per page");
    assert!(listed[0].query.contains("per_page=100"));
    assert!(
        listed[1].query.contains("cursor=v1_100"),
        "{}",
        listed[1].query
    );
    assert!(
        listed[2].query.contains("cursor=v1_200"),
        "{}",
        listed[2].query
    );
    // Newest missed first.
    assert_eq!(t.gh.redelivery_requests(), vec![missed[0], missed[1]]);
    t.gh.set_hook_target(&t.url("/webhook"), SECRET);
    t.gh.wait_for("both redeliveries logged", |w| {
        w.hook_deliveries.iter().filter(|d| d.redelivery).count() == 2
    })
    .await;
    t.settle().await;
    t.finish().await;
}

#[tokio::test]
async fn two_replicas_on_one_postgres_sweep_once() {
    let gh = FakeGitHub::start().await;
    let (missed, _) = pr_payload(&gh, "missed");
    gh.log_hook_delivery("guid-missed", "pull_request", &missed, 502, HOUR);
    let db: &'static str = Box::leak(postgres_or_skip!().into_boxed_str());
    let a = Harness::start_with_github(gh.clone(), &app_auth(&[("DATABASE_URL", db)])).await;
    common::eventually("replica A swept", || async {
        a.metric("shipgate_redelivery_sweeps_total{outcome=\"done\"}")
            .await
            == 1.0
    })
    .await;
    let b = Harness::start_with_github(gh.clone(), &app_auth(&[("DATABASE_URL", db)])).await;
    common::eventually("replica B found A's lease", || async {
        b.metric("shipgate_redelivery_sweeps_total{outcome=\"skipped\"}")
            .await
            == 1.0
    })
    .await;
    assert_eq!(gh.requests_to("GET", "/app/hook/deliveries").len(), 1);
    assert_eq!(gh.redelivery_requests().len(), 1);
    gh.set_hook_target(&a.url("/webhook"), SECRET);
    gh.wait_for("redelivered", |w| {
        w.hook_deliveries.iter().any(|d| d.redelivery)
    })
    .await;
    a.finish().await;
    b.finish().await;
}

#[tokio::test]
async fn the_sweeper_is_off_with_shipgate_redeliver_false() {
    let gh = FakeGitHub::start().await;
    let (missed, sha) = pr_payload(&gh, "missed");
    gh.log_hook_delivery("guid-missed", "pull_request", &missed, 502, HOUR);
    let t = Harness::start_with_github(gh, &app_auth(&[("SHIPGATE_REDELIVER", "false")])).await;
    // Something that is processed after start, to have waited past it.
    let (other, _) = pr_payload(&t.gh, "other");
    t.send("pull_request", &other).await;
    t.settle().await;
    assert!(t.gh.requests_to("GET", "/app/hook/deliveries").is_empty());
    assert!(t.gh.redelivery_requests().is_empty());
    assert!(t.gh.statuses(REPO, &sha).is_empty());
    t.finish().await;
}
