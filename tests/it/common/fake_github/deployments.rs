//! The fake's deployments and deployment statuses.

use super::*;

/// Now, as GitHub writes times.
pub(super) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

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
        ("POST", ["repos", owner, name, "deployments"]) => {
            let full = format!("{owner}/{name}");
            let id = w.next_id();
            let Some(r) = w.repos.get_mut(&full) else {
                return with_none(not_found(&full));
            };
            let git_ref = body["ref"].as_str().unwrap_or("").to_string();
            let sha = r
                .branches
                .get(&git_ref)
                .cloned()
                .or_else(|| r.commits.contains_key(&git_ref).then(|| git_ref.clone()));
            let Some(sha) = sha else {
                return (
                    422,
                    json!({ "message": format!("No ref found for: {git_ref}") }),
                    None,
                );
            };
            let d = Deployment {
                id,
                sha,
                git_ref,
                environment: body["environment"]
                    .as_str()
                    .unwrap_or("production")
                    .to_string(),
                payload: body["payload"].clone(),
                creator: BOT_LOGIN.into(),
                production_environment: body["production_environment"].as_bool().unwrap_or(false),
                statuses: Vec::new(),
                // As GitHub stamps it: now.
                created_at: Some(now_rfc3339()),
            };
            let out = deployment_json(api, &full, &d);
            r.deployments.push(d);
            (201, out, None)
        }
        ("GET", ["repos", owner, name, "deployments"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let per_page: usize = query
                .get("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(30);
            let list: Vec<Value> = r
                .deployments
                .iter()
                .rev()
                .filter(|d| query.get("environment").is_none_or(|e| *e == d.environment))
                .filter(|d| query.get("sha").is_none_or(|s| *s == d.sha))
                .take(per_page)
                .map(|d| deployment_json(api, &full, d))
                .collect();
            ok(Value::Array(list))
        }
        ("GET", ["repos", owner, name, "deployments", id]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            match r.deployments.iter().find(|d| d.id.to_string() == *id) {
                Some(d) => ok(deployment_json(api, &full, d)),
                None => with_none(not_found("deployment")),
            }
        }
        ("POST", ["repos", owner, name, "deployments", id, "statuses"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get_mut(&full) else {
                return with_none(not_found(&full));
            };
            let state = body["state"].as_str().unwrap_or("").to_string();
            if ![
                "error",
                "failure",
                "inactive",
                "in_progress",
                "queued",
                "pending",
                "success",
            ]
            .contains(&state.as_str())
            {
                return (422, json!({ "message": "Validation Failed" }), None);
            }
            match r.deployments.iter_mut().find(|d| d.id.to_string() == *id) {
                Some(d) => {
                    d.statuses.push(DeploymentStatus {
                        state: state.clone(),
                        environment_url: body["environment_url"].as_str().map(str::to_string),
                        log_url: body["log_url"].as_str().map(str::to_string),
                        description: body["description"].as_str().map(str::to_string),
                        created_at: Some(now_rfc3339()),
                    });
                    let s = d.statuses.last().unwrap();
                    let mut out = shapes::deployment_status(
                        api,
                        &full,
                        d.id,
                        d.statuses.len() - 1,
                        &s.state,
                        &d.environment,
                        s.environment_url.as_deref(),
                        s.log_url.as_deref(),
                    );
                    out["created_at"] = json!(s.created_at);
                    out["updated_at"] = json!(s.created_at);
                    (201, out, None)
                }
                None => with_none(not_found("deployment")),
            }
        }
        ("GET", ["repos", owner, name, "deployments", id, "statuses"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            match r.deployments.iter().find(|d| d.id.to_string() == *id) {
                Some(d) => ok(Value::Array(
                    d.statuses
                        .iter()
                        .enumerate()
                        .rev()
                        .map(|(i, s)| {
                            let mut out = shapes::deployment_status(
                                api,
                                &full,
                                d.id,
                                i,
                                &s.state,
                                &d.environment,
                                s.environment_url.as_deref(),
                                s.log_url.as_deref(),
                            );
                            if let Some(at) = &s.created_at {
                                out["created_at"] = json!(at);
                                out["updated_at"] = json!(at);
                            }
                            out
                        })
                        .collect(),
                )),
                None => with_none(not_found("deployment")),
            }
        }
        // ---- action: an issue's events (who added a label, paginated).
        _ => unimplemented(),
    }
}
