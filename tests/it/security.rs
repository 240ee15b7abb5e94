//! The gates against a hostile collaborator: each story tries one way
//! around a gate through the real `/webhook` path against the fake GitHub,
//! and SECURITY.md names it. Every one of them failed on the code before its
//! fix (see SECURITY.md).

use crate::common;

use common::fake_github::BOT_LOGIN;
use common::Harness;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const REPO: &str = "acme/app";
const CONFIG_PATH: &str = ".github/shipgate.yml";
const CONFIG: &str = r#"
default_environment: staging
environments:
  staging:
    deployers: write
  production:
    deployers: maintain
    required_approvals: 2
    production: true
"#;

/// A repository with `config` and an open PR from `feature` by `author`.
fn setup(t: &Harness, config: &str, author: &str) -> (u64, String) {
    t.gh.add_repo(REPO, &[(CONFIG_PATH, config)]);
    t.gh.commit(REPO, "feature", &[("f.txt", Some("1"))]);
    let pr = t.gh.open_pr(REPO, "feature", author);
    let head = t.gh.pr(REPO, pr).head_sha;
    (pr, head)
}

fn deployments(t: &Harness) -> usize {
    t.gh.deployments(REPO).len()
}

/// `user` comments `text` on `pr`; returns shipgate's reply.
async fn ask(t: &Harness, pr: u64, user: &str, text: &str) -> common::fake_github::Comment {
    t.comment(REPO, pr, user, text).await;
    t.next_reply(REPO, pr).await
}

/// The reply says the deployment (`what`: "Deploy to `staging`") was created.
fn created(reply: &common::fake_github::Comment, what: &str) {
    assert!(
        reply.body.starts_with(&format!("### 🚀 {what} created")),
        "{}",
        reply.body
    );
}

/// The key of a command line as shipgate derives it (its text and occurrence).
fn line_key(text: &str) -> i64 {
    let digest = Sha256::digest(format!("{text}#0").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().unwrap()) & i64::MAX
}

// ---- ChatOps: who acts

#[tokio::test]
async fn editing_an_admins_comment_runs_the_command_with_the_editors_rights() {
    let t = Harness::start().await;
    let (pr, _) = setup(&t, CONFIG, "alice");
    t.gh.set_role(REPO, "mallory", "write");
    // octocat (admin) asks for the status; mallory edits it into a deploy.
    let id = t.comment(REPO, pr, "octocat", "/status").await;
    t.next_reply(REPO, pr).await;
    let edited = t.gh.edit_comment(REPO, id, "mallory", "/deploy production");
    t.send("issue_comment", &edited).await;
    t.settle().await;
    assert_eq!(deployments(&t), 0, "nothing deploys with octocat's rights");
    let reply = &t.gh.bot_comments(REPO, pr)[0];
    assert!(
        reply
            .body
            .contains("@mallory has `write`; deploying to `production` needs `maintain` or higher"),
        "{}",
        reply.body
    );
    t.finish().await;
}

// ---- Approvals

#[tokio::test]
async fn approvals_by_people_without_write_access_do_not_count() {
    let t = Harness::start().await;
    let (pr, _) = setup(&t, CONFIG, "alice");
    t.gh.set_role(REPO, "alice", "maintain");
    t.gh.set_role(REPO, "reader", "read");
    t.gh.set_role(REPO, "stranger", "none");
    t.gh.review(REPO, pr, "reader", "APPROVED");
    t.gh.review(REPO, pr, "stranger", "APPROVED");
    let reply = ask(&t, pr, "alice", "/deploy production").await;
    assert!(
        reply.body.contains(
            "| Approvals | ❌ | 0 of 2 approvals; not counted: @reader (read), @stranger (no access) |"
        ),
        "{}",
        reply.body
    );
    assert_eq!(deployments(&t), 0);
    t.finish().await;
}

