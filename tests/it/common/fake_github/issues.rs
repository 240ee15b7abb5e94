//! The fake's issues, issue comments, reactions, issue events and collaborator permissions.

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
        ("GET", ["repos", owner, name, "collaborators", user, "permission"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let role = r
                .collaborators
                .get(*user)
                .cloned()
                .unwrap_or_else(|| "read".into());
            let permission = match role.as_str() {
                "admin" => "admin",
                "maintain" | "write" => "write",
                "triage" | "read" => "read",
                _ => "none",
            };
            let mut who = shapes::user(api, user);
            who["role_name"] = json!(role);
            ok(json!({ "permission": permission, "role_name": role, "user": who }))
        }
        ("POST", ["repos", owner, name, "issues", number, "comments"]) => {
            let full = format!("{owner}/{name}");
            let id = w.next_id();
            let Some(r) = w.repos.get_mut(&full) else {
                return with_none(not_found(&full));
            };
            if r.deleted_issues.contains(&number.parse().unwrap_or(0)) {
                return (410, shapes::error("This issue was deleted"), None);
            }
            let c = Comment {
                id,
                issue: number.parse().unwrap_or(0),
                user: BOT_LOGIN.into(),
                body: body["body"].as_str().unwrap_or("").to_string(),
                edits: 0,
            };
            r.comments.push(c.clone());
            (
                201,
                shapes::issue_comment(api, &full, c.id, c.issue, &c.user, &c.body),
                None,
            )
        }
        ("GET", ["repos", owner, name, "issues", number, "comments"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let issue: u64 = number.parse().unwrap_or(0);
            let per_page: usize = query
                .get("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(30);
            let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let list: Vec<Value> = r
                .comments
                .iter()
                .filter(|c| c.issue == issue)
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|c| shapes::issue_comment(api, &full, c.id, c.issue, &c.user, &c.body))
                .collect();
            ok(Value::Array(list))
        }
        ("PATCH", ["repos", owner, name, "issues", "comments", id]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get_mut(&full) else {
                return with_none(not_found(&full));
            };
            let id: u64 = id.parse().unwrap_or(0);
            let Some(c) = r.comments.iter_mut().find(|c| c.id == id) else {
                return with_none(not_found("comment"));
            };
            c.body = body["body"].as_str().unwrap_or("").to_string();
            c.edits += 1;
            ok(shapes::issue_comment(
                api, &full, c.id, c.issue, &c.user, &c.body,
            ))
        }
        ("POST", ["repos", owner, name, "issues", "comments", id, "reactions"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get_mut(&full) else {
                return with_none(not_found(&full));
            };
            let id: u64 = id.parse().unwrap_or(0);
            if !r.comments.iter().any(|c| c.id == id) {
                return with_none(not_found("comment"));
            }
            let content = body["content"].as_str().unwrap_or("").to_string();
            if ![
                "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes",
            ]
            .contains(&content.as_str())
            {
                return (422, json!({ "message": "Validation Failed" }), None);
            }
            let reaction = Reaction {
                comment_id: id,
                content: content.clone(),
                user: BOT_LOGIN.into(),
            };
            // One reaction per kind and user: a repeat answers 200.
            let status = if r.reactions.contains(&reaction) {
                200
            } else {
                201
            };
            if status == 201 {
                r.reactions.push(reaction);
            }
            (status, shapes::reaction(api, id, BOT_LOGIN, &content), None)
        }
        ("GET", ["repos", owner, name, "issues"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let all: Vec<Value> = r
                .issues
                .iter()
                .filter(|(n, _, _)| !r.deleted_issues.contains(n))
                .map(|(n, t, u)| shapes::issue(api, &full, *n, t, u))
                .collect();
            ok(Value::Array(page_of(all, query)))
        }
        ("POST", ["repos", owner, name, "issues"]) => {
            let full = format!("{owner}/{name}");
            let number = w.next_id();
            let Some(r) = w.repos.get_mut(&full) else {
                return with_none(not_found(&full));
            };
            let title = body["title"].as_str().unwrap_or("").to_string();
            r.issues.push((number, title.clone(), BOT_LOGIN.into()));
            (
                201,
                shapes::issue(api, &full, number, &title, BOT_LOGIN),
                None,
            )
        }
        ("GET", ["repos", owner, name, "issues", number, "events"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let issue: u64 = number.parse().unwrap_or(0);
            let list: Vec<Value> = r
                .issue_events
                .iter()
                .filter(|(n, _)| *n == issue)
                .map(|(_, e)| e.clone())
                .collect();
            ok(Value::Array(page_of(list, query)))
        }
        // ---- policy: a check run shipgate keeps per commit, updated in place.
        _ => unimplemented(),
    }
}
