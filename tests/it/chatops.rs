//! ChatOps stories through the real `/webhook` path against the fake GitHub.

use crate::common;

use common::fake_github::BOT_LOGIN;
use common::Harness;
use serde_json::json;

const REPO: &str = "acme/app";
const CONFIG_PATH: &str = ".github/shipgate.yml";
const CONFIG: &str = r#"
default_environment: staging
environments:
  staging:
    deployers: write
    required_checks: [ci]
  production:
    deployers: maintain
    required_approvals: 2
    required_checks: [ci]
    base_branches: [main]
    production: true
    lock_ttl: 2h
"#;

/// A repository with the config, and a PR from `branch` by `author`.
fn repo_with_pr(t: &Harness, config: &str, branch: &str, author: &str) -> (u64, String) {
    if t.gh.with(|w| !w.repos.contains_key(REPO)) {
        t.gh.add_repo(REPO, &[(CONFIG_PATH, config)]);
    }
    t.gh.commit(REPO, branch, &[(&format!("{branch}.txt"), Some(branch))]);
    let pr = t.gh.open_pr(REPO, branch, author);
    let head = t.gh.pr(REPO, pr).head_sha;
    (pr, head)
}

fn green(t: &Harness, sha: &str) {
    t.gh.check_run(REPO, sha, "ci", "completed", Some("success"));
}

fn request_count(t: &Harness) -> usize {
    t.gh.with(|w| w.requests.len())
}

#[tokio::test]
async fn a_writer_deploys_staging_with_green_checks_and_the_reply_follows_the_deployment() {
    let t = Harness::start().await;
    let (pr, head) = repo_with_pr(&t, CONFIG, "feature", "alice");
    t.gh.set_role(REPO, "alice", "write");
    green(&t, &head);

    let before = request_count(&t);
    let comment = t.comment(REPO, pr, "alice", "/deploy staging").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply.body.starts_with("### 🚀 Deploy to `staging` created"),
        "{}",
        reply.body
    );
    assert!(
        reply
            .body
            .contains("| Permission | ✅ | @alice has `write` (needs `write`) |"),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("| Checks | ✅ | `ci` green on"),
        "{}",
        reply.body
    );
    assert_eq!(t.gh.reactions(REPO, comment), ["eyes", "rocket"]);

    let deployments = t.gh.deployments(REPO);
    assert_eq!(deployments.len(), 1);
    let d = &deployments[0];
    assert_eq!(
        (
            d.sha.as_str(),
            d.environment.as_str(),
            d.production_environment
        ),
        (head.as_str(), "staging", false)
    );
    assert_eq!(d.payload["kind"], "deploy");
    assert_eq!(d.payload["pr"], json!(pr));
    assert_eq!(d.payload["actor"], "alice");
    assert_eq!(d.payload["comment_id"], json!(comment));
    let create = t.gh.requests_to("POST", "/repos/acme/app/deployments");
    assert_eq!(
        create[0].body["ref"],
        json!(head),
        "the full sha, resolved before anything else"
    );
    assert_eq!(create[0].body["auto_merge"], json!(false));
    assert_eq!(create[0].body["required_contexts"], json!([]));
    let calls = request_count(&t) - before;
    assert!(calls <= 12, "a /deploy made {calls} GitHub API calls");

    // The deploy workflow reports progress: the same reply is updated.
    let status = t.gh.deployment_status(
        REPO,
        d.id,
        "in_progress",
        None,
        Some("https://ci.example.com/run/1"),
    );
    t.send("deployment_status", &status).await;
    t.settle().await;
    assert!(t
        .gh
        .comment_body(REPO, reply.id)
        .starts_with("### ⏳ Deploy to `staging`: in progress"));
    let status = t.gh.deployment_status(
        REPO,
        d.id,
        "success",
        Some("https://staging.example.com"),
        Some("https://ci.example.com/run/1"),
    );
    t.send("deployment_status", &status).await;
    t.settle().await;
    let body = t.gh.comment_body(REPO, reply.id);
    assert!(
        body.starts_with("### ✅ Deploy to `staging`: success"),
        "{body}"
    );
    assert!(body
        .contains("| Environment | [https://staging.example.com](https://staging.example.com) |"));
    let comments = t.gh.bot_comments(REPO, pr);
    assert_eq!(comments[0].id, reply.id, "one reply, updated in place");
    // The deployment had a URL: it also shows in the PR's preview comment.
    assert_eq!(comments.len(), 2);
    assert!(t
        .gh
        .next_bot_comment(REPO, pr)
        .body
        .starts_with("### 🔍 Previews"));
    assert!(
        t.server
            .store
            .get_lock(REPO, "staging", shipgate::now_ms())
            .await
            .unwrap()
            .is_none(),
        "lock released on success"
    );
    t.finish().await;
}

