//! Rulesets as code: the body shipgate sends for a ruleset of
//! `protection.rulesets`, and the settings that differ between it and the
//! ruleset GitHub holds. Both sides are read in GitHub's own JSON shape and
//! brought to one flat list of settings (patterns sorted, bypass actors
//! described, rules keyed by type, only the parameters shipgate sets), so
//! the comparison goes both ways: a rule or actor added by hand is drift
//! too, and the order GitHub answers in is not.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::repo::{BypassActor, RulesetConfig, RulesetTarget};
use crate::deploy::policy::FieldDiff;

/// The value of a setting one side does not have.
const OFF: &str = "off";

/// A pattern as GitHub takes it: a full ref, or a special value kept as is.
pub fn full_ref(target: RulesetTarget, pattern: &str) -> String {
    if pattern.starts_with('~') || pattern.starts_with("refs/") {
        return pattern.to_string();
    }
    match target {
        RulesetTarget::Branch => format!("refs/heads/{pattern}"),
        RulesetTarget::Tag => format!("refs/tags/{pattern}"),
    }
}

fn actor(b: &BypassActor) -> Value {
    let (id, kind) = if let Some(role) = b.role {
        (json!(role.actor_id()), "RepositoryRole")
    } else if let Some(team) = b.team {
        (json!(team), "Team")
    } else if let Some(app) = b.app {
        (json!(app), "Integration")
    } else {
        (Value::Null, "OrganizationAdmin")
    };
    json!({ "actor_id": id, "actor_type": kind, "bypass_mode": b.mode.as_str() })
}

/// The `POST`/`PUT` body of one ruleset of the policy.
pub fn body(name: &str, r: &RulesetConfig) -> Value {
    let refs = |v: &[String]| -> Vec<String> { v.iter().map(|p| full_ref(r.target, p)).collect() };
    let mut rules = Vec::new();
    let on = |rules: &mut Vec<Value>, set: bool, kind: &str| {
        if set {
            rules.push(json!({ "type": kind }));
        }
    };
    on(&mut rules, r.rules.deletion, "deletion");
    on(&mut rules, r.rules.non_fast_forward, "non_fast_forward");
    on(
        &mut rules,
        r.rules.required_linear_history,
        "required_linear_history",
    );
    on(
        &mut rules,
        r.rules.required_signatures,
        "required_signatures",
    );
    if let Some(pr) = &r.rules.pull_request {
        rules.push(json!({ "type": "pull_request", "parameters": {
            "required_approving_review_count": pr.required_approvals,
            "dismiss_stale_reviews_on_push": pr.dismiss_stale_reviews,
            "require_code_owner_review": pr.require_code_owner_review,
            "require_last_push_approval": pr.require_last_push_approval,
            "required_review_thread_resolution": pr.required_conversation_resolution,
        }}));
    }
    if let Some(c) = &r.rules.required_status_checks {
        let checks: Vec<Value> = c.checks.iter().map(|k| json!({ "context": k })).collect();
        rules.push(json!({ "type": "required_status_checks", "parameters": {
            "required_status_checks": checks,
            "strict_required_status_checks_policy": c.strict,
        }}));
    }
    json!({
        "name": name,
        "target": r.target.as_str(),
        "enforcement": r.enforcement.as_str(),
        "bypass_actors": r.bypass.iter().map(actor).collect::<Vec<_>>(),
        "conditions": { "ref_name": { "include": refs(&r.include), "exclude": refs(&r.exclude) } },
        "rules": rules,
    })
}

/// The parameters shipgate sets, per rule type; others GitHub may add
/// (`allowed_merge_methods`, …) are not compared.
fn compared_parameters(kind: &str) -> &'static [&'static str] {
    match kind {
        "pull_request" => &[
            "required_approving_review_count",
            "dismiss_stale_reviews_on_push",
            "require_code_owner_review",
            "require_last_push_approval",
            "required_review_thread_resolution",
        ],
        "required_status_checks" => &[
            "required_status_checks",
            "strict_required_status_checks_policy",
        ],
        _ => &[],
    }
}

