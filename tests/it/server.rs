//! Stories through the real `/webhook` path, against the fake GitHub.

use crate::common;

use common::{Harness, SECRET};
use reqwest::StatusCode;
use serde_json::json;
use shipgate::store::DeliveryState;

const VALID_CONFIG: &str = "environments:\n  staging:\n    url: https://staging.example.com\n";
const CONFIG: &str = ".github/shipgate.yml";

async fn raw_post(
    t: &Harness,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let mut req = t.http.post(t.url("/webhook"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

fn signed_headers<'a>(event: &'a str, delivery: &'a str, sig: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("content-type", "application/json"),
        ("x-github-event", event),
        ("x-github-delivery", delivery),
        ("x-hub-signature-256", sig),
    ]
}

// ---------------------------------------------------------------- ingress

#[tokio::test]
async fn githubs_documented_signature_vector_is_accepted_over_http() {
    let t = Harness::start_with(&[("SHIPGATE_WEBHOOK_SECRET", "It's a Secret to Everybody")]).await;
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let (status, body) = raw_post(
        &t,
        &signed_headers("push", "vector", sig),
        b"Hello, World!".to_vec(),
    )
    .await;
    // The signature holds, so the request gets as far as the JSON check.
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a JSON object"),
        "{body}"
    );
    t.finish().await;
}

#[tokio::test]
async fn any_secret_in_the_rotation_list_is_accepted() {
    let t = Harness::start_with(&[("SHIPGATE_WEBHOOK_SECRET", "new-secret,old-secret")]).await;
    for secret in ["new-secret", "old-secret"] {
        let body = br#"{"zen":"Design for failure.","hook_id":1}"#.to_vec();
        let sig = shipgate::github::signature::sign(secret.as_bytes(), &body);
        let (status, _) = raw_post(&t, &signed_headers("ping", secret, &sig), body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "signed with {secret}");
    }
    t.finish().await;
}

#[tokio::test]
async fn bad_signatures_get_401_and_nothing_is_stored() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    let body = serde_json::to_vec(&t.gh.push_payload("acme/app", "main", &[CONFIG])).unwrap();
    let wrong = shipgate::github::signature::sign(b"not the secret", &body);
    let cases: Vec<(&str, Option<String>)> = vec![
        ("wrong-secret", Some(wrong)),
        ("missing", None),
        ("malformed", Some("sha256=xyz".into())),
        (
            "sha1",
            Some("sha1=0123456789abcdef0123456789abcdef01234567".into()),
        ),
    ];
    for (id, sig) in cases {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-github-event", "push"),
            ("x-github-delivery", id),
        ];
        if let Some(s) = &sig {
            headers.push(("x-hub-signature-256", s.as_str()));
        }
        let (status, body_json) = raw_post(&t, &headers, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{id}: {body_json}");
        assert!(t.state_of(id).await.is_none(), "{id} must not be stored");
    }
    assert_eq!(
        t.metric(r#"shipgate_deliveries_rejected_total{reason="signature"}"#)
            .await,
        4.0
    );
    assert!(
        t.gh.with(|w| w.requests.iter().all(|r| r.path == "/user")),
        "no GitHub calls for refused deliveries"
    );
    t.finish().await;
}

#[tokio::test]
async fn malformed_requests_get_specific_errors() {
    let t = Harness::start().await;
    let body = br#"{"action":"opened"}"#.to_vec();
    let sig = shipgate::github::signature::sign(SECRET.as_bytes(), &body);

    let (s, b) = raw_post(
        &t,
        &[
            ("content-type", "application/json"),
            ("x-github-delivery", "d1"),
            ("x-hub-signature-256", &sig),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "missing X-GitHub-Event header")
    );

    let (s, b) = raw_post(
        &t,
        &[
            ("content-type", "application/json"),
            ("x-github-event", "push"),
            ("x-hub-signature-256", &sig),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "missing X-GitHub-Delivery header")
    );

    let (s, b) = raw_post(
        &t,
        &[
            ("content-type", "text/plain"),
            ("x-github-event", "push"),
            ("x-github-delivery", "d3"),
            ("x-hub-signature-256", &sig),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{b}");

    let not_json = b"{not json".to_vec();
    let sig2 = shipgate::github::signature::sign(SECRET.as_bytes(), &not_json);
    let (s, _) = raw_post(&t, &signed_headers("push", "d4", &sig2), not_json).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Over 25 MiB: refused before anything else is looked at.
    let huge = vec![b' '; 25 * 1024 * 1024 + 1];
    let (s, b) = raw_post(&t, &signed_headers("push", "d5", "sha256=00"), huge).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");

    for id in ["d1", "d3", "d4", "d5"] {
        assert!(t.state_of(id).await.is_none());
    }
    t.finish().await;
}

#[tokio::test]
async fn form_encoded_deliveries_are_accepted() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    let payload = serde_json::to_string(&t.gh.push_payload("acme/app", "main", &[CONFIG])).unwrap();
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload)
        .finish();
    let sig = shipgate::github::signature::sign(SECRET.as_bytes(), form.as_bytes());
    let (s, b) = raw_post(
        &t,
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-github-event", "push"),
            ("x-github-delivery", "form-1"),
            ("x-hub-signature-256", &sig),
        ],
        form.into_bytes(),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    t.settle().await;
    assert_eq!(
        t.state_of("form-1").await.unwrap().state,
        DeliveryState::Done
    );
    t.finish().await;
}

#[tokio::test]
async fn events_no_handler_wants_are_acknowledged_but_not_queued() {
    let t = Harness::start().await;
    let (s, b) = t
        .send_with_id(
            "star",
            "star-1",
            &json!({"action": "created", "repository": {"full_name": "acme/app"}}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(b["queued"], json!(false));
    assert!(t.state_of("star-1").await.is_none());
    t.finish().await;
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let t = Harness::start().await;
    let health = t.http.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = t.http.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    t.send("push", &t.gh.push_payload("acme/app", "main", &[CONFIG]))
        .await;
    t.send("star", &json!({"action": "created"})).await;
    t.settle().await;
    let metrics = t.metrics_text().await;
    for line in [
        "shipgate_queue_depth 0",
        r#"shipgate_deliveries_received_total{outcome="accepted"} 1"#,
        r#"shipgate_deliveries_received_total{outcome="ignored"} 1"#,
        r#"shipgate_deliveries_processed_total{outcome="done"} 1"#,
        r#"shipgate_github_api_calls_total{status="201"} 1"#,
        r#"shipgate_handler_duration_seconds_count{event="push"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    t.finish().await;
}

// ------------------------------------------------------- config check stories

#[tokio::test]
async fn a_pull_request_with_a_valid_config_gets_a_green_config_status() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    t.gh.commit(
        "acme/app",
        "feature",
        &[("src/lib.rs", Some("fn main() {}"))],
    );
    let pr = t.gh.open_pr("acme/app", "feature", "alice");

    let (s, b) = t
        .send(
            "pull_request",
            &t.gh.pull_request_payload("acme/app", pr, "opened"),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(b["queued"], json!(true));
    t.settle().await;

    let head = t.gh.pr("acme/app", pr).head_sha;
    let statuses = t.gh.statuses("acme/app", &head);
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].context, "shipgate/config");
    assert_eq!(statuses[0].state, "success");
    assert_eq!(statuses[0].description, ".github/shipgate.yml is valid");
    t.finish().await;
}

#[tokio::test]
async fn a_pull_request_that_breaks_the_config_gets_a_red_status_with_line_and_column() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    t.gh.commit(
        "acme/app",
        "typo",
        &[(
            CONFIG,
            Some("environments:\n  staging:\n    required_aprovals: 1\n"),
        )],
    );
    let pr = t.gh.open_pr("acme/app", "typo", "alice");
    t.send(
        "pull_request",
        &t.gh.pull_request_payload("acme/app", pr, "opened"),
    )
    .await;
    t.settle().await;

    let statuses = t.gh.statuses("acme/app", &t.gh.pr("acme/app", pr).head_sha);
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].state, "failure");
    assert!(
        statuses[0].description.starts_with(".github/shipgate.yml: line 3 column 5: environments.staging: unknown field `required_aprovals`"),
        "{}",
        statuses[0].description
    );
    assert!(statuses[0].description.chars().count() <= 140);
    t.finish().await;
}