#[tokio::test]
async fn an_approval_of_an_earlier_head_does_not_carry_over_unless_stale_approvals_allow_it() {
    let t = Harness::start().await;
    let (pr, _) = setup(&t, CONFIG, "alice");
    t.gh.set_role(REPO, "alice", "maintain");
    for r in ["bob", "carol"] {
        t.gh.set_role(REPO, r, "write");
        t.gh.review(REPO, pr, r, "APPROVED");
    }
    // A new commit after the approvals: what was approved is not what would ship.
    t.gh.commit(REPO, "feature", &[("evil.txt", Some("backdoor"))]);
    t.gh.sync_pr(REPO, pr);
    let reply = ask(&t, pr, "alice", "/deploy production").await;
    assert!(
        reply.body.contains("| Approvals | ❌ | 0 of 2 approvals; not counted: @bob (approved an earlier commit), @carol (approved an earlier commit) |"),
        "{}",
        reply.body
    );
    assert_eq!(deployments(&t), 0);

    let stale = CONFIG.replace(
        "production: true",
        "production: true\n    stale_approvals: true",
    );
    t.gh.commit(REPO, "main", &[(CONFIG_PATH, Some(&stale))]);
    let reply = ask(&t, pr, "alice", "/deploy production").await;
    created(&reply, "Deploy to `production`");
    t.finish().await;
}

#[tokio::test]
async fn the_policy_check_and_the_protection_rule_count_approvals_the_same_way() {
    let policy = "protection:\n  branches:\n    main:\n      required_approvals: 1\nenvironments:\n  production:\n    required_approvals: 1\n";
    let t = Harness::start().await;
    let (pr, head) = setup(&t, policy, "alice");
    t.gh.set_role(REPO, "reader", "read");
    t.gh.review(REPO, pr, "reader", "APPROVED");
    t.send(
        "pull_request",
        &t.gh.pull_request_payload(REPO, pr, "synchronize"),
    )
    .await;
    t.settle().await;
    let check =
        t.gh.created_check_runs(REPO)
            .into_iter()
            .find(|c| c["name"] == "shipgate/policy")
            .expect("a shipgate/policy check");
    assert_eq!(check["conclusion"], "failure", "{check}");
    assert_eq!(
        check["output"]["title"],
        "1 unmet: Approvals: 0 of 1 approvals; not counted: @reader (read)"
    );

    // A workflow run of the PR asks to deploy through the protection rule.
    let d = t.gh.create_deployment(REPO, &head, "production", json!({}));
    let payload =
        t.gh.protection_rule_payload(REPO, "301", "production", d, &head, "feature", Some(pr));
    t.send("deployment_protection_rule", &payload).await;
    t.settle().await;
    let callbacks = t.gh.protection_callbacks(REPO, "301");
    assert_eq!(callbacks.len(), 1, "{callbacks:?}");
    assert_eq!(callbacks[0]["state"], "rejected", "{callbacks:?}");
    assert!(callbacks[0]["comment"]
        .as_str()
        .unwrap()
        .contains("❌ Approvals: 0 of 1 approvals; not counted: @reader (read)"));
    t.finish().await;
}

// ---- What ships

#[tokio::test]
async fn a_rollback_to_a_commit_that_never_ran_is_refused() {
    let t = Harness::start().await;
    let (pr, _) = setup(&t, CONFIG, "alice");
    t.gh.set_role(REPO, "alice", "maintain");
    let main = t.gh.with(|w| w.repo(REPO).branches["main"].clone());
    t.gh.add_deployment(REPO, &main, "production", &["success"]);
    // `feature` was never deployed: a "rollback" to it would skip every gate.
    let reply = ask(&t, pr, "alice", "/rollback production to=feature").await;
    assert!(
        reply.body.contains("was never deployed to `production` successfully, so it is not a rollback; to ship it, use `/deploy production ref=…`, where every gate applies"),
        "{}",
        reply.body
    );
    assert_eq!(deployments(&t), 1, "only the earlier deployment");

    // The same commit once deployed (and superseded) is a fine target.
    t.comment(
        REPO,
        pr,
        "alice",
        &format!("/rollback production to={main}"),
    )
    .await;
    let reply = t.next_reply(REPO, pr).await;
    created(&reply, "Rollback to `production`");
    t.finish().await;
}

