//! The HTTP request check, a check without a `rule`: one request with the
//! readiness wait, its assertions, and latency samples against the
//! check's thresholds. Apart from the runner and the built-in rules, which
//! share its assertions and naming.

use std::time::Duration;

use url::Url;

use super::config::{self, CheckSpec, Expect, StatusExpect};
use super::fetch::{failed, fetch_ready, Ctx, FetchError, Fetched, Req};
use super::{jsonpath, result, CheckResult, LatencyStats, Outcome};

/// The URL a check requests: its `url`, its `path` joined onto the base, or the base.
pub(crate) fn target_url(base: &Url, c: &CheckSpec) -> Result<Url, String> {
    match (&c.url, &c.path) {
        (Some(u), _) => Url::parse(u).map_err(|e| format!("bad url `{u}`: {e}")),
        (None, Some(p)) => base.join(p).map_err(|e| format!("bad path `{p}`: {e}")),
        (None, None) => Ok(base.clone()),
    }
}

pub(crate) fn check_name(c: &CheckSpec, url: &Url) -> String {
    if let Some(n) = &c.name {
        return n.clone();
    }
    if let Some(rule) = c.rule {
        return rule.name().to_string();
    }
    format!(
        "{} {}",
        c.method.as_deref().unwrap_or("GET").to_ascii_uppercase(),
        url.path()
    )
}

fn percentile(sorted_ms: &[u64], p: f64) -> u64 {
    if sorted_ms.is_empty() {
        return 0;
    }
    // Nearest rank, as k6 reports it.
    let rank = ((p / 100.0) * sorted_ms.len() as f64).ceil() as usize;
    sorted_ms[rank.clamp(1, sorted_ms.len()) - 1]
}

/// A check without a `rule`: its request (with the readiness wait), the
/// assertions on the answer, then latency samples against its thresholds.
pub(super) async fn request_check(cx: &Ctx, base: &Url, c: &CheckSpec) -> CheckResult {
    request_check_carrying(cx, base, c, false).await
}

/// [`request_check`] of a check whose fields were filled in with values
/// (`carries_values`: never taken to another origin by a redirect).
pub(super) async fn request_check_carrying(
    cx: &Ctx,
    base: &Url,
    c: &CheckSpec,
    carries_values: bool,
) -> CheckResult {
    let (name, req, timeout) = match planned_request(cx, base, c, carries_values) {
        Ok(planned) => planned,
        Err(bad_check) => return *bad_check,
    };
    let (first, attempts) = fetch_ready(cx, &req, timeout).await;
    let first = match first {
        Ok(f) => f,
        Err(e) => return failed(name, &e, attempts),
    };
    let mut failures = assert_response(&first, c);
    let mut notes = Vec::new();
    let (stats, samples) =
        sample_latency(cx, &req, timeout, &first, c, &mut failures, &mut notes).await;
    failures.extend(latency_failures(&c.expect, &stats));
    let latency = if samples > 1 {
        format!(
            ", p95 {} ms / p99 {} ms over {}",
            stats.p95_ms, stats.p99_ms, stats.samples
        )
    } else {
        format!(" in {} ms", stats.max_ms)
    };
    let tries = if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    };
    let notes: String = notes.iter().map(|n| format!("; {n}")).collect();
    let mut r = if failures.is_empty() {
        result(
            name,
            Outcome::Pass,
            format!("{}{latency}{tries}{notes}", first.status),
            attempts,
        )
    } else {
        let mut r = result(
            name,
            Outcome::Fail,
            format!("{}{notes}", failures.join("; ")),
            attempts,
        );
        r.details = failures;
        r
    };
    r.latency = (samples > 1).then_some(stats);
    r
}

/// The check's method (default GET), or why it is not one.
pub(super) fn method_of(c: &CheckSpec) -> Result<reqwest::Method, String> {
    let name = c.method.as_deref().unwrap_or("GET");
    reqwest::Method::from_bytes(name.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("bad method `{name}`"))
}

/// The check's name, request and timeout; a check whose URL or method is
/// malformed is a failed result instead.
pub(super) fn planned_request(
    cx: &Ctx,
    base: &Url,
    c: &CheckSpec,
    carries_values: bool,
) -> Result<(String, Req, Duration), Box<CheckResult>> {
    let url = match target_url(base, c) {
        Ok(u) => u,
        Err(e) => {
            return Err(Box::new(result(
                c.name.clone().unwrap_or_else(|| "request".into()),
                Outcome::Fail,
                e,
                0,
            )))
        }
    };
    let name = check_name(c, &url);
    let method = match method_of(c) {
        Ok(m) => m,
        Err(e) => return Err(Box::new(result(name, Outcome::Fail, e, 0))),
    };
    let timeout = c.timeout.map(|t| t.0).unwrap_or(cx.opts.request_timeout);
    let req = Req {
        method,
        url,
        headers: c
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        body: c.body.clone(),
        follow: c.follow_redirects.unwrap_or(true),
        carries_values,
    };
    Ok((name, req, timeout))
}

