//! The smoke-test engine: HTTP checks with assertions, built-in rules
//! (security headers, TLS, HTTPS redirect, CORS, rate limit), readiness
//! waits, latency percentiles. One engine for the server (previews,
//! production smoke) and the Action's `smoke` gate.
//!
//! Checks run concurrently (bounded); every request has a timeout and
//! response bodies are size-capped. Results are data, rendered by `render`.
//! What a run may do beyond its suite is the caller's [`Limits`]: the
//! server's caps and SSRF guard, or none for the Action.

pub mod config;
pub mod guard;
pub mod jsonpath;
pub mod limits;
pub mod rules;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use url::Url;

pub use config::{CheckSpec, Rule, Severity, SmokeConfig};
use config::{RetryKind, RetryOn, StatusExpect};
pub use limits::{Limits, RequestCap, ServerProbes};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Skipped,
    Warn,
    Fail,
}

impl Outcome {
    pub fn icon(self) -> &'static str {
        match self {
            Outcome::Pass => "✅",
            Outcome::Warn => "⚠️",
            Outcome::Fail => "❌",
            Outcome::Skipped => "⏭️",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
            Outcome::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub samples: u32,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub outcome: Outcome,
    /// One line: why it passed, warned or failed.
    pub reason: String,
    /// Requests made for the readiness wait of the first request (1 when it answered at once).
    pub attempts: u32,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyStats>,
    /// Each failed or warned part, for annotations and details.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// A suite's results against one URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeReport {
    pub url: String,
    pub results: Vec<CheckResult>,
    pub duration_ms: u64,
    /// Requests sent, every retry, sample and redirect counted.
    #[serde(default)]
    pub requests: u32,
}

impl SmokeReport {
    /// The worst outcome (skipped checks do not count).
    pub fn outcome(&self) -> Outcome {
        self.results
            .iter()
            .map(|r| r.outcome)
            .filter(|o| *o != Outcome::Skipped)
            .max()
            .unwrap_or(Outcome::Pass)
    }
    pub fn count(&self, o: Outcome) -> usize {
        self.results.iter().filter(|r| r.outcome == o).count()
    }
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} warned, {} failed{}",
            self.count(Outcome::Pass),
            self.count(Outcome::Warn),
            self.count(Outcome::Fail),
            match self.count(Outcome::Skipped) {
                0 => String::new(),
                n => format!(", {n} skipped"),
            }
        )
    }
}

/// Engine settings (not from the repository file).
#[derive(Debug, Clone)]
pub struct SmokeOptions {
    /// Checks, and requests, in flight at once.
    pub concurrency: usize,
    /// Response bodies are read up to this many bytes.
    pub body_cap: usize,
    /// Timeout of one request unless the check sets one.
    pub request_timeout: Duration,
    /// First backoff of the readiness wait.
    pub retry_base: Duration,
    /// Extra trusted roots (private CAs; tests).
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Host name → addresses to use instead of DNS, trusted as given: the
    /// addresses the SSRF guard checked for the deployment host, or a test's.
    pub resolve: Vec<(String, Vec<std::net::SocketAddr>)>,
    /// The server's caps and per-installation budgets (`shipgate serve`
    /// turns them into [`Limits`]; the Action does not use them).
    pub server: ServerProbes,
}

impl Default for SmokeOptions {
    fn default() -> Self {
        SmokeOptions {
            // Enough that a suite of 50 checks takes as long as its slowest one.
            concurrency: 64,
            body_cap: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            retry_base: Duration::from_millis(250),
            extra_roots: Vec::new(),
            resolve: Vec::new(),
            server: ServerProbes::default(),
        }
    }
}

/// The zero-config suite: `GET /` answers 2xx/3xx within 10 s; security
/// headers and TLS as warnings.
pub fn default_checks() -> Vec<CheckSpec> {
    vec![
        CheckSpec {
            name: Some("GET /".into()),
            path: Some("/".into()),
            ..CheckSpec::default()
        },
        CheckSpec {
            rule: Some(Rule::SecurityHeaders),
            severity: Some(Severity::Warn),
            ..CheckSpec::default()
        },
        CheckSpec {
            rule: Some(Rule::Tls),
            severity: Some(Severity::Warn),
            ..CheckSpec::default()
        },
    ]
}