#[tokio::test]
async fn deploy_ref_counts_the_prs_approvals_only_for_its_head() {
    let t = Harness::start().await;
    let (pr, _) = setup(&t, CONFIG, "alice");
    t.gh.set_role(REPO, "alice", "maintain");
    for r in ["bob", "carol"] {
        t.gh.set_role(REPO, r, "write");
        t.gh.review(REPO, pr, r, "APPROVED");
    }
    let other = t.gh.commit(REPO, "unreviewed", &[("x", Some("x"))]);
    let reply = ask(&t, pr, "alice", "/deploy production ref=unreviewed").await;
    assert!(
        reply.body.contains(&format!(
            "approvals of #{pr} count for its head `{}`, and the commit to deploy is `{}`",
            &t.gh.pr(REPO, pr).head_sha[..7],
            &other[..7]
        )),
        "{}",
        reply.body
    );
    assert_eq!(deployments(&t), 0);
    t.finish().await;
}

#[tokio::test]
async fn a_pull_request_from_a_fork_deploys_only_where_forks_are_allowed() {
    let t = Harness::start().await;
    let (pr, _) = setup(&t, CONFIG, "eve");
    t.gh.make_fork_pr(REPO, pr, "eve/app");
    t.gh.set_role(REPO, "alice", "write");
    let reply = ask(&t, pr, "alice", "/deploy staging").await;
    assert!(
        reply.body.contains(&format!(
            "| Fork | ❌ | #{pr} comes from a fork, and `staging` does not deploy forks (`allow_forks: true` allows it) |"
        )),
        "{}",
        reply.body
    );
    assert_eq!(deployments(&t), 0);

    let open = CONFIG.replace(
        "deployers: write",
        "deployers: write\n    allow_forks: true",
    );
    t.gh.commit(REPO, "main", &[(CONFIG_PATH, Some(&open))]);
    let reply = ask(&t, pr, "alice", "/deploy staging").await;
    created(&reply, "Deploy to `staging`");
    t.finish().await;
}

// ---- The protection rule and shipgate's own deployments

#[tokio::test]
async fn a_deploy_shipgate_created_under_its_lock_passes_that_lock_in_the_protection_rule() {
    let config = "environments:\n  production:\n    deployers: maintain\n    refs: [main]\n";
    let t = Harness::start().await;
    let (pr, head) = setup(&t, config, "alice");
    t.gh.set_role(REPO, "alice", "maintain");
    let reply = ask(&t, pr, "alice", "/deploy production").await;
    created(&reply, "Deploy to `production`");
    let d = t.gh.deployments(REPO)[0].id;
    // The workflow the `deployment` event started asks: no pull requests,
    // sent by the App, the lock held for exactly this deployment.
    let mut payload =
        t.gh.protection_rule_payload(REPO, "401", "production", d, &head, &head, None);
    payload["sender"] = json!({ "login": BOT_LOGIN, "type": "Bot" });
    t.send("deployment_protection_rule", &payload).await;
    t.settle().await;
    let callbacks = t.gh.protection_callbacks(REPO, "401");
    assert_eq!(callbacks.len(), 1, "{callbacks:?}");
    assert_eq!(callbacks[0]["state"], "approved", "{callbacks:?}");
    assert!(callbacks[0]["comment"]
        .as_str()
        .unwrap()
        .contains("✅ Lock: held for this deployment"));

    // Another deployment to the same environment meanwhile waits for the lock.
    let other = t.gh.create_deployment(
        REPO,
        &head,
        "production",
        json!({ "kind": "deploy", "pr": pr }),
    );
    let payload =
        t.gh.protection_rule_payload(REPO, "402", "production", other, &head, "main", None);
    t.send("deployment_protection_rule", &payload).await;
    t.settle().await;
    let callbacks = t.gh.protection_callbacks(REPO, "402");
    assert!(
        callbacks.iter().all(|c| c.get("state").is_none()),
        "{callbacks:?}"
    );
    assert!(callbacks[0]["comment"]
        .as_str()
        .unwrap()
        .contains(&format!("⏳ Lock: deploying by #{pr} (@alice)")));
    t.finish().await;
}

