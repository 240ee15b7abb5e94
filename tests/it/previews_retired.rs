//! Previews retired when their pull request closes, through the real
//! `/webhook` path with GitHub's own `pull_request` payloads
//! (`fixtures/webhooks-examples`) against the fake GitHub.

use crate::common;
use crate::previews::{app, provider_status, setup, PRIVATE_OK, REPO};

use common::Harness;
use serde_json::{json, Value};

const CONFIG: &str = r#"
preview:
  allowed_hosts: ["127.0.0.1"]
  allow_private: true
environments:
  staging:
    deployers: write
smoke:
  checks:
    - name: health
      path: /api/health
      expect: { status: 200, json: ['$.status == "healthy"'] }
"#;

/// GitHub's example `pull_request` payload for `action` (`closed`:
/// `pull_request.3.json`, `reopened`: `pull_request.18.json`), made this
/// repository's PR `pr` at its current head.
fn pull_request_event(t: &Harness, pr: u64, action: &str, merged: bool) -> Value {
    let file = match action {
        "closed" => "pull_request.3.json",
        "reopened" => "pull_request.18.json",
        other => panic!("no example for {other}"),
    };
    let path = format!(
        "{}/fixtures/webhooks-examples/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut p: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(p["action"], action);
    let ours = t.gh.pr(REPO, pr);
    p["number"] = json!(pr);
    p["repository"] = t.gh.repository_json(REPO);
    p["installation"] = json!({ "id": 42 });
    let out = &mut p["pull_request"];
    out["number"] = json!(pr);
    out["merged"] = json!(merged);
    out["head"]["ref"] = json!(ours.head_ref);
    out["head"]["sha"] = json!(ours.head_sha);
    out["base"]["ref"] = json!(ours.base_ref);
    out["base"]["sha"] = json!(ours.base_sha);
    p
}

/// Each deployment's states, by id.
fn states(t: &Harness, id: u64) -> Vec<String> {
    t.gh.deployments(REPO)
        .into_iter()
        .find(|d| d.id == id)
        .unwrap()
        .statuses
        .into_iter()
        .map(|s| s.state)
        .collect()
}

/// Deployment statuses shipgate posted, on any deployment.
fn status_posts(t: &Harness) -> usize {
    t.gh.with(|w| {
        w.requests
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/statuses"))
            .count()
    })
}

/// A PR with a Vercel preview that was live at its first commit and failed
/// at its second, and its head also deployed to the configured `staging`:
/// closing it (merged) retires both preview deployments, leaves staging
/// alone, and the comment says which commit was last live. A redelivery
/// posts nothing twice, and a later deployment status of its commit does
/// not bring the open comment back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_pr_retires_its_preview_deployments_and_nothing_else() {
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let app = app().await;
    let (pr, first) = setup(&t, CONFIG);
    let url = format!("http://{}/", app.addr);
    let live =
        t.gh.create_deployment(REPO, &first, "Preview – web", json!({}));
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", live, &first, &url),
    )
    .await;
    let comment = t.next_reply(REPO, pr).await;
    let second = t.gh.commit(REPO, "feature", &[("f.txt", Some("2"))]);
    t.gh.sync_pr(REPO, pr);
    let staging = t.gh.create_deployment(REPO, &second, "staging", json!({}));
    let status =
        t.gh.deployment_status(REPO, staging, "success", Some(&url), None);
    t.send("deployment_status", &status).await;
    let failed =
        t.gh.create_deployment(REPO, &second, "Preview – web", json!({}));
    let status =
        t.gh.deployment_status(REPO, failed, "failure", None, Some("https://ci/1"));
    t.send("deployment_status", &status).await;
    t.settle().await;
    let open = t.gh.comment_body(REPO, comment.id);
    assert!(open.contains("| `staging` | ✅ ready |"), "{open}");

    t.gh.set_pr(REPO, pr, |p| p.state = "closed".into());
    let closed = pull_request_event(&t, pr, "closed", true);
    t.send("pull_request", &closed).await;
    t.settle().await;
    assert_eq!(states(&t, live), ["inactive"]);
    assert_eq!(states(&t, failed), ["failure", "inactive"]);
    assert_eq!(states(&t, staging), ["success"], "a configured environment");
    let posted = t.gh.requests_to(
        "POST",
        &format!("/repos/{REPO}/deployments/{live}/statuses"),
    );
    assert_eq!(
        posted[0].body["description"],
        format!("shipgate: pull request #{pr} was closed, so this preview is retired")
    );
    let body = t.gh.comment_body(REPO, comment.id);
    assert!(body.starts_with("### 💤 Previews closed"), "{body}");
    assert!(
        body.contains(&format!(
            "| `Preview – web` | `{}` | 💤 inactive |",
            &first[..7]
        )),
        "the last live commit is the first one: {body}"
    );
    assert!(
        body.contains(&format!(
            "| `staging` | `{}` | ➖ left as they are: configured under `environments:`, not a preview |",
            &second[..7]
        )),
        "{body}"
    );

    // GitHub redelivers the close: nothing is posted twice.
    let posts = status_posts(&t);
    t.send("pull_request", &closed).await;
    t.settle().await;
    assert_eq!(states(&t, live), ["inactive"]);
    assert_eq!(states(&t, failed), ["failure", "inactive"]);
    assert_eq!(status_posts(&t), posts);
    assert_eq!(t.gh.bot_comments(REPO, pr).len(), 1);
    assert_eq!(t.gh.comment_body(REPO, comment.id), body);

    // The provider reports on the closed PR's commit again: the comment stays closed.
    let late =
        t.gh.create_deployment(REPO, &second, "Preview – web", json!({}));
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", late, &second, &url),
    )
    .await;
    t.settle().await;
    assert_eq!(t.gh.comment_body(REPO, comment.id), body);
    t.finish().await;
}

