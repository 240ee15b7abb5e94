//! The fake's repository rulesets (`/repos/{o}/{r}/rulesets`) and the rules
//! that apply to a branch by pattern (`/repos/{o}/{r}/rules/branches/{b}`).
//! Patterns are matched as GitHub does: fnmatch, `*` not crossing `/`, `**`
//! crossing it, and `~DEFAULT_BRANCH` / `~ALL`.

use super::*;

const RULE_TYPES: &[&str] = &[
    "creation",
    "update",
    "deletion",
    "required_linear_history",
    "required_deployments",
    "required_signatures",
    "pull_request",
    "required_status_checks",
    "non_fast_forward",
];

/// A ruleset as GitHub answers it: the stored fields and the read-only ones.
fn shaped(api: &str, full: &str, id: u64, stored: &Value) -> Value {
    let mut r = stored.clone();
    shapes::merge(
        &mut r,
        json!({
            "id": id,
            "source_type": "Repository",
            "source": full,
            "node_id": shapes::node_id("RRS", id),
            "current_user_can_bypass": "always",
            "_links": {
                "self": { "href": format!("{api}/repos/{full}/rulesets/{id}") },
                "html": { "href": format!("{}/{full}/rules/{id}", shapes::HTML) },
            },
            "created_at": shapes::TIME,
            "updated_at": shapes::TIME,
        }),
    );
    r
}

/// The list's summary of a ruleset (no rules, conditions or actors).
fn summary(api: &str, full: &str, id: u64, stored: &Value) -> Value {
    let mut r = shaped(api, full, id, stored);
    let o = r.as_object_mut().unwrap();
    for k in [
        "rules",
        "conditions",
        "bypass_actors",
        "current_user_can_bypass",
    ] {
        o.remove(k);
    }
    r
}

/// What a POST or PUT body may hold; anything else is a 422, as on GitHub.
fn invalid(body: &Value) -> Option<String> {
    if !body.is_object() {
        return Some("Invalid request: body must be an object".into());
    }
    if let Some(e) = body.get("enforcement") {
        if !matches!(e.as_str(), Some("active" | "evaluate" | "disabled")) {
            return Some(format!("Invalid property /enforcement: {e}"));
        }
    }
    for rule in body["rules"].as_array().into_iter().flatten() {
        let kind = rule["type"].as_str().unwrap_or_default();
        if !RULE_TYPES.contains(&kind) {
            return Some(format!("Invalid rule type: {kind}"));
        }
        if kind == "pull_request" {
            let n = rule["parameters"]["required_approving_review_count"].as_u64();
            if n.is_none_or(|n| n > 10) {
                return Some(
                    "Invalid rule 'pull_request': required_approving_review_count must be 0..10"
                        .into(),
                );
            }
        }
    }
    for a in body["bypass_actors"].as_array().into_iter().flatten() {
        let t = a["actor_type"].as_str().unwrap_or_default();
        if t != "OrganizationAdmin" && t != "DeployKey" && !a["actor_id"].is_u64() {
            return Some(format!("Invalid bypass actor: {t} needs an actor_id"));
        }
    }
    None
}

/// Whether a fnmatch pattern (with `FNM_PATHNAME`) matches `name`.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = p[2..].strip_prefix(b"/").unwrap_or(&p[2..]);
                (0..=n.len()).any(|i| go(rest, &n[i..]) || go(&p[2..], &n[i..]))
            }
            Some(b'*') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| go(&p[1..], &n[i..])),
            Some(b'?') => n.first().is_some_and(|&c| c != b'/') && go(&p[1..], &n[1..]),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

fn covers(r: &Value, full_ref: &str, default_branch: &str) -> bool {
    let matches = |key: &str| {
        r["conditions"]["ref_name"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|p| match p {
                "~ALL" => true,
                "~DEFAULT_BRANCH" => full_ref == format!("refs/heads/{default_branch}"),
                p => fnmatch(p, full_ref),
            })
    };
    r["enforcement"] == "active"
        && r["target"].as_str().unwrap_or("branch") == "branch"
        && matches("include")
        && !matches("exclude")
}

