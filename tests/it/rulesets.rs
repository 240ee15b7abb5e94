//! Repository rulesets as code (`protection.rulesets`) through the real
//! `/webhook` path and the fake GitHub's rulesets API: enforce, audit,
//! drift restored on `repository_ruleset`, the PR plan, and a pattern rule
//! that covers a branch created after it.

use crate::common;

use common::fake_github::BOT_LOGIN;
use common::Harness;
use serde_json::{json, Value};

const CONFIG_PATH: &str = ".github/shipgate.yml";
const POLICY: &str = r#"
protection:
  rulesets:
    releases:
      include: ["release/*", "hotfix/*"]
      bypass:
        - role: maintain
      rules:
        non_fast_forward: true
        deletion: true
        pull_request:
          required_approvals: 2
          dismiss_stale_reviews: true
        required_status_checks:
          checks: [ci]
          strict: true
    tags:
      target: tag
      include: ["v*"]
      rules:
        deletion: true
        non_fast_forward: true
"#;

/// A ruleset a maintainer made by hand in the UI, with a name not in the policy.
fn hand_made() -> Value {
    json!({
        "name": "experiments", "target": "branch", "enforcement": "active",
        "conditions": { "ref_name": { "include": ["refs/heads/exp/*"], "exclude": [] } },
        "rules": [{ "type": "deletion" }],
        "bypass_actors": [],
    })
}

fn writes(t: &Harness, repo: &str) -> Vec<(String, String)> {
    t.gh.with(|w| {
        w.requests
            .iter()
            .filter(|r| r.path.starts_with(&format!("/repos/{repo}/rulesets")) && r.method != "GET")
            .map(|r| (r.method.to_string(), r.path.clone()))
            .collect()
    })
}

fn tracking_comments(t: &Harness, repo: &str) -> Vec<String> {
    let Some((n, _, _)) =
        t.gh.issues(repo)
            .into_iter()
            .find(|(_, title, _)| title == "shipgate policy")
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Some(c) = t.gh.with(|w| {
        w.repo(repo)
            .comments
            .iter()
            .find(|c| c.issue == n && c.user == BOT_LOGIN && !w.read_comments.contains(&c.id))
            .cloned()
    }) {
        t.gh.next_bot_comment(repo, n);
        out.push(c.body);
    }
    out
}

async fn policy_pushed(t: &Harness, repo: &str) {
    t.send("push", &t.gh.push_payload(repo, "main", &[CONFIG_PATH]))
        .await;
    t.settle().await;
}