#[tokio::test]
async fn a_repository_without_config_gets_no_status_on_pull_requests() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/plain", &[("README.md", "hi")]);
    t.gh.commit("acme/plain", "feature", &[("README.md", Some("hello"))]);
    let pr = t.gh.open_pr("acme/plain", "feature", "alice");
    t.send(
        "pull_request",
        &t.gh.pull_request_payload("acme/plain", pr, "opened"),
    )
    .await;
    t.settle().await;
    assert!(t
        .gh
        .statuses("acme/plain", &t.gh.pr("acme/plain", pr).head_sha)
        .is_empty());
    t.finish().await;
}

#[tokio::test]
async fn a_push_to_the_default_branch_that_changes_the_config_is_validated() {
    let t = Harness::start().await;
    let first = t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    t.send("push", &t.gh.push_payload("acme/app", "main", &[CONFIG]))
        .await;
    t.settle().await;
    assert_eq!(t.gh.statuses("acme/app", &first)[0].state, "success");

    // A push that does not touch the config does nothing.
    let before = t.gh.with(|w| w.requests.len());
    t.gh.commit("acme/app", "main", &[("README.md", Some("docs"))]);
    t.send(
        "push",
        &t.gh.push_payload("acme/app", "main", &["README.md"]),
    )
    .await;
    t.settle().await;
    assert_eq!(t.gh.with(|w| w.requests.len()), before, "no API calls");

    t.finish().await;
}

#[tokio::test]
async fn a_redelivered_delivery_is_processed_once() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    t.gh.commit("acme/app", "feature", &[("a.txt", Some("a"))]);
    let pr = t.gh.open_pr("acme/app", "feature", "bob");
    let payload = t.gh.pull_request_payload("acme/app", pr, "synchronize");
    let (s1, _) = t
        .send_with_id("pull_request", "redelivered", &payload)
        .await;
    t.settle().await;
    // GitHub's "Redeliver" button sends the same delivery id again, even after processing.
    let (s2, b2) = t
        .send_with_id("pull_request", "redelivered", &payload)
        .await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::OK));
    assert_eq!(b2, json!({"duplicate": true, "delivery": "redelivered"}));
    t.settle().await;
    let head = t.gh.pr("acme/app", pr).head_sha;
    assert_eq!(
        t.gh.requests_to("GET", &format!("/repos/acme/app/commits/{head}/status"))
            .len(),
        1,
        "processed once"
    );
    assert_eq!(t.gh.statuses("acme/app", &head).len(), 1);
    t.finish().await;
}

#[tokio::test]
async fn a_status_already_present_is_not_written_again() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    t.gh.commit("acme/app", "feature", &[("a.txt", Some("a"))]);
    let pr = t.gh.open_pr("acme/app", "feature", "alice");
    for action in ["opened", "reopened"] {
        t.send(
            "pull_request",
            &t.gh.pull_request_payload("acme/app", pr, action),
        )
        .await;
    }
    t.settle().await;
    let head = t.gh.pr("acme/app", pr).head_sha;
    assert_eq!(t.gh.statuses("acme/app", &head).len(), 1);
    assert_eq!(
        t.gh.requests_to("POST", &format!("/repos/acme/app/statuses/{head}"))
            .len(),
        1
    );
    // The config at a commit sha never changes: read once, then from memory.
    assert_eq!(
        t.gh.requests_to("GET", "/repos/acme/app/contents/.github/shipgate.yml")
            .iter()
            .filter(|r| r.query.contains(&head))
            .count(),
        1
    );
    t.finish().await;
}

// ------------------------------------------------------------------ faults

#[tokio::test]
async fn injected_502s_and_a_rate_limit_are_retried_and_succeed() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    t.gh.commit("acme/app", "feature", &[("a.txt", Some("a"))]);
    let pr = t.gh.open_pr("acme/app", "feature", "alice");
    let head = t.gh.pr("acme/app", pr).head_sha;
    let contents = "/repos/acme/app/contents/.github/shipgate.yml";
    let statuses = format!("/repos/acme/app/statuses/{head}");
    t.gh.fail_next("GET", contents, 2, 502);
    t.gh.rate_limit_next("POST", &statuses, 1);

    let (_, b) = t
        .send(
            "pull_request",
            &t.gh.pull_request_payload("acme/app", pr, "opened"),
        )
        .await;
    t.settle().await;

    let reads: Vec<u16> =
        t.gh.requests_to("GET", contents)
            .iter()
            .filter(|r| r.query.contains(&head))
            .map(|r| r.status)
            .collect();
    assert_eq!(reads, [502, 502, 200]);
    let writes: Vec<u16> =
        t.gh.requests_to("POST", &statuses)
            .iter()
            .map(|r| r.status)
            .collect();
    assert_eq!(writes, [403, 201]);
    assert_eq!(t.gh.statuses("acme/app", &head).len(), 1);
    let state = t.state_of(b["delivery"].as_str().unwrap()).await.unwrap();
    assert_eq!(
        (state.state, state.attempts),
        (DeliveryState::Done, 1),
        "retried inside one attempt"
    );
    t.finish().await;
}

#[tokio::test]
async fn a_404_is_not_retried_and_fails_the_delivery() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    t.gh.commit("acme/app", "feature", &[("a.txt", Some("a"))]);
    let pr = t.gh.open_pr("acme/app", "feature", "alice");
    let head = t.gh.pr("acme/app", pr).head_sha;
    let statuses = format!("/repos/acme/app/statuses/{head}");
    t.gh.fail_next("POST", &statuses, 1, 404);

    let (_, b) = t
        .send(
            "pull_request",
            &t.gh.pull_request_payload("acme/app", pr, "opened"),
        )
        .await;
    t.settle().await;
    assert_eq!(
        t.gh.requests_to("POST", &statuses).len(),
        1,
        "404 is not retried"
    );
    let state = t.state_of(b["delivery"].as_str().unwrap()).await.unwrap();
    assert_eq!((state.state, state.attempts), (DeliveryState::Failed, 1));
    assert!(state.last_error.unwrap().contains("404"));
    t.finish().await;
}

#[tokio::test]
async fn a_github_outage_longer_than_the_client_retries_is_retried_by_the_worker() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    t.gh.commit("acme/app", "feature", &[("a.txt", Some("a"))]);
    let pr = t.gh.open_pr("acme/app", "feature", "alice");
    let contents = "/repos/acme/app/contents/.github/shipgate.yml";
    // Four 503s exhaust one attempt's client retries; the next attempt succeeds.
    t.gh.fail_next("GET", contents, 4, 503);
    let (_, b) = t
        .send(
            "pull_request",
            &t.gh.pull_request_payload("acme/app", pr, "opened"),
        )
        .await;
    t.settle().await;
    let state = t.state_of(b["delivery"].as_str().unwrap()).await.unwrap();
    assert_eq!((state.state, state.attempts), (DeliveryState::Done, 2));
    assert_eq!(
        t.gh.statuses("acme/app", &t.gh.pr("acme/app", pr).head_sha)
            .len(),
        1
    );
    t.finish().await;
}

