//! The fake's repository endpoints: the repository, file contents (with
//! ETags), commits, refs and comparisons.

use super::*;

pub(super) fn route(w: &mut World, req: &Req) -> Routed {
    let Req {
        api,
        method,
        seg,
        query,
        if_none_match,
        ..
    } = *req;
    match (method.as_str(), seg) {
        ("GET", ["repos", owner, name]) => {
            let full = format!("{owner}/{name}");
            match w.repos.get(&full) {
                Some(r) => ok(shapes::repository(
                    api,
                    &r.full_name,
                    r.id,
                    &r.default_branch,
                )),
                None => with_none(not_found(&full)),
            }
        }
        ("GET", ["repos", owner, name, "contents", rest @ ..]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let path = rest
                .iter()
                .map(|s| percent_decode(s))
                .collect::<Vec<_>>()
                .join("/");
            let git_ref = query
                .get("ref")
                .cloned()
                .unwrap_or_else(|| r.default_branch.clone());
            let sha = r.branches.get(&git_ref).cloned().unwrap_or(git_ref.clone());
            let Some(tree) = r.commits.get(&sha) else {
                return with_none(not_found(&format!("ref {git_ref}")));
            };
            let Some(text) = tree.get(&path) else {
                return with_none(not_found(&path));
            };
            let blob = blob_sha(text);
            let etag = format!("\"{blob}\"");
            if if_none_match == Some(etag.as_str()) {
                return (304, Value::Null, Some(etag));
            }
            let content = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
            // GitHub wraps base64 at 60 characters.
            let wrapped: Vec<String> = content
                .as_bytes()
                .chunks(60)
                .map(|c| String::from_utf8(c.to_vec()).unwrap())
                .collect();
            (
                200,
                shapes::content_file(
                    api,
                    &full,
                    &git_ref,
                    &path,
                    &blob,
                    text.len(),
                    wrapped.join("\n") + "\n",
                ),
                Some(etag),
            )
        }
        ("GET", ["repos", owner, name, "compare", range]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let range = percent_decode(range);
            let (base, head) = range.split_once("...").unwrap_or((&range, ""));
            let base_sha = r.branches.get(base).cloned().unwrap_or(base.to_string());
            ok(shapes::comparison(
                api,
                &full,
                &range,
                &base_sha,
                "diverged",
                1,
                r.behind.get(head).copied().unwrap_or(0),
            ))
        }
        ("GET", ["repos", owner, name, "commits", git_ref]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let git_ref = percent_decode(git_ref);
            let sha = r
                .branches
                .get(&git_ref)
                .or_else(|| r.tags.get(&git_ref))
                .cloned()
                .or_else(|| {
                    r.commits
                        .keys()
                        .find(|k| git_ref.len() >= 7 && k.starts_with(&git_ref))
                        .cloned()
                });
            match sha {
                Some(sha) => ok(shapes::commit(api, &full, &sha)),
                None => (
                    422,
                    shapes::error(&format!("No commit found for SHA: {git_ref}")),
                    None,
                ),
            }
        }
        ("GET", ["repos", owner, name, "git", "ref", rest @ ..]) => {
            let full = format!("{owner}/{name}");
            let Some(r) = w.repos.get(&full) else {
                return with_none(not_found(&full));
            };
            let name = rest
                .iter()
                .map(|s| percent_decode(s))
                .collect::<Vec<_>>()
                .join("/");
            let found = match name.split_once('/') {
                Some(("heads", b)) => r.branches.get(b),
                Some(("tags", t)) => r.tags.get(t),
                _ => None,
            };
            match found {
                Some(sha) => ok(shapes::git_ref(api, &full, &name, sha)),
                None => with_none(not_found(&format!("ref {name}"))),
            }
        }
        _ => unimplemented(),
    }
}
