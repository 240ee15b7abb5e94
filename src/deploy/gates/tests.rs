//! The gates, one fact at a time.

use super::*;
use crate::github::repos::UserRef;

fn review(who: &str, state: &str) -> Review {
    Review {
        user: Some(UserRef { login: who.into() }),
        state: state.into(),
        commit_id: None,
    }
}

fn actor(role: Option<Role>) -> Actor {
    Actor {
        login: "alice".into(),
        role,
        listed: false,
    }
}

#[test]
fn roles_prefer_role_name_and_fall_back_to_permission() {
    assert_eq!(
        role_from_permission(Some("maintain"), "write"),
        Some(Role::Maintain)
    );
    assert_eq!(
        role_from_permission(Some("triage"), "read"),
        Some(Role::Triage)
    );
    assert_eq!(
        role_from_permission(Some("security-reviewer"), "write"),
        Some(Role::Write)
    );
    assert_eq!(role_from_permission(None, "none"), None);
}

#[test]
fn permission_by_role_and_by_list() {
    let env: EnvironmentConfig = serde_yaml_ng::from_str("deployers: maintain").unwrap();
    let g = permission_gate("production", &env, &actor(Some(Role::Write)));
    assert_eq!(g.verdict, Verdict::Fail);
    assert_eq!(
        g.reason,
        "@alice has `write`; deploying to `production` needs `maintain` or higher"
    );
    assert!(permission_gate("production", &env, &actor(Some(Role::Admin))).passed());
    let default: EnvironmentConfig = serde_yaml_ng::from_str("{}").unwrap();
    assert!(permission_gate("staging", &default, &actor(Some(Role::Write))).passed());
    assert!(!permission_gate("staging", &default, &actor(Some(Role::Triage))).passed());
    let listed: EnvironmentConfig =
        serde_yaml_ng::from_str("deployers: [bob, '@acme/sre']").unwrap();
    assert!(!permission_gate("p", &listed, &actor(Some(Role::Admin))).passed());
    assert!(permission_gate(
        "p",
        &listed,
        &Actor {
            listed: true,
            ..actor(None)
        }
    )
    .passed());
}

fn on(who: &str, state: &str, commit: &str) -> Review {
    Review {
        commit_id: Some(commit.into()),
        ..review(who, state)
    }
}

fn roles(pairs: &[(&str, Option<Role>)]) -> ReviewerRoles {
    pairs.iter().map(|(l, r)| (l.to_string(), *r)).collect()
}

const HEAD: ApprovalRule = ApprovalRule {
    required: 2,
    count_stale: false,
};

#[test]
fn approvals_count_the_latest_decisive_review_per_reviewer() {
    let reviews = [
        on("bob", "CHANGES_REQUESTED", "h"),
        on("bob", "APPROVED", "h"),
        on("carol", "APPROVED", "h"),
        on("carol", "COMMENTED", "h"),
        on("alice", "APPROVED", "h"),
        on("dave", "APPROVED", "h"),
        on("dave", "DISMISSED", "h"),
    ];
    let writers = roles(&[
        ("bob", Some(Role::Write)),
        ("carol", Some(Role::Maintain)),
        ("dave", Some(Role::Admin)),
    ]);
    let decisive = decisive_reviews(&reviews, "alice");
    let g = approvals_gate(HEAD, &decisive, &writers, "h").unwrap();
    assert!(g.passed(), "{g:?}");
    assert_eq!(g.reason, "2 of 2 approvals (by @bob, @carol)");
    let three = ApprovalRule {
        required: 3,
        ..HEAD
    };
    let g = approvals_gate(three, &decisive, &writers, "h").unwrap();
    assert_eq!(
        (g.verdict, g.reason.as_str()),
        (Verdict::Fail, "2 of 3 approvals (by @bob, @carol)")
    );
    let blocked = decisive_reviews(
        &[
            on("bob", "APPROVED", "h"),
            on("erin", "CHANGES_REQUESTED", "h"),
        ],
        "alice",
    );
    let g = approvals_gate(
        HEAD,
        &blocked,
        &roles(&[("bob", Some(Role::Write)), ("erin", Some(Role::Write))]),
        "h",
    )
    .unwrap();
    assert_eq!(g.reason, "changes requested by @erin");
    assert!(approvals_gate(
        ApprovalRule {
            required: 0,
            ..HEAD
        },
        &[],
        &writers,
        "h"
    )
    .is_none());
    let own = decisive_reviews(&[on("alice", "APPROVED", "h")], "alice");
    assert_eq!(
        approvals_gate(HEAD, &own, &writers, "h").unwrap().reason,
        "0 of 2 approvals"
    );
}

