//! The HTTP layer of a run: the per-run context ([`Ctx`]) with its client,
//! SSRF guard and request cap, one request with its redirect chain, and the
//! readiness wait that retries it. Apart from the checks, which only say
//! what to request and what to expect.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use url::Url;

use super::config::{RetryKind, RetryOn};
use super::{guard, result, CheckResult, Limits, Outcome, SmokeOptions};

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
    /// Requests in flight at once; a permit is held for a whole chain.
    pub(super) in_flight: tokio::sync::Semaphore,
    /// Values flows filled in, handed to the caller to mask.
    secrets: std::sync::Mutex<super::template::Secrets>,
}

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
    /// It carries `${…}` values (a password, a saved token): a redirect to
    /// another origin is refused, not followed, since a header or a body
    /// (re-sent on 307 and 308) would take them to that origin.
    pub carries_values: bool,
}

impl Req {
    pub fn get(url: &Url) -> Req {
        Req {
            method: reqwest::Method::GET,
            url: url.clone(),
            headers: Vec::new(),
            body: None,
            follow: true,
            carries_values: false,
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
    /// The context of one run: its client (through `resolver`), options,
    /// limits, readiness deadline and what a wait retries on.
    pub(crate) fn new(
        opts: &SmokeOptions,
        limits: &Limits,
        deadline: Instant,
        retry_on: Vec<RetryOn>,
    ) -> Ctx {
        let resolver = guard::Resolver::new(&opts.resolve, limits.guard.clone());
        Ctx {
            client: build_client(opts, &resolver, limits.guard.is_some()),
            resolver,
            opts: opts.clone(),
            limits: limits.clone(),
            deadline,
            retry_on,
            sent: AtomicU32::new(0),
            in_flight: tokio::sync::Semaphore::new(opts.concurrency.max(1)),
            secrets: Default::default(),
        }
    }

    /// Requests sent so far (every hop).
    pub(crate) fn requests_sent(&self) -> u32 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Keeps the values `vars` filled in, for the caller to mask.
    pub(crate) fn keep_secrets(&self, vars: &super::template::Vars) {
        if let Ok(mut kept) = self.secrets.lock() {
            kept.extend(vars);
        }
    }

    pub(crate) fn take_secrets(&self) -> super::template::Secrets {
        self.secrets
            .lock()
            .map(|mut k| std::mem::take(&mut *k))
            .unwrap_or_default()
    }

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
                if next.origin() != req.url.origin() && req.carries_values {
                    return Err(FetchError::Refused(format!(
                        "redirect to {}: another origin, and this request carries `${{…}}` values (assert on the redirect with `follow_redirects: false`)",
                        without_secrets(&next)
                    )));
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