/// Redirects followed per request at most.
const MAX_REDIRECTS: usize = 10;

/// Shared per run: the HTTP client, deadline, options, limits and what the
/// run has sent.
pub(crate) struct Ctx {
    /// Follows no redirects itself: [`Ctx::send`] admits every hop.
    pub client: reqwest::Client,
    pub resolver: guard::Resolver,
    pub opts: SmokeOptions,
    pub limits: Limits,
    pub deadline: Instant,
    pub retry_on: Vec<RetryOn>,
    /// Requests sent so far (every hop).
    sent: AtomicU32,
    in_flight: tokio::sync::Semaphore,
}

const DEFAULT_RETRY_ON: &[RetryOn] = &[
    RetryOn::Kind(RetryKind::Connect),
    RetryOn::Kind(RetryKind::Timeout),
    RetryOn::Status(408),
    RetryOn::Status(429),
    RetryOn::Status(502),
    RetryOn::Status(503),
    RetryOn::Status(504),
];

fn build_client(opts: &SmokeOptions, resolver: &guard::Resolver, guarded: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(concat!("shipgate-smoke/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(opts.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(resolver.clone()));
    if guarded {
        // Through a proxy the guard would see only the proxy's address.
        b = b.no_proxy();
    }
    for root in &opts.extra_roots {
        if let Ok(cert) = reqwest::Certificate::from_der(root) {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().expect("a client with these settings builds")
}

/// Runs `suite` (or the default) against `base`, within `limits`.
pub async fn run(
    base: &Url,
    suite: &SmokeConfig,
    opts: &SmokeOptions,
    limits: &Limits,
) -> SmokeReport {
    let started = Instant::now();
    let wait = suite
        .wait
        .timeout
        .map(|d| d.0)
        .unwrap_or(Duration::from_secs(60));
    let resolver = guard::Resolver::new(&opts.resolve, limits.guard.clone());
    let cx = Ctx {
        client: build_client(opts, &resolver, limits.guard.is_some()),
        resolver,
        opts: opts.clone(),
        limits: limits.clone(),
        deadline: started + wait,
        retry_on: suite
            .wait
            .retry_on
            .clone()
            .unwrap_or_else(|| DEFAULT_RETRY_ON.to_vec()),
        sent: AtomicU32::new(0),
        in_flight: tokio::sync::Semaphore::new(opts.concurrency.max(1)),
    };
    let mut checks = if suite.checks.is_empty() {
        default_checks()
    } else {
        suite.checks.clone()
    };
    let mut not_run = None;
    if let Some(max) = limits.max_checks {
        if checks.len() > max {
            let n = checks.len() - max;
            checks.truncate(max);
            not_run = Some(result(
                format!("{n} more check{}", if n == 1 { "" } else { "s" }),
                Outcome::Warn,
                format!("not run: the server's limit of {max} checks per suite was reached"),
                0,
            ));
        }
    }
    // Futures built up front (not in a stream closure) keep the borrows simple
    // enough for callers that need a `Send` future.
    let pending: Vec<_> = checks.iter().map(|c| run_check(&cx, base, c)).collect();
    let mut results: Vec<CheckResult> = futures_util::stream::iter(pending)
        .buffered(opts.concurrency.max(1))
        .collect()
        .await;
    results.extend(not_run);
    SmokeReport {
        url: base.to_string(),
        results,
        duration_ms: started.elapsed().as_millis() as u64,
        requests: cx.sent.load(Ordering::SeqCst),
    }
}

async fn run_check(cx: &Ctx, base: &Url, c: &CheckSpec) -> CheckResult {
    let started = Instant::now();
    let mut result = match c.rule {
        Some(rule) => rules::run(cx, base, rule, c).await,
        None => request_check(cx, base, c).await,
    };
    // A rule at `warn` severity never fails the suite.
    if c.severity == Some(Severity::Warn) && result.outcome == Outcome::Fail {
        result.outcome = Outcome::Warn;
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}

/// A response, with its body read up to the cap.
pub(crate) struct Fetched {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    pub truncated: bool,
    pub elapsed: Duration,
}

pub(crate) enum FetchError {
    Connect(String),
    Timeout,
    Other(String),
    /// The SSRF guard refused a hop; nothing was sent to it.
    Refused(String),
    /// The run's request cap was reached before this request.
    OverBudget(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Connect(e) => write!(f, "connection failed: {e}"),
            FetchError::Timeout => f.write_str("timed out"),
            FetchError::Other(e) => f.write_str(e),
            FetchError::Refused(e) => write!(f, "refused: {e}"),
            FetchError::OverBudget(e) => write!(f, "not run: {e}"),
        }
    }
}

fn classify(e: reqwest::Error) -> FetchError {
    let mut innermost = None;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<guard::Refused>() {
            return FetchError::Refused(refused.0.clone());
        }
        innermost = Some(s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_connect() {
        FetchError::Connect(innermost.unwrap_or_else(|| e.to_string()))
    } else {
        FetchError::Other(e.to_string())
    }
}

/// A request a check makes: rebuilt for every redirect hop.
#[derive(Clone)]
pub(crate) struct Req {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Follow redirects (each hop admitted and counted like the first).
    pub follow: bool,
}

impl Req {
    pub fn get(url: &Url) -> Req {
        Req {
            method: reqwest::Method::GET,
            url: url.clone(),
            headers: Vec::new(),
            body: None,
            follow: true,
        }
    }
}

/// A redirect target as reports show it: without credentials, query or
/// fragment, which may carry tokens.
fn without_secrets(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Credentials are not carried to another origin, as browsers and reqwest do.
const SENSITIVE: &[&str] = &[
    "authorization",
    "cookie",
    "cookie2",
    "proxy-authorization",
    "www-authenticate",
];

impl Ctx {
    /// Lets one hop go: the guard admits its URL and the run's cap has room.
    pub(crate) fn admit(&self, url: &Url, hop: usize) -> Result<(), FetchError> {
        if let Some(guard) = &self.limits.guard {
            guard.admit(url).map_err(|why| {
                FetchError::Refused(if hop == 0 {
                    why
                } else {
                    format!("redirect to {}: {why}", without_secrets(url))
                })
            })?;
        }
        if let Some(cap) = &self.limits.max_requests {
            self.sent
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < cap.requests).then_some(n + 1)
                })
                .map_err(|_| FetchError::OverBudget(cap.reason.clone()))?;
        } else {
            self.sent.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// One request without retries, following redirects when asked; the
    /// timeout bounds the whole chain, the body is read up to `cap`.
    pub(crate) async fn send(
        &self,
        req: &Req,
        timeout: Duration,
        cap: usize,
    ) -> Result<Fetched, FetchError> {
        // Held for the whole chain and its body; waiting for it is not
        // counted against the timeout or the latency.
        let _permit = self.in_flight.acquire().await.expect("never closed");
        let started = Instant::now();
        let work = async {
            let mut req = req.clone();
            let mut hop = 0;
            let mut resp = loop {
                // (The guard refuses other schemes itself, with its reason.)
                if self.limits.guard.is_none() && !matches!(req.url.scheme(), "http" | "https") {
                    return Err(FetchError::Other(format!(
                        "cannot request a `{}` URL",
                        req.url.scheme()
                    )));
                }
                self.admit(&req.url, hop)?;
                let mut b = self.client.request(req.method.clone(), req.url.clone());
                for (k, v) in &req.headers {
                    b = b.header(k.as_str(), v.as_str());
                }
                if let Some(body) = &req.body {
                    b = b.body(body.clone());
                }
                let resp = b.send().await.map_err(classify)?;
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| req.url.join(l).ok());
                let status = resp.status().as_u16();
                let next = match location {
                    Some(next) if req.follow && matches!(status, 301 | 302 | 303 | 307 | 308) => {
                        next
                    }
                    _ => break resp,
                };
                hop += 1;
                if hop > MAX_REDIRECTS {
                    return Err(FetchError::Other(format!(
                        "more than {MAX_REDIRECTS} redirects"
                    )));
                }
                if status == 303
                    || (matches!(status, 301 | 302)
                        && req.method != reqwest::Method::GET
                        && req.method != reqwest::Method::HEAD)
                {
                    req.method = reqwest::Method::GET;
                    req.body = None;
                }
                if next.origin() != req.url.origin() {
                    req.headers
                        .retain(|(k, _)| !SENSITIVE.contains(&k.to_ascii_lowercase().as_str()));
                }
                req.url = next;
            };
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let mut body = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = resp.chunk().await.map_err(classify)? {
                let room = cap.saturating_sub(body.len());
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Fetched {
                status,
                headers,
                body,
                truncated,
                elapsed: started.elapsed(),
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout),
        }
    }
}

/// One request with the readiness wait: retryable failures are retried with
/// exponential backoff and jitter (honouring `Retry-After`) until the
/// deadline. Returns the last outcome and the number of attempts.
pub(crate) async fn fetch_ready(
    cx: &Ctx,
    req: &Req,
    timeout: Duration,
) -> (Result<Fetched, FetchError>, u32) {
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let r = cx.send(req, timeout, cx.opts.body_cap).await;
        let retryable = match &r {
            Err(FetchError::Connect(_)) => cx.retry_on.contains(&RetryOn::Kind(RetryKind::Connect)),
            Err(FetchError::Timeout) => cx.retry_on.contains(&RetryOn::Kind(RetryKind::Timeout)),
            Err(FetchError::Other(_) | FetchError::Refused(_) | FetchError::OverBudget(_)) => false,
            Ok(f) => cx.retry_on.contains(&RetryOn::Status(f.status)),
        };
        if !retryable {
            return (r, attempts);
        }
        let backoff = crate::backoff::Backoff {
            base: cx.opts.retry_base,
            cap: Duration::from_secs(5),
            jitter: 0.25,
        }
        .delay(attempts);
        let retry_after = match &r {
            Ok(f) => f
                .headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
            Err(_) => None,
        };
        let wait = retry_after.map_or(backoff, |ra| ra.max(backoff.min(Duration::from_millis(50))));
        if Instant::now() + wait >= cx.deadline {
            return (r, attempts);
        }
        tokio::time::sleep(wait).await;
    }
}

/// The result of a check whose request did not get an answer. A request
/// the run's cap stopped is a warning: the check did not run.
pub(crate) fn failed(name: String, e: &FetchError, attempts: u32) -> CheckResult {
    match e {
        FetchError::OverBudget(why) if attempts <= 1 => {
            result(name, Outcome::Warn, format!("not run: {why}"), 0)
        }
        FetchError::OverBudget(why) => result(
            name,
            Outcome::Warn,
            format!("stopped after {} attempts: {why}", attempts - 1),
            attempts - 1,
        ),
        e if attempts > 1 => result(
            name,
            Outcome::Fail,
            format!("{e} after {attempts} attempts"),
            attempts,
        ),
        e => result(name, Outcome::Fail, e.to_string(), attempts),
    }
}

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

async fn request_check(cx: &Ctx, base: &Url, c: &CheckSpec) -> CheckResult {
    let url = match target_url(base, c) {
        Ok(u) => u,
        Err(e) => {
            return result(
                c.name.clone().unwrap_or_else(|| "request".into()),
                Outcome::Fail,
                e,
                0,
            )
        }
    };
    let name = check_name(c, &url);
    let method = match reqwest::Method::from_bytes(
        c.method
            .as_deref()
            .unwrap_or("GET")
            .to_ascii_uppercase()
            .as_bytes(),
    ) {
        Ok(m) => m,
        Err(_) => {
            return result(
                name,
                Outcome::Fail,
                format!("bad method `{}`", c.method.as_deref().unwrap_or("")),
                0,
            )
        }
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
        follow: true,
    };
    let (first, attempts) = fetch_ready(cx, &req, timeout).await;
    let first = match first {
        Ok(f) => f,
        Err(e) => return failed(name, &e, attempts),
    };
    let mut failures = assert_response(&first, c);
    let mut notes = Vec::new();

    // Latency: the first answer plus further samples.
    let wanted = c.samples.unwrap_or(1).clamp(1, config::MAX_SAMPLES);
    let samples = cx.limits.max_samples.map_or(wanted, |max| wanted.min(max));
    if samples < wanted {
        notes.push(format!(
            "samples cut from {wanted} to {samples} (the server's limit)"
        ));
    }
    let mut times = vec![first.elapsed.as_millis() as u64];
    for _ in 1..samples {
        match cx.send(&req, timeout, cx.opts.body_cap).await {
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
    let e = &c.expect;
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

pub(crate) fn result(name: String, outcome: Outcome, reason: String, attempts: u32) -> CheckResult {
    CheckResult {
        name,
        outcome,
        reason,
        attempts,
        duration_ms: 0,
        latency: None,
        details: Vec::new(),
    }
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