#[tokio::test]
async fn a_branch_config_read_is_revalidated_with_its_etag() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    let configs = shipgate::config::repo::ConfigCache::default();
    let api = t.server.github.api(Some(42)).unwrap();
    let first = configs.load(&api, "acme/app", "main").await.unwrap();
    let second = configs.load(&api, "acme/app", "main").await.unwrap();
    assert_eq!(first.source, second.source);
    assert!(second.config.unwrap().environments.contains_key("staging"));
    t.gh.commit(
        "acme/app",
        "main",
        &[(CONFIG, Some("environments:\n  production: {}\n"))],
    );
    let third = configs.load(&api, "acme/app", "main").await.unwrap();
    assert!(third
        .config
        .unwrap()
        .environments
        .contains_key("production"));
    let reads: Vec<u16> =
        t.gh.requests_to("GET", "/repos/acme/app/contents/.github/shipgate.yml")
            .iter()
            .map(|r| r.status)
            .collect();
    assert_eq!(reads, [200, 304, 200]);
    t.finish().await;
}

#[tokio::test]
async fn a_store_that_cannot_persist_answers_503_so_github_can_redeliver() {
    let t = Harness::start().await;
    // As when the database goes away: every statement fails from now on.
    t.server.store.close().await;
    let body = serde_json::to_vec(
        &json!({"ref": "refs/heads/main", "after": "abc", "repository": {"full_name": "o/r"}}),
    )
    .unwrap();
    let (status, b) = common::post_signed(&t.http, &t.url("/webhook"), "push", "d-503", body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(
        b["error"],
        "could not store the delivery; redeliver it later"
    );
    let ready = t.http.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_octokit_webhook_example_is_acknowledged_and_none_fails() {
    #[derive(serde::Deserialize)]
    struct Example {
        event: String,
        file: String,
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/webhooks-examples");
    let index: Vec<Example> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    assert!(
        index.len() >= 300,
        "the vendored index has {} examples",
        index.len()
    );

    let t = Harness::start().await;
    // The repositories the examples name exist, as they would for an installed App.
    for ex in &index {
        let payload: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(&ex.file)).unwrap()).unwrap();
        let listed = ["repositories", "repositories_added"]
            .iter()
            .flat_map(|k| payload[*k].as_array().cloned().unwrap_or_default());
        let names: Vec<String> = std::iter::once(payload["repository"].clone())
            .chain(listed)
            .filter_map(|r| r["full_name"].as_str().map(str::to_string))
            .collect();
        for name in names {
            if t.gh.with(|w| !w.repos.contains_key(&name)) {
                t.gh.add_repo(&name, &[]);
            }
        }
    }
    let mut queued = Vec::new();
    for (i, ex) in index.iter().enumerate() {
        let body = std::fs::read(dir.join(&ex.file)).unwrap();
        let delivery = format!("example-{i}");
        let (status, b) =
            common::post_signed(&t.http, &t.url("/webhook"), &ex.event, &delivery, body).await;
        assert!(
            status.is_success(),
            "{} ({}) got {status}: {b}",
            ex.file,
            ex.event
        );
        if b["queued"] == json!(true) {
            queued.push((delivery, ex.file.clone()));
        }
    }
    t.settle().await;
    assert!(
        !queued.is_empty(),
        "some examples are events shipgate handles"
    );
    for (delivery, file) in &queued {
        let state = t.state_of(delivery).await.unwrap();
        assert_eq!(
            state.state,
            DeliveryState::Done,
            "{file}: {:?}",
            state.last_error
        );
    }
    let health = t.http.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    t.finish().await;
}

/// A handler that must never run.
struct MustNotRun;

#[async_trait::async_trait]
impl shipgate::handlers::Handler for MustNotRun {
    fn name(&self) -> &'static str {
        "must_not_run"
    }
    fn wants(&self, _: &str, _: Option<&str>) -> bool {
        true
    }
    async fn handle(
        &self,
        _: &shipgate::handlers::Context,
        _: &shipgate::store::ClaimedDelivery,
        _: &shipgate::github::events::Event,
    ) -> Result<(), shipgate::handlers::HandlerError> {
        panic!("a delivery claimed more often than max_attempts must not be processed again");
    }
}

#[tokio::test]
async fn a_delivery_whose_attempts_kept_dying_is_failed_instead_of_looping() {
    let gh = common::FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let settings = common::settings(&gh, &db, &[("SHIPGATE_MAX_ATTEMPTS", "2")]);
    let store = shipgate::store::connect(&settings.database_url)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let new = shipgate::store::NewDelivery {
        delivery_id: "poison".into(),
        event: "push".into(),
        action: None,
        installation_id: None,
        repository: Some("o/r".into()),
        payload: "{}".into(),
    };
    store.insert_delivery(&new, 0).await.unwrap();
    // Three claims whose processes died (zero-length leases that ran out).
    let mut last = None;
    for now in 1..=3 {
        last = store.claim_next("dying", now, 0, &[]).await.unwrap();
    }
    let claimed = last.unwrap();
    assert_eq!(claimed.attempts, 3);

    let metrics = shipgate::metrics::Metrics::new();
    let worker = shipgate::serve::worker::Worker {
        store: store.clone(),
        handlers: shipgate::handlers::Handlers::new(vec![std::sync::Arc::new(MustNotRun)]),
        context: shipgate::handlers::Context {
            github: shipgate::github::GitHub::new(
                &settings.github_auth,
                &settings.github_api_url,
                common::fast_retry(),
                metrics.clone(),
            )
            .unwrap(),
            store: store.clone(),
            configs: Default::default(),
            read_this_delivery: Default::default(),
            notifier: Default::default(),
            smoke: Default::default(),
            wake: Default::default(),
            policy_delay: Default::default(),
        },
        settings: settings.worker.clone(),
        metrics,
        wake: Default::default(),
        id: "test".into(),
        finished: tokio::sync::watch::channel(0).0,
    };
    assert_eq!(
        worker.process(claimed).await,
        shipgate::serve::worker::Outcome::Failed
    );
    let st = store.delivery_status("poison").await.unwrap().unwrap();
    assert_eq!(st.state, DeliveryState::Failed);
    assert_eq!(
        st.last_error.as_deref(),
        Some("gave up after 2 attempts; the process stopped during earlier ones")
    );
}

#[tokio::test]
async fn app_auth_exchanges_a_jwt_for_one_cached_installation_token() {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-app-key.pem"
    );
    let t = Harness::start_with(&[
        ("GITHUB_TOKEN", ""),
        ("GITHUB_APP_ID", "12345"),
        ("GITHUB_APP_PRIVATE_KEY_PATH", key),
    ])
    .await;
    assert_eq!(
        t.server.github.bot_login().await.unwrap(),
        "shipgate-test[bot]",
        "login learned from GET /app"
    );
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    for i in 0..3 {
        t.gh.commit(
            "acme/app",
            &format!("f{i}"),
            &[("a.txt", Some(&format!("{i}")))],
        );
        let pr = t.gh.open_pr("acme/app", &format!("f{i}"), "alice");
        t.send(
            "pull_request",
            &t.gh.pull_request_payload("acme/app", pr, "opened"),
        )
        .await;
    }
    t.settle().await;
    let exchanges =
        t.gh.requests_to("POST", "/app/installations/42/access_tokens");
    assert_eq!(exchanges.len(), 1, "the installation token is cached");
    assert!(
        exchanges[0].auth.starts_with("Bearer ey"),
        "exchanged with a JWT: {}",
        exchanges[0].auth
    );
    let repo_calls: Vec<_> = t.gh.with(|w| {
        w.requests
            .iter()
            .filter(|r| r.path.starts_with("/repos/"))
            .cloned()
            .collect()
    });
    assert!(
        repo_calls.len() >= 9,
        "at least contents, status read and status write for each of 3 PRs"
    );
    for r in repo_calls {
        assert!(
            r.auth.ends_with("ghs_fake1"),
            "{} {} used {}",
            r.method,
            r.path,
            r.auth
        );
    }
    t.finish().await;
}