fn rule_types(r: &Value) -> Vec<String> {
    let mut v: Vec<String> = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// The rules GitHub applies to `branch` (`GET /repos/{o}/{r}/rules/branches/{b}`),
/// asked the way a client does, through prism in the conformance run.
async fn branch_rules(t: &Harness, repo: &str, branch: &str) -> Vec<Value> {
    let url = format!(
        "{}/repos/{repo}/rules/branches/{}",
        t.gh.url(),
        branch.replace('/', "%2F")
    );
    let resp = t
        .http
        .get(url)
        .header("user-agent", "shipgate-tests")
        .header("accept", "application/vnd.github+json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<Vec<Value>>().await.unwrap()
}

#[tokio::test]
async fn enforce_creates_the_rulesets_leaves_a_hand_made_one_alone_and_the_pattern_covers_a_new_release_branch(
) {
    let t = Harness::start().await;
    t.gh.add_repo("acme/shop", &[(CONFIG_PATH, POLICY)]);
    let theirs = t.gh.add_ruleset("acme/shop", hand_made());
    policy_pushed(&t, "acme/shop").await;

    let created = writes(&t, "acme/shop");
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created
        .iter()
        .all(|(m, p)| m == "POST" && p == "/repos/acme/shop/rulesets"));
    let releases = t.gh.ruleset("acme/shop", "releases").unwrap();
    assert_eq!(
        releases["conditions"]["ref_name"]["include"],
        json!(["refs/heads/release/*", "refs/heads/hotfix/*"])
    );
    assert_eq!(
        releases["bypass_actors"],
        json!([{ "actor_id": 2, "actor_type": "RepositoryRole", "bypass_mode": "always" }]),
        "force pushes allowed for maintainers only"
    );
    assert_eq!(
        rule_types(&releases),
        [
            "deletion",
            "non_fast_forward",
            "pull_request",
            "required_status_checks"
        ]
    );
    assert_eq!(t.gh.ruleset("acme/shop", "tags").unwrap()["target"], "tag");
    assert_eq!(
        t.gh.ruleset("acme/shop", "experiments").unwrap()["rules"],
        hand_made()["rules"],
        "the hand-made ruleset is untouched"
    );
    assert!(
        t.gh.requests_to("GET", &format!("/repos/acme/shop/rulesets/{theirs}"))
            .is_empty(),
        "a ruleset of another name is not even read"
    );
    let reports = tracking_comments(&t, "acme/shop");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].contains("✅ **Ruleset `releases` created from the policy**"),
        "{}",
        reports[0]
    );
    assert!(
        reports[0].contains("| `pull_request.required_approving_review_count` | off | 2 |"),
        "{}",
        reports[0]
    );
    assert_eq!(
        t.server.store.policy_log_count("acme/shop").await.unwrap(),
        2
    );

    // A compliant repository: enforcing again reads and writes nothing new.
    policy_pushed(&t, "acme/shop").await;
    assert_eq!(writes(&t, "acme/shop").len(), 2);
    assert!(tracking_comments(&t, "acme/shop").is_empty());

    // A release branch created after the ruleset is covered by its pattern,
    // with no per-branch write; a feature branch is not.
    t.gh.commit("acme/shop", "release/x", &[("CHANGELOG.md", Some("x"))]);
    let rules = branch_rules(&t, "acme/shop", "release/x").await;
    let id = releases["id"].clone();
    let mut kinds: Vec<&str> = rules.iter().map(|r| r["type"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "deletion",
            "non_fast_forward",
            "pull_request",
            "required_status_checks"
        ]
    );
    assert!(rules.iter().all(|r| r["ruleset_id"] == id));
    assert!(branch_rules(&t, "acme/shop", "feature/x").await.is_empty());
    assert!(branch_rules(&t, "acme/shop", "release/x/y")
        .await
        .is_empty());
    assert!(
        t.gh.with(|w| w.requests.iter().all(|r| !r.path.ends_with("/protection"))),
        "no per-branch protection is read or written"
    );
    t.finish().await;
}

#[tokio::test]
async fn audit_mode_reports_a_missing_and_a_loosened_ruleset_and_writes_nothing() {
    let t = Harness::start().await;
    let audit = POLICY.replace("protection:\n", "protection:\n  mode: audit\n");
    t.gh.add_repo("acme/audit", &[(CONFIG_PATH, &audit)]);
    // `releases` exists with one approval and force pushes allowed.
    let mut loose = json!({
        "name": "releases", "target": "branch", "enforcement": "active",
        "conditions": { "ref_name": { "include": ["refs/heads/hotfix/*", "refs/heads/release/*"], "exclude": [] } },
        "bypass_actors": [{ "actor_id": 2, "actor_type": "RepositoryRole", "bypass_mode": "always" }],
        "rules": [
            { "type": "deletion" },
            { "type": "pull_request", "parameters": { "required_approving_review_count": 1, "dismiss_stale_reviews_on_push": true, "require_code_owner_review": false, "require_last_push_approval": false, "required_review_thread_resolution": false } },
            { "type": "required_status_checks", "parameters": { "required_status_checks": [{ "context": "ci" }], "strict_required_status_checks_policy": true } },
        ],
    });
    loose["rules"].as_array_mut().unwrap().reverse();
    t.gh.add_ruleset("acme/audit", loose);
    policy_pushed(&t, "acme/audit").await;

    assert!(
        writes(&t, "acme/audit").is_empty(),
        "audit mode writes nothing"
    );
    let reports = tracking_comments(&t, "acme/audit");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert!(
        r.contains(
            "🔎 **Ruleset `releases` differs from the policy** (audit mode: nothing changed)"
        ),
        "{r}"
    );
    assert!(
        r.contains("| `pull_request.required_approving_review_count` | 1 | 2 |"),
        "{r}"
    );
    assert!(r.contains("| `rule non_fast_forward` | off | on |"), "{r}");
    assert!(
        !r.contains("refs/heads/"),
        "pattern order is not drift: {r}"
    );
    assert!(r.contains("🔎 **Ruleset `tags` is missing**"), "{r}");
    assert_eq!(
        t.server.store.policy_log_count("acme/audit").await.unwrap(),
        2
    );
    t.finish().await;
}

