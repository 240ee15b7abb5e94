//! The fake's branch protection and the custom deployment protection rule's review endpoint.

use super::*;

pub(super) fn route(w: &mut World, req: &Req) -> Routed {
    let Req {
        api,
        method,
        seg,
        body,
        ..
    } = *req;
    match (method.as_str(), seg) {
        ("GET", ["repos", owner, name, "branches", branch, "protection"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let branch = percent_decode(branch);
            if !r.branches.contains_key(&branch) {
                return (404, shapes::error("Branch not found"), None);
            }
            match r.protection.get(&branch) {
                Some(p) => ok(shapes::protection(api, &full, &branch, p)),
                None => (404, shapes::error("Branch not protected"), None),
            }
        }
        ("PUT", ["repos", owner, name, "branches", branch, "protection"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get_mut(&full) else {
                return with_none(not_found(&full));
            };
            let branch = percent_decode(branch);
            if !r.branches.contains_key(&branch) {
                return (404, shapes::error("Branch not found"), None);
            }
            for field in [
                "required_status_checks",
                "enforce_admins",
                "required_pull_request_reviews",
                "restrictions",
            ] {
                if body.get(field).is_none() {
                    return (
                        422,
                        json!({ "message": format!("Invalid request.\n\n\"{field}\" wasn't supplied.") }),
                        None,
                    );
                }
            }
            let stored = protection_from_put(body);
            r.protection.insert(branch.clone(), stored.clone());
            ok(shapes::protection(api, &full, &branch, &stored))
        }
        ("POST", ["repos", owner, name, "actions", "runs", run, "deployment_protection_rule"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get_mut(&full) else {
                return with_none(not_found(&full));
            };
            if !body["environment_name"].is_string() {
                return (
                    422,
                    json!({ "message": "environment_name is required" }),
                    None,
                );
            }
            if body["comment"]
                .as_str()
                .is_some_and(|c| c.chars().count() > 1024)
            {
                return (
                    422,
                    json!({ "message": "comment is too long (maximum is 1024 characters)" }),
                    None,
                );
            }
            if let Some(state) = body.get("state") {
                if !matches!(state.as_str(), Some("approved" | "rejected")) {
                    return (
                        422,
                        json!({ "message": "state must be approved or rejected" }),
                        None,
                    );
                }
                if r.protection_callbacks
                    .iter()
                    .any(|(id, b)| id == run && b.get("state").is_some())
                {
                    return (
                        422,
                        json!({ "message": "this deployment was already reviewed" }),
                        None,
                    );
                }
            }
            r.protection_callbacks.push((run.to_string(), body.clone()));
            (204, Value::Null, None)
        }
        _ => unimplemented(),
    }
}
