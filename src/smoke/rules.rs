//! Built-in rule checks: security headers (HTTP Observatory criteria, in
//! `headers`), TLS, HTTP → HTTPS redirect, CORS reflection, rate limiting.

use reqwest::header::HeaderMap;
use url::Url;

use super::config::{CheckSpec, Rule};
use super::headers::{get, security_headers_check};
use super::{failed, fetch_ready, result, CheckResult, Ctx, FetchError, Outcome, Req};

pub(crate) async fn run(cx: &Ctx, base: &Url, rule: Rule, c: &CheckSpec) -> CheckResult {
    let name = super::check_name(c, base);
    let url = match super::target_url(base, c) {
        Ok(u) => u,
        Err(e) => return result(name, Outcome::Fail, e, 0),
    };
    let mut r = match rule {
        Rule::SecurityHeaders => security_headers_check(cx, &url, c).await,
        Rule::Tls => super::tls::tls_check(cx, &url, c).await,
        Rule::HttpsRedirect => redirect_check(cx, base, c).await,
        Rule::Cors => cors_check(cx, &url).await,
        Rule::RateLimit => rate_limit_check(cx, &url, c).await,
    };
    r.name = name;
    r
}

/// Whether `origin` is reflected with credentials.
pub fn evaluate_cors(h: &HeaderMap, origin: &str) -> (Outcome, String) {
    let allow = get(h, "access-control-allow-origin");
    let creds =
        get(h, "access-control-allow-credentials").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    match allow {
        Some(a) if a == origin && creds => (
            Outcome::Fail,
            format!("reflects Origin {origin} with Access-Control-Allow-Credentials: true"),
        ),
        Some(a) if a == origin => (
            Outcome::Warn,
            format!("reflects Origin {origin} (without credentials)"),
        ),
        Some("*") => (
            Outcome::Pass,
            "allows any origin, without credentials".into(),
        ),
        _ => (Outcome::Pass, format!("does not allow {origin}")),
    }
}

async fn cors_check(cx: &Ctx, url: &Url) -> CheckResult {
    const ORIGIN: &str = "https://evil.example";
    let req = Req {
        headers: vec![("origin".into(), ORIGIN.into())],
        ..Req::get(url)
    };
    let (f, attempts) = fetch_ready(cx, &req, cx.opts.request_timeout).await;
    match f {
        Ok(f) => {
            let (o, why) = evaluate_cors(&f.headers, ORIGIN);
            result(String::new(), o, why, attempts)
        }
        Err(e) => failed(String::new(), &e, attempts),
    }
}

async fn redirect_check(cx: &Ctx, base: &Url, c: &CheckSpec) -> CheckResult {
    let http = match &c.url {
        Some(u) => match Url::parse(u) {
            Ok(u) => u,
            Err(e) => return result(String::new(), Outcome::Fail, format!("bad url: {e}"), 0),
        },
        None => {
            let mut u = base.clone();
            let _ = u.set_scheme("http");
            let _ = u.set_port(None);
            u.set_path("/");
            u
        }
    };
    let req = Req {
        follow: false,
        ..Req::get(&http)
    };
    let f = match cx.send(&req, cx.opts.request_timeout, 0).await {
        Ok(f) => f,
        Err(FetchError::Connect(_)) => {
            return result(
                String::new(),
                Outcome::Pass,
                format!("plain HTTP is not served at {http}"),
                1,
            )
        }
        Err(e @ (FetchError::OverBudget(_) | FetchError::Refused(_))) => {
            return failed(String::new(), &e, 1)
        }
        Err(e) => return result(String::new(), Outcome::Fail, format!("{http}: {e}"), 1),
    };
    let location = get(&f.headers, "location").and_then(|l| http.join(l).ok());
    let same_host = |u: &Url| u.host_str() == base.host_str();
    let (o, why) = match (f.status, location) {
        (301 | 308, Some(to)) if to.scheme() == "https" && same_host(&to) => {
            (Outcome::Pass, format!("{} → {to}", f.status))
        }
        (302 | 303 | 307, Some(to)) if to.scheme() == "https" && same_host(&to) => (
            Outcome::Warn,
            format!(
                "{} is a temporary redirect to {to}; use 301 or 308",
                f.status
            ),
        ),
        (300..=399, Some(to)) if to.scheme() != "https" => (
            Outcome::Fail,
            format!("{} redirects to {to}, not HTTPS", f.status),
        ),
        (300..=399, Some(to)) => (
            Outcome::Fail,
            format!("{} redirects to another host: {to}", f.status),
        ),
        (s, _) => (
            Outcome::Fail,
            format!("{http} answers {s} over plain HTTP instead of redirecting"),
        ),
    };
    result(String::new(), o, why, 1)
}

