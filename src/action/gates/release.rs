//! The `release` gate: a pushed tag against the default branch's
//! `release:` rules (pattern, annotation, signature, ancestry, changelog).

use crate::action::config::{repo_path, CommitReader};
use crate::action::request::{client, CheckError, CheckRequest, GateResult};
use crate::action::Runner;
use crate::config::repo::ReleaseConfig;
use crate::config::repo::RepoConfig;
use crate::deploy::gates::Verdict;
use crate::render::release::{not_a_tag_push, release_checks};
use crate::secrets::git;
use crate::text::plain_branch_name;

const SEMVER_TAG: &str =
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$";

/// The checkout's fully qualified refs of `branch`
/// (`refs/remotes/origin/<branch>`, `refs/heads/<branch>`) that name a
/// commit. Never a short name: a tag called `main` or `origin/main` would
/// shadow the branch.
fn branch_refs(ws: &std::path::Path, branch: &str) -> Vec<String> {
    [
        format!("refs/remotes/origin/{branch}"),
        format!("refs/heads/{branch}"),
    ]
    .into_iter()
    .filter(|r| {
        git::succeeds(
            ws,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{r}^{{commit}}"),
            ],
        )
        .unwrap_or(false)
    })
    .collect()
}

/// The default branch's `release:` rules, which judge a tag wherever it
/// points: the tagged commit's own config is what the tag's author wrote.
/// Read at `refs/remotes/origin/<branch>` or `refs/heads/<branch>` when the
/// checkout has one, else through the API (the branch's commit, then the
/// file at it). Also returns the refs found, for the ancestry check.
async fn default_branch_release(
    runner: &Runner,
    req: &CheckRequest,
    branch: &str,
) -> Result<(ReleaseConfig, Vec<String>), CheckError> {
    let ws = runner.workspace();
    let refs = branch_refs(&ws, branch);
    let commit = match refs.first() {
        Some(r) => git::text(&ws, &["rev-parse", &format!("{r}^{{commit}}")])
            .map_err(|e| CheckError::Input(e.to_string()))?,
        None if req.token.is_some() => {
            // By its full ref name: `commits/main` would take a tag named `main`.
            let (_, api, repo) = client(runner, req, "release")?;
            let missing = || {
                CheckError::Input(format!(
                    "release: cannot find the default branch `{branch}` of {repo}"
                ))
            };
            api.git_ref(&repo, &format!("heads/{branch}"))
                .await
                .map_err(|e| {
                    CheckError::Input(format!(
                        "release: cannot find the default branch `{branch}`: {e}"
                    ))
                })?
                .ok_or_else(missing)?
        }
        None => {
            return Err(CheckError::Input(format!(
                "release: the release rules are read from the default branch `{branch}`, which is not in the checkout (`fetch-depth: 0`), and there is no token to read it through the API"
            )))
        }
    };
    if !git::is_commit_id(&commit) {
        return Err(CheckError::Input(format!(
            "release: `{branch}` resolved to `{commit}`, not a commit id"
        )));
    }
    let reader = CommitReader::new(runner, req, &commit, "the default branch's commit")?;
    let path = repo_path(&ws, &req.config)?;
    let release = match reader.read(&path).await? {
        Some(text) => {
            RepoConfig::parse(&text)
                .map_err(|e| CheckError::Config {
                    path: format!("{path} on `{branch}`"),
                    message: e.to_string(),
                })?
                .release
        }
        None => ReleaseConfig::default(),
    };
    Ok((release, refs))
}