fn list(items: Vec<String>) -> String {
    let mut items = items;
    items.sort();
    items.dedup();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// A bypass actor as people read it (`role maintain`, `team 12`, `app 7`).
fn described(a: &Value) -> String {
    let id = a["actor_id"].as_i64().unwrap_or_default();
    let who = match a["actor_type"].as_str().unwrap_or_default() {
        "RepositoryRole" => match id {
            2 => "role maintain".to_string(),
            4 => "role write".to_string(),
            5 => "role admin".to_string(),
            _ => format!("role {id}"),
        },
        "Team" => format!("team {id}"),
        "Integration" => format!("app {id}"),
        "OrganizationAdmin" => "org admins".to_string(),
        "DeployKey" => "deploy keys".to_string(),
        other => format!("{} {id}", other.to_lowercase()),
    };
    match a["bypass_mode"].as_str().unwrap_or("always") {
        "always" => who,
        mode => format!("{who} ({mode})"),
    }
}

/// A ruleset in GitHub's shape as flat settings, each with its value.
pub fn settings(r: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => OFF.to_string(),
        v => v.to_string(),
    };
    out.insert("enforcement".into(), text(&r["enforcement"]));
    out.insert(
        "target".into(),
        r["target"].as_str().unwrap_or("branch").to_string(),
    );
    let refs = |key: &str| {
        let v = r["conditions"]["ref_name"][key].as_array().cloned();
        list(v.unwrap_or_default().iter().map(text).collect())
    };
    out.insert("include".into(), refs("include"));
    out.insert("exclude".into(), refs("exclude"));
    let actors = r["bypass_actors"].as_array().cloned().unwrap_or_default();
    out.insert(
        "bypass".into(),
        list(actors.iter().map(described).collect()),
    );
    for rule in r["rules"].as_array().into_iter().flatten() {
        let Some(kind) = rule["type"].as_str() else {
            continue;
        };
        out.insert(format!("rule {kind}"), "on".into());
        for p in compared_parameters(kind) {
            let v = &rule["parameters"][*p];
            let shown = match v.as_array() {
                Some(checks) => list(
                    checks
                        .iter()
                        .map(|c| {
                            c["context"]
                                .as_str()
                                .map_or_else(|| text(c), str::to_string)
                        })
                        .collect(),
                ),
                None => text(v),
            };
            out.insert(format!("{kind}.{p}"), shown);
        }
    }
    out
}

