use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;

/// A loopback webhook: answers the first `failures` POSTs with 503, then
/// 200, or holds every request until `release` is notified. Returns its URL
/// and the bodies it received.
async fn receiver(
    failures: u32,
    hold: Option<Arc<tokio::sync::Notify>>,
) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(AtomicU32::new(0));
    let g = got.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let (g, seen, hold) = (g.clone(), seen.clone(), hold.clone());
            async move {
                g.lock().unwrap().push(v);
                if let Some(h) = hold {
                    h.notified().await;
                }
                if seen.fetch_add(1, Ordering::SeqCst) < failures {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

fn destination(name: &str, url: &str) -> Destination {
    let (kind, url) = destination::parse_url(url).unwrap();
    Destination {
        name: name.into(),
        kind,
        url,
        owners: Vec::new(),
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy::with_base(Duration::from_millis(5))
}

fn message(repo: &str) -> Message {
    Message::new(Event::DeployFailed, repo, "❌ failed".into())
        .environment("production")
        .sha("0123456789")
}

#[tokio::test]
async fn a_destination_that_fails_twice_gets_the_third_attempt() {
    let (url, got) = receiver(2, None).await;
    let d = destination("ops", &url);
    let attempts = deliver::deliver(&deliver::client(&fast()), &d, &message("o/r"), &fast())
        .await
        .unwrap();
    assert_eq!(attempts, 3);
    assert_eq!(got.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn retries_are_bounded_and_the_failure_never_names_the_url() {
    let (url, got) = receiver(u32::MAX, None).await;
    let d = destination("ops", &url);
    let f = deliver::deliver(&deliver::client(&fast()), &d, &message("o/r"), &fast())
        .await
        .unwrap_err();
    assert_eq!(f.attempts, 4);
    assert_eq!(got.lock().unwrap().len(), 4);
    assert_eq!(f.to_string(), "answered 503 (after 4 attempt(s))");
    // Nothing listens on a port just released: a connection error.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let d = destination("ops", &format!("http://{closed}/secret-path"));
    let f = deliver::deliver(&deliver::client(&fast()), &d, &message("o/r"), &fast())
        .await
        .unwrap_err();
    assert_eq!(f.to_string(), "could not connect (after 4 attempt(s))");
}

#[tokio::test]
async fn a_4xx_other_than_429_is_not_retried() {
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { axum::http::StatusCode::NOT_FOUND }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let d = destination("ops", &format!("http://{addr}/hook"));
    let f = deliver::deliver(&deliver::client(&fast()), &d, &message("o/r"), &fast())
        .await
        .unwrap_err();
    assert_eq!(f.attempts, 1);
}

#[tokio::test]
async fn one_owner_cannot_fill_a_shared_destinations_queue() {
    let hold = Arc::new(tokio::sync::Notify::new());
    let (url, got) = receiver(0, Some(hold.clone())).await;
    let limits = NotifyLimits {
        queue: 4,
        per_owner: 2,
        concurrency: 1,
        retry: fast(),
    };
    let n = Notifier::new(vec![destination("ops", &url)], limits);
    assert_eq!(n.enqueue("ops", &message("a/x")), Ok(()));
    assert_eq!(n.enqueue("ops", &message("A/y")), Ok(()));
    assert_eq!(
        n.enqueue("ops", &message("a/z")),
        Err(Refused::Full),
        "owner a has its share"
    );
    assert_eq!(n.enqueue("ops", &message("b/x")), Ok(()));
    assert_eq!(n.enqueue("ops", &message("b/x")), Ok(()));
    assert_eq!(
        n.enqueue("ops", &message("c/x")),
        Err(Refused::Full),
        "the destination's queue is full"
    );
    assert_eq!(n.enqueue("nope", &message("c/x")), Err(Refused::Unknown));
    // One at a time reaches the receiver; once they finish, room again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().len() < 4 {
        hold.notify_waiters();
        assert!(tokio::time::Instant::now() < deadline, "all four arrive");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while n.enqueue("ops", &message("c/x")).is_err() {
        hold.notify_waiters();
        assert!(tokio::time::Instant::now() < deadline, "room again");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    hold.notify_waiters();
}

#[test]
fn routes_pick_events_and_an_owner_scoped_destination_serves_only_its_owners() {
    let route = Route {
        to: "ops".into(),
        events: Some(vec![Event::DeployFailed, Event::Rollback]),
    };
    assert!(route.wants("deploy_failed") && route.wants("rollback"));
    assert!(!route.wants("deploy_succeeded"));
    let all = Route {
        to: "ops".into(),
        events: None,
    };
    assert!(all.wants("smoke_recovered"));
    let list = destination::parse_list("ops@acme=https://x.example/h").unwrap();
    let n = Notifier::new(list, NotifyLimits::default());
    assert!(n.serves("ops", "acme/app"));
    assert!(!n.serves("ops", "other/app"));
    assert_eq!(
        n.enqueue("ops", &message("other/app")),
        Err(Refused::Unknown)
    );
}

#[test]
fn the_json_body_has_its_documented_fields() {
    let m = message("o/r").url(Some("https://ci/1"));
    assert_eq!(
        m.json_body(),
        serde_json::json!({
            "version": 1,
            "event": "deploy_failed",
            "repository": "o/r",
            "environment": "production",
            "sha": "0123456789",
            "url": "https://ci/1",
            "text": "❌ failed",
        })
    );
    assert_eq!(
        deliver::body(Kind::Slack, &m),
        serde_json::json!({ "text": "❌ failed" })
    );
}

#[test]
fn slack_text_cannot_mention_channels_or_forge_links() {
    let m = Message::new(
        Event::DeployFailed,
        "o/r",
        "❌ o/r: deployment to `<!channel> <https://evil.example|docs>` & more".into(),
    );
    assert_eq!(
        deliver::body(Kind::Slack, &m)["text"],
        "❌ o/r: deployment to `&lt;!channel&gt; &lt;https://evil.example|docs&gt;` &amp; more"
    );
    // The JSON webhook gets the text as it is; its reader decides.
    assert_eq!(deliver::body(Kind::Json, &m)["text"], m.text);
}
