//! Branch protection policy stories through the real `/webhook` path.

use crate::common;

use common::fake_github::BOT_LOGIN;
use common::Harness;
use serde_json::{json, Value};

const CONFIG_PATH: &str = ".github/shipgate.yml";
const POLICY: &str = r#"
protection:
  branches:
    main:
      required_approvals: 2
      required_checks: [ci]
      strict: true
      enforce_admins: true
      allow_force_pushes: false
"#;

fn rule_event(t: &Harness, repo: &str, action: &str, sender: &str, kind: &str) -> Value {
    json!({
        "action": action,
        "rule": { "id": 1, "name": "main" },
        "repository": t.gh.repository_json(repo),
        "installation": { "id": 42 },
        "sender": { "login": sender, "type": kind },
    })
}

fn tracking_comments(t: &Harness, repo: &str) -> Vec<String> {
    let issues = t.gh.issues(repo);
    let tracking: Vec<_> = issues
        .iter()
        .filter(|(_, title, _)| title == "shipgate policy")
        .collect();
    assert!(tracking.len() <= 1, "one tracking issue: {issues:?}");
    match tracking.first() {
        Some((n, _, _)) => {
            let mut out = Vec::new();
            while let Some(c) = t.gh.with(|w| {
                w.repo(repo)
                    .comments
                    .iter()
                    .find(|c| {
                        c.issue == *n && c.user == BOT_LOGIN && !w.read_comments.contains(&c.id)
                    })
                    .cloned()
            }) {
                t.gh.next_bot_comment(repo, *n);
                out.push(c.body);
            }
            out
        }
        None => Vec::new(),
    }
}

fn puts(t: &Harness, repo: &str) -> usize {
    t.gh.requests_to("PUT", &format!("/repos/{repo}/branches/main/protection"))
        .len()
}

#[tokio::test]
async fn installation_applies_the_policy_to_each_repository() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/one", &[(CONFIG_PATH, POLICY)]);
    t.gh.add_repo("acme/two", &[(CONFIG_PATH, POLICY)]);
    let event = json!({
        "action": "created",
        "installation": { "id": 42, "account": { "login": "acme" } },
        "repositories": [{ "full_name": "acme/one", "name": "one" }, { "full_name": "acme/two", "name": "two" }],
        "sender": { "login": "octocat", "type": "User" },
    });
    t.send("installation", &event).await;
    t.settle().await;
    for repo in ["acme/one", "acme/two"] {
        assert_eq!(puts(&t, repo), 1, "{repo}");
        let p = t.gh.protection(repo, "main").unwrap();
        assert_eq!(
            p["required_pull_request_reviews"]["required_approving_review_count"],
            json!(2)
        );
        assert_eq!(p["required_status_checks"]["contexts"], json!(["ci"]));
        assert_eq!(p["enforce_admins"]["enabled"], json!(true));
        let body = &t
            .gh
            .requests_to("PUT", &format!("/repos/{repo}/branches/main/protection"))[0]
            .body;
        for field in [
            "required_status_checks",
            "enforce_admins",
            "required_pull_request_reviews",
            "restrictions",
        ] {
            assert!(body.get(field).is_some(), "PUT carries {field}");
        }
        let reports = tracking_comments(&t, repo);
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(
            reports[0].contains("✅ **`main` restored to the policy**"),
            "{}",
            reports[0]
        );
        assert!(
            reports[0].contains("| `required_approvals` | off | 2 |"),
            "{}",
            reports[0]
        );
    }
    t.finish().await;
}

