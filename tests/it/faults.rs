//! Faults and bad input: slow or hostile HTTP clients, and GitHub failing in
//! the ways it does (5xx after the effect, timeouts, expired installation
//! tokens) — handled with bounded retries and without duplicate effects.

use crate::common;

use std::time::Duration;

use common::{fast_retry, FakeGitHub, Harness};
use reqwest::StatusCode;
use shipgate::store::DeliveryState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const REPO: &str = "acme/app";
const CONFIG_PATH: &str = ".github/shipgate.yml";
const CONFIG: &str = "environments:\n  staging:\n    deployers: write\n    required_checks: [ci]\n";

/// Reads until the server closes the connection (or `limit` passes) and
/// returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server kept the connection open longer than {limit:?}"));
    String::from_utf8_lossy(&out).into_owned()
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

// ---- slow and hostile clients

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    let t = Harness::start_with(&[("SHIPGATE_HEADER_TIMEOUT_SECS", "1")]).await;
    let mut slow = TcpStream::connect(t.server.addr).await.unwrap();
    slow.write_all(b"POST /webhook HTTP/1.1\r\nHost: shipgate\r\nX-GitHub-Event: ping\r\n")
        .await
        .unwrap();
    read_until_closed(&mut slow, Duration::from_secs(10)).await;

    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(t.server.addr).await.unwrap();
    read_until_closed(&mut silent, Duration::from_secs(10)).await;
    t.finish().await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_nothing_is_stored() {
    let t = Harness::start_with(&[("SHIPGATE_BODY_TIMEOUT_SECS", "1")]).await;
    let mut slow = TcpStream::connect(t.server.addr).await.unwrap();
    slow.write_all(
        b"POST /webhook HTTP/1.1\r\nHost: shipgate\r\nContent-Type: application/json\r\n\
          X-GitHub-Event: ping\r\nX-GitHub-Delivery: slow-1\r\nContent-Length: 1000\r\n\r\n{\"zen\":",
    )
    .await
    .unwrap();
    let response = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(
        status_line(&response).starts_with("HTTP/1.1 408"),
        "{response}"
    );
    assert!(
        response.contains("the body did not arrive within 1 s"),
        "{response}"
    );
    assert_eq!(t.state_of("slow-1").await, None);
    t.finish().await;
}

#[tokio::test]
async fn an_oversized_declared_body_is_refused_before_it_is_sent() {
    // The body timeout is long: an answer within seconds proves the server
    // did not wait for (or read) the 100 MiB.
    let t = Harness::start_with(&[("SHIPGATE_BODY_TIMEOUT_SECS", "120")]).await;
    let mut big = TcpStream::connect(t.server.addr).await.unwrap();
    big.write_all(
        b"POST /webhook HTTP/1.1\r\nHost: shipgate\r\nContent-Type: application/json\r\n\
          X-GitHub-Event: ping\r\nX-GitHub-Delivery: big-1\r\nContent-Length: 104857600\r\n\r\n",
    )
    .await
    .unwrap();
    let response = read_until_closed(&mut big, Duration::from_secs(10)).await;
    assert!(
        status_line(&response).starts_with("HTTP/1.1 413"),
        "{response}"
    );
    assert!(response.contains("body exceeds 25 MiB"), "{response}");
    t.finish().await;
}

