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
pub mod headers;
pub mod jsonpath;
pub mod limits;
pub mod rules;
pub mod template;

mod check;
mod fetch;
mod flow;
mod report;
mod tls;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use url::Url;

use check::request_check;
pub(crate) use check::{check_name, target_url};
pub use config::{CheckSpec, Rule, Severity, SmokeConfig};
use config::{RetryKind, RetryOn};
pub(crate) use fetch::{failed, fetch_ready, Ctx, FetchError, Req};
pub use limits::{Limits, RequestCap, ServerProbes};
pub(crate) use report::result;
pub use report::{CheckResult, LatencyStats, Outcome, SmokeReport};

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
    /// `${env.NAME}` values handed over by the caller (the Action: its
    /// step's environment). `None` (the server): checks that need them are
    /// not run, and say so.
    pub env: Option<template::Vars>,
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
            env: None,
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

const DEFAULT_RETRY_ON: &[RetryOn] = &[
    RetryOn::Kind(RetryKind::Connect),
    RetryOn::Kind(RetryKind::Timeout),
    RetryOn::Status(408),
    RetryOn::Status(429),
    RetryOn::Status(502),
    RetryOn::Status(503),
    RetryOn::Status(504),
];

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
    let retry_on = suite
        .wait
        .retry_on
        .clone()
        .unwrap_or_else(|| DEFAULT_RETRY_ON.to_vec());
    let cx = Ctx::new(opts, limits, started + wait, retry_on);
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
        requests: cx.requests_sent(),
        secrets: cx.take_secrets(),
    }
}

async fn run_check(cx: &Ctx, base: &Url, c: &CheckSpec) -> CheckResult {
    let started = Instant::now();
    let mut result = match c.rule {
        Some(rule) => rules::run(cx, base, rule, c).await,
        None if !c.flow.is_empty() => flow::run(cx, base, c).await,
        None if !c.templates().is_empty() => flow::request_with_env(cx, base, c).await,
        None => request_check(cx, base, c).await,
    };
    // A rule at `warn` severity never fails the suite.
    if c.severity == Some(Severity::Warn) && result.outcome == Outcome::Fail {
        result.outcome = Outcome::Warn;
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    result
}