#[tokio::test]
async fn an_outsider_is_told_the_role_needed_and_nothing_else_happens() {
    let t = Harness::start().await;
    let (pr, head) = repo_with_pr(&t, CONFIG, "feature", "mallory");
    t.gh.set_role(REPO, "mallory", "read");
    green(&t, &head);
    let before = request_count(&t);
    let comment = t.comment(REPO, pr, "mallory", "/deploy production").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .starts_with("### 😕 Deploy to `production` refused"),
        "{}",
        reply.body
    );
    assert!(
        reply
            .body
            .contains("@mallory has `read`; deploying to `production` needs `maintain` or higher"),
        "{}",
        reply.body
    );
    assert_eq!(t.gh.reactions(REPO, comment), ["eyes", "confused"]);
    assert!(t.gh.deployments(REPO).is_empty());
    let paths: Vec<String> = t.gh.with(|w| {
        w.requests[before..]
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    });
    assert!(
        !paths.iter().any(|p| p.contains("/pulls/")),
        "no further lookups for a refused user: {paths:?}"
    );
    t.finish().await;
}

#[tokio::test]
async fn a_red_check_refuses_and_names_the_check() {
    let t = Harness::start().await;
    let (pr, head) = repo_with_pr(&t, CONFIG, "feature", "alice");
    t.gh.set_role(REPO, "alice", "write");
    t.gh.check_run(REPO, &head, "ci", "completed", Some("failure"));
    t.comment(REPO, pr, "alice", "/deploy").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply.body.contains(&format!(
            "| Checks | ❌ | `ci` failure on `{}` |",
            &head[..7]
        )),
        "{}",
        reply.body
    );
    assert!(t.gh.deployments(REPO).is_empty());
    assert!(
        t.server
            .store
            .get_lock(REPO, "staging", shipgate::now_ms())
            .await
            .unwrap()
            .is_none(),
        "a refused deploy holds no lock"
    );
    t.finish().await;
}

#[tokio::test]
async fn production_needs_two_approvals_from_others() {
    let t = Harness::start().await;
    let (pr, head) = repo_with_pr(&t, CONFIG, "feature", "alice");
    t.gh.set_role(REPO, "alice", "maintain");
    for reviewer in ["bob", "carol"] {
        t.gh.set_role(REPO, reviewer, "write");
    }
    green(&t, &head);
    t.gh.review(REPO, pr, "alice", "APPROVED");
    t.gh.review(REPO, pr, "bob", "APPROVED");
    t.comment(REPO, pr, "alice", "/deploy production").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .contains("| Approvals | ❌ | 1 of 2 approvals (by @bob) |"),
        "{}",
        reply.body
    );

    t.gh.review(REPO, pr, "carol", "APPROVED");
    t.comment(REPO, pr, "alice", "/deploy production").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .starts_with("### 🚀 Deploy to `production` created"),
        "{}",
        reply.body
    );
    assert!(t.gh.deployments(REPO)[0].production_environment);
    t.finish().await;
}