#[tokio::test]
async fn app_auth_without_an_installation_in_the_payload_fails_the_delivery_clearly() {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-app-key.pem"
    );
    let t = Harness::start_with(&[
        ("GITHUB_TOKEN", ""),
        ("GITHUB_APP_ID", "12345"),
        ("GITHUB_APP_PRIVATE_KEY_PATH", key),
    ])
    .await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    let mut payload = t.gh.push_payload("acme/app", "main", &[CONFIG]);
    payload.as_object_mut().unwrap().remove("installation");
    let (_, b) = t.send("push", &payload).await;
    t.settle().await;
    let st = t.state_of(b["delivery"].as_str().unwrap()).await.unwrap();
    assert_eq!(st.state, DeliveryState::Failed);
    assert!(st.last_error.unwrap().contains("no installation id"));
    t.finish().await;
}

/// The conformance run can fail: a request GitHub would refuse and an answer
/// GitHub would not give both reach the test, naming method, path and what
/// is wrong, and make `assert_no_unexpected` fail.
#[tokio::test]
async fn conformance_run_reports_bad_requests_and_bad_answers() {
    let gh = common::FakeGitHub::start().await;
    if !gh.conformance() {
        eprintln!(
            "not a conformance run ({} unset): nothing to check",
            common::conformance::PRISM_ENV
        );
        return;
    }
    gh.expect_violations();
    let sha = gh.add_repo("acme/app", &[]);
    let http = reqwest::Client::new();
    // A commit status in a state GitHub does not have.
    let resp = http
        .post(format!("{}/repos/acme/app/statuses/{sha}", gh.url()))
        .bearer_auth("ghp_test_token")
        .json(&json!({ "state": "done", "context": "shipgate" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A repository answered without the fields GitHub always sends.
    gh.fail_next("GET", "/repos/acme/app", 1, 200);
    let resp = http
        .get(format!("{}/repos/acme/app", gh.url()))
        .bearer_auth("ghp_test_token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let caught =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| gh.assert_no_unexpected()));
    let message = caught
        .expect_err("assert_no_unexpected passed over violations")
        .downcast::<String>()
        .unwrap();
    assert!(message.contains("GET /repos/acme/app -> 200"), "{message}");
    // A path GitHub does not have.
    http.get(format!("{}/repos/acme/app/no-such-thing", gh.url()))
        .bearer_auth("ghp_test_token")
        .send()
        .await
        .unwrap();

    let violations = gh.take_violations();
    let has = |prefix: &str, what: &str| {
        violations
            .iter()
            .any(|v| v.starts_with(prefix) && v.contains(what))
    };
    assert!(
        has(
            &format!("POST /repos/acme/app/statuses/{sha} -> 422"),
            "request.body.state"
        ),
        "{violations:#?}"
    );
    assert!(
        has("GET /repos/acme/app -> 200", "response.body"),
        "{violations:#?}"
    );
    assert!(
        has(
            "GET /repos/acme/app/no-such-thing -> 404",
            "route not found"
        ),
        "{violations:#?}"
    );
}

/// Per installation: deliveries running now, and the most at once.
type RunningPerInstallation =
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<i64, (usize, usize)>>>;

/// Records each delivery it starts and holds the ones given a gate until
/// the test opens it.
struct Gated {
    started: tokio::sync::mpsc::UnboundedSender<String>,
    gates: std::collections::HashMap<String, std::sync::Arc<tokio::sync::Semaphore>>,
    running: RunningPerInstallation,
    /// Deliveries whose handling hits GitHub's rate limit (reset in 90 s).
    rate_limited: Vec<String>,
}

#[async_trait::async_trait]
impl shipgate::handlers::Handler for Gated {
    fn name(&self) -> &'static str {
        "gated"
    }
    fn wants(&self, _: &str, _: Option<&str>) -> bool {
        true
    }
    async fn handle(
        &self,
        _: &shipgate::handlers::Context,
        d: &shipgate::store::ClaimedDelivery,
        _: &shipgate::github::events::Event,
    ) -> Result<(), shipgate::handlers::HandlerError> {
        if self.rate_limited.contains(&d.delivery_id) {
            let _ = self.started.send(d.delivery_id.clone());
            return Err(shipgate::handlers::HandlerError::rate_limited(
                "GitHub's rate limit is used up",
                std::time::Duration::from_secs(90),
            ));
        }
        if let Some(i) = d.installation_id {
            let mut running = self.running.lock().unwrap();
            let (now, most) = running.entry(i).or_default();
            *now += 1;
            *most = (*most).max(*now);
        }
        let _ = self.started.send(d.delivery_id.clone());
        if let Some(gate) = self.gates.get(&d.delivery_id) {
            let _ = gate.acquire().await.unwrap();
        }
        if let Some(i) = d.installation_id {
            self.running.lock().unwrap().get_mut(&i).unwrap().0 -= 1;
        }
        Ok(())
    }
}

async fn next_started(started: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(10), started.recv())
        .await
        .expect("no delivery started within 10 s")
        .unwrap()
}

/// A delivery stored while a worker loop holds its repository wakes no one
/// (the holder claims again when it finishes). When the holder's next claim
/// takes another repository instead, the end of its hold must wake an idle
/// loop for the skipped delivery; with polling turned off, nothing else
/// would, and the test would time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_skipped_while_its_repository_was_held_is_woken_for_when_the_hold_ends() {
    use std::sync::Arc;
    use std::time::Duration;

    let gh = common::FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gate_x1 = Arc::new(tokio::sync::Semaphore::new(0));
    let gate_y1 = Arc::new(tokio::sync::Semaphore::new(0));
    let GatedWorker {
        worker,
        store,
        mut started,
        mut finished,
        ..
    } = gated_worker(
        &gh,
        &dir,
        2,
        &[("x1", gate_x1.clone()), ("y1", gate_y1.clone())],
    )
    .await;
    let wake = worker.wake.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(worker.run(stop.clone()));
    let delivery = |id: &str, repo: &str| stored_delivery(id, repo, None);
    // A loop takes x1 and holds o/x while x1's handler waits.
    store
        .insert_delivery(&delivery("x1", "o/x"), 1)
        .await
        .unwrap();
    wake.stored(Some("o/x"), None);
    assert_eq!(next_started(&mut started).await, "x1");
    // y1 arrives the way another replica's deliveries do: stored, no wake-up.
    store
        .insert_delivery(&delivery("y1", "o/y"), 2)
        .await
        .unwrap();
    // x2 waits behind x1, so it wakes no one.
    store
        .insert_delivery(&delivery("x2", "o/x"), 3)
        .await
        .unwrap();
    wake.stored(Some("o/x"), None);

    // x1 finishes; its loop's next claim takes y1 (stored first), which
    // waits. x2 must start meanwhile, on the other loop.
    gate_x1.add_permits(1);
    let mut next_two = vec![
        next_started(&mut started).await,
        next_started(&mut started).await,
    ];
    next_two.sort();
    assert_eq!(next_two, ["x2", "y1"]);
    assert_eq!(gate_y1.available_permits(), 0, "y1 was still waiting");

    gate_y1.add_permits(1);
    tokio::time::timeout(Duration::from_secs(10), finished.wait_for(|n| *n == 3))
        .await
        .expect("all three finished")
        .unwrap();
    stop.cancel();
    run.await.unwrap();
    for id in ["x1", "y1", "x2"] {
        let st = store.delivery_status(id).await.unwrap().unwrap();
        assert_eq!(st.state, DeliveryState::Done, "{id}");
    }
}

/// Installation (tenant) 1001 has five ready repositories, more than the
/// four workers; installation 2002 then sends one delivery. 1001 may hold at
/// most its share of the workers (half of them by default), so 2002's
/// delivery starts while 1001's first two wait in their handlers. Through
/// the real `/webhook` path; polling is off, so a lost wake-up times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_installation_cannot_hold_every_worker() {
    use std::sync::Arc;
    use std::time::Duration;

    let gh = common::FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let mut settings = common::settings(&gh, &db, &[("SHIPGATE_WORKER_CONCURRENCY", "4")]);
    settings.worker.poll_interval = Duration::from_secs(3600);

    let ids = ["a1", "a2", "a3", "a4", "a5", "b1"];
    let gates: std::collections::HashMap<String, Arc<tokio::sync::Semaphore>> = ids
        .iter()
        .map(|id| (id.to_string(), Arc::new(tokio::sync::Semaphore::new(0))))
        .collect();
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let running = RunningPerInstallation::default();
    let handler = Gated {
        started: started_tx,
        gates: gates.clone(),
        running: running.clone(),
        rate_limited: Vec::new(),
    };
    let server = shipgate::serve::start(
        settings,
        shipgate::serve::StartOptions {
            retry: Some(common::fast_retry()),
            handlers: Some(shipgate::handlers::Handlers::new(vec![Arc::new(handler)])),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let webhook = format!("http://{}/webhook", server.addr);
    let send = |id: &'static str, repo: String, installation: i64| {
        gh.add_repo(&repo, &[]);
        let mut payload = gh.push_payload(&repo, "main", &[]);
        payload["installation"]["id"] = json!(installation);
        let (http, webhook) = (http.clone(), webhook.clone());
        async move {
            let body = serde_json::to_vec(&payload).unwrap();
            let (status, b) = common::post_signed(&http, &webhook, "push", id, body).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{id}: {b}");
        }
    };
    for (i, id) in ["a1", "a2", "a3", "a4", "a5"].into_iter().enumerate() {
        send(id, format!("tenant-a/r{i}"), 1001).await;
    }
    send("b1", "tenant-b/app".into(), 2002).await;

    let mut first_three = vec![
        next_started(&mut started).await,
        next_started(&mut started).await,
        next_started(&mut started).await,
    ];
    first_three.sort();
    assert_eq!(
        first_three,
        ["a1", "a2", "b1"],
        "installation 2002 must get a worker while 1001 holds its share"
    );
    for id in ["a3", "a4", "a5"] {
        let st = server.store.delivery_status(id).await.unwrap().unwrap();
        assert_eq!(
            st.state,
            DeliveryState::Received,
            "{id} waits for 1001's share"
        );
    }

    // A slot of 1001 frees: its next delivery starts.
    gates["a1"].add_permits(1);
    assert_eq!(next_started(&mut started).await, "a3");

    for gate in gates.values() {
        gate.add_permits(1);
    }
    let mut finished = server.finished.clone();
    tokio::time::timeout(Duration::from_secs(10), finished.wait_for(|n| *n == 6))
        .await
        .expect("all six finished")
        .unwrap();
    let mut rest = vec![
        next_started(&mut started).await,
        next_started(&mut started).await,
    ];
    rest.sort();
    assert_eq!(rest, ["a4", "a5"]);
    for id in ids {
        let st = server.store.delivery_status(id).await.unwrap().unwrap();
        assert_eq!(st.state, DeliveryState::Done, "{id}");
    }
    assert_eq!(
        running.lock().unwrap()[&1001].1,
        2,
        "1001 never ran more than its share"
    );
    gh.assert_no_unexpected();
    server.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("server stops within 10 s")
        .unwrap();
}

/// A worker over a fresh SQLite store with the `Gated` handler, polling off.
struct GatedWorker {
    worker: shipgate::serve::worker::Worker,
    store: shipgate::store::DynStore,
    started: tokio::sync::mpsc::UnboundedReceiver<String>,
    finished: tokio::sync::watch::Receiver<u64>,
    running: RunningPerInstallation,
}

async fn gated_worker(
    gh: &common::FakeGitHub,
    dir: &tempfile::TempDir,
    concurrency: usize,
    gates: &[(&str, std::sync::Arc<tokio::sync::Semaphore>)],
) -> GatedWorker {
    rate_limited_worker(gh, dir, concurrency, gates, &[]).await
}

/// [`gated_worker`] whose handler hits the rate limit on `rate_limited`.
async fn rate_limited_worker(
    gh: &common::FakeGitHub,
    dir: &tempfile::TempDir,
    concurrency: usize,
    gates: &[(&str, std::sync::Arc<tokio::sync::Semaphore>)],
    rate_limited: &[&str],
) -> GatedWorker {
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let mut settings = common::settings(gh, &db, &[]);
    settings.worker.concurrency = concurrency;
    settings.worker.poll_interval = std::time::Duration::from_secs(3600);
    let store = shipgate::store::connect(&settings.database_url)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (started_tx, started) = tokio::sync::mpsc::unbounded_channel();
    let running = RunningPerInstallation::default();
    let handler = Gated {
        started: started_tx,
        gates: gates
            .iter()
            .map(|(id, gate)| (id.to_string(), gate.clone()))
            .collect(),
        running: running.clone(),
        rate_limited: rate_limited.iter().map(|id| id.to_string()).collect(),
    };
    let metrics = shipgate::metrics::Metrics::new();
    let wake = shipgate::store::Wake::default();
    let (finished_tx, finished) = tokio::sync::watch::channel(0);
    let worker = shipgate::serve::worker::Worker {
        store: store.clone(),
        handlers: shipgate::handlers::Handlers::new(vec![std::sync::Arc::new(handler)]),
        context: shipgate::handlers::Context {
            github: shipgate::github::GitHub::new(
                &settings.github_auth,
                &settings.github_api_url,
                common::fast_retry(),
                metrics.clone(),
            )
            .unwrap(),
            store: store.clone(),
            configs: Default::default(),
            read_this_delivery: Default::default(),
            notifier: Default::default(),
            smoke: Default::default(),
            wake: wake.clone(),
            policy_delay: Default::default(),
        },
        settings: settings.worker.clone(),
        metrics,
        wake,
        id: "test".into(),
        finished: finished_tx,
    };
    GatedWorker {
        worker,
        store,
        started,
        finished,
        running,
    }
}

fn stored_delivery(
    id: &str,
    repo: &str,
    installation: Option<i64>,
) -> shipgate::store::NewDelivery {
    shipgate::store::NewDelivery {
        delivery_id: id.into(),
        // shipgate's own kind of event: these tests are about scheduling,
        // and no webhook payload is needed to claim and process it.
        event: "shipgate_test".into(),
        action: None,
        installation_id: installation,
        repository: Some(repo.into()),
        payload: "{}".into(),
    }
}

/// Two loops, so an installation's share is one. x1 (installation 1) holds
/// it; a1 (installation 1, another repository) is passed over, so the
/// other loop stays idle. When x1 finishes, its loop's next claim takes y1
/// (older, next in x1's repository, without an installation) instead, and
/// installation 1's freed slot must wake the idle loop for a1: with polling
/// off, nothing else would, and the test would time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_passed_over_for_its_installations_share_is_woken_for_when_a_slot_frees() {
    use std::sync::Arc;
    use std::time::Duration;

    let gh = common::FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gate_x1 = Arc::new(tokio::sync::Semaphore::new(0));
    let gate_y1 = Arc::new(tokio::sync::Semaphore::new(0));
    let GatedWorker {
        worker,
        store,
        mut started,
        mut finished,
        ..
    } = gated_worker(
        &gh,
        &dir,
        2,
        &[("x1", gate_x1.clone()), ("y1", gate_y1.clone())],
    )
    .await;
    // All stored before the loops start: what each claim sees is fixed.
    for (at, d) in [
        stored_delivery("x1", "o/x", Some(1)),
        stored_delivery("y1", "o/x", None),
        stored_delivery("a1", "o/a", Some(1)),
    ]
    .iter()
    .enumerate()
    {
        store.insert_delivery(d, at as i64).await.unwrap();
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(worker.run(stop.clone()));
    assert_eq!(next_started(&mut started).await, "x1");

    gate_x1.add_permits(1);
    let mut next_two = vec![
        next_started(&mut started).await,
        next_started(&mut started).await,
    ];
    next_two.sort();
    assert_eq!(next_two, ["a1", "y1"]);
    assert_eq!(gate_y1.available_permits(), 0, "y1 was still waiting");

    gate_y1.add_permits(1);
    tokio::time::timeout(Duration::from_secs(10), finished.wait_for(|n| *n == 3))
        .await
        .expect("all three finished")
        .unwrap();
    stop.cancel();
    run.await.unwrap();
    for id in ["x1", "y1", "a1"] {
        let st = store.delivery_status(id).await.unwrap().unwrap();
        assert_eq!(st.state, DeliveryState::Done, "{id}");
    }
}

/// A worker stalls past its lease (a paused VM, a stuck GitHub call) and
/// another replica claims the delivery again. When the first worker's
/// handlers finally return, its outcome must not land on the newer
/// attempt's row: the newer claim keeps the delivery.
#[tokio::test]
async fn a_worker_whose_claim_was_taken_over_leaves_the_newer_attempt_alone() {
    let gh = common::FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let GatedWorker {
        worker,
        store,
        mut started,
        ..
    } = gated_worker(&gh, &dir, 1, &[]).await;
    store
        .insert_delivery(&stored_delivery("taken-over", "o/r", Some(1)), 0)
        .await
        .unwrap();
    // A zero-length lease, run out at once; then replica b's live claim.
    let stale = store
        .claim_next("stalled/0", 1, 0, &[])
        .await
        .unwrap()
        .unwrap();
    let newer = store
        .claim_next("replica-b/0", 2, i64::MAX / 2, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newer.attempts, 2);

    assert_eq!(
        worker.process(stale).await,
        shipgate::serve::worker::Outcome::Done
    );
    assert_eq!(next_started(&mut started).await, "taken-over");
    let st = store.delivery_status("taken-over").await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.attempts),
        (DeliveryState::Processing, 2),
        "replica b's attempt still owns the delivery"
    );
    assert!(store.mark_done(&newer, 3).await.unwrap());
}