async fn rate_limit_check(cx: &Ctx, url: &Url, c: &CheckSpec) -> CheckResult {
    use futures_util::StreamExt;
    // A burst is a small load test: on the server, only at the repository's
    // own environments, never at whatever host a deployment status names.
    if let Some(hosts) = &cx.limits.burst_hosts {
        let host = super::guard::host_of(url)
            .map(|(h, _)| h)
            .unwrap_or_default();
        if !hosts.contains(&host) {
            return result(
                String::new(),
                Outcome::Warn,
                format!("not run: rate_limit bursts go only to the hosts of environments.*.url, and `{host}` is not one"),
                0,
            );
        }
    }
    let wanted = c.burst.unwrap_or(50).clamp(1, super::config::MAX_BURST);
    let burst = cx.limits.max_burst.map_or(wanted, |max| wanted.min(max));
    // A login or a form is limited on its POST: the burst sends the check's
    // method, headers and body.
    let mut req = Req::get(url);
    match super::check::method_of(c) {
        Ok(m) => req.method = m,
        Err(e) => return result(String::new(), Outcome::Fail, e, 0),
    }
    req.headers = c
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    req.body = c.body.clone();
    let statuses: Vec<Result<(u16, bool), FetchError>> = futures_util::stream::iter(0..burst)
        .map(|_| async {
            cx.send(&req, cx.opts.request_timeout, 0).await.map(|f| {
                (
                    f.status,
                    f.headers.contains_key(reqwest::header::RETRY_AFTER),
                )
            })
        })
        .buffer_unordered(10)
        .collect()
        .await;
    // A refused hop (a redirect somewhere it must not go) fails the check.
    if let Some(e) = statuses.iter().find_map(|s| {
        s.as_ref()
            .err()
            .filter(|e| matches!(e, FetchError::Refused(_)))
    }) {
        return failed(String::new(), e, 1);
    }
    let cut = statuses
        .iter()
        .filter(|s| matches!(s, Err(FetchError::OverBudget(_))))
        .count();
    if let Some(e) = statuses
        .first()
        .and_then(|s| s.as_ref().err())
        .filter(|_| cut == statuses.len())
    {
        return failed(String::new(), e, 1);
    }
    let answered: Vec<(u16, bool)> = statuses
        .iter()
        .filter_map(|s| s.as_ref().ok().copied())
        .collect();
    let errors = statuses.len() - answered.len() - cut;
    let sent = statuses.len() - cut;
    let limited: Vec<bool> = answered
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, ra)| *ra)
        .collect();
    let mut notes = String::new();
    if burst < wanted {
        notes.push_str(&format!(
            "; burst cut from {wanted} to {burst} (the server's limit)"
        ));
    }
    if let Some(cap) = cx.limits.max_requests.as_ref().filter(|_| cut > 0) {
        notes.push_str(&format!("; burst cut at {sent}: {}", cap.reason));
    }
    let (o, why) = match limited.first() {
        None => (
            Outcome::Fail,
            format!("no 429 in a burst of {sent} requests ({errors} failed){notes}"),
        ),
        Some(_) if limited.iter().any(|ra| *ra) => (
            Outcome::Pass,
            format!(
                "{} of {sent} requests got 429 with Retry-After{notes}",
                limited.len()
            ),
        ),
        Some(_) => (
            Outcome::Warn,
            format!(
                "{} of {sent} requests got 429, without Retry-After{notes}",
                limited.len()
            ),
        ),
    };
    result(String::new(), o, why, sent as u32)
}

#[cfg(test)]
mod tests {
    use super::super::headers::tests::headers;
    use super::*;

    #[test]
    fn cors_reflection_with_credentials_fails() {
        let o = "https://evil.example";
        assert_eq!(
            evaluate_cors(
                &headers(&[
                    ("access-control-allow-origin", o),
                    ("access-control-allow-credentials", "true")
                ]),
                o
            )
            .0,
            Outcome::Fail
        );
        assert_eq!(
            evaluate_cors(&headers(&[("access-control-allow-origin", o)]), o).0,
            Outcome::Warn
        );
        assert_eq!(
            evaluate_cors(&headers(&[("access-control-allow-origin", "*")]), o).0,
            Outcome::Pass
        );
        assert_eq!(
            evaluate_cors(
                &headers(&[("access-control-allow-origin", "https://app.example")]),
                o
            )
            .0,
            Outcome::Pass
        );
        assert_eq!(evaluate_cors(&HeaderMap::new(), o).0, Outcome::Pass);
    }
}