#[tokio::test]
async fn a_freeze_refuses_and_an_admin_can_force_it() {
    let always_frozen = r#"
environments:
  staging:
    freeze:
      - { days: [mon, tue, wed, thu, fri, sat, sun], reason: "Code freeze" }
"#;
    let t = Harness::start().await;
    let (pr, _) = repo_with_pr(&t, always_frozen, "feature", "alice");
    t.gh.set_role(REPO, "alice", "write");
    t.gh.set_role(REPO, "root", "admin");
    t.comment(REPO, pr, "alice", "/deploy staging force").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply.body.contains("| Freeze | ⏳ | Code freeze ("),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("(`force` needs maintain or admin)"),
        "{}",
        reply.body
    );

    t.comment(REPO, pr, "root", "/deploy staging force").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply.body.starts_with("### 🚀 Deploy to `staging` created"),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("⚠️ Freeze overridden"),
        "{}",
        reply.body
    );
    let d = &t.gh.deployments(REPO)[0];
    assert!(d.payload["freeze_override"]
        .as_str()
        .unwrap()
        .contains("overridden with `force` by @root"));
    t.finish().await;
}

#[tokio::test]
async fn an_environment_locked_by_another_pr_refuses_until_it_closes() {
    let t = Harness::start().await;
    let (pr_a, _) = repo_with_pr(&t, CONFIG, "a", "alice");
    let (pr_b, head_b) = repo_with_pr(&t, CONFIG, "b", "bob");
    t.gh.set_role(REPO, "alice", "write");
    t.gh.set_role(REPO, "bob", "write");
    green(&t, &head_b);

    t.comment(REPO, pr_a, "alice", "/lock staging testing the migration")
        .await;
    let reply = t.next_reply(REPO, pr_a).await;
    assert!(
        reply
            .body
            .starts_with(&format!("🔒 `staging` is locked by @alice for #{pr_a}")),
        "{}",
        reply.body
    );

    t.comment(REPO, pr_b, "bob", "/deploy staging").await;
    let reply = t.next_reply(REPO, pr_b).await;
    assert!(
        reply.body.contains(&format!(
            "| Lock | ⏳ | locked by #{pr_a} (@alice): testing the migration |"
        )),
        "{}",
        reply.body
    );
    assert!(t.gh.deployments(REPO).is_empty());

    t.comment(REPO, pr_b, "bob", "/unlock staging").await;
    let reply = t.next_reply(REPO, pr_b).await;
    assert!(
        reply
            .body
            .contains("only @alice (who holds it) or a user with `maintain` or `admin` can unlock"),
        "{}",
        reply.body
    );

    // PR A closes: its lock goes with it.
    let mut closed = t.gh.pull_request_payload(REPO, pr_a, "closed");
    closed["pull_request"]["state"] = json!("closed");
    t.send("pull_request", &closed).await;
    t.settle().await;
    assert!(t
        .server
        .store
        .get_lock(REPO, "staging", shipgate::now_ms())
        .await
        .unwrap()
        .is_none());
    t.comment(REPO, pr_b, "bob", "/deploy staging").await;
    assert!(t
        .next_reply(REPO, pr_b)
        .await
        .body
        .starts_with("### 🚀 Deploy to `staging` created"));
    t.finish().await;
}

#[tokio::test]
async fn a_queued_deploy_runs_when_the_lock_frees() {
    let t = Harness::start().await;
    let (pr_a, head_a) = repo_with_pr(&t, CONFIG, "a", "alice");
    let (pr_b, head_b) = repo_with_pr(&t, CONFIG, "b", "bob");
    t.gh.set_role(REPO, "alice", "write");
    t.gh.set_role(REPO, "bob", "write");
    green(&t, &head_a);
    green(&t, &head_b);

    t.comment(REPO, pr_a, "alice", "/deploy staging").await;
    t.next_reply(REPO, pr_a).await;
    t.comment(REPO, pr_b, "bob", "/deploy staging queue").await;
    let queued = t.next_reply(REPO, pr_b).await;
    assert!(
        queued
            .body
            .starts_with("### 🕓 Deploy to `staging` queued (position 1)"),
        "{}",
        queued.body
    );

    t.comment(REPO, pr_b, "bob", "/status staging").await;
    let status = t.next_reply(REPO, pr_b).await;
    assert!(
        status
            .body
            .contains(&format!("| Lock | deploying by #{pr_a} (@alice) until")),
        "{}",
        status.body
    );
    assert!(
        status.body.contains(&format!("| Queue | #{pr_b} (@bob) |")),
        "{}",
        status.body
    );

    let first = t.gh.deployments(REPO)[0].id;
    t.send(
        "deployment_status",
        &t.gh.deployment_status(REPO, first, "success", None, None),
    )
    .await;
    t.settle().await;
    let deployments = t.gh.deployments(REPO);
    assert_eq!(deployments.len(), 2, "the queued deploy ran");
    assert_eq!(deployments[1].sha, head_b);
    let body = t.gh.comment_body(REPO, queued.id);
    assert!(
        body.starts_with("### 🚀 Deploy to `staging` created"),
        "the queued reply is updated in place: {body}"
    );
    assert!(t.gh.bot_comments(REPO, pr_a)[0]
        .body
        .starts_with("### ✅ Deploy to `staging`: success"));
    t.finish().await;
}