#[tokio::test]
async fn a_ruleset_a_user_edits_or_deletes_is_put_back_and_shipgates_own_writes_do_not_loop() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/shop", &[(CONFIG_PATH, POLICY)]);
    let theirs = t.gh.add_ruleset("acme/shop", hand_made());
    policy_pushed(&t, "acme/shop").await;
    assert_eq!(tracking_comments(&t, "acme/shop").len(), 1);
    let id = t.gh.ruleset("acme/shop", "releases").unwrap()["id"]
        .as_u64()
        .unwrap();

    // An admin lets everyone force-push and drops the approvals.
    t.gh.edit_ruleset("acme/shop", id, |r| {
        r["rules"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["type"] != "non_fast_forward");
        for rule in r["rules"].as_array_mut().unwrap() {
            if rule["type"] == "pull_request" {
                rule["parameters"]["required_approving_review_count"] = json!(0);
            }
        }
        r["bypass_actors"] =
            json!([{ "actor_id": 4, "actor_type": "RepositoryRole", "bypass_mode": "always" }]);
    });
    let edited = t.gh.ruleset("acme/shop", "releases").unwrap();
    t.send(
        "repository_ruleset",
        &t.gh
            .ruleset_event("acme/shop", "edited", &edited, "mallory"),
    )
    .await;
    t.settle().await;
    let puts =
        t.gh.requests_to("PUT", &format!("/repos/acme/shop/rulesets/{id}"));
    assert_eq!(puts.len(), 1);
    let restored = t.gh.ruleset("acme/shop", "releases").unwrap();
    assert_eq!(
        rule_types(&restored),
        [
            "deletion",
            "non_fast_forward",
            "pull_request",
            "required_status_checks"
        ]
    );
    assert_eq!(restored["bypass_actors"][0]["actor_id"], 2);
    let reports = tracking_comments(&t, "acme/shop");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert!(
        r.starts_with("#### Branch protection: ruleset `releases` edited by @mallory"),
        "{r}"
    );
    assert!(
        r.contains("✅ **Ruleset `releases` restored to the policy**"),
        "{r}"
    );
    assert!(
        r.contains("| `bypass` | role write | role maintain |"),
        "{r}"
    );
    assert!(r.contains("| `rule non_fast_forward` | off | on |"), "{r}");

    // Deleted by hand: created again.
    let tags = t.gh.ruleset("acme/shop", "tags").unwrap();
    t.gh.delete_ruleset("acme/shop", tags["id"].as_u64().unwrap());
    t.send(
        "repository_ruleset",
        &t.gh
            .ruleset_event("acme/shop", "deleted", &tags, "renovate[bot]"),
    )
    .await;
    t.settle().await;
    assert!(t.gh.ruleset("acme/shop", "tags").is_some());
    assert!(tracking_comments(&t, "acme/shop")[0]
        .contains("✅ **Ruleset `tags` created from the policy**"));

    // shipgate's own write comes back as an event: nothing is read or written.
    let before = t.gh.with(|w| w.requests.len());
    let mine = t.gh.ruleset("acme/shop", "releases").unwrap();
    t.send(
        "repository_ruleset",
        &t.gh.ruleset_event("acme/shop", "edited", &mine, BOT_LOGIN),
    )
    .await;
    t.settle().await;
    assert_eq!(t.gh.with(|w| w.requests.len()), before);

    // A hand-made ruleset edited: nothing is written, nothing reported.
    t.gh.edit_ruleset("acme/shop", theirs, |r| r["rules"] = json!([]));
    let writes_before = writes(&t, "acme/shop").len();
    let exp = t.gh.ruleset("acme/shop", "experiments").unwrap();
    t.send(
        "repository_ruleset",
        &t.gh.ruleset_event("acme/shop", "edited", &exp, "octocat"),
    )
    .await;
    t.settle().await;
    assert_eq!(writes(&t, "acme/shop").len(), writes_before);
    assert!(tracking_comments(&t, "acme/shop").is_empty());
    assert_eq!(
        t.gh.ruleset("acme/shop", "experiments").unwrap()["rules"],
        json!([])
    );
    t.finish().await;
}