#[test]
fn reviewers_without_write_access_neither_approve_nor_block() {
    let reviews = [
        on("mallory", "APPROVED", "h"),
        on("stranger", "APPROVED", "h"),
        on("troll", "CHANGES_REQUESTED", "h"),
        on("bob", "APPROVED", "h"),
    ];
    let r = roles(&[
        ("mallory", Some(Role::Read)),
        ("stranger", None),
        ("troll", Some(Role::Triage)),
        ("bob", Some(Role::Write)),
    ]);
    let g = approvals_gate(HEAD, &decisive_reviews(&reviews, "alice"), &r, "h").unwrap();
    assert!(!g.passed());
    assert_eq!(
        g.reason,
        "1 of 2 approvals (by @bob); not counted: @mallory (read), @stranger (no access), @troll (triage)"
    );
    // A login missing from the roles (never looked up) counts as no access.
    let g = approvals_gate(
        HEAD,
        &decisive_reviews(&[on("ghost", "APPROVED", "h")], "alice"),
        &ReviewerRoles::new(),
        "h",
    )
    .unwrap();
    assert!(g.reason.contains("@ghost (no access)"), "{}", g.reason);
}

#[test]
fn approvals_of_an_earlier_commit_count_only_when_stale_approvals_are_allowed() {
    let reviews = [on("bob", "APPROVED", "old"), on("carol", "APPROVED", "new")];
    let r = roles(&[("bob", Some(Role::Write)), ("carol", Some(Role::Write))]);
    let decisive = decisive_reviews(&reviews, "alice");
    let g = approvals_gate(HEAD, &decisive, &r, "new").unwrap();
    assert_eq!(
        g.reason,
        "1 of 2 approvals (by @carol); not counted: @bob (approved an earlier commit)"
    );
    let stale = ApprovalRule {
        count_stale: true,
        ..HEAD
    };
    assert!(approvals_gate(stale, &decisive, &r, "new")
        .unwrap()
        .passed());
    // Changes requested on an older commit still block, as GitHub keeps them.
    let blocked = decisive_reviews(
        &[
            on("bob", "CHANGES_REQUESTED", "old"),
            on("carol", "APPROVED", "new"),
        ],
        "alice",
    );
    assert_eq!(
        approvals_gate(HEAD, &blocked, &r, "new").unwrap().reason,
        "changes requested by @bob"
    );
}

fn run(name: &str, status: &str, conclusion: Option<&str>) -> CheckRun {
    CheckRun {
        name: name.into(),
        status: status.into(),
        conclusion: conclusion.map(str::to_string),
        app: Some(crate::github::repos::AppRef {
            slug: Some("github-actions".into()),
        }),
    }
}

fn status(context: &str, state: StatusState) -> CommitStatus {
    CommitStatus {
        context: context.into(),
        state,
        description: None,
    }
}