async fn fifty_way_race(t: Harness) {
    t.gh.add_repo(REPO, &[(CONFIG_PATH, CONFIG)]);
    let mut prs = Vec::new();
    for i in 0..50 {
        let user = format!("dev{i}");
        let (pr, head) = repo_with_pr(&t, CONFIG, &format!("race-{i}"), &user);
        t.gh.set_role(REPO, &user, "write");
        green(&t, &head);
        prs.push((pr, user));
    }
    let sends = prs.iter().map(|(pr, user)| {
        let id = t.gh.add_comment(REPO, *pr, user, "/deploy staging");
        let payload = t.gh.issue_comment_payload(REPO, id, "created", None);
        let t = &t;
        async move { t.send("issue_comment", &payload).await }
    });
    for (status, _) in futures_util::future::join_all(sends).await {
        assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    }
    t.settle().await;
    assert_eq!(t.gh.deployments(REPO).len(), 1, "exactly one deployment");
    let mut created = 0;
    for (pr, _) in &prs {
        let reply = t.gh.next_bot_comment(REPO, *pr);
        if reply.body.contains("created") {
            created += 1;
        } else {
            assert!(
                reply.body.contains("| Lock | ⏳ | deploying by #"),
                "{}",
                reply.body
            );
        }
    }
    assert_eq!(created, 1);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_deploys_give_one_deployment_on_sqlite() {
    fifty_way_race(Harness::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_deploys_give_one_deployment_on_postgres() {
    let db = postgres_or_skip!();
    fifty_way_race(
        Harness::start_with(&[("DATABASE_URL", &db), ("SHIPGATE_WORKER_CONCURRENCY", "8")]).await,
    )
    .await;
}

#[tokio::test]
async fn rollback_picks_the_previous_good_sha() {
    let t = Harness::start().await;
    let _ = repo_with_pr(&t, CONFIG, "feature", "alice");
    t.gh.set_role(REPO, "alice", "maintain");
    let good = t.gh.commit(REPO, "main", &[("v1", Some("1"))]);
    let bad = t.gh.commit(REPO, "main", &[("v2", Some("2"))]);
    let current = t.gh.commit(REPO, "main", &[("v3", Some("3"))]);
    // GitHub marks older deployments inactive when a newer one succeeds.
    t.gh.add_deployment(
        REPO,
        &good,
        "production",
        &["in_progress", "success", "inactive"],
    );
    t.gh.add_deployment(REPO, &bad, "production", &["in_progress", "failure"]);
    t.gh.add_deployment(REPO, &current, "production", &["in_progress", "success"]);

    // Rollbacks work from any comment of the repository, a plain issue too.
    let issue = 4242;
    t.comment(REPO, issue, "alice", "/rollback production")
        .await;
    let reply = t.next_reply(REPO, issue).await;
    assert!(
        reply
            .body
            .starts_with("### 🚀 Rollback to `production` created"),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains(&format!(
            "| From → to | `{}` → `{}` |",
            &current[..7],
            &good[..7]
        )),
        "{}",
        reply.body
    );
    let d = t.gh.deployments(REPO).pop().unwrap();
    assert_eq!(
        (d.sha.as_str(), d.payload["kind"].as_str()),
        (good.as_str(), Some("rollback"))
    );
    assert_eq!(d.payload["previous_sha"], json!(current));
    t.finish().await;
}

#[tokio::test]
async fn rollback_without_an_earlier_good_deployment_says_so() {
    let t = Harness::start().await;
    let (pr, _) = repo_with_pr(&t, CONFIG, "feature", "alice");
    t.gh.set_role(REPO, "alice", "maintain");
    let only = t.gh.commit(REPO, "main", &[("v1", Some("1"))]);
    t.gh.add_deployment(REPO, &only, "production", &["success"]);
    t.comment(REPO, pr, "alice", "/rollback production").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .contains("has no successful deployment before the current one"),
        "{}",
        reply.body
    );
    assert_eq!(t.gh.deployments(REPO).len(), 1);
    t.finish().await;
}

#[tokio::test]
async fn a_comment_processed_again_posts_nothing_new() {
    let t = Harness::start().await;
    let (pr, head) = repo_with_pr(&t, CONFIG, "feature", "alice");
    t.gh.set_role(REPO, "alice", "write");
    green(&t, &head);
    let id = t.gh.add_comment(REPO, pr, "alice", "/deploy staging");
    let payload = t.gh.issue_comment_payload(REPO, id, "created", None);
    t.send_with_id("issue_comment", "same-delivery", &payload)
        .await;
    t.send_with_id("issue_comment", "same-delivery", &payload)
        .await;
    // The same comment under a new delivery id: as after a crash between
    // the effects and recording the delivery done.
    t.send_with_id("issue_comment", "reprocessed", &payload)
        .await;
    t.next_reply(REPO, pr).await;
    assert_eq!(t.gh.deployments(REPO).len(), 1);
    assert_eq!(t.gh.bot_comments(REPO, pr).len(), 1);
    t.finish().await;
}

#[tokio::test]
async fn an_edited_comment_runs_only_new_commands() {
    let t = Harness::start().await;
    let (pr, _) = repo_with_pr(&t, CONFIG, "feature", "alice");
    t.gh.set_role(REPO, "alice", "write");
    let id = t.comment(REPO, pr, "alice", "/help").await;
    t.next_reply(REPO, pr).await;
    // Prose added: nothing new to run.
    t.gh.with(|_| ());
    let edited =
        t.gh.issue_comment_payload(REPO, id, "edited", Some("/help"));
    let mut edited_prose = edited.clone();
    edited_prose["comment"]["body"] = json!("/help\nthanks!");
    t.send("issue_comment", &edited_prose).await;
    t.settle().await;
    assert_eq!(t.gh.bot_comments(REPO, pr).len(), 1);
    // A command added: only it runs.
    let mut edited_cmd = edited;
    edited_cmd["comment"]["body"] = json!("/help\nthanks!\n/status staging");
    edited_cmd["changes"]["body"]["from"] = json!("/help\nthanks!");
    t.send("issue_comment", &edited_cmd).await;
    t.settle().await;
    // One comment, one reply: the new command's answer joins it.
    let replies = t.gh.bot_comments(REPO, pr);
    assert_eq!(replies.len(), 1);
    let (first, second) = replies[0].body.split_once("\n---\n").expect("two sections");
    assert!(first.starts_with("### shipgate commands"), "{first}");
    assert!(second.contains("### Deployment status"), "{second}");
    t.finish().await;
}

#[tokio::test]
async fn commands_in_code_blocks_and_the_bots_own_comments_are_ignored() {
    let t = Harness::start().await;
    let (pr, _) = repo_with_pr(&t, CONFIG, "feature", "alice");
    let before = request_count(&t);
    let id = t
        .comment(
            REPO,
            pr,
            "alice",
            "Try this:\n```\n/deploy production\n```\n> /rollback production",
        )
        .await;
    t.comment(REPO, pr, BOT_LOGIN, "/deploy staging").await;
    t.settle().await;
    assert!(t.gh.reactions(REPO, id).is_empty());
    assert_eq!(request_count(&t), before, "no API calls at all");
    // The only bot comment is the one this test wrote as the bot.
    assert_eq!(t.gh.next_bot_comment(REPO, pr).body, "/deploy staging");
    t.finish().await;
}

#[tokio::test]
async fn typos_get_did_you_mean() {
    let t = Harness::start().await;
    let (pr, _) = repo_with_pr(&t, CONFIG, "feature", "alice");
    t.gh.set_role(REPO, "alice", "write");
    let id = t.comment(REPO, pr, "alice", "/deplyo staging").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .starts_with("⚠️ unknown command `/deplyo`; did you mean `/deploy`?"),
        "{}",
        reply.body
    );
    assert_eq!(t.gh.reactions(REPO, id), ["eyes", "confused"]);
    t.comment(REPO, pr, "alice", "/deploy prodution").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .contains("unknown environment `prodution`; did you mean `production`?"),
        "{}",
        reply.body
    );
    t.comment(REPO, pr, "alice", "/deploy staging ref=no-such-branch")
        .await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .contains("`ref=no-such-branch` is not a branch, tag or commit of this repository"),
        "{}",
        reply.body
    );
    t.finish().await;
}