#[tokio::test]
async fn a_human_or_a_bot_weakening_main_is_reverted_and_reported_but_our_own_writes_are_not_events(
) {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG_PATH, POLICY)]);
    t.send("repository", &json!({ "action": "created", "repository": t.gh.repository_json("acme/app"), "installation": { "id": 42 }, "sender": { "login": "octocat" } })).await;
    t.settle().await;
    assert_eq!(puts(&t, "acme/app"), 1);
    assert_eq!(tracking_comments(&t, "acme/app").len(), 1);

    // A human drops the approvals to 1 and keeps the rest.
    let mut weakened = t.gh.protection("acme/app", "main").unwrap();
    weakened["required_pull_request_reviews"]["required_approving_review_count"] = json!(1);
    weakened["restrictions"] = json!({ "users": [], "teams": [{ "slug": "release" }], "apps": [] });
    t.gh.set_protection("acme/app", "main", weakened);
    t.send(
        "branch_protection_rule",
        &rule_event(&t, "acme/app", "edited", "mallory", "User"),
    )
    .await;
    t.settle().await;
    assert_eq!(puts(&t, "acme/app"), 2);
    let restored = t.gh.protection("acme/app", "main").unwrap();
    assert_eq!(
        restored["required_pull_request_reviews"]["required_approving_review_count"],
        json!(2)
    );
    assert_eq!(
        restored["restrictions"]["teams"],
        json!([{ "slug": "release" }]),
        "a setting the policy does not name is kept"
    );
    let reports = tracking_comments(&t, "acme/app");
    assert_eq!(reports.len(), 1);
    assert!(
        reports[0].starts_with("#### Branch protection: branch protection rule edited by @mallory"),
        "{}",
        reports[0]
    );
    assert!(
        reports[0].contains("| `required_approvals` | 1 | 2 |"),
        "{}",
        reports[0]
    );

    // A bot deletes the rule: reverted too.
    t.gh.with(|_| ());
    t.gh.set_protection(
        "acme/app",
        "main",
        json!({ "enforce_admins": { "enabled": false } }),
    );
    t.send(
        "branch_protection_rule",
        &rule_event(&t, "acme/app", "deleted", "renovate[bot]", "Bot"),
    )
    .await;
    t.settle().await;
    assert_eq!(puts(&t, "acme/app"), 3);
    assert!(tracking_comments(&t, "acme/app")[0].contains("by @renovate[bot]"));

    // Our own write comes back as an event: nothing is read or written.
    let before = t.gh.with(|w| w.requests.len());
    t.send(
        "branch_protection_rule",
        &rule_event(&t, "acme/app", "edited", BOT_LOGIN, "Bot"),
    )
    .await;
    t.settle().await;
    assert_eq!(t.gh.with(|w| w.requests.len()), before);
    t.finish().await;
}

#[tokio::test]
async fn a_compliant_repository_gets_no_write_and_audit_mode_only_reports() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/ok", &[(CONFIG_PATH, POLICY)]);
    t.gh.set_protection(
        "acme/ok",
        "main",
        json!({
            "required_status_checks": { "strict": true, "contexts": ["ci"], "checks": [{ "context": "ci", "app_id": null }] },
            "enforce_admins": { "enabled": true },
            "required_pull_request_reviews": { "required_approving_review_count": 2, "dismiss_stale_reviews": false, "require_code_owner_reviews": false, "require_last_push_approval": false },
            "allow_force_pushes": { "enabled": false },
        }),
    );
    t.send(
        "branch_protection_rule",
        &rule_event(&t, "acme/ok", "edited", "octocat", "User"),
    )
    .await;
    t.settle().await;
    assert_eq!(puts(&t, "acme/ok"), 0, "compliant: zero PUTs");
    assert!(t.gh.issues("acme/ok").is_empty(), "nothing to report");

    let audit = POLICY.replace("protection:\n", "protection:\n  mode: audit\n");
    t.gh.add_repo("acme/audit", &[(CONFIG_PATH, &audit)]);
    t.send(
        "branch_protection_rule",
        &rule_event(&t, "acme/audit", "edited", "octocat", "User"),
    )
    .await;
    t.settle().await;
    assert_eq!(puts(&t, "acme/audit"), 0, "audit mode writes nothing");
    let reports = tracking_comments(&t, "acme/audit");
    assert!(
        reports[0].contains("🔎 **`main` differs from the policy** (audit mode: nothing changed)"),
        "{}",
        reports[0]
    );
    assert_eq!(
        t.server.store.policy_log_count("acme/audit").await.unwrap(),
        1
    );
    t.finish().await;
}

