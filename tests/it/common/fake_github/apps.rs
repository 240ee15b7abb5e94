//! The fake's user, App and organization endpoints: the bot's login,
//! installation tokens, team membership.

use super::*;

pub(super) fn route(w: &mut World, req: &Req) -> Routed {
    let Req {
        api, method, seg, ..
    } = *req;
    match (method.as_str(), seg) {
        ("GET", ["user"]) => ok(shapes::private_user(api, BOT_LOGIN)),
        ("GET", ["app"]) => ok(shapes::app(api, 1, "shipgate-test", "shipgate test")),
        ("POST", ["app", "installations", _id, "access_tokens"]) => {
            w.tokens_issued += 1;
            let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
            (
                201,
                json!({
                    "token": format!("ghs_fake{}", w.tokens_issued),
                    "expires_at": expires.format(&time::format_description::well_known::Rfc3339).unwrap(),
                    "permissions": { "contents": "read", "statuses": "write", "metadata": "read" },
                    "repository_selection": "all",
                }),
                None,
            )
        }
        ("GET", ["orgs", org, "teams", team, "memberships", user]) => {
            let members = w.teams.get(&(org.to_string(), team.to_string()));
            match members {
                Some(m) if m.iter().any(|u| u == user) => ok(json!({
                    "state": "active", "role": "member",
                    "url": format!("{api}/orgs/{org}/teams/{team}/memberships/{user}"),
                })),
                _ => with_none(not_found("membership")),
            }
        }
        _ => unimplemented(),
    }
}
