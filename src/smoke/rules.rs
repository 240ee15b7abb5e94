//! Built-in rule checks: security headers (HTTP Observatory criteria), TLS,
//! HTTP → HTTPS redirect, CORS reflection, rate limiting.

use reqwest::header::HeaderMap;
use url::Url;

use super::config::{CheckSpec, Rule};
use super::{failed, fetch_ready, result, CheckResult, Ctx, FetchError, Outcome, Req};

pub(crate) async fn run(cx: &Ctx, base: &Url, rule: Rule, c: &CheckSpec) -> CheckResult {
    let name = super::check_name(c, base);
    let url = match super::target_url(base, c) {
        Ok(u) => u,
        Err(e) => return result(name, Outcome::Fail, e, 0),
    };
    let mut r = match rule {
        Rule::SecurityHeaders => security_headers_check(cx, &url).await,
        Rule::Tls => super::tls::tls_check(cx, &url, c).await,
        Rule::HttpsRedirect => redirect_check(cx, base, c).await,
        Rule::Cors => cors_check(cx, &url).await,
        Rule::RateLimit => rate_limit_check(cx, &url, c).await,
    };
    r.name = name;
    r
}

/// One header's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFinding {
    pub header: &'static str,
    pub outcome: Outcome,
    pub reason: String,
}

fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Directives of a CSP, lower-cased, by name.
fn csp_directive<'a>(csp: &'a str, name: &str) -> Option<Vec<&'a str>> {
    csp.split(';').map(str::trim).find_map(|d| {
        let mut parts = d.split_whitespace();
        let n = parts.next()?;
        n.eq_ignore_ascii_case(name).then(|| parts.collect())
    })
}

/// The HTTP Observatory's pass criteria for six headers.
pub fn evaluate_security_headers(h: &HeaderMap, https: bool) -> Vec<HeaderFinding> {
    let csp = get(h, "content-security-policy");
    vec![
        strict_transport_security(h, https),
        content_type_options(h),
        frame_options(h, csp),
        referrer_policy(h),
        permissions_policy(h),
        content_security_policy(csp),
    ]
}

fn finding(header: &'static str, outcome: Outcome, reason: String) -> HeaderFinding {
    HeaderFinding {
        header,
        outcome,
        reason,
    }
}

/// HSTS over HTTPS with a max-age of at least 180 days.
fn strict_transport_security(h: &HeaderMap, https: bool) -> HeaderFinding {
    match (https, get(h, "strict-transport-security")) {
        (false, _) => finding(
            "Strict-Transport-Security",
            Outcome::Fail,
            "not served over HTTPS".into(),
        ),
        (true, None) => finding("Strict-Transport-Security", Outcome::Fail, "missing".into()),
        (true, Some(v)) => {
            let max_age = v.split(';').find_map(|p| {
                p.trim()
                    .to_ascii_lowercase()
                    .strip_prefix("max-age=")
                    .map(|n| n.trim_matches('"').parse::<u64>().ok())
            });
            match max_age.flatten() {
                Some(n) if n >= 15_552_000 => finding(
                    "Strict-Transport-Security",
                    Outcome::Pass,
                    format!("max-age={n}"),
                ),
                Some(n) => finding(
                    "Strict-Transport-Security",
                    Outcome::Fail,
                    format!("max-age={n} is under 15552000 (180 days)"),
                ),
                None => finding(
                    "Strict-Transport-Security",
                    Outcome::Fail,
                    format!("no valid max-age in {v:?}"),
                ),
            }
        }
    }
}

/// `X-Content-Type-Options: nosniff`.
fn content_type_options(h: &HeaderMap) -> HeaderFinding {
    match get(h, "x-content-type-options") {
        Some(v) if v.eq_ignore_ascii_case("nosniff") => {
            finding("X-Content-Type-Options", Outcome::Pass, "nosniff".into())
        }
        Some(v) => finding(
            "X-Content-Type-Options",
            Outcome::Fail,
            format!("{v:?} is not nosniff"),
        ),
        None => finding("X-Content-Type-Options", Outcome::Fail, "missing".into()),
    }
}

