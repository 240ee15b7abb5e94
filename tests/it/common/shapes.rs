//! GitHub-shaped objects for the fake's answers: every field GitHub's
//! OpenAPI description requires, so the conformance run's response check
//! passes and the fake cannot drift from what GitHub sends. `api` is the
//! fake's own URL (GitHub's `https://api.github.com`): shipgate may follow
//! the URLs it finds.

#![allow(dead_code)]

use serde_json::{json, Value};

pub const HTML: &str = "https://github.com";
/// Timestamps of the fake's objects.
pub const TIME: &str = "2026-11-22T10:00:00Z";

/// A stable id for a name.
pub fn id_of(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h % 1_000_000_000 + 1
}

pub fn node_id(kind: &str, id: u64) -> String {
    format!("{kind}_kwDO{id:08X}")
}

/// A login as it appears in a URL path (`[bot]` percent-encoded, as GitHub does).
fn login_in_url(login: &str) -> String {
    login.replace('[', "%5B").replace(']', "%5D")
}

/// `simple-user`.
pub fn user(api: &str, login: &str) -> Value {
    let id = id_of(login);
    let bot = login.ends_with("[bot]");
    let u = format!("{api}/users/{}", login_in_url(login));
    let html = match login.strip_suffix("[bot]") {
        Some(app) => format!("{HTML}/apps/{app}"),
        None => format!("{HTML}/{login}"),
    };
    json!({
        "login": login, "id": id, "node_id": node_id(if bot { "BOT" } else { "U" }, id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "", "url": u, "html_url": html,
        "followers_url": format!("{u}/followers"),
        "following_url": format!("{u}/following{{/other_user}}"),
        "gists_url": format!("{u}/gists{{/gist_id}}"),
        "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{u}/subscriptions"),
        "organizations_url": format!("{u}/orgs"),
        "repos_url": format!("{u}/repos"),
        "events_url": format!("{u}/events{{/privacy}}"),
        "received_events_url": format!("{u}/received_events"),
        "type": if bot { "Bot" } else { "User" },
        "site_admin": false,
    })
}

/// `private-user` (`GET /user` for the token's own user).
pub fn private_user(api: &str, login: &str) -> Value {
    let mut u = user(api, login);
    let extra = json!({
        "name": null, "company": null, "blog": "", "location": null, "email": null,
        "hireable": null, "bio": null, "twitter_username": null,
        "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
        "created_at": TIME, "updated_at": TIME,
        "private_gists": 0, "total_private_repos": 0, "owned_private_repos": 0,
        "disk_usage": 0, "collaborators": 0, "two_factor_authentication": true,
    });
    merge(&mut u, extra);
    u
}

/// `integration` (a GitHub App).
pub fn app(api: &str, id: u64, slug: &str, name: &str) -> Value {
    json!({
        "id": id, "slug": slug, "node_id": node_id("A", id),
        "owner": user(api, "acme"), "name": name, "description": null,
        "external_url": "https://shipgate.example.com",
        "html_url": format!("{HTML}/apps/{slug}"),
        "created_at": TIME, "updated_at": TIME,
        "permissions": { "checks": "write", "contents": "read", "deployments": "write", "issues": "write", "metadata": "read", "pull_requests": "write", "statuses": "write" },
        "events": ["check_run", "deployment_status", "issue_comment", "pull_request", "push"],
    })
}