/// Latency over the first answer and the further samples the check asks
/// for (as many as the server allows): a failed sample is a failure, a cut
/// is a note. Returns the stats and the number of samples wanted.
async fn sample_latency(
    cx: &Ctx,
    req: &Req,
    timeout: Duration,
    first: &Fetched,
    c: &CheckSpec,
    failures: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> (LatencyStats, u32) {
    let wanted = c.samples.unwrap_or(1).clamp(1, config::MAX_SAMPLES);
    let samples = cx.limits.max_samples.map_or(wanted, |max| wanted.min(max));
    if samples < wanted {
        notes.push(format!(
            "samples cut from {wanted} to {samples} (the server's limit)"
        ));
    }
    let mut times = vec![first.elapsed.as_millis() as u64];
    for _ in 1..samples {
        match cx.send(req, timeout, cx.opts.body_cap).await {
            Ok(f) => times.push(f.elapsed.as_millis() as u64),
            Err(FetchError::OverBudget(why)) => {
                notes.push(format!("samples cut at {}: {why}", times.len()));
                break;
            }
            Err(e) => failures.push(format!("a latency sample failed: {e}")),
        }
    }
    times.sort_unstable();
    let stats = LatencyStats {
        samples: times.len() as u32,
        p50_ms: percentile(&times, 50.0),
        p95_ms: percentile(&times, 95.0),
        p99_ms: percentile(&times, 99.0),
        max_ms: *times.last().unwrap_or(&0),
    };
    (stats, samples)
}

/// The check's latency thresholds (`max_ms`, `p95_ms`, `p99_ms`) that `stats` exceed.
fn latency_failures(e: &Expect, stats: &LatencyStats) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(max) = e.max_ms {
        if stats.max_ms > max {
            failures.push(format!("slowest answer {} ms > max_ms {max}", stats.max_ms));
        }
    }
    if let Some(p95) = e.p95_ms {
        if stats.p95_ms > p95 {
            failures.push(format!(
                "p95 {} ms > {p95} ms over {} samples",
                stats.p95_ms, stats.samples
            ));
        }
    }
    if let Some(p99) = e.p99_ms {
        if stats.p99_ms > p99 {
            failures.push(format!(
                "p99 {} ms > {p99} ms over {} samples",
                stats.p99_ms, stats.samples
            ));
        }
    }
    failures
}

/// Status, headers, body and JSON assertions on one response.
pub(crate) fn assert_response(f: &Fetched, c: &CheckSpec) -> Vec<String> {
    let e = &c.expect;
    let mut failures = Vec::new();
    let status_ok = match &e.status {
        Some(s) => s.matches(f.status),
        None => (200..400).contains(&f.status),
    };
    if !status_ok {
        let want = e
            .status
            .as_ref()
            .map(StatusExpect::describe)
            .unwrap_or_else(|| "2xx or 3xx".into());
        failures.push(format!("status {} (expected {want})", f.status));
    }
    for (name, h) in &e.headers {
        let value = f.headers.get(name.as_str()).and_then(|v| v.to_str().ok());
        if h.present == Some(true) && value.is_none() {
            failures.push(format!("header `{name}` missing"));
        }
        if h.present == Some(false) && value.is_some() {
            failures.push(format!("header `{name}` present"));
        }
        if let Some(want) = &h.equals {
            if value != Some(want.as_str()) {
                failures.push(format!(
                    "header `{name}` is {:?}, expected {want:?}",
                    value.unwrap_or("(missing)")
                ));
            }
        }
        if let Some(re) = &h.matches {
            let ok = regex::Regex::new(re)
                .map(|re| value.is_some_and(|v| re.is_match(v)))
                .unwrap_or(false);
            if !ok {
                failures.push(format!(
                    "header `{name}` {:?} does not match /{re}/",
                    value.unwrap_or("(missing)")
                ));
            }
        }
    }
    let text = String::from_utf8_lossy(&f.body);
    if let Some(needle) = &e.body_contains {
        if !text.contains(needle.as_str()) {
            failures.push(format!("body does not contain {needle:?}"));
        }
    }
    if let Some(re) = &e.body_matches {
        if !regex::Regex::new(re)
            .map(|re| re.is_match(&text))
            .unwrap_or(false)
        {
            failures.push(format!("body does not match /{re}/"));
        }
    }
    if !e.json.is_empty() {
        match serde_json::from_slice::<serde_json::Value>(&f.body) {
            Ok(doc) => {
                for a in &e.json {
                    match jsonpath::Assertion::parse(a) {
                        Ok(a) => {
                            if let Err(why) = a.check(&doc) {
                                failures.push(why);
                            }
                        }
                        Err(why) => failures.push(format!("`{a}`: {why}")),
                    }
                }
            }
            Err(err) => {
                let cut = if f.truncated {
                    " (body cut at the size cap)"
                } else {
                    ""
                };
                failures.push(format!("body is not JSON{cut}: {err}"));
            }
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(super::percentile(&v, 95.0), 95);
        assert_eq!(super::percentile(&v, 99.0), 99);
        assert_eq!(super::percentile(&[7], 99.0), 7);
        assert_eq!(super::percentile(&[1, 2, 3, 4], 50.0), 2);
    }

    #[test]
    fn status_classes_and_lists() {
        use super::config::StatusExpect;
        assert!(StatusExpect::Class("2xx".into()).matches(204));
        assert!(!StatusExpect::Class("2xx".into()).matches(301));
        assert!(StatusExpect::List(vec![200, 204]).matches(204));
        assert!(StatusExpect::Code(200).matches(200));
    }
}