#[tokio::test]
async fn a_tag_named_like_an_allowed_branch_does_not_pass_refs() {
    let config = "environments:\n  production:\n    refs: [main]\n";
    let t = Harness::start().await;
    let (_, head) = setup(&t, config, "alice");
    // A tag `main` at an off-branch commit.
    t.gh.tag(REPO, "main", &head);
    let d = t.gh.create_deployment(REPO, &head, "production", json!({}));
    let payload =
        t.gh.protection_rule_payload(REPO, "501", "production", d, &head, "refs/tags/main", None);
    t.send("deployment_protection_rule", &payload).await;
    t.settle().await;
    let callbacks = t.gh.protection_callbacks(REPO, "501");
    assert_eq!(callbacks[0]["state"], "rejected", "{callbacks:?}");
    assert!(callbacks[0]["comment"]
        .as_str()
        .unwrap()
        .contains("❌ Ref: tag `main` may not deploy to `production`"));
    t.finish().await;
}

// ---- Text and comments that are not shipgate's

#[tokio::test]
async fn a_retried_command_does_not_adopt_a_comment_someone_else_planted() {
    let t = Harness::start().await;
    let (pr, _) = setup(&t, CONFIG, "alice");
    t.gh.set_role(REPO, "alice", "write");
    let id = t.gh.add_comment(REPO, pr, "alice", "/deploy staging");
    // mallory plants both markers before shipgate replies; shipgate's first
    // reply fails, so its retry looks for a reply it may have posted.
    let planted = t.gh.add_comment(
        REPO,
        pr,
        "mallory",
        &format!(
            "pwned <!-- shipgate:run {id}:{} --> <!-- shipgate:reply {id} -->",
            line_key("/deploy staging")
        ),
    );
    t.gh.fail_next(
        "POST",
        &format!("/repos/{REPO}/issues/{pr}/comments"),
        1,
        502,
    );
    let payload = t.gh.issue_comment_payload(REPO, id, "created", None);
    t.send("issue_comment", &payload).await;
    t.settle().await;
    assert!(
        t.gh.comment_body(REPO, planted).starts_with("pwned"),
        "mallory's comment is untouched"
    );
    let reply = t.next_reply(REPO, pr).await;
    created(&reply, "Deploy to `staging`");
    t.finish().await;
}

#[tokio::test]
async fn text_from_a_config_cannot_mention_people_or_break_the_reply() {
    let config = "environments:\n  staging:\n    freeze:\n      - { days: [mon, tue, wed, thu, fri, sat, sun], reason: \"Freeze\\n\\n@acme/everyone | <!-- shipgate:preview -->\" }\n";
    let t = Harness::start().await;
    let (pr, _) = setup(&t, config, "alice");
    t.gh.set_role(REPO, "alice", "write");
    let reply = ask(&t, pr, "alice", "/deploy staging").await;
    assert!(!reply.body.contains("@acme/everyone"), "{}", reply.body);
    assert!(
        !reply.body.contains("<!-- shipgate:preview"),
        "{}",
        reply.body
    );
    let freeze = reply
        .body
        .lines()
        .find(|l| l.starts_with("| Freeze |"))
        .expect("the freeze row");
    assert!(
        freeze.contains("Freeze  @\u{2060}acme/everyone ¦ &lt;!-- shipgate:preview --&gt; ("),
        "{freeze}"
    );
    t.finish().await;
}

// ---- Comment floods

#[tokio::test]
async fn one_comment_gets_one_reply_and_a_reader_cannot_make_the_bot_flood_a_pr() {
    let t = Harness::start().await;
    let (pr, _) = setup(&t, CONFIG, "alice");
    t.gh.set_role(REPO, "reader", "read");
    let flood = vec!["/help"; 30].join("\n");
    let first = t.comment(REPO, pr, "reader", &flood).await;
    let reply = t.next_reply(REPO, pr).await;
    assert_eq!(reply.body.matches("### shipgate commands").count(), 10);
    assert!(
        reply
            .body
            .contains("20 more command line(s) were not run: a comment runs at most 10."),
        "{}",
        reply.body
    );
    // The allowance is spent: later comments by the reader get nothing.
    let before = t.gh.with(|w| w.requests.len());
    for _ in 0..5 {
        t.comment(REPO, pr, "reader", "/help").await;
    }
    t.settle().await;
    assert_eq!(t.gh.bot_comments(REPO, pr).len(), 1, "no further replies");
    let calls: Vec<String> = t.gh.with(|w| {
        w.requests[before..]
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    });
    assert!(
        calls
            .iter()
            .all(|c| c.ends_with("/collaborators/reader/permission")),
        "one role lookup per ignored comment, nothing else: {calls:?}"
    );
    assert_eq!(t.gh.reactions(REPO, first), ["eyes"]);
    // A maintainer is still answered at once.
    let reply = ask(&t, pr, "octocat", "/status").await;
    assert!(
        reply.body.contains("### Deployment status"),
        "{}",
        reply.body
    );
    t.finish().await;
}