/// The settings that differ between the policy's ruleset (`desired`, a
/// [`body`]) and GitHub's (`live`; `None`: there is none by that name).
pub fn diff(desired: &Value, live: Option<&Value>) -> Vec<FieldDiff> {
    let want = settings(desired);
    let have = live.map(settings).unwrap_or_default();
    let keys: std::collections::BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (l, d) = (have.get(k), want.get(k));
            (l != d).then(|| FieldDiff {
                field: k.clone(),
                live: l.cloned().unwrap_or_else(|| OFF.into()),
                desired: d.cloned().unwrap_or_else(|| OFF.into()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::repo::RepoConfig;

    fn policy() -> RepoConfig {
        RepoConfig::parse(
            "protection:\n  rulesets:\n    releases:\n      include: ['release/*', 'hotfix/*']\n      exclude: [release/old]\n      bypass:\n        - role: maintain\n        - app: 7\n          mode: pull_request\n      rules:\n        non_fast_forward: true\n        deletion: true\n        pull_request: { required_approvals: 2 }\n        required_status_checks: { checks: [ci, lint], strict: true }\n",
        )
        .unwrap()
    }

    #[test]
    fn the_body_has_full_refs_role_ids_and_every_required_parameter() {
        let c = policy();
        let b = body("releases", &c.protection.rulesets["releases"]);
        assert_eq!(
            b["conditions"]["ref_name"]["include"],
            json!(["refs/heads/release/*", "refs/heads/hotfix/*"])
        );
        assert_eq!(
            b["bypass_actors"][0],
            json!({ "actor_id": 2, "actor_type": "RepositoryRole", "bypass_mode": "always" })
        );
        assert_eq!(b["bypass_actors"][1]["actor_type"], "Integration");
        let pr = b["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "pull_request")
            .unwrap();
        assert_eq!(pr["parameters"]["required_approving_review_count"], 2);
        assert_eq!(pr["parameters"]["required_review_thread_resolution"], false);
        assert!(diff(&b, Some(&b)).is_empty());
    }

    #[test]
    fn order_and_fields_github_adds_are_not_drift_but_a_rule_added_or_loosened_is() {
        let c = policy();
        let want = body("releases", &c.protection.rulesets["releases"]);
        let mut live = want.clone();
        live["id"] = json!(9);
        live["rules"].as_array_mut().unwrap().reverse();
        live["conditions"]["ref_name"]["include"]
            .as_array_mut()
            .unwrap()
            .reverse();
        for r in live["rules"].as_array_mut().unwrap() {
            if r["type"] == "pull_request" {
                r["parameters"]["allowed_merge_methods"] = json!(["merge", "squash", "rebase"]);
            }
        }
        assert!(diff(&want, Some(&live)).is_empty());
        live["rules"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["type"] != "non_fast_forward");
        live["rules"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "creation" }));
        let d = diff(&want, Some(&live));
        let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["rule creation", "rule non_fast_forward"]);
        assert_eq!((d[1].live.as_str(), d[1].desired.as_str()), ("off", "on"));
        let absent = diff(&want, None);
        assert!(absent
            .iter()
            .any(|d| d.field == "bypass" && d.desired == "app 7 (pull_request), role maintain"));
    }

    #[test]
    fn tag_rulesets_signatures_linear_history_and_org_admins() {
        let c = RepoConfig::parse(
            "protection:\n  rulesets:\n    t:\n      target: tag\n      include: ['v*', '~ALL']\n      bypass: [{ org_admins: true }, { team: 12 }]\n      rules: { required_signatures: true, required_linear_history: true }\n",
        )
        .unwrap();
        let b = body("t", &c.protection.rulesets["t"]);
        assert_eq!(b["target"], "tag");
        assert_eq!(
            b["conditions"]["ref_name"]["include"],
            json!(["refs/tags/v*", "~ALL"])
        );
        assert_eq!(
            b["rules"],
            json!([{ "type": "required_linear_history" }, { "type": "required_signatures" }])
        );
        assert_eq!(
            b["bypass_actors"][0],
            json!({ "actor_id": null, "actor_type": "OrganizationAdmin", "bypass_mode": "always" })
        );
        // GitHub reads the org admins' id back as 1 (or 0): not drift.
        let mut live = b.clone();
        live["bypass_actors"][0]["actor_id"] = json!(1);
        assert!(diff(&b, Some(&live)).is_empty());
        assert_eq!(settings(&b)["bypass"], "org admins, team 12");
    }

    #[test]
    fn bad_rulesets_are_configuration_errors_naming_the_field() {
        for (yaml, says) in [
            ("      include: []\n", "protection.rulesets.r.include"),
            ("      include: [main]\n      bypass: [{ role: admin, app: 3 }]\n", "bypass[0]: name exactly one"),
            ("      include: [main]\n      rules: { pull_request: { required_approvals: 11 } }\n", "at most 10"),
            ("      include: [main]\n      rules: { merge_queue: true }\n", "unknown field `merge_queue`"),
            ("      include: [main]\n      bypass: [{ role: triage }]\n", "unknown variant `triage`"),
        ] {
            let e = RepoConfig::parse(&format!("protection:\n  rulesets:\n    r:\n{yaml}")).unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
    }
}
