//! The `security_headers` rule: the HTTP Observatory's criteria for six
//! headers by default, and what a check changes of them (`ignore`,
//! `require`, `csp`, `hsts`). A relaxation allows exactly what it names: a
//! different weakness of the same header still fails.

use reqwest::header::HeaderMap;
use url::Url;

use super::config::{CheckSpec, CspOptions, HstsOptions, SECURITY_HEADERS};
use super::{failed, fetch_ready, result, CheckResult, Ctx, Outcome, Req};

/// The default shortest `max-age` of `Strict-Transport-Security` (180 days).
const DEFAULT_MIN_MAX_AGE: u64 = 15_552_000;

/// One header's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFinding {
    pub header: String,
    pub outcome: Outcome,
    pub reason: String,
}

/// A response header's value, trimmed (absent when not text).
pub(super) fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
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

/// The findings of one response: the six headers' criteria as the check
/// relaxes them, without the headers it ignores, then the headers it requires.
pub fn evaluate_security_headers(h: &HeaderMap, https: bool, c: &CheckSpec) -> Vec<HeaderFinding> {
    let csp = get(h, "content-security-policy");
    let mut found = vec![
        strict_transport_security(h, https, &c.hsts.clone().unwrap_or_default()),
        content_type_options(h),
        frame_options(h, csp),
        referrer_policy(h),
        permissions_policy(h),
        content_security_policy(csp, &c.csp.clone().unwrap_or_default()),
    ];
    found.retain(|f| !ignored(c, &f.header));
    for name in &c.require {
        require(h, name.trim(), &mut found);
    }
    found
}

fn ignored(c: &CheckSpec, header: &str) -> bool {
    c.ignore
        .iter()
        .any(|i| i.trim().eq_ignore_ascii_case(header))
}

/// A required header must be there; when it is, its own criteria (if the
/// rule has any) decide.
fn require(h: &HeaderMap, name: &str, found: &mut Vec<HeaderFinding>) {
    let present = h
        .get(name)
        .is_some_and(|v| !v.as_bytes().trim_ascii().is_empty());
    let missing = "missing, and this check requires it";
    match found
        .iter_mut()
        .find(|f| f.header.eq_ignore_ascii_case(name))
    {
        Some(f) if !present => {
            f.outcome = Outcome::Fail;
            f.reason = missing.into();
        }
        Some(_) => {}
        None if present => found.push(finding(name, Outcome::Pass, "present".into())),
        None => found.push(finding(name, Outcome::Fail, missing.into())),
    }
}

fn finding(header: &str, outcome: Outcome, reason: String) -> HeaderFinding {
    HeaderFinding {
        header: header.to_string(),
        outcome,
        reason,
    }
}

/// HSTS over HTTPS with a max-age of at least 180 days (or `hsts.min_max_age`),
/// and `includeSubDomains` when `hsts.include_subdomains` asks for it.
fn strict_transport_security(h: &HeaderMap, https: bool, o: &HstsOptions) -> HeaderFinding {
    const NAME: &str = "Strict-Transport-Security";
    let v = match (https, get(h, "strict-transport-security")) {
        (false, _) => return finding(NAME, Outcome::Fail, "not served over HTTPS".into()),
        (true, None) => return finding(NAME, Outcome::Fail, "missing".into()),
        (true, Some(v)) => v,
    };
    let directives: Vec<String> = v
        .split(';')
        .map(|p| p.trim().to_ascii_lowercase())
        .collect();
    let max_age = directives.iter().find_map(|p| {
        p.strip_prefix("max-age=")
            .map(|n| n.trim_matches('"').parse::<u64>().ok())
    });
    let min = o.min_max_age.map_or(DEFAULT_MIN_MAX_AGE, |d| d.0.as_secs());
    let n = match max_age.flatten() {
        Some(n) if n >= min => n,
        Some(n) => {
            let days = if min == 86_400 {
                "1 day".to_string()
            } else if min % 86_400 == 0 {
                format!("{} days", min / 86_400)
            } else {
                crate::duration::humanize(std::time::Duration::from_secs(min))
            };
            return finding(
                NAME,
                Outcome::Fail,
                format!("max-age={n} is under {min} ({days})"),
            );
        }
        None => return finding(NAME, Outcome::Fail, format!("no valid max-age in {v:?}")),
    };
    if o.include_subdomains && !directives.iter().any(|d| d == "includesubdomains") {
        return finding(
            NAME,
            Outcome::Fail,
            format!(
                "max-age={n} without includeSubDomains, which hsts.include_subdomains requires"
            ),
        );
    }
    if n < DEFAULT_MIN_MAX_AGE {
        return finding(
            NAME,
            Outcome::Pass,
            format!("max-age={n}, under the default 15552000 but at least hsts.min_max_age"),
        );
    }
    finding(NAME, Outcome::Pass, format!("max-age={n}"))
}