/// Four loops start at once on a store that already holds six deliveries of
/// installation 1 (six repositories) and one of installation 2. The loops'
/// first claims race each other; installation 1 must still get no more
/// than its share (two), and installation 2 the third loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loops_claiming_at_once_do_not_overrun_an_installations_share() {
    use std::sync::Arc;
    use std::time::Duration;

    let gh = common::FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ids = ["a1", "a2", "a3", "a4", "a5", "a6", "b1"];
    let gates: Vec<_> = ids
        .iter()
        .map(|id| (*id, Arc::new(tokio::sync::Semaphore::new(0))))
        .collect();
    let GatedWorker {
        worker,
        store,
        mut started,
        mut finished,
        running,
    } = gated_worker(&gh, &dir, 4, &gates).await;
    for (at, id) in ids.iter().enumerate() {
        let d = match id.strip_prefix('a') {
            Some(n) => stored_delivery(id, &format!("tenant-a/r{n}"), Some(1)),
            None => stored_delivery(id, "tenant-b/app", Some(2)),
        };
        store.insert_delivery(&d, at as i64).await.unwrap();
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(worker.run(stop.clone()));
    let mut first_three = vec![
        next_started(&mut started).await,
        next_started(&mut started).await,
        next_started(&mut started).await,
    ];
    first_three.sort();
    assert_eq!(first_three, ["a1", "a2", "b1"]);

    for (_, gate) in &gates {
        gate.add_permits(1);
    }
    tokio::time::timeout(Duration::from_secs(10), finished.wait_for(|n| *n == 7))
        .await
        .expect("all seven finished")
        .unwrap();
    stop.cancel();
    run.await.unwrap();
    let running = running.lock().unwrap();
    assert_eq!(running[&1], (0, 2), "installation 1: at most 2 at once");
    assert_eq!(running[&2], (0, 1));
}