// ---- The deploy queue

#[tokio::test]
async fn a_queued_deploy_survives_a_failure_while_it_starts() {
    let t = Harness::start().await;
    t.gh.add_repo(REPO, &[(CONFIG_PATH, CONFIG)]);
    let mut prs = Vec::new();
    for branch in ["first", "second"] {
        t.gh.commit(REPO, branch, &[("f", Some(branch))]);
        prs.push(t.gh.open_pr(REPO, branch, "alice"));
    }
    t.gh.set_role(REPO, "alice", "write");
    t.comment(REPO, prs[0], "alice", "/deploy staging").await;
    t.next_reply(REPO, prs[0]).await;
    t.comment(REPO, prs[1], "alice", "/deploy staging queue")
        .await;
    let queued = t.next_reply(REPO, prs[1]).await;
    assert!(
        queued.body.contains("queued (position 1)"),
        "{}",
        queued.body
    );
    // The first deploy finishes; the queued one starts, and GitHub fails once.
    let d = t.gh.deployments(REPO)[0].id;
    t.gh.fail_next("POST", &format!("/repos/{REPO}/deployments"), 1, 502);
    let status = t.gh.deployment_status(REPO, d, "success", None, None);
    t.send("deployment_status", &status).await;
    t.settle().await;
    assert_eq!(
        deployments(&t),
        2,
        "the queued deploy was created on the retry"
    );
    assert!(
        t.gh.comment_body(REPO, queued.id)
            .starts_with("### 🚀 Deploy to `staging` created"),
        "{}",
        t.gh.comment_body(REPO, queued.id)
    );
    t.finish().await;
}

#[tokio::test]
async fn a_lock_that_expires_starts_its_queue() {
    let config = "environments:\n  staging:\n    deployers: write\n    lock_ttl: 1s\n";
    let t = Harness::start_with(&[("SHIPGATE_PROTECTION_SWEEP_MS", "50")]).await;
    t.gh.add_repo(REPO, &[(CONFIG_PATH, config)]);
    let mut prs = Vec::new();
    for branch in ["first", "second"] {
        t.gh.commit(REPO, branch, &[("f", Some(branch))]);
        prs.push(t.gh.open_pr(REPO, branch, "alice"));
    }
    t.gh.set_role(REPO, "alice", "write");
    t.comment(REPO, prs[0], "alice", "/deploy staging").await;
    t.next_reply(REPO, prs[0]).await;
    t.comment(REPO, prs[1], "alice", "/deploy staging queue")
        .await;
    let queued = t.next_reply(REPO, prs[1]).await;
    assert!(queued.body.contains("queued"), "{}", queued.body);
    // The first deployment never reports; its lock runs out after 1 s.
    t.gh.wait_for("the queued deploy starts", |w| {
        w.repo(REPO).deployments.len() == 2
    })
    .await;
    t.settle().await;
    assert!(t
        .gh
        .comment_body(REPO, queued.id)
        .starts_with("### 🚀 Deploy to `staging` created"));
    t.finish().await;
}

// ---- Branch protection

const POLICY: &str = "protection:\n  branches:\n    main:\n      required_approvals: 2\n      enforce_admins: true\n";

fn rule_event(t: &Harness, sender: &str) -> Value {
    json!({
        "action": "edited",
        "rule": { "id": 1, "name": "main" },
        "repository": t.gh.repository_json(REPO),
        "installation": { "id": 42 },
        "sender": { "login": sender, "type": "User" },
    })
}

/// The tracking issues that exist (not deleted).
fn tracking_issues(t: &Harness) -> Vec<u64> {
    let deleted = t.gh.with(|w| w.repo(REPO).deleted_issues.clone());
    t.gh.issues(REPO)
        .into_iter()
        .filter(|(n, title, _)| title == "shipgate policy" && !deleted.contains(n))
        .map(|(n, _, _)| n)
        .collect()
}