#[tokio::test]
async fn a_pr_loosening_or_dropping_a_ruleset_gets_a_plan_and_changes_nothing_before_merge() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/shop", &[(CONFIG_PATH, POLICY)]);
    policy_pushed(&t, "acme/shop").await;
    tracking_comments(&t, "acme/shop");
    let before: Vec<Value> = t.gh.rulesets("acme/shop");
    let writes_before = writes(&t, "acme/shop").len();

    let looser = POLICY
        .replace("required_approvals: 2", "required_approvals: 0")
        .replace(
            "        non_fast_forward: true\n        deletion: true\n        pull_request",
            "        deletion: true\n        pull_request",
        );
    let looser = &looser[..looser.find("    tags:").unwrap()];
    t.gh.commit("acme/shop", "loosen", &[(CONFIG_PATH, Some(looser))]);
    let pr = t.gh.open_pr("acme/shop", "loosen", "mallory");
    t.send(
        "pull_request",
        &t.gh.pull_request_payload("acme/shop", pr, "opened"),
    )
    .await;
    let plan = t.next_reply("acme/shop", pr).await;
    let b = &plan.body;
    assert!(b.starts_with("### Branch protection plan"), "{b}");
    assert!(
        b.contains("✏️ Ruleset `releases`: 2 change(s) when merged"),
        "{b}"
    );
    assert!(
        b.contains("| `pull_request.required_approving_review_count` | 2 | 0 |"),
        "{b}"
    );
    assert!(b.contains("| `rule non_fast_forward` | on | off |"), "{b}");
    assert!(
        b.contains("⏏️ Ruleset `tags`: no longer in the policy"),
        "{b}"
    );
    let check =
        t.gh.created_check_runs("acme/shop")
            .into_iter()
            .find(|c| c["name"] == "shipgate/policy-plan")
            .unwrap();
    assert_eq!(check["conclusion"], "success");
    // Nothing changes before merge, and a push of the branch changes nothing either.
    t.send(
        "push",
        &t.gh.push_payload("acme/shop", "loosen", &[CONFIG_PATH]),
    )
    .await;
    t.settle().await;
    assert_eq!(writes(&t, "acme/shop").len(), writes_before);
    assert_eq!(t.gh.rulesets("acme/shop"), before);
    t.finish().await;
}

#[tokio::test]
async fn a_merged_policy_that_drops_a_ruleset_never_deletes_it() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/shop", &[(CONFIG_PATH, POLICY)]);
    policy_pushed(&t, "acme/shop").await;
    tracking_comments(&t, "acme/shop");
    let tags = t.gh.ruleset("acme/shop", "tags").unwrap();

    // A write user's PR drops `tags` and is merged to the default branch.
    let dropped = &POLICY[..POLICY.find("    tags:").unwrap()];
    t.gh.commit("acme/shop", "main", &[(CONFIG_PATH, Some(dropped))]);
    policy_pushed(&t, "acme/shop").await;
    assert!(
        t.gh.with(|w| w.requests.iter().all(|r| r.method != "DELETE")),
        "shipgate deletes no ruleset"
    );
    assert_eq!(t.gh.ruleset("acme/shop", "tags").unwrap(), tags);
    assert!(tracking_comments(&t, "acme/shop").is_empty());
    t.finish().await;
}

#[tokio::test]
async fn missing_admin_rights_for_rulesets_are_reported_once() {
    let t = Harness::start().await;
    t.gh.add_repo("acme/app", &[(CONFIG_PATH, POLICY)]);
    for _ in 0..2 {
        t.gh.fail_next("GET", "/repos/acme/app/rulesets", 1, 403);
        policy_pushed(&t, "acme/app").await;
    }
    let reports = tracking_comments(&t, "acme/app");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].contains("Administration: read & write"),
        "{}",
        reports[0]
    );
    assert!(writes(&t, "acme/app").is_empty());
    t.finish().await;
}