// ------------------------------------------- stalls (ingress and config limits)

/// Asks `/healthz` every 50 ms until `done` is cancelled. Returns the slowest
/// answer, or what went wrong with the first answer that took over 1 s.
async fn probe_health(
    url: String,
    done: tokio_util::sync::CancellationToken,
) -> Result<std::time::Duration, String> {
    use std::time::{Duration, Instant};
    let http = reqwest::Client::new();
    let mut slowest = Duration::ZERO;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = done.cancelled() => return Ok(slowest),
            _ = tick.tick() => {}
        }
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(1), http.get(&url).send()).await;
        // A stalled runtime can let the answer in late and still report it
        // ready: the elapsed time is what counts.
        let took = started.elapsed();
        match answer {
            Ok(Ok(r)) if r.status() == StatusCode::OK && took <= Duration::from_secs(1) => {
                slowest = slowest.max(took)
            }
            Ok(Ok(r)) => return Err(format!("/healthz answered {} after {took:?}", r.status())),
            Ok(Err(e)) => return Err(format!("/healthz failed after {took:?}: {e}")),
            Err(_) => return Err(format!("/healthz did not answer within 1 s ({took:?})")),
        }
    }
}

/// Waits for `delivery` to be done, failing the test past `limit` (measured
/// from `since`, so a stalled runtime cannot hide the delay).
async fn wait_done(
    t: &Harness,
    delivery: &str,
    since: std::time::Instant,
    limit: std::time::Duration,
) {
    let mut finished = t.server.finished.clone();
    loop {
        finished.borrow_and_update();
        let state = t.state_of(delivery).await.map(|s| s.state);
        let took = since.elapsed();
        assert!(
            took <= limit,
            "{delivery} was not done within {limit:?} (state {state:?} after {took:?})"
        );
        if state == Some(DeliveryState::Done) {
            return;
        }
        let _ = tokio::time::timeout(limit - took, finished.changed()).await;
    }
}

/// A pull request whose config nests 40,000 flow sequences
/// (`environments: [[[[…`, 40 KB, under the size cap) took serde_yaml_ng
/// about 8 s to refuse, on an async worker thread (quadratic in the depth).
/// Two of them, in two repositories, held both runtime threads. Now the
/// depth is checked before parsing: `/healthz` answers within 1 s
/// throughout, another repository's delivery is done within seconds, and
/// the deep configs get a red status that names the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_configs_in_two_pull_requests_do_not_stall_other_repositories() {
    use std::time::{Duration, Instant};
    let t = Harness::start().await;
    let deep = format!("environments: {}\n", "[".repeat(40_000));
    let mut deep_prs = Vec::new();
    for repo in ["mallory/one", "mallory/two"] {
        t.gh.add_repo(repo, &[(CONFIG, VALID_CONFIG)]);
        t.gh.commit(repo, "deep", &[(CONFIG, Some(&deep))]);
        deep_prs.push((repo, t.gh.open_pr(repo, "deep", "mallory")));
    }
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    t.gh.commit("acme/app", "feature", &[("a.txt", Some("a"))]);
    let good = t.gh.open_pr("acme/app", "feature", "alice");

    let done = tokio_util::sync::CancellationToken::new();
    let prober = tokio::spawn(probe_health(t.url("/healthz"), done.clone()));
    let started = Instant::now();
    for (repo, pr) in &deep_prs {
        let (s, _) = t
            .send(
                "pull_request",
                &t.gh.pull_request_payload(repo, *pr, "opened"),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    let (s, b) = t
        .send(
            "pull_request",
            &t.gh.pull_request_payload("acme/app", good, "opened"),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    wait_done(
        &t,
        b["delivery"].as_str().unwrap(),
        started,
        Duration::from_secs(5),
    )
    .await;
    t.settle().await;
    done.cancel();
    let slowest = prober.await.unwrap().expect("/healthz kept answering");
    assert!(slowest <= Duration::from_secs(1), "{slowest:?}");

    let head = t.gh.pr("acme/app", good).head_sha;
    assert_eq!(t.gh.statuses("acme/app", &head)[0].state, "success");
    for (repo, pr) in &deep_prs {
        let statuses = t.gh.statuses(repo, &t.gh.pr(repo, *pr).head_sha);
        assert_eq!(statuses.len(), 1, "{statuses:?}");
        assert_eq!(statuses[0].state, "failure");
        assert_eq!(
            statuses[0].description,
            ".github/shipgate.yml: line 1 column 46: nested more than 32 levels deep; the limit is 32"
        );
    }
    t.finish().await;
}

/// A config over the size cap is refused before it is parsed, with a status
/// that says how big it is and what the limit is.
#[tokio::test]
async fn an_oversized_config_gets_a_red_status_naming_its_size_and_the_limit() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    // Valid YAML, 300 KiB of comments after a valid config.
    let big = format!(
        "{VALID_CONFIG}{}",
        "# padding padding padding\n".repeat(300 * 1024 / 26 + 1)
    );
    t.gh.commit("acme/app", "big", &[(CONFIG, Some(&big))]);
    let pr = t.gh.open_pr("acme/app", "big", "alice");
    t.send(
        "pull_request",
        &t.gh.pull_request_payload("acme/app", pr, "opened"),
    )
    .await;
    t.settle().await;
    let statuses = t.gh.statuses("acme/app", &t.gh.pr("acme/app", pr).head_sha);
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].state, "failure");
    assert_eq!(
        statuses[0].description,
        ".github/shipgate.yml: the file is 301 KiB; the limit is 64 KiB"
    );
    t.finish().await;
}