fn weaken(t: &Harness) {
    t.gh.set_protection(
        REPO,
        "main",
        json!({
            "enforce_admins": { "enabled": false },
            "required_pull_request_reviews": { "required_approving_review_count": 0, "dismiss_stale_reviews": false, "require_code_owner_reviews": false, "require_last_push_approval": false },
        }),
    );
}

fn read_bot_comments(t: &Harness, issue: u64) -> Vec<String> {
    let mut out = Vec::new();
    while t.gh.with(|w| {
        w.repo(REPO)
            .comments
            .iter()
            .any(|c| c.issue == issue && c.user == BOT_LOGIN && !w.read_comments.contains(&c.id))
    }) {
        out.push(t.gh.next_bot_comment(REPO, issue).body);
    }
    out
}

#[tokio::test]
async fn a_broken_config_keeps_the_last_valid_policy_enforced_and_says_so() {
    let t = Harness::start().await;
    let (pr, _) = setup(&t, POLICY, "alice");
    weaken(&t);
    t.send("branch_protection_rule", &rule_event(&t, "mallory"))
        .await;
    t.settle().await;
    let issue = tracking_issues(&t)[0];
    read_bot_comments(&t, issue);
    // mallory breaks the file on main, then weakens main again.
    t.gh.commit(REPO, "main", &[(CONFIG_PATH, Some("protection: [[[\n"))]);
    t.send("push", &t.gh.push_payload(REPO, "main", &[CONFIG_PATH]))
        .await;
    t.settle().await;
    weaken(&t);
    t.send("branch_protection_rule", &rule_event(&t, "mallory"))
        .await;
    t.settle().await;
    let p = t.gh.protection(REPO, "main").unwrap();
    assert_eq!(
        p["required_pull_request_reviews"]["required_approving_review_count"],
        json!(2),
        "restored with the last valid policy: {p}"
    );
    let comments = read_bot_comments(&t, issue);
    assert!(
        comments
            .iter()
            .any(|c| c.contains("`.github/shipgate.yml` on `main` does not load: line 2 column 1")),
        "{comments:#?}"
    );
    assert!(
        comments
            .iter()
            .any(|c| c.contains("restored to the policy")),
        "{comments:#?}"
    );
    // Every pull request fails shipgate/policy until the file loads.
    t.send(
        "pull_request",
        &t.gh.pull_request_payload(REPO, pr, "synchronize"),
    )
    .await;
    t.settle().await;
    // (The PR's own file differs from main's broken one: it gets a plan.)
    let plan = t.gh.next_bot_comment(REPO, pr);
    assert!(
        plan.body.starts_with("### Branch protection plan"),
        "{}",
        plan.body
    );
    let check =
        t.gh.created_check_runs(REPO)
            .into_iter()
            .rfind(|c| c["name"] == "shipgate/policy")
            .expect("a shipgate/policy check");
    assert_eq!(check["conclusion"], "failure");
    assert!(
        check["output"]["title"]
            .as_str()
            .unwrap()
            .starts_with(".github/shipgate.yml on `main` does not load: line 2 column 1"),
        "{check}"
    );
    t.finish().await;
}

#[tokio::test]
async fn a_deleted_tracking_issue_is_replaced_and_a_problem_is_reported_even_if_the_first_report_fails(
) {
    let t = Harness::start().await;
    t.gh.add_repo(REPO, &[(CONFIG_PATH, POLICY)]);
    weaken(&t);
    t.send("branch_protection_rule", &rule_event(&t, "mallory"))
        .await;
    t.settle().await;
    let first = tracking_issues(&t)[0];
    read_bot_comments(&t, first);
    t.gh.delete_issue(REPO, first);
    weaken(&t);
    t.send("branch_protection_rule", &rule_event(&t, "mallory"))
        .await;
    t.settle().await;
    let issues = tracking_issues(&t);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_ne!(issues[0], first, "a new tracking issue");
    let comments = read_bot_comments(&t, issues[0]);
    assert!(
        comments
            .iter()
            .any(|c| c.contains("restored to the policy")),
        "{comments:#?}"
    );

    // A problem (no admin rights, on the first attempt and its retry) whose
    // first report fails is reported on the retry.
    t.gh.fail_next(
        "GET",
        &format!("/repos/{REPO}/branches/main/protection"),
        2,
        403,
    );
    t.gh.fail_next(
        "POST",
        &format!("/repos/{REPO}/issues/{}/comments", issues[0]),
        1,
        502,
    );
    t.send("branch_protection_rule", &rule_event(&t, "mallory"))
        .await;
    t.settle().await;
    let comments = read_bot_comments(&t, issues[0]);
    assert!(
        comments
            .iter()
            .any(|c| c.contains("shipgate cannot read or change branch protection")),
        "{comments:#?}"
    );
    t.finish().await;
}