/// Framing forbidden: `X-Frame-Options` DENY or SAMEORIGIN, or CSP `frame-ancestors`.
fn frame_options(h: &HeaderMap, csp: Option<&str>) -> HeaderFinding {
    let frame_ancestors = csp.and_then(|c| csp_directive(c, "frame-ancestors"));
    match (get(h, "x-frame-options"), frame_ancestors) {
        (_, Some(_)) => finding(
            "X-Frame-Options",
            Outcome::Pass,
            "CSP frame-ancestors is set".into(),
        ),
        (Some(v), None)
            if v.eq_ignore_ascii_case("deny") || v.eq_ignore_ascii_case("sameorigin") =>
        {
            finding("X-Frame-Options", Outcome::Pass, v.to_ascii_uppercase())
        }
        (Some(v), None) => finding(
            "X-Frame-Options",
            Outcome::Fail,
            format!("{v:?} (use DENY, SAMEORIGIN or CSP frame-ancestors)"),
        ),
        (None, None) => finding(
            "X-Frame-Options",
            Outcome::Fail,
            "missing, and no CSP frame-ancestors".into(),
        ),
    }
}

/// A `Referrer-Policy` that keeps URLs from other origins.
fn referrer_policy(h: &HeaderMap) -> HeaderFinding {
    match get(h, "referrer-policy") {
        None => finding(
            "Referrer-Policy",
            Outcome::Warn,
            "missing (browsers default to strict-origin-when-cross-origin)".into(),
        ),
        Some(v) => {
            // The last recognised token wins, as in browsers.
            let last = v
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .next_back()
                .unwrap_or_default();
            let strict = [
                "no-referrer",
                "same-origin",
                "strict-origin",
                "strict-origin-when-cross-origin",
            ];
            if strict.contains(&last.as_str()) {
                finding("Referrer-Policy", Outcome::Pass, last)
            } else {
                finding(
                    "Referrer-Policy",
                    Outcome::Fail,
                    format!("{last:?} leaks URLs to other origins"),
                )
            }
        }
    }
}

/// A `Permissions-Policy` that parses.
fn permissions_policy(h: &HeaderMap) -> HeaderFinding {
    match get(h, "permissions-policy") {
        None => finding("Permissions-Policy", Outcome::Warn, "missing".into()),
        Some(v) if permissions_policy_parses(v) => {
            finding("Permissions-Policy", Outcome::Pass, "present".into())
        }
        Some(v) => finding(
            "Permissions-Policy",
            Outcome::Fail,
            format!("not a valid policy: {v:?}"),
        ),
    }
}

/// A CSP whose scripts allow neither eval nor inline code without a nonce or hash.
fn content_security_policy(csp: Option<&str>) -> HeaderFinding {
    match csp {
        None => finding("Content-Security-Policy", Outcome::Fail, "missing".into()),
        Some(c) => {
            let script = csp_directive(c, "script-src").or_else(|| csp_directive(c, "default-src"));
            match script {
                None => finding(
                    "Content-Security-Policy",
                    Outcome::Fail,
                    "no script-src or default-src".into(),
                ),
                Some(srcs) => {
                    let has = |t: &str| srcs.iter().any(|s| s.eq_ignore_ascii_case(t));
                    let nonce_or_hash = srcs.iter().any(|s| {
                        let s = s.to_ascii_lowercase();
                        s.starts_with("'nonce-")
                            || s.starts_with("'sha256-")
                            || s.starts_with("'sha384-")
                            || s.starts_with("'sha512-")
                    });
                    if has("'unsafe-eval'") {
                        finding(
                            "Content-Security-Policy",
                            Outcome::Fail,
                            "script-src allows 'unsafe-eval'".into(),
                        )
                    } else if has("'unsafe-inline'") && !nonce_or_hash {
                        finding(
                            "Content-Security-Policy",
                            Outcome::Fail,
                            "script-src allows 'unsafe-inline' without a nonce or hash".into(),
                        )
                    } else {
                        finding(
                            "Content-Security-Policy",
                            Outcome::Pass,
                            "script-src is restricted".into(),
                        )
                    }
                }
            }
        }
    }
}