#[tokio::test]
async fn missing_admin_rights_are_reported_once() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG_PATH, POLICY)]);
    for _ in 0..3 {
        t.gh.fail_next("GET", "/repos/acme/app/branches/main/protection", 1, 403);
        t.send(
            "branch_protection_rule",
            &rule_event(&t, "acme/app", "edited", "octocat", "User"),
        )
        .await;
        t.settle().await;
    }
    let reports = tracking_comments(&t, "acme/app");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].contains("Administration: read & write"),
        "{}",
        reports[0]
    );
    assert_eq!(puts(&t, "acme/app"), 0);
    t.finish().await;
}

#[tokio::test]
async fn a_pr_editing_the_policy_gets_a_plan_check_and_one_sticky_comment() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG_PATH, POLICY)]);
    let stricter = POLICY.replace("required_approvals: 2", "required_approvals: 3");
    t.gh.commit("acme/app", "tighten", &[(CONFIG_PATH, Some(&stricter))]);
    let pr = t.gh.open_pr("acme/app", "tighten", "alice");
    t.send(
        "pull_request",
        &t.gh.pull_request_payload("acme/app", pr, "opened"),
    )
    .await;
    let plan = t.next_reply("acme/app", pr).await;
    assert!(
        plan.body.starts_with("### Branch protection plan"),
        "{}",
        plan.body
    );
    assert!(
        plan.body.contains("✏️ `main`: 4 change(s) when merged"),
        "{}",
        plan.body
    );
    assert!(
        plan.body.contains("| `required_approvals` | off | 3 |"),
        "{}",
        plan.body
    );
    let checks = t.gh.created_check_runs("acme/app");
    let plan_check = checks
        .iter()
        .find(|c| c["name"] == "shipgate/policy-plan")
        .unwrap();
    assert_eq!(plan_check["conclusion"], "success");

    // Another push: the same comment is updated.
    let invalid = "protection:\n  branches:\n    main:\n      required_aprovals: 3\n";
    t.gh.commit("acme/app", "tighten", &[(CONFIG_PATH, Some(invalid))]);
    t.gh.sync_pr("acme/app", pr);
    t.send(
        "pull_request",
        &t.gh.pull_request_payload("acme/app", pr, "synchronize"),
    )
    .await;
    t.settle().await;
    let plans: Vec<_> = t.gh.bot_comments("acme/app", pr);
    assert_eq!(plans.len(), 1, "one sticky comment");
    assert!(
        plans[0].body.contains("is invalid: line 4 column 7"),
        "{}",
        plans[0].body
    );
    let head = t.gh.pr("acme/app", pr).head_sha;
    let failed =
        t.gh.created_check_runs("acme/app")
            .into_iter()
            .find(|c| c["name"] == "shipgate/policy-plan" && c["head_sha"] == json!(head))
            .unwrap();
    assert_eq!(failed["conclusion"], "failure");
    let a = &failed["output"]["annotations"][0];
    assert_eq!(
        (
            a["path"].as_str(),
            a["start_line"].as_u64(),
            a["start_column"].as_u64()
        ),
        (Some(CONFIG_PATH), Some(4), Some(7))
    );
    t.finish().await;
}