#[tokio::test]
async fn every_repository_of_an_installation_is_enforced_even_when_one_keeps_failing() {
    let t = Harness::start().await;
    for r in ["acme/one", "acme/two", "acme/three"] {
        t.gh.add_repo(r, &[(CONFIG_PATH, POLICY)]);
    }
    t.gh.fail_next("GET", "/repos/acme/one/branches/main/protection", 1000, 500);
    let event = json!({
        "action": "created",
        "installation": { "id": 42, "account": { "login": "acme" } },
        "repositories": [
            { "full_name": "acme/one", "name": "one" },
            { "full_name": "acme/two", "name": "two" },
            { "full_name": "acme/three", "name": "three" },
        ],
        "sender": { "login": "octocat", "type": "User" },
    });
    t.send("installation", &event).await;
    t.gh.wait_for("two and three are enforced", |w| {
        ["acme/two", "acme/three"]
            .iter()
            .all(|r| w.repo(r).protection.contains_key("main"))
    })
    .await;
    t.settle().await;
    assert!(
        t.gh.protection("acme/one", "main").is_none(),
        "acme/one's delivery failed on its own"
    );
    for r in ["acme/two", "acme/three"] {
        let issue =
            t.gh.issues(r)
                .into_iter()
                .find(|(_, title, _)| title == "shipgate policy")
                .unwrap()
                .0;
        while t.gh.with(|w| {
            w.repo(r)
                .comments
                .iter()
                .any(|c| c.issue == issue && !w.read_comments.contains(&c.id))
        }) {
            t.gh.next_bot_comment(r, issue);
        }
    }
    t.finish().await;
}

// ---- Paginated lists and the checks' source

#[tokio::test]
async fn a_required_check_on_the_second_page_of_check_runs_is_seen() {
    let config = "environments:\n  staging:\n    required_checks: [lint]\n";
    let t = Harness::start().await;
    let (pr, head) = setup(&t, config, "alice");
    t.gh.set_role(REPO, "alice", "write");
    // 110 jobs before it: `lint` is on the second page of 100.
    for i in 0..110 {
        t.gh.check_run(
            REPO,
            &head,
            &format!("job-{i:03}"),
            "completed",
            Some("success"),
        );
    }
    t.gh.check_run(REPO, &head, "lint", "completed", Some("success"));
    let reply = ask(&t, pr, "alice", "/deploy staging").await;
    created(&reply, "Deploy to `staging`");
    t.finish().await;
}

#[tokio::test]
async fn a_required_check_named_with_its_app_is_not_satisfied_by_another_app() {
    let config =
        "environments:\n  staging:\n    required_checks: [{ name: ci, app: github-actions }]\n";
    let t = Harness::start().await;
    let (pr, head) = setup(&t, config, "alice");
    t.gh.set_role(REPO, "alice", "write");
    // Any App installed on the repository can report a check run named `ci`.
    t.gh.check_run_from(REPO, &head, "ci", "evil-app", "success");
    let reply = ask(&t, pr, "alice", "/deploy staging").await;
    assert!(
        reply.body.contains(&format!(
            "| Checks | ⏳ | `ci (from github-actions)` not reported on `{}` |",
            &head[..7]
        )),
        "{}",
        reply.body
    );
    t.gh.check_run_from(REPO, &head, "ci", "github-actions", "success");
    let reply = ask(&t, pr, "alice", "/deploy staging").await;
    created(&reply, "Deploy to `staging`");
    t.finish().await;
}

