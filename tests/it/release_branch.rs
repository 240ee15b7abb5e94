//! `release.branch`: Git-flow teams tag releases on `main` while `develop`
//! is the default branch. Through the runner contract: the tagged commit
//! must be on the release branch (by its full ref name, never a short name a
//! tag could shadow), and the `release:` rules stay the default branch's.

use crate::action::{git, stdout, Step};

use serde_json::json;

/// A checkout with `main` (where releases are cut) and `develop` (the
/// default branch, whose config says `release.branch: main`). `v1.0.0` is
/// tagged on `main`; `develop` has one more commit, tagged `v1.1.0`.
fn git_flow_checkout() -> Step {
    let mut step = Step::new();
    let ws = step.ws();
    std::fs::write(ws.join("CHANGELOG.md"), "## 1.0.0\n## 1.1.0\n").unwrap();
    step.config("release:\n  branch: main\n");
    git(&ws, &["init", "-q", "-b", "main"]);
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "1.0.0"]);
    git(&ws, &["tag", "-a", "v1.0.0", "-m", "v1.0.0"]);
    git(&ws, &["checkout", "-q", "-b", "develop"]);
    std::fs::write(ws.join("feature.txt"), "not released yet\n").unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "work in progress"]);
    git(&ws, &["tag", "-a", "v1.1.0", "-m", "v1.1.0"]);
    step.event(
        "push",
        json!({ "ref": "refs/tags/v1.0.0", "repository": { "full_name": "acme/app", "default_branch": "develop" } }),
    )
    .set("INPUT_GATES", "release");
    step
}

#[test]
fn with_release_branch_main_a_tag_on_main_passes_while_develop_is_the_default() {
    let mut step = git_flow_checkout();
    git(&step.ws(), &["checkout", "-q", "--detach", "v1.0.0"]);
    step.set("GITHUB_REF", "refs/tags/v1.0.0");
    let out = step.run();
    let summary = step.summary();
    assert_eq!(out.status.code(), Some(0), "{}\n{summary}", stdout(&out));
    assert!(
        summary.contains("- ✅ the tagged commit is on `main`"),
        "{summary}"
    );
}

#[test]
fn with_release_branch_main_a_tag_on_the_default_branch_only_fails() {
    let mut step = git_flow_checkout();
    git(&step.ws(), &["checkout", "-q", "--detach", "v1.1.0"]);
    step.set("GITHUB_REF", "refs/tags/v1.1.0");
    let out = step.run();
    let summary = step.summary();
    assert_eq!(out.status.code(), Some(1), "{summary}");
    assert!(
        summary.contains("- ❌ the tagged commit is not on `main`"),
        "{summary}"
    );
}

#[test]
fn a_tag_named_like_the_release_branch_does_not_put_a_commit_on_it() {
    let mut step = git_flow_checkout();
    let ws = step.ws();
    // The attacker's checkout: no `main` branch, and tags that a short
    // name `main` or `origin/main` would resolve to, at the unreleased commit.
    git(&ws, &["branch", "-q", "-D", "main"]);
    git(&ws, &["tag", "main", "v1.1.0^{commit}"]);
    git(&ws, &["tag", "origin/main", "v1.1.0^{commit}"]);
    git(&ws, &["tag", "heads/main", "v1.1.0^{commit}"]);
    git(&ws, &["checkout", "-q", "--detach", "v1.1.0"]);
    step.set("GITHUB_REF", "refs/tags/v1.1.0");
    let out = step.run();
    let summary = step.summary();
    assert_eq!(out.status.code(), Some(1), "{summary}");
    assert!(
        summary.contains("- ❌ the tagged commit is not on `main`"),
        "{summary}"
    );
}

#[test]
fn the_tagged_commit_cannot_choose_its_own_release_branch() {
    let mut step = git_flow_checkout();
    let ws = step.ws();
    // A branch off `develop` whose config names itself the release branch.
    git(&ws, &["checkout", "-q", "-b", "mine", "develop"]);
    step.config("release:\n  branch: mine\n");
    git(&ws, &["commit", "-q", "-am", "my own rules"]);
    git(&ws, &["tag", "-a", "v1.1.1", "-m", "v1.1.1"]);
    std::fs::write(ws.join("CHANGELOG.md"), "## 1.1.1\n").unwrap();
    git(&ws, &["commit", "-q", "-am", "changelog"]);
    git(&ws, &["tag", "-f", "-a", "v1.1.1", "-m", "v1.1.1"]);
    git(&ws, &["checkout", "-q", "--detach", "v1.1.1"]);
    step.set("GITHUB_REF", "refs/tags/v1.1.1");
    let out = step.run();
    let summary = step.summary();
    assert_eq!(out.status.code(), Some(1), "{summary}");
    assert!(
        summary.contains("- ❌ the tagged commit is not on `main`"),
        "{summary}"
    );
}

#[test]
fn a_release_branch_that_is_not_a_branch_name_is_a_configuration_error() {
    let mut step = git_flow_checkout();
    step.config("release:\n  branch: 'refs/heads/main'\n");
    git(&step.ws(), &["commit", "-q", "-am", "bad name"]);
    git(&step.ws(), &["checkout", "-q", "--detach", "v1.0.0"]);
    step.set("GITHUB_REF", "refs/tags/v1.0.0");
    let out = step.run();
    let text = format!("{}{}", stdout(&out), step.summary());
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("release.branch"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}