#[test]
fn checks_by_name_over_runs_and_statuses() {
    let runs = [
        run("ci", "completed", Some("success")),
        run("lint", "completed", Some("failure")),
        run("e2e", "in_progress", None),
    ];
    let statuses = [status("deploy/preview", StatusState::Success)];
    let req = |names: &[&str]| {
        names
            .iter()
            .map(|s| RequiredCheck::from(*s))
            .collect::<Vec<_>>()
    };
    assert!(
        checks_gate(&req(&["ci", "deploy/preview"]), &runs, &statuses, "abc1234")
            .unwrap()
            .passed()
    );
    let g = checks_gate(&req(&["ci", "lint"]), &runs, &statuses, "abc1234").unwrap();
    assert_eq!(g.verdict, Verdict::Fail);
    assert_eq!(g.reason, "`lint` failure on `abc1234`");
    let g = checks_gate(&req(&["e2e", "missing"]), &runs, &statuses, "abc1234").unwrap();
    assert!(g.waiting());
    assert_eq!(
        g.reason,
        "`e2e` in progress, `missing` not reported on `abc1234`"
    );
    let g = checks_gate(&req(&["all"]), &runs, &statuses, "abc1234").unwrap();
    assert_eq!(g.reason, "`lint` failure, `e2e` in progress on `abc1234`");
    assert!(checks_gate(&req(&["all"]), &[], &[], "abc1234")
        .unwrap()
        .waiting());
    assert!(checks_gate(&[], &runs, &statuses, "abc1234").is_none());
    let skipped = [run("ci", "completed", Some("skipped"))];
    assert!(checks_gate(&req(&["ci"]), &skipped, &[], "x")
        .unwrap()
        .passed());
}

#[test]
fn a_check_named_with_its_app_is_satisfied_only_by_that_app() {
    let impostor = CheckRun {
        app: Some(crate::github::repos::AppRef {
            slug: Some("evil-app".into()),
        }),
        ..run("ci", "completed", Some("success"))
    };
    let from_actions = [RequiredCheck::FromApp {
        name: "ci".into(),
        app: "github-actions".into(),
    }];
    let g = checks_gate(&from_actions, std::slice::from_ref(&impostor), &[], "abc").unwrap();
    assert!(!g.passed() && g.waiting(), "{g:?}");
    assert_eq!(g.reason, "`ci (from github-actions)` not reported on `abc`");
    // A status of that name does not count either: statuses have no app.
    let status = status("ci", StatusState::Success);
    assert!(!checks_gate(&from_actions, &[], &[status], "abc")
        .unwrap()
        .passed());
    let real = run("ci", "completed", Some("success"));
    assert!(
        checks_gate(&from_actions, &[impostor.clone(), real], &[], "abc")
            .unwrap()
            .passed()
    );
    // Unqualified, any app's check counts (as branch protection's "any source").
    assert!(
        checks_gate(&[RequiredCheck::from("ci")], &[impostor], &[], "abc")
            .unwrap()
            .passed()
    );
}

#[test]
fn branches_and_tags_match_only_patterns_of_their_kind() {
    let patterns: Vec<String> = vec!["main".into(), "release/*".into(), "refs/tags/v*".into()];
    let gate = |k: RefKind| ref_gate("production", &patterns, &k).unwrap();
    assert!(gate(RefKind::Branch("main".into())).passed());
    assert!(gate(RefKind::Branch("release/2.0".into())).passed());
    assert!(gate(RefKind::Tag("v1.2.0".into())).passed());
    // A tag named like an allowed branch does not pass.
    let g = gate(RefKind::Tag("main".into()));
    assert!(!g.passed() && !g.waiting());
    assert!(
        g.reason.starts_with("tag `main` may not deploy"),
        "{}",
        g.reason
    );
    assert!(
        g.reason.contains("tags are named as `refs/tags/PATTERN`"),
        "{}",
        g.reason
    );
    assert!(!gate(RefKind::Branch("v1.2.0".into())).passed());
    assert!(!gate(RefKind::Ambiguous("main".into())).passed());
    assert!(!gate(RefKind::Unknown("main".into())).passed());
    assert!(!gate(RefKind::Commit(
        "0123456789abcdef0123456789abcdef01234567".into()
    ))
    .passed());
    assert!(ref_gate("production", &[], &RefKind::Tag("main".into())).is_none());
    let both: Vec<String> = vec!["main".into(), "refs/tags/main".into()];
    assert!(ref_gate("p", &both, &RefKind::Ambiguous("main".into()))
        .unwrap()
        .passed());
}