// ---- Automatic rollback

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_rollback_never_undoes_a_newer_deploy_nor_passes_a_lock() {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/api/health",
        get(|| async { axum::Json(json!({ "status": "degraded" })) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://{addr}/");
    let config = r#"
preview:
  allowed_hosts: ["127.0.0.1"]
  allow_private: true
environments:
  production:
    auto_rollback: true
    smoke:
      checks:
        - { name: health, path: /api/health, expect: { json: ['$.status == "healthy"'] } }
"#;
    // The app runs on loopback: the operator allows private probes.
    let t = Harness::start_with(&[("SHIPGATE_ALLOW_PRIVATE_PROBES", "true")]).await;
    let (pr, _) = setup(&t, config, "alice");
    t.gh.set_pr(REPO, pr, |p| p.state = "closed".into());
    let good = t.gh.commit(REPO, "main", &[("v", Some("1"))]);
    let bad = t.gh.commit(REPO, "main", &[("v", Some("2"))]);
    let newer = t.gh.commit(REPO, "main", &[("v", Some("3"))]);
    t.gh.add_deployment(REPO, &good, "production", &["success"]);
    let deployed = t.gh.create_deployment(
        REPO,
        &bad,
        "production",
        json!({ "kind": "deploy", "pr": pr }),
    );
    // A newer deploy started before the smoke checks of `bad` ran.
    t.gh.create_deployment(
        REPO,
        &newer,
        "production",
        json!({ "kind": "deploy", "pr": pr }),
    );
    let status =
        t.gh.deployment_status(REPO, deployed, "success", Some(&url), None);
    t.send("deployment_status", &status).await;
    t.settle().await;
    let rollbacks = |t: &Harness| {
        t.gh.deployments(REPO)
            .into_iter()
            .filter(|d| d.payload["kind"] == "rollback")
            .count()
    };
    assert_eq!(rollbacks(&t), 0, "the newer deploy is not undone");
    let note = t.gh.next_bot_comment(REPO, pr);
    assert!(
        note.body
            .contains("a newer deployment has replaced it since: no automatic rollback"),
        "{}",
        note.body
    );

    // The newest deploy fails its smoke checks while a maintainer holds the lock.
    let newest = t.gh.deployments(REPO).last().unwrap().id;
    t.comment(REPO, pr, "octocat", "/lock production investigating")
        .await;
    t.next_reply(REPO, pr).await;
    let status =
        t.gh.deployment_status(REPO, newest, "success", Some(&url), None);
    t.send("deployment_status", &status).await;
    t.settle().await;
    assert_eq!(rollbacks(&t), 0, "the lock holds");
    let note = t.gh.next_bot_comment(REPO, pr);
    assert!(
        note.body.contains("no automatic rollback to"),
        "{}",
        note.body
    );
    assert!(note.body.contains("locked by"), "{}", note.body);
    t.finish().await;
}

// ---- SECURITY.md stays true

/// Every test SECURITY.md names exists where it says: `file::test` in
/// `tests/file.rs`, `module::…::test` under `src/module`. A renamed or
/// removed test leaves a "may not" without its proof.
#[test]
fn security_md_names_only_tests_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("SECURITY.md")).unwrap();
    fn sources(dir: &std::path::Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut named = 0;
    let mut missing = Vec::new();
    for row in text.lines().filter(|l| l.starts_with("| ")) {
        let proof = row.trim_end_matches('|').rsplit('|').next().unwrap();
        for name in proof.split('`').skip(1).step_by(2) {
            let parts: Vec<&str> = name.split("::").collect();
            if parts.len() < 2 {
                continue; // not a test name
            }
            let (first, test) = (parts[0], parts[parts.len() - 1]);
            // `file::test` (or a test a macro of tests/it/file.rs makes), or a
            // unit test under src/first.
            let mut code =
                std::fs::read_to_string(root.join("tests/it").join(format!("{first}.rs")))
                    .unwrap_or_default();
            let module = root.join("src").join(first);
            if module.is_dir() {
                sources(&module, &mut code);
            }
            code.push_str(
                &std::fs::read_to_string(module.with_extension("rs")).unwrap_or_default(),
            );
            named += 1;
            if !code.contains(&format!("fn {test}(")) {
                missing.push(name.to_string());
            }
        }
    }
    assert!(named > 50, "SECURITY.md names {named} tests");
    assert!(
        missing.is_empty(),
        "SECURITY.md names tests that do not exist: {missing:#?}"
    );
}