/// `X-Content-Type-Options: nosniff`.
fn content_type_options(h: &HeaderMap) -> HeaderFinding {
    const NAME: &str = "X-Content-Type-Options";
    match get(h, "x-content-type-options") {
        Some(v) if v.eq_ignore_ascii_case("nosniff") => {
            finding(NAME, Outcome::Pass, "nosniff".into())
        }
        Some(v) => finding(NAME, Outcome::Fail, format!("{v:?} is not nosniff")),
        None => finding(NAME, Outcome::Fail, "missing".into()),
    }
}

/// Framing forbidden: `X-Frame-Options` DENY or SAMEORIGIN, or CSP `frame-ancestors`.
fn frame_options(h: &HeaderMap, csp: Option<&str>) -> HeaderFinding {
    const NAME: &str = "X-Frame-Options";
    let frame_ancestors = csp.and_then(|c| csp_directive(c, "frame-ancestors"));
    match (get(h, "x-frame-options"), frame_ancestors) {
        (_, Some(_)) => finding(NAME, Outcome::Pass, "CSP frame-ancestors is set".into()),
        (Some(v), None)
            if v.eq_ignore_ascii_case("deny") || v.eq_ignore_ascii_case("sameorigin") =>
        {
            finding(NAME, Outcome::Pass, v.to_ascii_uppercase())
        }
        (Some(v), None) => finding(
            NAME,
            Outcome::Fail,
            format!("{v:?} (use DENY, SAMEORIGIN or CSP frame-ancestors)"),
        ),
        (None, None) => finding(
            NAME,
            Outcome::Fail,
            "missing, and no CSP frame-ancestors".into(),
        ),
    }
}

/// A `Referrer-Policy` that keeps URLs from other origins.
fn referrer_policy(h: &HeaderMap) -> HeaderFinding {
    const NAME: &str = "Referrer-Policy";
    match get(h, "referrer-policy") {
        None => finding(
            NAME,
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
                finding(NAME, Outcome::Pass, last)
            } else {
                finding(
                    NAME,
                    Outcome::Fail,
                    format!("{last:?} leaks URLs to other origins"),
                )
            }
        }
    }
}

/// A `Permissions-Policy` that parses.
fn permissions_policy(h: &HeaderMap) -> HeaderFinding {
    const NAME: &str = "Permissions-Policy";
    match get(h, "permissions-policy") {
        None => finding(NAME, Outcome::Warn, "missing".into()),
        Some(v) if permissions_policy_parses(v) => finding(NAME, Outcome::Pass, "present".into()),
        Some(v) => finding(NAME, Outcome::Fail, format!("not a valid policy: {v:?}")),
    }
}