#[test]
fn forks_deploy_only_where_allowed() {
    let pr = PullFacts {
        number: 5,
        open: true,
        draft: false,
        base_ref: "main".into(),
        author: "eve".into(),
        head_sha: "h".into(),
        fork: true,
    };
    let env: EnvironmentConfig = serde_yaml_ng::from_str("{}").unwrap();
    let g = fork_gate("production", &env, &pr).unwrap();
    assert!(!g.passed() && !g.waiting());
    assert!(g.reason.contains("`allow_forks: true`"), "{}", g.reason);
    let open: EnvironmentConfig = serde_yaml_ng::from_str("allow_forks: true").unwrap();
    assert!(fork_gate("production", &open, &pr).unwrap().passed());
    let own = PullFacts { fork: false, ..pr };
    assert!(fork_gate("production", &env, &own).is_none());
}

#[test]
fn freeze_can_be_forced_only_by_maintainers() {
    let config = RepoConfig::parse(
        "environments:\n  production:\n    freeze:\n      - { dates: [\"2026-12-24\"] }\n",
    )
    .unwrap();
    let env = &config.environments["production"];
    let now = DateTime::parse_from_rfc3339("2026-12-24T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let g = freeze_gate(&config, env, now, false, &actor(Some(Role::Admin)));
    assert_eq!(
        g.reason,
        "freeze window (2026-12-24 00:00–23:59 UTC) until 2026-12-25 00:00 UTC"
    );
    assert!(!g.passed() && g.waiting());
    let g = freeze_gate(&config, env, now, true, &actor(Some(Role::Write)));
    assert!(!g.passed() && g.reason.ends_with("(`force` needs maintain or admin)"));
    let g = freeze_gate(&config, env, now, true, &actor(Some(Role::Maintain)));
    assert!(g.passed() && g.reason.contains("overridden with `force` by @alice"));
    let later = DateTime::parse_from_rfc3339("2026-12-26T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    assert!(freeze_gate(&config, env, later, false, &actor(Some(Role::Write))).passed());
}

#[test]
fn locks_of_other_prs_block() {
    let l = Lock {
        repository: "o/r".into(),
        environment: "production".into(),
        kind: LockKind::Sticky,
        holder: "bob".into(),
        pr: Some(12),
        owner_token: "t".into(),
        deployment_id: None,
        reason: Some("migration".into()),
        expires_at: None,
        created_at: 0,
    };
    let claim = |pr: i64| LockClaim {
        pr: Some(pr),
        deployment_id: None,
        same_pr_deploy: true,
    };
    assert!(lock_gate(Some(&l), claim(12)).passed());
    let g = lock_gate(Some(&l), claim(13));
    assert_eq!(g.reason, "locked by #12 (@bob): migration");
    assert!(lock_gate(None, claim(13)).passed());
}

#[test]
fn a_deploy_lock_passes_its_own_deployment_and_its_pr_but_not_others() {
    let l = Lock {
        repository: "o/r".into(),
        environment: "production".into(),
        kind: LockKind::Deploy,
        holder: "alice".into(),
        pr: Some(12),
        owner_token: "t".into(),
        deployment_id: Some(900),
        reason: None,
        expires_at: None,
        created_at: 0,
    };
    let own = LockClaim {
        pr: None,
        deployment_id: Some(900),
        same_pr_deploy: false,
    };
    assert_eq!(lock_gate(Some(&l), own).reason, "held for this deployment");
    let other = LockClaim {
        deployment_id: Some(901),
        ..own
    };
    assert!(lock_gate(Some(&l), other).waiting());
    // A workflow run from #12 that is not the deployment under the lock waits.
    let same_pr_foreign = LockClaim {
        pr: Some(12),
        deployment_id: Some(901),
        same_pr_deploy: false,
    };
    assert!(!lock_gate(Some(&l), same_pr_foreign).passed());
    // `/deploy` again from #12 passes (it takes the lock over).
    let same_pr_command = LockClaim {
        same_pr_deploy: true,
        ..same_pr_foreign
    };
    assert!(lock_gate(Some(&l), same_pr_command).passed());
}