#[tokio::test]
async fn the_policy_check_names_the_gap_until_the_second_approval() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG_PATH, POLICY)]);
    t.gh.commit("acme/app", "feature", &[("a.txt", Some("a"))]);
    let pr = t.gh.open_pr("acme/app", "feature", "alice");
    let head = t.gh.pr("acme/app", pr).head_sha;
    t.gh.check_run("acme/app", &head, "ci", "completed", Some("success"));
    for reviewer in ["bob", "carol"] {
        t.gh.set_role("acme/app", reviewer, "write");
    }
    t.gh.review("acme/app", pr, "bob", "APPROVED");
    t.send(
        "pull_request",
        &t.gh.pull_request_payload("acme/app", pr, "opened"),
    )
    .await;
    t.settle().await;
    // The plan (in the event's delivery) and the policy job (its own) read
    // the default branch's config: the second read is a 304 revalidation.
    let main_reads: Vec<u16> =
        t.gh.requests_to("GET", "/repos/acme/app/contents/.github/shipgate.yml")
            .iter()
            .filter(|r| r.query.contains("ref=main"))
            .map(|r| r.status)
            .collect();
    assert_eq!(main_reads, [200, 304]);
    // One check run per commit, updated in place.
    let policy_run = |t: &Harness| -> Value {
        let runs: Vec<Value> =
            t.gh.created_check_runs("acme/app")
                .into_iter()
                .filter(|c| c["name"] == "shipgate/policy")
                .collect();
        assert_eq!(runs.len(), 1, "{runs:#?}");
        runs[0].clone()
    };
    let first = policy_run(&t);
    assert_eq!(first["conclusion"], "failure");
    assert_eq!(
        first["output"]["title"],
        "1 unmet: Approvals: 1 of 2 approvals (by @bob)"
    );

    t.gh.review("acme/app", pr, "carol", "APPROVED");
    let mut review = t.gh.pull_request_payload("acme/app", pr, "submitted");
    review["review"] = json!({ "state": "approved", "user": { "login": "carol" } });
    t.send("pull_request_review", &review).await;
    t.settle().await;
    let run = policy_run(&t);
    assert_eq!(run["conclusion"], "success", "{run:?}");
    let patch = format!("/repos/acme/app/check-runs/{}", run["id"]);
    assert_eq!(t.gh.requests_to("PATCH", &patch).len(), 1);

    // Behind the base with `strict`: a failure again, in the same check run.
    t.gh.set_behind("acme/app", &head, 3);
    t.send(
        "check_run",
        &t.gh.check_run_payload("acme/app", &head, "ci", "success"),
    )
    .await;
    t.settle().await;
    assert_eq!(
        policy_run(&t)["output"]["title"],
        "1 unmet: Up to date: 3 commit(s) behind the base branch"
    );
    // The same check completing again changes nothing: no write at all.
    t.send(
        "check_run",
        &t.gh.check_run_payload("acme/app", &head, "ci", "success"),
    )
    .await;
    t.settle().await;
    assert_eq!(t.gh.requests_to("PATCH", &patch).len(), 2);
    t.finish().await;
}

// ---- shipgate/policy under CI load

/// A PR under the policy, a `write` user, and staging to deploy to.
/// The commit has exactly one `shipgate/policy` check run (updated in place).
fn assert_one_policy_check_run(t: &Harness) {
    let runs: Vec<Value> =
        t.gh.created_check_runs("acme/app")
            .into_iter()
            .filter(|c| c["name"] == "shipgate/policy")
            .collect();
    assert_eq!(runs.len(), 1, "one check run per commit: {runs:#?}");
}

fn busy_repo(t: &Harness) -> (u64, String) {
    let config = format!("{POLICY}environments:\n  staging:\n    deployers: write\n");
    t.gh.add_repo("acme/app", &[(CONFIG_PATH, &config)]);
    t.gh.commit("acme/app", "feature", &[("a.txt", Some("a"))]);
    let pr = t.gh.open_pr("acme/app", "feature", "alice");
    t.gh.set_role("acme/app", "alice", "write");
    (pr, t.gh.pr("acme/app", pr).head_sha)
}