/// Closing is final only until the PR is reopened: then the usual comment
/// comes back (its rows inactive) and new deployments update it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_pr_gets_its_previews_comment_back() {
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let app = app().await;
    let (pr, head) = setup(&t, CONFIG);
    let url = format!("http://{}/", app.addr);
    let d =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", d, &head, &url),
    )
    .await;
    let comment = t.next_reply(REPO, pr).await;
    t.gh.set_pr(REPO, pr, |p| p.state = "closed".into());
    t.send("pull_request", &pull_request_event(&t, pr, "closed", false))
        .await;
    t.settle().await;
    assert!(t
        .gh
        .comment_body(REPO, comment.id)
        .starts_with("### 💤 Previews closed"));

    t.gh.set_pr(REPO, pr, |p| p.state = "open".into());
    t.send(
        "pull_request",
        &pull_request_event(&t, pr, "reopened", false),
    )
    .await;
    t.settle().await;
    let body = t.gh.comment_body(REPO, comment.id);
    assert!(body.starts_with("### 🔍 Previews"), "{body}");
    assert!(body.contains("| `Preview – web` | 💤 inactive |"), "{body}");

    let again =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", again, &head, &url),
    )
    .await;
    t.settle().await;
    let body = t.gh.comment_body(REPO, comment.id);
    assert!(body.contains("| `Preview – web` | ✅ ready |"), "{body}");
    assert_eq!(t.gh.bot_comments(REPO, pr).len(), 1);
    t.finish().await;
}