/// A structured-field dictionary: `feature=()`, `feature=(self "https://x")`, `feature=*`.
fn permissions_policy_parses(v: &str) -> bool {
    let item = regex::Regex::new(r#"^[a-z][a-z0-9-]*=(\*|self|\((\s*(self|\*|"[^"]*"))*\s*\))$"#)
        .expect("valid regex");
    v.split(',')
        .map(str::trim)
        .all(|entry| item.is_match(&entry.to_ascii_lowercase()))
}

fn summarise(findings: &[HeaderFinding]) -> CheckResult {
    let outcome = findings
        .iter()
        .map(|f| f.outcome)
        .max()
        .unwrap_or(Outcome::Pass);
    let good = findings
        .iter()
        .filter(|f| f.outcome == Outcome::Pass)
        .count();
    let bad: Vec<String> = findings
        .iter()
        .filter(|f| f.outcome != Outcome::Pass)
        .map(|f| format!("{}: {}", f.header, f.reason))
        .collect();
    let reason = if bad.is_empty() {
        format!("all {} headers good", findings.len())
    } else {
        format!("{good} of {} good; {}", findings.len(), bad.join("; "))
    };
    let mut r = result(String::new(), outcome, reason, 1);
    r.details = bad;
    r
}

async fn security_headers_check(cx: &Ctx, url: &Url) -> CheckResult {
    let (f, attempts) = fetch_ready(cx, &Req::get(url), cx.opts.request_timeout).await;
    match f {
        Ok(f) => {
            let mut r = summarise(&evaluate_security_headers(
                &f.headers,
                url.scheme() == "https",
            ));
            r.attempts = attempts;
            r
        }
        Err(e) => failed(String::new(), &e, attempts),
    }
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
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn outcomes(f: &[HeaderFinding]) -> Vec<(&'static str, Outcome)> {
        f.iter().map(|f| (f.header, f.outcome)).collect()
    }

    #[test]
    fn a_hardened_site_passes_every_header() {
        let h = headers(&[
            ("strict-transport-security", "max-age=31536000; includeSubDomains"),
            ("x-content-type-options", "nosniff"),
            ("content-security-policy", "default-src 'self'; script-src 'self' 'nonce-abc' 'unsafe-inline'; frame-ancestors 'none'"),
            ("referrer-policy", "no-referrer, strict-origin-when-cross-origin"),
            ("permissions-policy", "geolocation=(), camera=(self \"https://a.example\"), fullscreen=*"),
        ]);
        let f = evaluate_security_headers(&h, true);
        assert!(f.iter().all(|f| f.outcome == Outcome::Pass), "{f:#?}");
        assert_eq!(summarise(&f).reason, "all 6 headers good");
    }

    #[test]
    fn weak_and_missing_headers_are_named() {
        let h = headers(&[
            ("strict-transport-security", "max-age=86400"),
            ("x-content-type-options", "sniff"),
            ("x-frame-options", "ALLOW-FROM https://x"),
            ("referrer-policy", "unsafe-url"),
            ("permissions-policy", "geolocation"),
            (
                "content-security-policy",
                "script-src 'self' 'unsafe-inline'",
            ),
        ]);
        let f = evaluate_security_headers(&h, true);
        assert!(f.iter().all(|f| f.outcome == Outcome::Fail), "{f:#?}");
        assert_eq!(f[0].reason, "max-age=86400 is under 15552000 (180 days)");
        assert_eq!(
            f[5].reason,
            "script-src allows 'unsafe-inline' without a nonce or hash"
        );
        let empty = evaluate_security_headers(&HeaderMap::new(), false);
        assert_eq!(
            outcomes(&empty),
            [
                ("Strict-Transport-Security", Outcome::Fail),
                ("X-Content-Type-Options", Outcome::Fail),
                ("X-Frame-Options", Outcome::Fail),
                ("Referrer-Policy", Outcome::Warn),
                ("Permissions-Policy", Outcome::Warn),
                ("Content-Security-Policy", Outcome::Fail),
            ]
        );
        let r = summarise(&empty);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason
                .starts_with("0 of 6 good; Strict-Transport-Security: not served over HTTPS"),
            "{}",
            r.reason
        );
        let eval = evaluate_security_headers(
            &headers(&[(
                "content-security-policy",
                "default-src 'self' 'unsafe-eval'",
            )]),
            true,
        );
        assert_eq!(eval[5].reason, "script-src allows 'unsafe-eval'");
    }

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
