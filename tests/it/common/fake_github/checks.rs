//! The fake's commit statuses and check runs.

use super::*;

pub(super) fn route(w: &mut World, req: &Req) -> Routed {
    let Req {
        api,
        method,
        seg,
        query,
        body,
        ..
    } = *req;
    match (method.as_str(), seg) {
        ("GET", ["repos", owner, name, "commits", git_ref, "status"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let sha = r
                .branches
                .get(*git_ref)
                .cloned()
                .unwrap_or(git_ref.to_string());
            // Latest status per context, newest first, as GitHub returns them.
            let mut latest: Vec<&Status> = Vec::new();
            for s in r.statuses.iter().rev().filter(|s| s.sha == sha) {
                if !latest.iter().any(|l| l.context == s.context) {
                    latest.push(s);
                }
            }
            let state = if latest
                .iter()
                .any(|s| s.state == "failure" || s.state == "error")
            {
                "failure"
            } else if latest.iter().all(|s| s.state == "success") && !latest.is_empty() {
                "success"
            } else {
                "pending"
            };
            let statuses: Vec<Value> = latest
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    shapes::status(api, &full, &sha, i, &s.state, &s.context, &s.description)
                })
                .collect();
            let total = statuses.len();
            let repo = shapes::repository(api, &full, r.id, &r.default_branch);
            let mut combined =
                shapes::combined_status(api, &repo, &sha, state, page_of(statuses, query));
            combined["total_count"] = json!(total);
            ok(combined)
        }
        ("POST", ["repos", owner, name, "statuses", sha]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get_mut(&full) else {
                return with_none(not_found(&full));
            };
            let state = body["state"].as_str().unwrap_or("").to_string();
            if !["error", "failure", "pending", "success"].contains(&state.as_str()) {
                return (
                    422,
                    json!({ "message": "Validation Failed", "errors": [{ "field": "state" }] }),
                    None,
                );
            }
            let desc = body["description"].as_str().unwrap_or("").to_string();
            if desc.chars().count() > 140 {
                return (
                    422,
                    json!({ "message": "Validation Failed", "errors": [{ "field": "description", "code": "custom", "message": "description is too long (maximum is 140 characters)" }] }),
                    None,
                );
            }
            let status = Status {
                sha: sha.to_string(),
                state,
                context: body["context"].as_str().unwrap_or("default").to_string(),
                description: desc,
            };
            r.statuses.push(status.clone());
            (
                201,
                shapes::status(
                    api,
                    &full,
                    sha,
                    r.statuses.len(),
                    &status.state,
                    &status.context,
                    &status.description,
                ),
                None,
            )
        }
        ("POST", ["repos", owner, name, "check-runs"]) => {
            let full = format!("{owner}/{name}");
            let id = w.next_id();
            let Some(r) = w.repos.get_mut(&full) else {
                return with_none(not_found(&full));
            };
            for field in ["name", "head_sha"] {
                if !body[field].is_string() {
                    return (
                        422,
                        json!({ "message": format!("Invalid request: `{field}` is required") }),
                        None,
                    );
                }
            }
            let mut kept = body.clone();
            kept["id"] = json!(id);
            r.created_check_runs.push(kept);
            (
                201,
                shapes::check_run(
                    api,
                    &full,
                    id,
                    body["name"].as_str().unwrap_or_default(),
                    body["head_sha"].as_str().unwrap_or_default(),
                    body["status"].as_str().unwrap_or("queued"),
                    &body["conclusion"],
                    &body["details_url"],
                    &body["output"],
                ),
                None,
            )
        }
        ("GET", ["repos", owner, name, "commits", git_ref, "check-runs"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let runs: Vec<Value> = r
                .check_runs
                .iter()
                .filter(|c| c.sha == *git_ref)
                .map(|c| {
                    shapes::check_run_of(
                        api,
                        &full,
                        shapes::id_of(&format!("{}/{}/{}", c.sha, c.name, c.app)),
                        &c.name,
                        &c.sha,
                        &c.status,
                        &json!(c.conclusion),
                        &c.app,
                    )
                })
                .collect();
            let total = runs.len();
            ok(json!({ "total_count": total, "check_runs": page_of(runs, query) }))
        }
        ("PATCH", ["repos", owner, name, "check-runs", id]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get_mut(&full) else {
                return with_none(not_found(&full));
            };
            let id: u64 = id.parse().unwrap_or(0);
            let Some(run) = r
                .created_check_runs
                .iter_mut()
                .find(|c| c["id"] == json!(id))
            else {
                return with_none(not_found("check run"));
            };
            for (k, v) in body.as_object().into_iter().flatten() {
                run[k] = v.clone();
            }
            let run = run.clone();
            ok(shapes::check_run(
                api,
                &full,
                id,
                run["name"].as_str().unwrap_or_default(),
                run["head_sha"].as_str().unwrap_or_default(),
                run["status"].as_str().unwrap_or("queued"),
                &run["conclusion"],
                &run["details_url"],
                &run["output"],
            ))
        }
        // ---- deploy decision: git refs, for branches and tags told apart.
        _ => unimplemented(),
    }
}