pub(super) fn route(w: &mut World, req: &Req) -> Routed {
    let Req {
        api,
        method,
        seg,
        body,
        ..
    } = *req;
    let full = match seg {
        ["repos", owner, name, ..] => format!("{owner}/{name}"),
        _ => return unimplemented(),
    };
    if !w.repos.contains_key(&full) {
        return with_none(not_found(&full));
    }
    let next = w.next_id();
    let r = w.repos.get_mut(&full).unwrap();
    let id_of = |s: &str| s.parse::<u64>().ok();
    match (method.as_str(), &seg[3..]) {
        ("GET", ["rulesets"]) => ok(Value::Array(
            r.rulesets
                .iter()
                .map(|(id, v)| summary(api, &full, *id, v))
                .collect(),
        )),
        ("POST", ["rulesets"]) => {
            if !body["name"].is_string() || body.get("enforcement").is_none() {
                return (
                    422,
                    json!({ "message": "Invalid request: name and enforcement are required" }),
                    None,
                );
            }
            if let Some(m) = invalid(body) {
                return (422, json!({ "message": m }), None);
            }
            if r.rulesets.values().any(|v| v["name"] == body["name"]) {
                return (
                    422,
                    json!({ "message": "Validation Failed: Name must be unique" }),
                    None,
                );
            }
            let mut stored = body.clone();
            if stored.get("target").is_none() {
                stored["target"] = json!("branch");
            }
            r.rulesets.insert(next, stored.clone());
            (201, shaped(api, &full, next, &stored), None)
        }
        ("GET", ["rulesets", id]) => {
            match id_of(id).and_then(|id| r.rulesets.get(&id).map(|v| (id, v))) {
                Some((id, v)) => ok(shaped(api, &full, id, v)),
                None => (404, shapes::error("Not Found"), None),
            }
        }
        ("PUT", ["rulesets", id]) => {
            let Some((id, stored)) =
                id_of(id).and_then(|id| r.rulesets.get_mut(&id).map(|v| (id, v)))
            else {
                return (404, shapes::error("Not Found"), None);
            };
            if let Some(m) = invalid(body) {
                return (422, json!({ "message": m }), None);
            }
            for (k, v) in body.as_object().unwrap() {
                stored[k] = v.clone();
            }
            let stored = stored.clone();
            ok(shaped(api, &full, id, &stored))
        }
        ("DELETE", ["rulesets", id]) => match id_of(id).and_then(|id| r.rulesets.remove(&id)) {
            Some(_) => (204, Value::Null, None),
            None => (404, shapes::error("Not Found"), None),
        },
        ("GET", ["rules", "branches", branch @ ..]) => {
            let branch = percent_decode(&branch.join("/"));
            let full_ref = format!("refs/heads/{branch}");
            let mut out = Vec::new();
            for (id, ruleset) in &r.rulesets {
                if !covers(ruleset, &full_ref, &r.default_branch) {
                    continue;
                }
                for rule in ruleset["rules"].as_array().into_iter().flatten() {
                    let mut rule = rule.clone();
                    rule["ruleset_source_type"] = json!("Repository");
                    rule["ruleset_source"] = json!(full);
                    rule["ruleset_id"] = json!(id);
                    out.push(rule);
                }
            }
            ok(Value::Array(out))
        }
        _ => unimplemented(),
    }
}

impl FakeGitHub {
    /// The repository's rulesets as `GET …/rulesets/{id}` answers them.
    pub fn rulesets(&self, repo: &str) -> Vec<Value> {
        self.with(|w| {
            w.repo(repo)
                .rulesets
                .iter()
                .map(|(id, v)| shaped(&w.api, repo, *id, v))
                .collect()
        })
    }

    /// The ruleset named `name`, as GitHub answers it.
    pub fn ruleset(&self, repo: &str, name: &str) -> Option<Value> {
        self.rulesets(repo).into_iter().find(|r| r["name"] == name)
    }

    /// A ruleset made by hand (in the UI): its id.
    pub fn add_ruleset(&self, repo: &str, ruleset: Value) -> u64 {
        self.with_mut(|w| {
            let id = w.next_id();
            w.repo_mut(repo).rulesets.insert(id, ruleset);
            id
        })
    }

    /// Someone edits ruleset `id` by hand.
    pub fn edit_ruleset(&self, repo: &str, id: u64, edit: impl FnOnce(&mut Value)) {
        self.with_mut(|w| edit(w.repo_mut(repo).rulesets.get_mut(&id).expect("a ruleset")));
    }

    /// Someone deletes ruleset `id` by hand.
    pub fn delete_ruleset(&self, repo: &str, id: u64) {
        self.with_mut(|w| w.repo_mut(repo).rulesets.remove(&id));
    }

    /// A `repository_ruleset` webhook payload about ruleset `ruleset` (as
    /// GitHub answers it), sent by `sender`.
    pub fn ruleset_event(&self, repo: &str, action: &str, ruleset: &Value, sender: &str) -> Value {
        let kind = if sender.ends_with("[bot]") {
            "Bot"
        } else {
            "User"
        };
        let mut sender_json = self.with(|w| shapes::user(&w.api, sender));
        sender_json["type"] = json!(kind);
        let mut event = json!({
            "action": action,
            "repository_ruleset": ruleset,
            "repository": self.repository_json(repo),
            "installation": { "id": 42, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI=" },
            "sender": sender_json,
        });
        if action == "edited" {
            event["changes"] = json!({ "enforcement": { "from": "disabled" } });
        }
        event
    }
}

#[test]
fn fnmatch_follows_github() {
    assert!(fnmatch("refs/heads/release/*", "refs/heads/release/x"));
    assert!(!fnmatch("refs/heads/release/*", "refs/heads/release/x/y"));
    assert!(fnmatch("refs/heads/release/**/*", "refs/heads/release/x/y"));
    assert!(!fnmatch("refs/heads/release/*", "refs/heads/hotfix/x"));
    assert!(fnmatch("refs/heads/v?", "refs/heads/v1"));
}