#[tokio::test]
async fn garbage_instead_of_http_gets_400() {
    let t = Harness::start().await;
    let mut garbage = TcpStream::connect(t.server.addr).await.unwrap();
    garbage
        .write_all(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
        .await
        .unwrap();
    let response = read_until_closed(&mut garbage, Duration::from_secs(10)).await;
    assert!(
        status_line(&response).starts_with("HTTP/1.1 400"),
        "{response:?}"
    );
    t.finish().await;
}

#[tokio::test]
async fn beyond_the_in_flight_limit_webhooks_get_an_immediate_503() {
    use sqlx::Connection;
    // The in-flight permits guard verifying and storing (a slow body holds
    // none): hold the only one with a delivery whose store write waits for
    // a lock this test takes on the database.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shipgate.db");
    let url = format!("sqlite://{}", db.display());
    let t = Harness::start_with(&[("SHIPGATE_MAX_IN_FLIGHT", "1"), ("DATABASE_URL", &url)]).await;
    t.gh.add_repo(REPO, &[(CONFIG_PATH, CONFIG)]);
    let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    let first = {
        let (http, url) = (t.http.clone(), t.url("/webhook"));
        let body = serde_json::to_vec(&t.gh.push_payload(REPO, "main", &[CONFIG_PATH])).unwrap();
        tokio::spawn(async move { common::post_signed(&http, &url, "push", "held", body).await })
    };
    common::eventually(
        "the first delivery holds the slot while it is stored",
        || async {
            t.metric("shipgate_webhooks_in_flight").await == 1.0
                && t.metric("shipgate_webhook_bodies_reading").await == 0.0
        },
    )
    .await;

    let (status, body) = t.send("ping", &serde_json::json!({ "zen": "busy" })).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body["error"],
        "too many webhook requests in flight; redeliver it later"
    );
    assert_eq!(
        t.metric("shipgate_deliveries_rejected_total{reason=\"busy\"}")
            .await,
        1.0
    );

    // The lock goes; the first delivery is stored and the slot is free again.
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    let (status, _) = first.await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED);
    common::eventually("the slot is released", || async {
        t.metric("shipgate_webhooks_in_flight").await == 0.0
    })
    .await;
    let (status, _) = t.send("ping", &serde_json::json!({ "zen": "free" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    t.finish().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let t = Harness::start_with(&[
        ("SHIPGATE_MAX_CONNECTIONS", "2"),
        ("SHIPGATE_HEADER_TIMEOUT_SECS", "120"),
    ])
    .await;
    // The harness's own client may hold a keep-alive connection from the
    // start; use fresh clients and two idle raw connections.
    let idle_a = TcpStream::connect(t.server.addr).await.unwrap();
    let idle_b = TcpStream::connect(t.server.addr).await.unwrap();
    let url = t.url("/healthz");
    let third = tokio::spawn(async move {
        reqwest::Client::new()
            .get(url)
            .send()
            .await
            .map(|r| r.status())
    });
    // Not answered while both slots are taken (a bounded look, not a sync).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "a third connection was served");
    drop(idle_a);
    let status = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("served once a slot freed")
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    drop(idle_b);
    t.finish().await;
}

// ---- GitHub failing

/// Opens a PR from `branch` (the repository exists), delivers its `opened`
/// event, waits for the deliveries to settle, and returns the PR and how its
/// delivery ended.
async fn open_pr_and_settle(t: &Harness, branch: &str) -> (u64, shipgate::store::DeliveryStatus) {
    t.gh.commit(REPO, branch, &[("f.txt", Some(branch))]);
    let pr = t.gh.open_pr(REPO, branch, "alice");
    let (_, body) = t
        .send(
            "pull_request",
            &t.gh.pull_request_payload(REPO, pr, "opened"),
        )
        .await;
    t.settle().await;
    let state = t
        .state_of(body["delivery"].as_str().unwrap())
        .await
        .unwrap();
    (pr, state)
}

fn deployable_pr(t: &Harness) -> u64 {
    t.gh.add_repo(REPO, &[(CONFIG_PATH, CONFIG)]);
    t.gh.commit(REPO, "feature", &[("f.txt", Some("x"))]);
    let pr = t.gh.open_pr(REPO, "feature", "alice");
    let head = t.gh.pr(REPO, pr).head_sha;
    t.gh.set_role(REPO, "alice", "write");
    t.gh.check_run(REPO, &head, "ci", "completed", Some("success"));
    pr
}

#[tokio::test]
async fn a_reply_whose_post_answers_502_after_taking_effect_is_not_posted_twice() {
    let t = Harness::start().await;
    let pr = deployable_pr(&t);
    let comments = format!("/repos/{REPO}/issues/{pr}/comments");
    t.gh.fail_after_effect("POST", &comments, 1, 502);

    t.comment(REPO, pr, "alice", "/help").await;
    t.settle().await;
    assert_eq!(
        t.gh.bot_comments(REPO, pr).len(),
        1,
        "one reply, though its POST answered 502"
    );
    t.gh.next_bot_comment(REPO, pr);
    assert_eq!(
        t.gh.requests_to("POST", &comments).len(),
        1,
        "the POST is not repeated inline; the delivery's retry found the reply"
    );
    t.finish().await;
}

#[tokio::test]
async fn a_deployment_whose_answer_times_out_is_created_once() {
    let mut retry = fast_retry();
    retry.request_timeout = Duration::from_millis(300);
    let t = Harness::start_with_retry(FakeGitHub::start().await, &[], retry).await;
    let pr = deployable_pr(&t);
    let deployments = format!("/repos/{REPO}/deployments");
    t.gh.delay_after_effect("POST", &deployments, 1, Duration::from_secs(2));

    t.comment(REPO, pr, "alice", "/deploy staging").await;
    t.settle().await;
    assert_eq!(
        t.gh.deployments(REPO).len(),
        1,
        "one deployment, though the first answer never came in time"
    );
    assert_eq!(t.gh.requests_to("POST", &deployments).len(), 1);
    let reply = t.gh.next_bot_comment(REPO, pr);
    assert!(
        reply.body.contains("Deploy to `staging` created"),
        "{}",
        reply.body
    );
    t.finish().await;
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    // 4 tries per call (fast_retry) × 2 delivery attempts, then failed.
    let t = Harness::start_with(&[("SHIPGATE_MAX_ATTEMPTS", "2")]).await;
    t.gh.add_repo(REPO, &[(CONFIG_PATH, CONFIG)]);
    let contents = format!("/repos/{REPO}/contents/{CONFIG_PATH}");
    t.gh.fail_next("GET", &contents, 100, 500);

    let (_, state) = open_pr_and_settle(&t, "feature").await;
    assert_eq!(state.state, DeliveryState::Failed);
    assert_eq!(state.attempts, 2);
    assert_eq!(t.gh.requests_to("GET", &contents).len(), 8);
    t.finish().await;
}

#[tokio::test]
async fn an_installation_token_github_refuses_is_renewed_once() {
    let t = Harness::start_with(&common::app_auth(&[("SHIPGATE_REDELIVER", "false")])).await;
    t.gh.add_repo(REPO, &[(CONFIG_PATH, CONFIG)]);
    let (_, state) = open_pr_and_settle(&t, "one").await;
    assert_eq!(state.state, DeliveryState::Done);
    let exchanges = "/app/installations/42/access_tokens";
    assert_eq!(t.gh.requests_to("POST", exchanges).len(), 1);

    // GitHub revokes the token before octocrab thinks it expires.
    t.gh.expire_installation_tokens();
    let (second, state) = open_pr_and_settle(&t, "two").await;
    assert_eq!(state.state, DeliveryState::Done, "{:?}", state.last_error);
    assert_eq!(state.attempts, 1, "renewed within the same attempt");
    assert_eq!(t.gh.requests_to("POST", exchanges).len(), 2, "one renewal");
    let refused =
        t.gh.with(|w| w.requests.iter().filter(|r| r.status == 401).count());
    assert_eq!(refused, 1, "only the first call with the old token failed");
    let head = t.gh.pr(REPO, second).head_sha;
    assert_eq!(t.gh.statuses(REPO, &head).len(), 1);

    // A 401 that persists after renewal is not retried in a loop.
    let contents = format!("/repos/{REPO}/contents/{CONFIG_PATH}");
    t.gh.fail_next("GET", &contents, 100, 401);
    let before = t.gh.requests_to("GET", &contents).len();
    let (_, state) = open_pr_and_settle(&t, "three").await;
    assert_eq!(state.state, DeliveryState::Failed);
    assert!(state.last_error.unwrap().contains("401"));
    // Per ref read: the call and one retry with a renewed token (octocrab
    // drops a refused installation token and retries once).
    let mut per_ref = std::collections::BTreeMap::<String, usize>::new();
    for r in &t.gh.requests_to("GET", &contents)[before..] {
        *per_ref.entry(r.query.clone()).or_default() += 1;
    }
    assert!(!per_ref.is_empty());
    for (query, calls) in &per_ref {
        assert_eq!(*calls, 2, "reads of {query:?}: {per_ref:?}");
    }
    t.finish().await;
}

#[tokio::test]
async fn on_a_busy_pr_a_reply_posted_before_a_failure_is_still_found() {
    // The newest comments are on the last pages: with 350 comments before
    // the command, a search of the first pages would miss the reply.
    let t = Harness::start().await;
    let pr = deployable_pr(&t);
    for i in 0..350 {
        t.gh.add_comment(REPO, pr, "bob", &format!("comment {i}"));
    }
    let comments = format!("/repos/{REPO}/issues/{pr}/comments");
    t.gh.fail_after_effect("POST", &comments, 1, 502);

    t.comment(REPO, pr, "alice", "/help").await;
    t.settle().await;
    assert_eq!(t.gh.bot_comments(REPO, pr).len(), 1);
    t.gh.next_bot_comment(REPO, pr);
    assert_eq!(t.gh.requests_to("POST", &comments).len(), 1);
    t.finish().await;
}