/// `full-repository` (also satisfies `repository` and `minimal-repository`).
pub fn repository(api: &str, full_name: &str, id: u64, default_branch: &str) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, full_name));
    let u = format!("{api}/repos/{full_name}");
    let mut repo = json!({
        "id": id, "node_id": node_id("R", id), "name": name, "full_name": full_name,
        "owner": user(api, owner), "private": false,
        "html_url": format!("{HTML}/{full_name}"), "description": null, "fork": false,
        "url": u, "homepage": null, "language": null, "mirror_url": null,
        "git_url": format!("git://github.com/{full_name}.git"),
        "ssh_url": format!("git@github.com:{full_name}.git"),
        "clone_url": format!("{HTML}/{full_name}.git"),
        "svn_url": format!("{HTML}/{full_name}"),
        "default_branch": default_branch,
        "forks": 0, "forks_count": 0, "stargazers_count": 0, "watchers": 0, "watchers_count": 0,
        "open_issues": 0, "open_issues_count": 0, "size": 0, "network_count": 0, "subscribers_count": 0,
        "has_issues": true, "has_projects": true, "has_wiki": true, "has_pages": false,
        "has_downloads": true, "has_discussions": false, "archived": false, "disabled": false,
        "license": null, "visibility": "public",
        "pushed_at": TIME, "created_at": TIME, "updated_at": TIME,
    });
    for (field, rest) in [
        ("archive_url", "/{archive_format}{/ref}"),
        ("assignees_url", "/assignees{/user}"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("branches_url", "/branches{/branch}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("comments_url", "/comments{/number}"),
        ("commits_url", "/commits{/sha}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("contents_url", "/contents/{+path}"),
        ("contributors_url", "/contributors"),
        ("deployments_url", "/deployments"),
        ("downloads_url", "/downloads"),
        ("events_url", "/events"),
        ("forks_url", "/forks"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("hooks_url", "/hooks"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("issue_events_url", "/issues/events{/number}"),
        ("issues_url", "/issues{/number}"),
        ("keys_url", "/keys{/key_id}"),
        ("labels_url", "/labels{/name}"),
        ("languages_url", "/languages"),
        ("merges_url", "/merges"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("pulls_url", "/pulls{/number}"),
        ("releases_url", "/releases{/id}"),
        ("stargazers_url", "/stargazers"),
        ("statuses_url", "/statuses/{sha}"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("tags_url", "/tags"),
        ("teams_url", "/teams"),
        ("trees_url", "/git/trees{/sha}"),
    ] {
        repo[field] = json!(format!("{u}{rest}"));
    }
    repo
}

/// A pull request (`pull-request`; also `pull-request-simple`). `pr` holds
/// number, state, draft, title, author, head/base ref and sha; `repo` is
/// the repository object.
pub fn pull_request(api: &str, repo: &Value, pr: &Value) -> Value {
    let full = repo["full_name"].as_str().unwrap_or_default();
    let owner = full.split('/').next().unwrap_or_default();
    let number = pr["number"].as_u64().unwrap_or(0);
    let id = id_of(&format!("{full}#pr{number}"));
    let u = format!("{api}/repos/{full}/pulls/{number}");
    let html = format!("{HTML}/{full}/pull/{number}");
    let issue = format!("{api}/repos/{full}/issues/{number}");
    let author = pr["author"].as_str().unwrap_or("octocat");
    let side = |which: &str| {
        let r = pr[which]["ref"].as_str().unwrap_or_default();
        // A fork's head: its own repository (or null when it was deleted).
        let (label_owner, side_repo) = match pr[which].get("repo") {
            Some(Value::Null) => (owner.to_string(), Value::Null),
            Some(other) => (
                other["owner"]["login"]
                    .as_str()
                    .unwrap_or(owner)
                    .to_string(),
                other.clone(),
            ),
            None => (owner.to_string(), repo.clone()),
        };
        json!({
            "label": format!("{label_owner}:{r}"), "ref": r, "sha": pr[which]["sha"],
            "user": user(api, &label_owner), "repo": side_repo,
        })
    };
    let state = pr["state"].as_str().unwrap_or("open");
    let statuses = format!(
        "{api}/repos/{full}/statuses/{}",
        pr["head"]["sha"].as_str().unwrap_or_default()
    );
    let links = json!({
        "self": { "href": u }, "html": { "href": html }, "issue": { "href": issue },
        "comments": { "href": format!("{issue}/comments") },
        "review_comments": { "href": format!("{u}/comments") },
        "review_comment": { "href": format!("{api}/repos/{full}/pulls/comments{{/number}}") },
        "commits": { "href": format!("{u}/commits") },
        "statuses": { "href": statuses },
    });
    let mut out = json!({
        "url": u, "id": id, "node_id": node_id("PR", id), "html_url": html,
        "diff_url": format!("{html}.diff"), "patch_url": format!("{html}.patch"),
        "issue_url": issue, "commits_url": format!("{u}/commits"),
        "review_comments_url": format!("{u}/comments"),
        "review_comment_url": format!("{api}/repos/{full}/pulls/comments{{/number}}"),
        "comments_url": format!("{issue}/comments"), "statuses_url": statuses,
        "number": number, "state": state, "locked": false,
        "title": pr["title"].as_str().unwrap_or("A change"), "user": user(api, author),
        "head": side("head"), "base": side("base"), "_links": links,
    });
    merge(
        &mut out,
        json!({
            "body": null, "labels": [], "milestone": null, "active_lock_reason": null,
            "created_at": TIME, "updated_at": TIME,
            "closed_at": if state == "closed" { json!(TIME) } else { Value::Null },
            "merged_at": null, "merge_commit_sha": null, "assignee": null, "assignees": [],
            "requested_reviewers": [], "requested_teams": [],
            "author_association": "MEMBER", "auto_merge": null, "draft": pr["draft"],
            "merged": false, "mergeable": true, "rebaseable": true, "mergeable_state": "clean",
            "merged_by": null, "comments": 0, "review_comments": 0, "maintainer_can_modify": false,
            "commits": 1, "additions": 1, "deletions": 0, "changed_files": 1,
        }),
    );
    out
}

/// `pull-request-review`.
pub fn review(
    api: &str,
    full: &str,
    pr: u64,
    index: usize,
    login: &str,
    state: &str,
    commit: &str,
) -> Value {
    let id = id_of(&format!("{full}#pr{pr}/review{index}"));
    let html = format!("{HTML}/{full}/pull/{pr}#pullrequestreview-{id}");
    json!({
        "id": id, "node_id": node_id("PRR", id), "user": user(api, login), "body": "",
        "state": state, "html_url": html,
        "pull_request_url": format!("{api}/repos/{full}/pulls/{pr}"),
        "_links": { "html": { "href": html }, "pull_request": { "href": format!("{api}/repos/{full}/pulls/{pr}") } },
        "submitted_at": TIME, "commit_id": commit, "author_association": "MEMBER",
    })
}

/// `issue-comment`.
pub fn issue_comment(api: &str, full: &str, id: u64, issue: u64, login: &str, body: &str) -> Value {
    json!({
        "id": id, "node_id": node_id("IC", id),
        "url": format!("{api}/repos/{full}/issues/comments/{id}"),
        "html_url": format!("{HTML}/{full}/pull/{issue}#issuecomment-{id}"),
        "issue_url": format!("{api}/repos/{full}/issues/{issue}"),
        "body": body, "user": user(api, login), "created_at": TIME, "updated_at": TIME,
        "author_association": if login.ends_with("[bot]") { "NONE" } else { "MEMBER" },
    })
}

/// `reaction`.
pub fn reaction(api: &str, comment: u64, login: &str, content: &str) -> Value {
    let id = id_of(&format!("{comment}/{login}/{content}"));
    json!({ "id": id, "node_id": node_id("REA", id), "user": user(api, login), "content": content, "created_at": TIME })
}

/// `issue`.
pub fn issue(api: &str, full: &str, number: u64, title: &str, login: &str) -> Value {
    let id = id_of(&format!("{full}#issue{number}"));
    let u = format!("{api}/repos/{full}/issues/{number}");
    json!({
        "id": id, "node_id": node_id("I", id), "url": u,
        "repository_url": format!("{api}/repos/{full}"),
        "labels_url": format!("{u}/labels{{/name}}"), "comments_url": format!("{u}/comments"),
        "events_url": format!("{u}/events"), "html_url": format!("{HTML}/{full}/issues/{number}"),
        "number": number, "state": "open", "title": title, "body": null, "user": user(api, login),
        "labels": [], "assignee": null, "assignees": [], "milestone": null, "locked": false,
        "comments": 0, "closed_at": null, "created_at": TIME, "updated_at": TIME,
        "author_association": "MEMBER",
    })
}

/// `status` (one commit status as created).
pub fn status(
    api: &str,
    full: &str,
    sha: &str,
    index: usize,
    state: &str,
    context: &str,
    description: &str,
) -> Value {
    let id = id_of(&format!("{full}@{sha}/status{index}"));
    json!({
        "url": format!("{api}/repos/{full}/statuses/{sha}"),
        "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4",
        "id": id, "node_id": node_id("SC", id), "state": state, "description": description,
        "target_url": null, "context": context, "created_at": TIME, "updated_at": TIME,
        "creator": user(api, super::fake_github::BOT_LOGIN),
    })
}

/// `combined-commit-status`.
pub fn combined_status(
    api: &str,
    repo: &Value,
    sha: &str,
    state: &str,
    statuses: Vec<Value>,
) -> Value {
    let full = repo["full_name"].as_str().unwrap_or_default();
    let statuses: Vec<Value> = statuses
        .into_iter()
        .map(|mut s| {
            if let Some(o) = s.as_object_mut() {
                o.remove("creator");
            }
            s
        })
        .collect();
    json!({
        "state": state, "sha": sha, "total_count": statuses.len(), "statuses": statuses,
        "repository": repo,
        "commit_url": format!("{api}/repos/{full}/commits/{sha}"),
        "url": format!("{api}/repos/{full}/commits/{sha}/status"),
    })
}

/// `check-run`.
#[allow(clippy::too_many_arguments)]
pub fn check_run(
    api: &str,
    full: &str,
    id: u64,
    name: &str,
    head_sha: &str,
    status: &str,
    conclusion: &Value,
    details_url: &Value,
    output: &Value,
) -> Value {
    let completed = status == "completed";
    json!({
        "id": id, "node_id": node_id("CR", id), "head_sha": head_sha, "name": name,
        "external_id": "", "url": format!("{api}/repos/{full}/check-runs/{id}"),
        "html_url": format!("{HTML}/{full}/runs/{id}"), "details_url": details_url,
        "status": status, "conclusion": conclusion,
        "started_at": TIME, "completed_at": if completed { json!(TIME) } else { Value::Null },
        "output": {
            "title": output["title"], "summary": output["summary"], "text": output.get("text").cloned().unwrap_or(Value::Null),
            "annotations_count": 0,
            "annotations_url": format!("{api}/repos/{full}/check-runs/{id}/annotations"),
        },
        "check_suite": { "id": id_of(&format!("{full}@{head_sha}/suite")) },
        "app": app(api, 1, "shipgate-test", "shipgate test"),
        "pull_requests": [],
    })
}

/// A `check-run` reported by the App `slug`.
#[allow(clippy::too_many_arguments)]
pub fn check_run_of(
    api: &str,
    full: &str,
    id: u64,
    name: &str,
    head_sha: &str,
    status: &str,
    conclusion: &Value,
    slug: &str,
) -> Value {
    let mut run = check_run(
        api,
        full,
        id,
        name,
        head_sha,
        status,
        conclusion,
        &Value::Null,
        &json!({ "title": null, "summary": null }),
    );
    run["app"] = app(api, id_of(slug), slug, slug);
    run
}

/// A `git-ref`.
pub fn git_ref(api: &str, full: &str, name: &str, sha: &str) -> Value {
    json!({
        "ref": format!("refs/{name}"), "node_id": node_id("REF", id_of(name)),
        "url": format!("{api}/repos/{full}/git/refs/{name}"),
        "object": { "type": "commit", "sha": sha, "url": format!("{api}/repos/{full}/git/commits/{sha}") },
    })
}

/// `deployment`.
#[allow(clippy::too_many_arguments)]
pub fn deployment(
    api: &str,
    full: &str,
    id: u64,
    sha: &str,
    git_ref: &str,
    environment: &str,
    payload: &Value,
    creator: &str,
    production: bool,
) -> Value {
    let u = format!("{api}/repos/{full}/deployments/{id}");
    json!({
        "url": u, "id": id, "node_id": node_id("DE", id), "sha": sha, "ref": git_ref,
        "task": "deploy", "payload": if payload.is_null() { json!({}) } else { payload.clone() },
        "original_environment": environment, "environment": environment, "description": null,
        "creator": user(api, creator), "created_at": TIME, "updated_at": TIME,
        "statuses_url": format!("{u}/statuses"), "repository_url": format!("{api}/repos/{full}"),
        "transient_environment": false, "production_environment": production,
    })
}

/// `deployment-status`. GitHub answers `""` for URLs never set.
#[allow(clippy::too_many_arguments)]
pub fn deployment_status(
    api: &str,
    full: &str,
    deployment: u64,
    index: usize,
    state: &str,
    environment: &str,
    environment_url: Option<&str>,
    log_url: Option<&str>,
) -> Value {
    let id = deployment * 1000 + index as u64 + 1;
    let d = format!("{api}/repos/{full}/deployments/{deployment}");
    json!({
        "url": format!("{d}/statuses/{id}"), "id": id, "node_id": node_id("DES", id),
        "state": state, "creator": user(api, super::fake_github::BOT_LOGIN), "description": "",
        "environment": environment, "target_url": log_url.unwrap_or(""),
        "environment_url": environment_url.unwrap_or(""), "log_url": log_url.unwrap_or(""),
        "created_at": TIME, "updated_at": TIME,
        "deployment_url": d, "repository_url": format!("{api}/repos/{full}"),
    })
}

/// A team (`team`), from what a test gave (at least `slug`).
pub fn team(api: &str, org: &str, given: &Value) -> Value {
    let slug = given["slug"].as_str().unwrap_or("team");
    let id = id_of(&format!("{org}/{slug}"));
    let mut t = json!({
        "id": id, "node_id": node_id("T", id), "url": format!("{api}/orgs/{org}/teams/{slug}"),
        "html_url": format!("{HTML}/orgs/{org}/teams/{slug}"), "name": slug, "slug": slug,
        "description": null, "privacy": "closed", "notification_setting": "notifications_enabled",
        "permission": "pull", "members_url": format!("{api}/orgs/{org}/teams/{slug}/members{{/member}}"),
        "repositories_url": format!("{api}/orgs/{org}/teams/{slug}/repos"), "parent": null,
        "type": "organization",
    });
    merge(&mut t, given.clone());
    t
}

/// A branch protection (`branch-protection` for GET, `protected-branch`
/// for PUT) from the fake's stored shape: URLs and full objects added.
pub fn protection(api: &str, full: &str, branch: &str, stored: &Value) -> Value {
    let org = full.split('/').next().unwrap_or_default();
    let u = format!("{api}/repos/{full}/branches/{branch}/protection");
    let mut p = stored.clone();
    p["url"] = json!(u);
    for (field, path) in [
        ("enforce_admins", "enforce_admins"),
        ("required_signatures", "required_signatures"),
    ] {
        if p.get(field).is_none_or(Value::is_null) {
            p[field] = json!({ "enabled": false });
        }
        p[field]["url"] = json!(format!("{u}/{path}"));
    }
    if let Some(c) = p
        .get_mut("required_status_checks")
        .filter(|c| c.is_object())
    {
        c["url"] = json!(format!("{u}/required_status_checks"));
        c["contexts_url"] = json!(format!("{u}/required_status_checks/contexts"));
        if c.get("contexts").is_none() {
            c["contexts"] = json!([]);
        }
        if c.get("checks").is_none() {
            c["checks"] = json!([]);
        }
        if let Some(checks) = c["checks"].as_array_mut() {
            for k in checks {
                if k.get("app_id").is_none() {
                    k["app_id"] = Value::Null;
                }
            }
        }
    }
    if let Some(r) = p
        .get_mut("required_pull_request_reviews")
        .filter(|r| r.is_object())
    {
        r["url"] = json!(format!("{u}/required_pull_request_reviews"));
        if let Some(d) = r
            .get_mut("dismissal_restrictions")
            .filter(|d| d.is_object())
        {
            d["url"] = json!(format!("{u}/dismissal_restrictions"));
            d["users_url"] = json!(format!("{u}/dismissal_restrictions/users"));
            d["teams_url"] = json!(format!("{u}/dismissal_restrictions/teams"));
            people(api, org, d);
        }
        if let Some(b) = r
            .get_mut("bypass_pull_request_allowances")
            .filter(|b| b.is_object())
        {
            people(api, org, b);
        }
    }
    if let Some(r) = p.get_mut("restrictions").filter(|r| r.is_object()) {
        r["url"] = json!(format!("{u}/restrictions"));
        r["users_url"] = json!(format!("{u}/restrictions/users"));
        r["teams_url"] = json!(format!("{u}/restrictions/teams"));
        r["apps_url"] = json!(format!("{u}/restrictions/apps"));
        for k in ["users", "teams", "apps"] {
            if r.get(k).is_none() {
                r[k] = json!([]);
            }
        }
        people(api, org, r);
    }
    p
}

/// Full user, team and app objects in a restriction list.
fn people(api: &str, org: &str, list: &mut Value) {
    if let Some(users) = list.get_mut("users").and_then(Value::as_array_mut) {
        for u in users.iter_mut() {
            let login = u["login"].as_str().unwrap_or("octocat").to_string();
            let mut full = user(api, &login);
            merge(&mut full, u.clone());
            *u = full;
        }
    }
    if let Some(teams) = list.get_mut("teams").and_then(Value::as_array_mut) {
        for t in teams.iter_mut() {
            *t = team(api, org, t);
        }
    }
    if let Some(apps) = list.get_mut("apps").and_then(Value::as_array_mut) {
        for a in apps.iter_mut() {
            let slug = a["slug"].as_str().unwrap_or("app").to_string();
            let mut full = app(api, id_of(&slug), &slug, &slug);
            merge(&mut full, a.clone());
            *a = full;
        }
    }
}

/// `basic-error`.
pub fn error(message: &str) -> Value {
    json!({ "message": message, "documentation_url": "https://docs.github.com/rest" })
}

/// Overlays `extra`'s fields on `base` (objects only, one level).
pub fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
}

/// `commit`.
pub fn commit(api: &str, full: &str, sha: &str) -> Value {
    let u = format!("{api}/repos/{full}/commits/{sha}");
    let person = json!({ "name": "Octo Cat", "email": "octocat@example.com", "date": TIME });
    json!({
        "url": u, "sha": sha, "node_id": node_id("C", id_of(sha)),
        "html_url": format!("{HTML}/{full}/commit/{sha}"), "comments_url": format!("{u}/comments"),
        "commit": {
            "url": format!("{api}/repos/{full}/git/commits/{sha}"),
            "author": person, "committer": person, "message": "A change", "comment_count": 0,
            "tree": { "sha": sha, "url": format!("{api}/repos/{full}/git/trees/{sha}") },
        },
        "author": user(api, "octocat"), "committer": user(api, "octocat"), "parents": [],
    })
}

/// `commit-comparison`.
pub fn comparison(
    api: &str,
    full: &str,
    basehead: &str,
    base: &str,
    status: &str,
    ahead: u64,
    behind: u64,
) -> Value {
    let html = format!("{HTML}/{full}/compare/{basehead}");
    json!({
        "url": format!("{api}/repos/{full}/compare/{basehead}"), "html_url": html,
        "permalink_url": html, "diff_url": format!("{html}.diff"), "patch_url": format!("{html}.patch"),
        "base_commit": commit(api, full, base), "merge_base_commit": commit(api, full, base),
        "status": status, "ahead_by": ahead, "behind_by": behind, "total_commits": ahead,
        "commits": [], "files": [],
    })
}

/// `content-file`, with `content` as GitHub sends it (base64 in lines).
pub fn content_file(
    api: &str,
    full: &str,
    git_ref: &str,
    path: &str,
    sha: &str,
    size: usize,
    content: String,
) -> Value {
    let u = format!("{api}/repos/{full}/contents/{path}?ref={git_ref}");
    let git = format!("{api}/repos/{full}/git/blobs/{sha}");
    let html = format!("{HTML}/{full}/blob/{git_ref}/{path}");
    json!({
        "type": "file", "encoding": "base64", "size": size,
        "name": path.rsplit('/').next(), "path": path, "sha": sha, "content": content,
        "url": u, "git_url": git, "html_url": html,
        "download_url": format!("https://raw.githubusercontent.com/{full}/{git_ref}/{path}"),
        "_links": { "self": u, "git": git, "html": html },
    })
}