/// A CSP whose scripts allow neither eval nor inline code without a nonce or
/// hash, unless `csp` allows that one source expression.
fn content_security_policy(csp: Option<&str>, o: &CspOptions) -> HeaderFinding {
    const NAME: &str = "Content-Security-Policy";
    let Some(c) = csp else {
        return finding(NAME, Outcome::Fail, "missing".into());
    };
    let Some(srcs) = csp_directive(c, "script-src").or_else(|| csp_directive(c, "default-src"))
    else {
        return finding(NAME, Outcome::Fail, "no script-src or default-src".into());
    };
    let has = |t: &str| srcs.iter().any(|s| s.eq_ignore_ascii_case(t));
    let nonce_or_hash = srcs.iter().any(|s| {
        let s = s.to_ascii_lowercase();
        s.starts_with("'nonce-")
            || s.starts_with("'sha256-")
            || s.starts_with("'sha384-")
            || s.starts_with("'sha512-")
    });
    let eval = has("'unsafe-eval'");
    let inline = has("'unsafe-inline'") && !nonce_or_hash;
    if eval && !o.allow_unsafe_eval {
        return finding(
            NAME,
            Outcome::Fail,
            "script-src allows 'unsafe-eval'".into(),
        );
    }
    if inline && !o.allow_unsafe_inline {
        return finding(
            NAME,
            Outcome::Fail,
            "script-src allows 'unsafe-inline' without a nonce or hash".into(),
        );
    }
    let allowed: Vec<&str> = [
        (inline, "'unsafe-inline' (csp.allow_unsafe_inline)"),
        (eval, "'unsafe-eval' (csp.allow_unsafe_eval)"),
    ]
    .into_iter()
    .filter_map(|(found, what)| found.then_some(what))
    .collect();
    if allowed.is_empty() {
        finding(NAME, Outcome::Pass, "script-src is restricted".into())
    } else {
        finding(
            NAME,
            Outcome::Pass,
            format!("script-src allows {}, as configured", allowed.join(" and ")),
        )
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

/// One result for the findings; the headers the check ignores are named.
pub(super) fn summarise(findings: &[HeaderFinding], c: &CheckSpec) -> CheckResult {
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
    let mut reason = if bad.is_empty() {
        format!("all {} headers good", findings.len())
    } else {
        format!("{good} of {} good; {}", findings.len(), bad.join("; "))
    };
    let not_checked: Vec<&str> = SECURITY_HEADERS
        .iter()
        .copied()
        .filter(|h| ignored(c, h))
        .collect();
    if !not_checked.is_empty() {
        reason.push_str(&format!("; not checked: {}", not_checked.join(", ")));
    }
    let mut r = result(String::new(), outcome, reason, 1);
    r.details = bad;
    r
}

pub(super) async fn security_headers_check(cx: &Ctx, url: &Url, c: &CheckSpec) -> CheckResult {
    let (f, attempts) = fetch_ready(cx, &Req::get(url), cx.opts.request_timeout).await;
    match f {
        Ok(f) => {
            let found = evaluate_security_headers(&f.headers, url.scheme() == "https", c);
            let mut r = summarise(&found, c);
            r.attempts = attempts;
            r
        }
        Err(e) => failed(String::new(), &e, attempts),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A response's headers, for the rules' unit tests.
    pub(in crate::smoke) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn outcomes(f: &[HeaderFinding]) -> Vec<(&str, Outcome)> {
        f.iter().map(|f| (f.header.as_str(), f.outcome)).collect()
    }

    fn spec(yaml: &str) -> CheckSpec {
        let c: CheckSpec = serde_yaml_ng::from_str(yaml).unwrap();
        c
    }

    #[test]
    fn a_hardened_site_passes_every_header() {
        let d = CheckSpec::default();
        let h = headers(&[
            ("strict-transport-security", "max-age=31536000; includeSubDomains"),
            ("x-content-type-options", "nosniff"),
            ("content-security-policy", "default-src 'self'; script-src 'self' 'nonce-abc' 'unsafe-inline'; frame-ancestors 'none'"),
            ("referrer-policy", "no-referrer, strict-origin-when-cross-origin"),
            ("permissions-policy", "geolocation=(), camera=(self \"https://a.example\"), fullscreen=*"),
        ]);
        let f = evaluate_security_headers(&h, true, &d);
        assert!(f.iter().all(|f| f.outcome == Outcome::Pass), "{f:#?}");
        assert_eq!(summarise(&f, &d).reason, "all 6 headers good");
    }

    #[test]
    fn weak_and_missing_headers_are_named() {
        let d = CheckSpec::default();
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
        let f = evaluate_security_headers(&h, true, &d);
        assert!(f.iter().all(|f| f.outcome == Outcome::Fail), "{f:#?}");
        assert_eq!(f[0].reason, "max-age=86400 is under 15552000 (180 days)");
        assert_eq!(
            f[5].reason,
            "script-src allows 'unsafe-inline' without a nonce or hash"
        );
        let empty = evaluate_security_headers(&HeaderMap::new(), false, &d);
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
        let r = summarise(&empty, &d);
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
            &d,
        );
        assert_eq!(eval[5].reason, "script-src allows 'unsafe-eval'");
    }

    /// Plan 004's headers: `vercel.json` sets HSTS, nosniff and SAMEORIGIN
    /// for every path, and a CSP whose `script-src` has `'unsafe-inline'`.
    const PLAN_004: &[(&str, &str)] = &[
        ("strict-transport-security", "max-age=31536000; includeSubDomains"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "SAMEORIGIN"),
        ("content-security-policy", "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.vercel-insights.com; style-src 'self' 'unsafe-inline'; img-src 'self' https:; font-src 'self' https:;"),
    ];

    fn csp_of(h: &[(&str, &str)], c: &CheckSpec) -> HeaderFinding {
        let f = evaluate_security_headers(&headers(h), true, c);
        f.into_iter()
            .find(|f| f.header == "Content-Security-Policy")
            .unwrap()
    }

    #[test]
    fn allow_unsafe_inline_passes_plan_004s_csp_and_nothing_else() {
        let d = CheckSpec::default();
        let f = csp_of(PLAN_004, &d);
        assert_eq!(f.outcome, Outcome::Fail, "{f:?}");
        let inline = spec("{ rule: security_headers, csp: { allow_unsafe_inline: true } }");
        let f = csp_of(PLAN_004, &inline);
        assert_eq!(
            (f.outcome, f.reason.as_str()),
            (
                Outcome::Pass,
                "script-src allows 'unsafe-inline' (csp.allow_unsafe_inline), as configured"
            )
        );
        // The relaxation names one source expression: eval still fails, and
        // so does a missing policy or one without script-src/default-src.
        for (csp, why) in [
            (
                "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
                "script-src allows 'unsafe-eval'",
            ),
            (
                "default-src 'self' 'unsafe-eval'",
                "script-src allows 'unsafe-eval'",
            ),
            ("img-src 'self'", "no script-src or default-src"),
        ] {
            let f = csp_of(&[("content-security-policy", csp)], &inline);
            assert_eq!(
                (f.outcome, f.reason.as_str()),
                (Outcome::Fail, why),
                "{csp}"
            );
        }
        assert_eq!(csp_of(&[], &inline).reason, "missing");
        // And the other way round.
        let eval = spec("{ rule: security_headers, csp: { allow_unsafe_eval: true } }");
        let f = csp_of(PLAN_004, &eval);
        assert_eq!(
            f.reason,
            "script-src allows 'unsafe-inline' without a nonce or hash"
        );
        let f = csp_of(
            &[("content-security-policy", "script-src 'unsafe-eval'")],
            &eval,
        );
        assert_eq!(f.outcome, Outcome::Pass, "{f:?}");
        // The other headers are judged as before.
        let all = evaluate_security_headers(&headers(PLAN_004), true, &inline);
        let r = summarise(&all, &inline);
        assert_eq!(
            r.reason,
            "4 of 6 good; Referrer-Policy: missing (browsers default to strict-origin-when-cross-origin); Permissions-Policy: missing"
        );
        assert_eq!(r.outcome, Outcome::Warn);
    }

    #[test]
    fn ignore_drops_a_header_and_says_so_and_require_makes_missing_fail() {
        let c = spec("{ rule: security_headers, csp: { allow_unsafe_inline: true }, ignore: [permissions-policy, Referrer-Policy] }");
        let f = evaluate_security_headers(&headers(PLAN_004), true, &c);
        assert_eq!(f.len(), 4);
        let r = summarise(&f, &c);
        assert_eq!(
            (r.outcome, r.reason.as_str()),
            (
                Outcome::Pass,
                "all 4 headers good; not checked: Referrer-Policy, Permissions-Policy"
            )
        );
        // An ignored header that is weak does not matter; the others still do.
        let c = spec("{ rule: security_headers, ignore: [content-security-policy] }");
        let f = evaluate_security_headers(
            &headers(&[("content-security-policy", "script-src 'unsafe-eval'")]),
            true,
            &c,
        );
        assert!(!f.iter().any(|f| f.header == "Content-Security-Policy"));
        assert_eq!(summarise(&f, &c).outcome, Outcome::Fail);

        let c = spec("{ rule: security_headers, require: [referrer-policy, Cross-Origin-Opener-Policy, x-frame-options] }");
        let h = [
            (
                "content-security-policy",
                "default-src 'self'; frame-ancestors 'none'",
            ),
            ("cross-origin-opener-policy", "same-origin"),
        ];
        let f = evaluate_security_headers(&headers(&h), true, &c);
        let by = |name: &str| f.iter().find(|f| f.header == name).unwrap().clone();
        assert_eq!(
            (by("Referrer-Policy").outcome, by("Referrer-Policy").reason),
            (Outcome::Fail, "missing, and this check requires it".into())
        );
        // frame-ancestors would do by default, but the header itself is required.
        assert_eq!(by("X-Frame-Options").outcome, Outcome::Fail);
        assert_eq!(
            (
                by("Cross-Origin-Opener-Policy").outcome,
                by("Cross-Origin-Opener-Policy").reason
            ),
            (Outcome::Pass, "present".into())
        );
        let f = evaluate_security_headers(&HeaderMap::new(), true, &c);
        assert_eq!(f.len(), 7);
        assert_eq!(f[6].outcome, Outcome::Fail);
    }

    #[test]
    fn hsts_minimum_and_include_subdomains() {
        let hsts = |v: &str, c: &CheckSpec| {
            let f =
                evaluate_security_headers(&headers(&[("strict-transport-security", v)]), true, c);
            (f[0].outcome, f[0].reason.clone())
        };
        let d = CheckSpec::default();
        assert_eq!(
            hsts("max-age=86400", &d),
            (
                Outcome::Fail,
                "max-age=86400 is under 15552000 (180 days)".into()
            )
        );
        let short = spec("{ rule: security_headers, hsts: { min_max_age: 1d } }");
        assert_eq!(
            hsts("max-age=86400", &short),
            (
                Outcome::Pass,
                "max-age=86400, under the default 15552000 but at least hsts.min_max_age".into()
            )
        );
        assert_eq!(
            hsts("max-age=3600", &short),
            (Outcome::Fail, "max-age=3600 is under 86400 (1 day)".into())
        );
        let long = spec(
            "{ rule: security_headers, hsts: { min_max_age: 365d, include_subdomains: true } }",
        );
        assert_eq!(
            hsts("max-age=15552000", &long),
            (
                Outcome::Fail,
                "max-age=15552000 is under 31536000 (365 days)".into()
            )
        );
        assert_eq!(
            hsts("max-age=31536000", &long),
            (
                Outcome::Fail,
                "max-age=31536000 without includeSubDomains, which hsts.include_subdomains requires".into()
            )
        );
        assert_eq!(
            hsts("max-age=31536000; includeSubDomains", &long),
            (Outcome::Pass, "max-age=31536000".into())
        );
        // No minimum makes plain HTTP acceptable.
        let f = evaluate_security_headers(&HeaderMap::new(), false, &short);
        assert_eq!(f[0].reason, "not served over HTTPS");
    }

    #[test]
    fn the_rules_keys_are_checked_when_the_config_loads() {
        let err = |yaml: &str| {
            let s: crate::smoke::SmokeConfig = serde_yaml_ng::from_str(yaml).unwrap();
            s.validate("smoke").unwrap_err()
        };
        assert_eq!(
            err("checks:\n  - { rule: security_headers, ignore: [x-powered-by] }"),
            "smoke.checks[0].ignore: \"x-powered-by\" is not a header the rule checks (it checks strict-transport-security, x-content-type-options, x-frame-options, referrer-policy, permissions-policy, content-security-policy)"
        );
        assert_eq!(
            err("checks:\n  - { rule: tls, csp: { allow_unsafe_inline: true } }"),
            "smoke.checks[0].csp: only `rule: security_headers` takes `csp`"
        );
        assert_eq!(
            err("checks:\n  - { path: /, ignore: [permissions-policy] }"),
            "smoke.checks[0].ignore: only `rule: security_headers` takes `ignore`"
        );
        assert_eq!(
            err("checks:\n  - { rule: cors, hsts: { min_max_age: 1d } }"),
            "smoke.checks[0].hsts: only `rule: security_headers` takes `hsts`"
        );
        assert_eq!(
            err("checks:\n  - { rule: rate_limit, require: [retry-after] }"),
            "smoke.checks[0].require: only `rule: security_headers` takes `require`"
        );
        assert_eq!(
            err("checks:\n  - { rule: security_headers, ignore: [Referrer-Policy], require: [referrer-policy] }"),
            "smoke.checks[0]: \"referrer-policy\" is both in `ignore` and in `require`"
        );
        assert_eq!(
            err("checks:\n  - { rule: security_headers, ignore: [content-security-policy], csp: { allow_unsafe_eval: true } }"),
            "smoke.checks[0].csp: content-security-policy is in `ignore`, so `csp` would change nothing"
        );
        assert_eq!(
            err("checks:\n  - { rule: security_headers, require: [\"bad header\"] }"),
            "smoke.checks[0].require: \"bad header\" is not a header name"
        );
        let unknown: Result<crate::smoke::SmokeConfig, _> = serde_yaml_ng::from_str(
            "checks:\n  - { rule: security_headers, csp: { allow_unsafe_everything: true } }",
        );
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("allow_unsafe_everything"));
        let fine: crate::smoke::SmokeConfig = serde_yaml_ng::from_str(
            "checks:\n  - { rule: security_headers, ignore: [PERMISSIONS-POLICY], require: [cross-origin-opener-policy], csp: { allow_unsafe_inline: true }, hsts: { min_max_age: 365d } }",
        )
        .unwrap();
        fine.validate("smoke").unwrap();
    }
}