pub async fn run(runner: &Runner, req: &CheckRequest) -> Result<GateResult, CheckError> {
    let Some(tag) = runner
        .var("GITHUB_REF")
        .and_then(|r| r.strip_prefix("refs/tags/"))
        .map(str::to_string)
    else {
        return Ok(GateResult::new(
            "release",
            Verdict::Skipped,
            "not a tag push",
            not_a_tag_push(),
        ));
    };
    let ws = runner.workspace();
    let default_branch = runner
        .event()
        .and_then(|e| e.default_branch())
        .unwrap_or("main")
        .to_string();
    if !plain_branch_name(&default_branch) {
        return Err(CheckError::Input(format!(
            "release: the event's default branch `{}` is not a branch name shipgate can use",
            default_branch.escape_debug()
        )));
    }
    let (release, default_refs) = default_branch_release(runner, req, &default_branch).await?;
    // Where releases are cut: `release.branch` (Git flow tags `main` while
    // `develop` is the default), else the default branch. The rules above
    // stay the default branch's: a tag cannot pick its own.
    let (release_branch, release_refs) = match release.branch.as_deref() {
        // `RepoConfig::parse` has checked that it is a plain branch name.
        Some(b) if b != default_branch => (b.to_string(), branch_refs(&ws, b)),
        _ => (default_branch.clone(), default_refs),
    };
    let pattern = release
        .tag_pattern
        .clone()
        .unwrap_or_else(|| SEMVER_TAG.into());
    // The whole tag must match: `v1` is not a pattern for `xv1y`.
    let re = regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| CheckError::Input(format!("release.tag_pattern: {e}")))?;
    let tag_ref = format!("refs/tags/{tag}");
    let tag_commit = format!("{tag_ref}^{{commit}}");
    let mut problems = Vec::new();
    let mut passed = Vec::new();
    if re.is_match(&tag) {
        passed.push(format!("`{tag}` matches `{pattern}`"));
    } else {
        problems.push(format!("`{tag}` does not match `{pattern}`"));
    }
    match git::text(&ws, &["cat-file", "-t", &tag_ref]) {
        Ok(kind) if kind == "tag" => passed.push("the tag is annotated".into()),
        Ok(_) => problems.push("the tag is lightweight; create it with `git tag -a`".into()),
        Err(e) => problems.push(format!("cannot read the tag: {e}")),
    }
    if release.require_signed {
        match git::output(&ws, &["verify-tag", &tag_ref]) {
            Ok(_) => passed.push("the signature verifies".into()),
            Err(e) => problems.push(format!("the signature does not verify: {e}")),
        }
    }
    // Fully qualified refs: a tag named `main` or `origin/main` would
    // shadow the branch of that short name.
    let on_branch = release_refs.iter().any(|b| {
        git::succeeds(&ws, &["merge-base", "--is-ancestor", &tag_commit, b]).unwrap_or(false)
    });
    if on_branch {
        passed.push(format!("the tagged commit is on `{release_branch}`"));
    } else {
        problems.push(format!(
            "the tagged commit is not on `{release_branch}` (fetch it with `fetch-depth: 0`)"
        ));
    }
    let changelog = release
        .changelog
        .clone()
        .unwrap_or_else(|| "CHANGELOG.md".into());
    let version = tag.trim_start_matches('v');
    // The tagged commit's changelog, read through git: the path stays inside the repository.
    match git::output(
        &ws,
        &["cat-file", "blob", &format!("{tag_commit}:./{changelog}")],
    ) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let heading = regex::Regex::new(&format!(
                r"(?m)^#+\s*\[?v?{}\]?(\s|$)",
                regex::escape(version)
            ))
            .expect("escaped");
            if heading.is_match(&text) {
                passed.push(format!("`{changelog}` has a section for {version}"));
            } else {
                problems.push(format!("`{changelog}` has no section for {version}"));
            }
        }
        Err(_) => problems.push(format!("`{changelog}` is missing")),
    }
    let md = release_checks(&passed, &problems);
    let mut r = if problems.is_empty() {
        GateResult::new(
            "release",
            Verdict::Pass,
            format!("`{tag}` is a valid release"),
            md,
        )
    } else {
        GateResult::new("release", Verdict::Fail, problems.join("; "), md)
    };
    r.errors = problems.len();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_for_revisions() {
        for ok in ["main", "release/1.x", "trunk-2"] {
            assert!(plain_branch_name(ok), "{ok}");
        }
        for bad in ["", "-x", "a:b", "a..b", "a b", "a\nb", "x^{commit}"] {
            assert!(!plain_branch_name(bad), "{bad:?}");
        }
    }
}