#[tokio::test]
async fn a_burst_of_checks_on_one_commit_costs_one_policy_evaluation() {
    let t = Harness::start().await;
    let (_, head) = busy_repo(&t);
    let pulls = format!("/repos/acme/app/commits/{head}/pulls");
    // The first evaluation waits on GitHub while 29 more checks complete.
    t.gh.hold_after_effect("GET", &pulls);
    let job = |i: usize| {
        t.gh.check_run_payload("acme/app", &head, &format!("job-{i}"), "success")
    };
    t.send_with_id("check_run", "ci-0", &job(0)).await;
    t.gh.wait_for("the first evaluation asks GitHub", |w| w.held == 1)
        .await;
    for i in 1..30 {
        t.send_with_id("check_run", &format!("ci-{i}"), &job(i))
            .await;
    }
    common::eventually("the 30 check_run deliveries are done", || async {
        t.state_of("ci-29")
            .await
            .is_some_and(|s| s.state == shipgate::store::DeliveryState::Done)
    })
    .await;
    t.gh.release_held();
    t.settle().await;
    // One evaluation for the first, one for the 29 that came while it ran.
    assert_eq!(t.gh.requests_to("GET", &pulls).len(), 2);
    assert_one_policy_check_run(&t);
    t.finish().await;
}

#[tokio::test]
async fn checks_finishing_one_after_another_share_one_delayed_evaluation() {
    // CI jobs finish one by one, each delivery processed before the next
    // arrives: without the delay every one of them is its own evaluation.
    let delay = std::time::Duration::from_millis(1500);
    let t = Harness::start_with(&[("SHIPGATE_POLICY_DELAY_MS", "1500")]).await;
    let (_, head) = busy_repo(&t);
    let pulls = format!("/repos/acme/app/commits/{head}/pulls");
    let started = std::time::Instant::now();
    for i in 0..10 {
        let id = format!("ci-{i}");
        let job =
            t.gh.check_run_payload("acme/app", &head, &format!("job-{i}"), "success");
        t.send_with_id("check_run", &id, &job).await;
        common::eventually("the check_run delivery is done", || async {
            t.state_of(&id)
                .await
                .is_some_and(|s| s.state == shipgate::store::DeliveryState::Done)
        })
        .await;
    }
    let sent_within = started.elapsed();
    t.settle().await;
    let evaluations = t.gh.requests_to("GET", &pulls).len();
    // One evaluation per delay window the ten deliveries spanned (one, unless
    // this machine took longer than the delay to process them).
    let windows = (sent_within.as_millis() / delay.as_millis()) as usize + 1;
    assert!(
        (1..=windows).contains(&evaluations) && evaluations < 10,
        "{evaluations} evaluations for 10 checks sent within {sent_within:?}"
    );
    assert_one_policy_check_run(&t);
    t.finish().await;
}

#[tokio::test]
async fn a_deploy_is_answered_while_policy_evaluations_wait_on_github() {
    let t = Harness::start().await;
    let (pr, head) = busy_repo(&t);
    t.gh.hold_after_effect("GET", &format!("/repos/acme/app/commits/{head}/pulls"));
    t.send(
        "check_run",
        &t.gh.check_run_payload("acme/app", &head, "ci", "success"),
    )
    .await;
    t.gh.wait_for("an evaluation waits on GitHub", |w| w.held == 1)
        .await;
    let comment = t.gh.add_comment("acme/app", pr, "alice", "/deploy staging");
    t.send(
        "issue_comment",
        &t.gh
            .issue_comment_payload("acme/app", comment, "created", None),
    )
    .await;
    // Commands do not wait behind policy evaluations: same repository, own order.
    // (The held call gives up only after the client's 10 s timeout: an answer
    // within 5 s did not wait for it.)
    let reaction = format!("/repos/acme/app/issues/comments/{comment}/reactions");
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        t.gh.wait_for("the /deploy is answered", |w| {
            w.requests.iter().filter(|r| r.path == reaction).count() == 2
        }),
    )
    .await
    .expect("the /deploy is answered within 5 s while the evaluation waits");
    t.gh.release_held();
    let reply = t.next_reply("acme/app", pr).await;
    assert!(
        reply.body.starts_with("### 🚀 Deploy to `staging` created"),
        "{}",
        reply.body
    );
    t.finish().await;
}