/// A connection that sends a webhook's headers and the first byte of a
/// 1,000-byte body, then nothing.
async fn start_slow_body(addr: std::net::SocketAddr, delivery: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /webhook HTTP/1.1\r\nHost: shipgate\r\nContent-Type: application/json\r\n\
                 X-GitHub-Event: ping\r\nX-GitHub-Delivery: {delivery}\r\n\
                 X-Hub-Signature-256: sha256=00\r\nContent-Length: 1000\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream
}

/// Reads what the server sends until it closes the connection, failing the
/// test if that takes longer than `limit`.
async fn read_answer(stream: &mut tokio::net::TcpStream, limit: std::time::Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("no answer within {limit:?}"))
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

/// Strangers opened more slow bodies than there are in-flight permits, and
/// each held a permit while its body trickled in: every signed delivery got
/// 503 for as long as they liked (GitHub does not retry). Bodies are now
/// read before a permit is taken, so the signed delivery gets 202 while all
/// the slow bodies are still open.
#[tokio::test]
async fn slow_bodies_beyond_the_in_flight_limit_do_not_turn_signed_deliveries_away() {
    const SLOW: usize = 6;
    let t = Harness::start_with(&[
        ("SHIPGATE_MAX_IN_FLIGHT", "2"),
        ("SHIPGATE_BODY_TIMEOUT_SECS", "120"),
        // Held open for the whole test: no minimum rate, no per-address cap
        // (everything here comes from 127.0.0.1).
        ("SHIPGATE_BODY_MIN_BYTES_PER_SEC", "0"),
        ("SHIPGATE_MAX_BODIES_PER_CLIENT", "64"),
    ])
    .await;
    let mut slow = Vec::new();
    for i in 0..SLOW {
        slow.push(start_slow_body(t.server.addr, &format!("slow-{i}")).await);
    }
    common::eventually("the slow bodies hold the in-flight limit", || async {
        t.metric("shipgate_webhooks_in_flight").await >= 2.0
    })
    .await;

    let (status, body) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        t.send(
            "ping",
            &json!({ "zen": "Keep it logically awesome.", "hook_id": 1 }),
        ),
    )
    .await
    .expect("answered within 5 s");
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    common::eventually("every slow body is still being read", || async {
        t.metric("shipgate_webhooks_in_flight").await == SLOW as f64
    })
    .await;
    drop(slow);
    t.finish().await;
}

/// One address may have only so many bodies unfinished at once: the next is
/// refused at once with 429, while a delivery from another address is
/// accepted.
#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share_of_unfinished_bodies() {
    let t = Harness::start_with(&[
        ("SHIPGATE_MAX_BODIES_PER_CLIENT", "2"),
        ("SHIPGATE_BODY_TIMEOUT_SECS", "120"),
        ("SHIPGATE_BODY_MIN_BYTES_PER_SEC", "0"),
    ])
    .await;
    let held = [
        start_slow_body(t.server.addr, "held-1").await,
        start_slow_body(t.server.addr, "held-2").await,
    ];
    common::eventually("two slow bodies are being read", || async {
        t.metric("shipgate_webhooks_in_flight").await == 2.0
    })
    .await;
    let mut third = start_slow_body(t.server.addr, "third").await;
    let answer = read_answer(&mut third, std::time::Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.contains("too many unfinished webhook bodies from 127.0.0.1; redeliver it later"),
        "{answer}"
    );

    // GitHub's delivery comes from another address.
    let github = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let body = serde_json::to_vec(
        &json!({ "zen": "Half measures are as bad as nothing at all.", "hook_id": 1 }),
    )
    .unwrap();
    let (status, b) =
        common::post_signed(&github, &t.url("/webhook"), "ping", "from-github", body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    assert_eq!(
        t.metric(r#"shipgate_deliveries_rejected_total{reason="client_busy"}"#)
            .await,
        1.0
    );
    drop(held);
    t.finish().await;
}

/// A body trickling in a byte every 100 ms is cut off with 408 soon after
/// the first second, long before the (here two-minute) body timeout.
#[tokio::test]
async fn a_body_slower_than_the_minimum_rate_is_cut_off_with_408() {
    use tokio::io::AsyncWriteExt;
    let t = Harness::start_with(&[("SHIPGATE_BODY_TIMEOUT_SECS", "120")]).await;
    let stream = start_slow_body(t.server.addr, "trickle").await;
    let (mut reader, mut writer) = stream.into_split();
    // The attack itself: one more byte every 100 ms until the server hangs up.
    let trickle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        loop {
            tick.tick().await;
            if writer.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        use tokio::io::AsyncReadExt;
        let _ = reader.read_to_end(&mut out).await;
    })
    .await
    .expect("the server hung up within 10 s");
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("the body arrived slower than 16384 bytes a second"),
        "{answer}"
    );
    trickle.abort();
    assert_eq!(t.state_of("trickle").await, None);
    t.finish().await;
}