/// Closing a PR is not a way to take down what others rely on: a second PR
/// opened on the same commit (by anyone) cannot retire the first one's
/// preview by closing, and a deployment its creator marked
/// `production_environment` is never retired, whatever its environment's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_pr_cannot_retire_another_prs_preview_or_production() {
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let app = app().await;
    let (victim, head) = setup(&t, CONFIG);
    let mallory = t.gh.open_pr(REPO, "feature", "mallory");
    assert_eq!(t.gh.pr(REPO, mallory).head_sha, head);
    let url = format!("http://{}/", app.addr);
    let preview =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", preview, &head, &url),
    )
    .await;
    let live = t.gh.create_deployment(REPO, &head, "live", json!({}));
    t.gh.set_production_environment(REPO, live);
    let status =
        t.gh.deployment_status(REPO, live, "success", Some(&url), None);
    t.send("deployment_status", &status).await;
    t.settle().await;
    let victims = t.gh.next_bot_comment(REPO, victim);
    let before = t.gh.comment_body(REPO, victims.id);
    let theirs = t.gh.next_bot_comment(REPO, mallory);

    t.gh.set_pr(REPO, mallory, |p| p.state = "closed".into());
    t.send(
        "pull_request",
        &pull_request_event(&t, mallory, "closed", false),
    )
    .await;
    t.settle().await;
    assert_eq!(states(&t, preview), Vec::<String>::new(), "still live");
    assert_eq!(states(&t, live), ["success"]);
    assert_eq!(t.gh.comment_body(REPO, victims.id), before);
    let body = t.gh.comment_body(REPO, theirs.id);
    assert!(
        body.contains(&format!(
            "| `Preview – web` | `{}` | ➖ left as they are: the commit is also the head of open #{victim} |",
            &head[..7]
        )),
        "{body}"
    );

    // The victim closes its own PR: its preview is retired; production is not.
    t.gh.set_pr(REPO, victim, |p| p.state = "closed".into());
    t.send(
        "pull_request",
        &pull_request_event(&t, victim, "closed", true),
    )
    .await;
    t.settle().await;
    assert_eq!(states(&t, preview), ["inactive"]);
    assert_eq!(states(&t, live), ["success"]);
    let body = t.gh.comment_body(REPO, victims.id);
    assert!(
        body.contains(&format!(
            "| `live` | `{}` | ➖ left as they are: production deployments |",
            &head[..7]
        )),
        "{body}"
    );
    t.finish().await;
}

/// A smoke run still in flight when the PR closes (its preview is slow to
/// answer) finishes after the close: the comment stays closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_run_finishing_after_the_close_leaves_the_comment_closed() {
    use axum::routing::get;
    use std::sync::Arc;
    use tokio::sync::{Notify, Semaphore};

    let t = Harness::start_with(&[PRIVATE_OK]).await;
    // The preview answers only when the test lets it, and says when asked.
    let (asked, answer) = (Arc::new(Notify::new()), Arc::new(Semaphore::new(0)));
    let (a, s) = (asked.clone(), answer.clone());
    let router = axum::Router::new().route(
        "/api/health",
        get(move || {
            let (a, s) = (a.clone(), s.clone());
            async move {
                a.notify_one();
                let _permit = s.acquire().await.unwrap();
                axum::Json(json!({ "status": "healthy" }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let (pr, head) = setup(&t, CONFIG);
    let d =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", d, &head, &format!("http://{addr}/")),
    )
    .await;
    asked.notified().await;
    t.gh.set_pr(REPO, pr, |p| p.state = "closed".into());
    t.send("pull_request", &pull_request_event(&t, pr, "closed", true))
        .await;
    t.gh.wait_for("the closed comment", |w| {
        w.repo(REPO)
            .comments
            .iter()
            .any(|c| c.issue == pr && c.body.starts_with("### 💤 Previews closed"))
    })
    .await;
    let comment = t.gh.next_bot_comment(REPO, pr);
    let closed = t.gh.comment_body(REPO, comment.id);
    assert!(closed.starts_with("### 💤 Previews closed"), "{closed}");

    answer.add_permits(100);
    t.settle().await;
    assert_eq!(
        t.gh.created_check_runs(REPO).len(),
        1,
        "the smoke run finished"
    );
    assert_eq!(t.gh.comment_body(REPO, comment.id), closed);
    assert_eq!(t.gh.bot_comments(REPO, pr).len(), 1);
    t.finish().await;
}