#[tokio::test]
async fn help_lists_the_commands_and_each_environments_gates() {
    let t = Harness::start().await;
    let (pr, _) = repo_with_pr(&t, CONFIG, "feature", "alice");
    t.comment(REPO, pr, "alice", "/help").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .contains("| `/rollback ENV [to=REF\\|DEPLOYMENT_ID] [force]` |"),
        "{}",
        reply.body
    );
    assert!(
        reply
            .body
            .contains("| `production` | `maintain`+ | 2 | ci | from PRs into main; lock TTL 2h |"),
        "{}",
        reply.body
    );
    assert!(
        reply
            .body
            .contains("| `staging` (default) | `write`+ | 0 | ci | — |"),
        "{}",
        reply.body
    );
    t.finish().await;
}

#[tokio::test]
async fn the_worst_case_deploy_stays_within_fourteen_api_calls() {
    let t = Harness::start().await;
    let (pr, head) = repo_with_pr(&t, CONFIG, "feature", "alice");
    t.gh.set_role(REPO, "alice", "maintain");
    for reviewer in ["bob", "carol"] {
        t.gh.set_role(REPO, reviewer, "write");
    }
    t.gh.review(REPO, pr, "bob", "APPROVED");
    t.gh.review(REPO, pr, "carol", "APPROVED");
    green(&t, &head);
    // Production: approvals and checks to read (and each approver's role:
    // only reviews by people with write access count), a ref to resolve, a
    // previous deployment to name.
    let before = request_count(&t);
    t.comment(REPO, pr, "alice", "/deploy production ref=feature")
        .await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .starts_with("### 🚀 Deploy to `production` created"),
        "{}",
        reply.body
    );
    let calls: Vec<String> = t.gh.with(|w| {
        w.requests[before..]
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    });
    // If this grows, a change added GitHub calls to the hot path of /deploy.
    assert_eq!(calls.len(), 14, "{calls:#?}");
    t.finish().await;
}

#[tokio::test]
async fn deployers_can_be_named_people_and_teams() {
    let by_name = "environments:\n  production:\n    deployers: [bob, \"@acme/sre\"]\n";
    let t = Harness::start().await;
    let (pr, _) = repo_with_pr(&t, by_name, "feature", "alice");
    t.gh.add_team_member("acme", "sre", "carol");
    for user in ["bob", "carol", "dave"] {
        t.gh.set_role(REPO, user, "admin");
    }
    t.comment(REPO, pr, "dave", "/deploy production").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .contains("@dave is not among the deployers of `production`: bob, @acme/sre"),
        "{}",
        reply.body
    );
    t.comment(REPO, pr, "carol", "/deploy production").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .contains("| Permission | ✅ | @carol is a deployer of `production` |"),
        "{}",
        reply.body
    );
    t.finish().await;
}