/// Bodies being read or waiting to be stored share one byte budget: once
/// it is spent, the next body is refused with 503 instead of being held in
/// memory too.
#[tokio::test]
async fn bodies_in_memory_share_one_byte_budget() {
    use tokio::io::AsyncWriteExt;
    let t = Harness::start_with(&[
        ("SHIPGATE_BODY_BUFFER_MIB", "25"),
        ("SHIPGATE_BODY_MIN_BYTES_PER_SEC", "0"),
        ("SHIPGATE_BODY_TIMEOUT_SECS", "120"),
    ])
    .await;
    // 20 MiB of a 25 MiB body, then nothing.
    let mut big = tokio::net::TcpStream::connect(t.server.addr).await.unwrap();
    big.write_all(
        format!(
            "POST /webhook HTTP/1.1\r\nHost: shipgate\r\nContent-Type: application/json\r\n\
             X-GitHub-Event: ping\r\nX-GitHub-Delivery: big\r\n\
             X-Hub-Signature-256: sha256=00\r\nContent-Length: {}\r\n\r\n",
            25 << 20
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    big.write_all(&vec![b' '; 20 << 20]).await.unwrap();
    common::eventually("the server holds the 20 MiB", || async {
        t.metric("shipgate_webhook_body_bytes").await >= (20 << 20) as f64
    })
    .await;
    let body = vec![b' '; 10 << 20];
    let sig = shipgate::github::signature::sign(SECRET.as_bytes(), &body);
    let (status, b) = raw_post(&t, &signed_headers("ping", "second", &sig), body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(
        b["error"],
        "webhook bodies fill the body buffer; redeliver it later"
    );
    drop(big);
    common::eventually("the budget comes back", || async {
        t.metric("shipgate_webhook_body_bytes").await == 0.0
    })
    .await;
    let (status, _) = t
        .send(
            "ping",
            &json!({ "zen": "Mind your words, they are important." }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    t.finish().await;
}

/// A `304` for a config whose parse had been evicted from the cache failed
/// the delivery for good ("304 for a file that is not cached"). The file is
/// now read again in full instead: after the eviction, the second delivery
/// for the same commit is done and its config read is a plain 200.
#[tokio::test]
async fn a_delivery_whose_config_was_evicted_from_the_cache_reads_it_again() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    t.gh.commit("acme/app", "feature", &[("a.txt", Some("a"))]);
    let pr = t.gh.open_pr("acme/app", "feature", "alice");
    let head = t.gh.pr("acme/app", pr).head_sha;
    let mut deliveries = Vec::new();
    for action in ["opened", "reopened"] {
        let (s, b) = t
            .send(
                "pull_request",
                &t.gh.pull_request_payload("acme/app", pr, action),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        t.settle().await;
        deliveries.push(b["delivery"].as_str().unwrap().to_string());
        // As when other repositories' configs push these out of the cache.
        t.server.configs.evict_parsed();
    }
    for d in &deliveries {
        let state = t.state_of(d).await.unwrap();
        assert_eq!(state.state, DeliveryState::Done, "{:?}", state.last_error);
    }
    let reads: Vec<u16> =
        t.gh.requests_to("GET", "/repos/acme/app/contents/.github/shipgate.yml")
            .iter()
            .filter(|r| r.query.contains(&head))
            .map(|r| r.status)
            .collect();
    assert_eq!(
        reads,
        [200, 200],
        "no ETag is sent for a parse no longer held"
    );
    assert_eq!(t.gh.statuses("acme/app", &head)[0].state, "success");
    t.finish().await;
}

/// The parse can also be evicted between sending the ETag and GitHub's
/// `304`: the parse taken before the request answers it, and is cached again.
#[tokio::test]
async fn a_304_for_a_config_evicted_while_the_request_was_out_is_answered_from_the_parse_in_hand() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    let configs = std::sync::Arc::new(shipgate::config::repo::ConfigCache::default());
    let api = t.server.github.api(Some(42)).unwrap();
    configs.load(&api, "acme/app", "main").await.unwrap();
    let contents = "/repos/acme/app/contents/.github/shipgate.yml";
    t.gh.hold_after_effect("GET", contents);
    let second = {
        let (configs, api) = (configs.clone(), api.clone());
        tokio::spawn(async move { configs.load(&api, "acme/app", "main").await })
    };
    t.gh.wait_for("the 304 is held", |w| w.held == 1).await;
    configs.evict_parsed();
    t.gh.release_held();
    let loaded = second.await.unwrap().expect("answered, not failed");
    assert!(loaded.config.unwrap().environments.contains_key("staging"));
    // Cached again: the next read is a 304 too.
    configs.load(&api, "acme/app", "main").await.unwrap();
    let reads: Vec<u16> =
        t.gh.requests_to("GET", contents)
            .iter()
            .map(|r| r.status)
            .collect();
    assert_eq!(reads, [200, 304, 304]);
    t.finish().await;
}

/// The contents reads of `.github/shipgate.yml` in `repo`, by status.
fn config_reads(t: &Harness, repo: &str) -> Vec<u16> {
    t.gh.requests_to("GET", &format!("/repos/{repo}/contents/{CONFIG}"))
        .iter()
        .map(|r| r.status)
        .collect()
}

/// A repository where alice (write) has a PR to comment on.
fn repo_without_config(t: &Harness, repo: &str) -> u64 {
    t.gh.add_repo(repo, &[]);
    t.gh.commit(repo, "feature", &[("f.txt", Some("x"))]);
    let pr = t.gh.open_pr(repo, "feature", "alice");
    t.gh.set_role(repo, "alice", "write");
    pr
}

#[tokio::test]
async fn a_missing_config_is_asked_for_once_until_a_push() {
    let t = Harness::start().await;
    let pr = repo_without_config(&t, "acme/app");
    for _ in 0..3 {
        t.comment("acme/app", pr, "alice", "/deploy staging").await;
        let reply = t.next_reply("acme/app", pr).await;
        assert!(reply.body.contains("staging"), "{}", reply.body);
    }
    // Three commands, one question to GitHub: the answer "missing" holds
    // until a push to the repository is processed.
    assert_eq!(config_reads(&t, "acme/app"), [404]);
    assert!(t.gh.deployments("acme/app").is_empty());

    t.gh.commit("acme/app", "main", &[(CONFIG, Some(VALID_CONFIG))]);
    let (status, _) = t
        .send("push", &t.gh.push_payload("acme/app", "main", &[CONFIG]))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    t.comment("acme/app", pr, "alice", "/deploy staging").await;
    let reply = t.next_reply("acme/app", pr).await;
    assert_eq!(
        t.gh.deployments("acme/app").len(),
        1,
        "the file the push added is in effect: {}",
        reply.body
    );
    t.finish().await;
}

#[tokio::test]
async fn a_push_counted_by_another_replica_ends_a_missing_config_here() {
    let pg = postgres_or_skip!();
    let a = Harness::start_with(&[("DATABASE_URL", &pg)]).await;
    let pr = repo_without_config(&a, "acme/app");
    a.comment("acme/app", pr, "alice", "/deploy staging").await;
    a.next_reply("acme/app", pr).await;
    assert_eq!(config_reads(&a, "acme/app"), [404]);

    // Another replica processes the push: what its worker writes to the
    // shared store before any handler runs. This replica has seen nothing.
    a.gh.commit("acme/app", "main", &[(CONFIG, Some(VALID_CONFIG))]);
    let other = shipgate::store::connect(&shipgate::config::settings::DatabaseUrl::new(pg))
        .await
        .unwrap();
    other.bump_config_generation("acme/app").await.unwrap();
    a.comment("acme/app", pr, "alice", "/deploy staging").await;
    a.next_reply("acme/app", pr).await;
    assert_eq!(config_reads(&a, "acme/app"), [404, 200]);
    assert_eq!(a.gh.deployments("acme/app").len(), 1);
    a.finish().await;
}

/// One claim takes a, b and c of one repository. b hits GitHub's rate limit:
/// it is retried no sooner than the reset (not failed), a stays done, and c,
/// which must wait behind b, is given back unprocessed, its attempt not
/// counted.
#[tokio::test]
async fn a_rate_limited_delivery_mid_batch_waits_for_the_reset_and_holds_its_queue() {
    use std::time::Duration;

    let gh = common::FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let GatedWorker {
        worker,
        store,
        mut started,
        mut finished,
        ..
    } = rate_limited_worker(&gh, &dir, 1, &[], &["b"]).await;
    for (at, id) in ["a", "b", "c"].iter().enumerate() {
        store
            .insert_delivery(&stored_delivery(id, "o/r", Some(1)), at as i64)
            .await
            .unwrap();
    }
    let before = shipgate::now_ms();
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(worker.run(stop.clone()));
    tokio::time::timeout(Duration::from_secs(10), finished.wait_for(|n| *n >= 2))
        .await
        .expect("a and b finished")
        .unwrap();
    stop.cancel();
    run.await.unwrap();

    assert_eq!(next_started(&mut started).await, "a");
    assert_eq!(next_started(&mut started).await, "b");
    assert!(started.try_recv().is_err(), "c never ran");
    let state = |id: &'static str| {
        let store = store.clone();
        async move { store.delivery_record(id).await.unwrap().unwrap().0 }
    };
    let (a, b, c) = (state("a").await, state("b").await, state("c").await);
    assert_eq!((a.state, a.attempts), (DeliveryState::Done, 1));
    assert_eq!((b.state, b.attempts), (DeliveryState::Received, 1));
    assert!(
        b.next_attempt_at >= before + 90_000,
        "retried only after the reset: {} < {}",
        b.next_attempt_at,
        before + 90_000
    );
    assert_eq!((c.state, c.attempts), (DeliveryState::Received, 0));
}
