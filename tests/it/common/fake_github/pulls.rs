//! The fake's pull requests, their reviews, and the pull requests of a commit.

use super::*;

pub(super) fn route(w: &mut World, req: &Req) -> Routed {
    let Req {
        api,
        method,
        seg,
        query,
        ..
    } = *req;
    match (method.as_str(), seg) {
        ("GET", ["repos", owner, name, "pulls", number]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let Some(pr) = r.pulls.get(&number.parse().unwrap_or(0)) else {
                return with_none(not_found("pull"));
            };
            let repo = shapes::repository(api, &full, r.id, &r.default_branch);
            ok(shapes::pull_request(api, &repo, &pr_fields(api, pr)))
        }
        ("GET", ["repos", owner, name, "pulls", number, "reviews"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let Some(pr) = r.pulls.get(&number.parse().unwrap_or(0)) else {
                return with_none(not_found("pull"));
            };
            let all: Vec<Value> = pr
                .reviews
                .iter()
                .enumerate()
                .map(|(i, rv)| {
                    shapes::review(api, &full, pr.number, i, &rv.user, &rv.state, &rv.commit_id)
                })
                .collect();
            ok(Value::Array(page_of(all, query)))
        }
        ("GET", ["repos", owner, name, "commits", sha, "pulls"]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let repo = shapes::repository(api, &full, r.id, &r.default_branch);
            let list: Vec<Value> = r
                .pulls
                .values()
                .filter(|p| p.head_sha == *sha)
                .map(|p| shapes::pull_request(api, &repo, &pr_fields(api, p)))
                .collect();
            ok(Value::Array(list))
        }
        _ => unimplemented(),
    }
}
