//! The GitHub client: octocrab for transport and authentication, wrapped so
//! every call shipgate makes goes through one place that retries, honours
//! rate limits, counts calls and returns typed errors.
//!
//! - Token auth (`GITHUB_TOKEN`) or GitHub App auth (a JWT exchanged for an
//!   installation token per installation id; octocrab caches the token and
//!   renews it 30 s before it expires).
//! - 5xx responses and transport errors are retried with exponential backoff,
//!   except for POST: a POST that failed that way may still have taken effect
//!   (a comment posted, a deployment created), so the error goes back to the
//!   worker, whose retry of the whole delivery finds the effect instead of
//!   repeating it.
//! - A 401 with an installation token (revoked, or expired early by clock
//!   skew): octocrab drops the cached token and tries once more with a fresh
//!   one; a second 401 is returned as `Unauthorized`.
//! - 429, and 403 with `x-ratelimit-remaining: 0` or `Retry-After`, wait for
//!   `Retry-After` or `x-ratelimit-reset` and try again, unless the wait is
//!   longer than `max_rate_limit_wait` (then the delivery is retried later).
//! - 401/403/404/422 are returned at once as typed errors.

pub mod content;
pub mod events;
pub mod protection;
pub mod repos;
pub mod rulesets;
pub mod signature;

/// Pages of 100 read at most from a list endpoint (reviews, check runs,
/// statuses, issues): enough for any real pull request, and a bound on what
/// one hostile list costs.
pub const MAX_LIST_PAGES: u32 = 20;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use octocrab::models::{AppId, InstallationId};
use octocrab::Octocrab;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::metrics::Metrics;

/// How shipgate authenticates to GitHub.
#[derive(Clone)]
pub enum GitHubAuth {
    /// A personal access token or an Actions `GITHUB_TOKEN`.
    Token(SecretString),
    /// A GitHub App: a JWT signed with the private key is exchanged for an
    /// installation token per installation.
    App {
        app_id: u64,
        private_key: SecretString,
    },
}

impl std::fmt::Debug for GitHubAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GitHubAuth::Token(_) => f.write_str("Token([REDACTED])"),
            GitHubAuth::App { app_id, .. } => {
                write!(f, "App {{ app_id: {app_id}, private_key: [REDACTED] }}")
            }
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub rejected the credentials (401): {0}")]
    Unauthorized(String),
    #[error("GitHub refused the request (403): {0}")]
    Forbidden(String),
    #[error("not found on GitHub (404): {0}")]
    NotFound(String),
    #[error("GitHub could not process the request (422): {0}")]
    Unprocessable(String),
    #[error("GitHub rate limit: retry in {retry_after:?}")]
    RateLimited { retry_after: Duration },
    #[error("GitHub answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("could not reach GitHub: {0}")]
    Transport(String),
    #[error("unexpected response from GitHub: {0}")]
    Decode(String),
    #[error("this delivery has no installation id, which GitHub App authentication needs")]
    NoInstallation,
}

impl GitHubError {
    /// Whether trying the same thing again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            GitHubError::RateLimited { .. } | GitHubError::Transport(_) => true,
            GitHubError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// How hard the client tries before giving up on one call.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts for 5xx and transport errors, including the first.
    pub max_attempts: u32,
    pub base_delay: Duration,
    /// The longest rate-limit wait taken inline.
    pub max_rate_limit_wait: Duration,
    /// Timeout for one HTTP request.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_rate_limit_wait: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A response that passed the status checks.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GitHubError> {
        serde_json::from_slice(&self.body).map_err(|e| GitHubError::Decode(e.to_string()))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The shared client; cheap to clone.
#[derive(Clone)]
pub struct GitHub {
    inner: Arc<Inner>,
}

struct Inner {
    root: Arc<Octocrab>,
    is_app: bool,
    // Arc: cloning an Octocrab copies its token cache, so each installation's
    // client is shared to keep one token per installation.
    installations: Mutex<HashMap<i64, Arc<Octocrab>>>,
    policy: RetryPolicy,
    metrics: Metrics,
    login: tokio::sync::OnceCell<String>,
}

impl GitHub {
    pub fn new(
        auth: &GitHubAuth,
        api_url: &url::Url,
        policy: RetryPolicy,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let builder = Octocrab::builder()
            .base_uri(api_url.as_str())?
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(policy.request_timeout));
        let (root, is_app) = match auth {
            GitHubAuth::Token(token) => (
                builder
                    .personal_token(token.expose_secret().to_string())
                    .build()?,
                false,
            ),
            GitHubAuth::App {
                app_id,
                private_key,
            } => {
                let key =
                    octocrab::EncodingKey::from_rsa_pem(private_key.expose_secret().as_bytes())?;
                (builder.app(AppId(*app_id), key).build()?, true)
            }
        };
        Ok(GitHub {
            inner: Arc::new(Inner {
                root: Arc::new(root),
                is_app,
                installations: Mutex::new(HashMap::new()),
                policy,
                metrics,
                login: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// A client acting for `installation` (App auth), or with the token.
    pub fn api(&self, installation: Option<i64>) -> Result<Api, GitHubError> {
        if !self.inner.is_app {
            return Ok(Api {
                octo: self.inner.root.clone(),
                github: self.clone(),
            });
        }
        let id = installation.ok_or(GitHubError::NoInstallation)?;
        Ok(Api {
            octo: self.installation_client(id)?,
            github: self.clone(),
        })
    }

    /// Whether this client authenticates as a GitHub App.
    pub fn is_app(&self) -> bool {
        self.inner.is_app
    }

    /// A client for the App's own endpoints (`/app/...`), authenticated with
    /// the App's JWT (or the token, which GitHub will refuse there).
    pub fn app_api(&self) -> Api {
        Api {
            octo: self.inner.root.clone(),
            github: self.clone(),
        }
    }

    /// The shared client of one installation (one token cache).
    fn installation_client(&self, id: i64) -> Result<Arc<Octocrab>, GitHubError> {
        let mut cache = self
            .inner
            .installations
            .lock()
            .expect("installation cache poisoned");
        if let Some(o) = cache.get(&id) {
            return Ok(o.clone());
        }
        let o = Arc::new(
            self.inner
                .root
                .installation(InstallationId(id as u64))
                .map_err(|e| GitHubError::Transport(e.to_string()))?,
        );
        cache.insert(id, o.clone());
        Ok(o)
    }

    /// The bot's own login (`<slug>[bot]` for an App, the token's user
    /// otherwise), fetched once and remembered; handlers use it to ignore the
    /// bot's own comments.
    pub async fn bot_login(&self) -> Result<String, GitHubError> {
        self.inner
            .login
            .get_or_try_init(|| async {
                let api = Api {
                    octo: self.inner.root.clone(),
                    github: self.clone(),
                };
                if self.inner.is_app {
                    #[derive(serde::Deserialize)]
                    struct App {
                        slug: String,
                    }
                    let app: App = api.get("/app").await?;
                    Ok(format!("{}[bot]", app.slug))
                } else {
                    #[derive(serde::Deserialize)]
                    struct User {
                        login: String,
                    }
                    let user: User = api.get("/user").await?;
                    Ok(user.login)
                }
            })
            .await
            .cloned()
    }
}

/// One authenticated client for one installation (or the token).
#[derive(Clone)]
pub struct Api {
    octo: Arc<Octocrab>,
    github: GitHub,
}

impl Api {
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, GitHubError> {
        self.send(Method::GET, path, None::<&()>, HeaderMap::new())
            .await?
            .json()
    }

    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, GitHubError> {
        self.send(Method::POST, path, Some(body), HeaderMap::new())
            .await?
            .json()
    }

    pub async fn patch<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, GitHubError> {
        self.send(Method::PATCH, path, Some(body), HeaderMap::new())
            .await?
            .json()
    }

    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, GitHubError> {
        self.send(Method::PUT, path, Some(body), HeaderMap::new())
            .await?
            .json()
    }

    pub async fn delete(&self, path: &str) -> Result<(), GitHubError> {
        self.send(Method::DELETE, path, None::<&()>, HeaderMap::new())
            .await
            .map(|_| ())
    }

    /// Sends one request with retries. `path` starts with `/` and is relative
    /// to the API base URL (query string included).
    pub async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        headers: HeaderMap,
    ) -> Result<Response, GitHubError> {
        let policy = &self.github.inner.policy;
        let metrics = &self.github.inner.metrics;
        // A failed POST may have taken effect; only the delivery's retry,
        // which looks for the effect first, may try it again.
        let may_repeat = method != Method::POST;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = self.send_once(&method, path, body, &headers).await;
            let retry_in = match outcome {
                Err(transport) => {
                    metrics.github_api_calls.with_label_values(&["error"]).inc();
                    if attempt >= policy.max_attempts || !may_repeat {
                        return Err(GitHubError::Transport(transport));
                    }
                    tracing::warn!(%method, path, attempt, error = %transport, "GitHub request failed; retrying");
                    exponential(policy.base_delay, attempt)
                }
                Ok(resp) => {
                    metrics
                        .github_api_calls
                        .with_label_values(&[resp.status.as_str()])
                        .inc();
                    if let Some(remaining) = resp
                        .header("x-ratelimit-remaining")
                        .and_then(|v| v.trim().parse::<i64>().ok())
                    {
                        let resource = resp
                            .header("x-ratelimit-resource")
                            .map_or("core", str::trim);
                        metrics.observe_rate_limit(resource, remaining, crate::now_ms());
                    }
                    if resp.status.is_success() || resp.status == StatusCode::NOT_MODIFIED {
                        return Ok(resp);
                    }
                    if let Some(wait) = rate_limit_wait(&resp) {
                        if wait > policy.max_rate_limit_wait || attempt >= policy.max_attempts + 2 {
                            return Err(GitHubError::RateLimited { retry_after: wait });
                        }
                        tracing::warn!(%method, path, wait_ms = wait.as_millis() as u64, "GitHub rate limit; waiting");
                        wait
                    } else if resp.status.is_server_error()
                        && attempt < policy.max_attempts
                        && may_repeat
                    {
                        tracing::warn!(%method, path, attempt, status = resp.status.as_u16(), "GitHub server error; retrying");
                        exponential(policy.base_delay, attempt)
                    } else {
                        return Err(error_for(&resp));
                    }
                }
            };
            tokio::time::sleep(retry_in).await;
        }
    }

    async fn send_once<B: Serialize + ?Sized>(
        &self,
        method: &Method,
        path: &str,
        body: Option<&B>,
        headers: &HeaderMap,
    ) -> Result<Response, String> {
        let mut builder = http::Request::builder().method(method.clone()).uri(path);
        for (k, v) in headers {
            builder = builder.header(k, v);
        }
        let request = self
            .octo
            .build_request(builder, body)
            .map_err(|e| e.to_string())?;
        let timeout = self.github.inner.policy.request_timeout;
        let resp = tokio::time::timeout(timeout, self.octo.execute(request))
            .await
            .map_err(|_| format!("timed out after {timeout:?}"))?
            .map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let body = tokio::time::timeout(timeout, body.collect())
            .await
            .map_err(|_| format!("reading the body timed out after {timeout:?}"))?
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// The wait before retrying a request after failed attempt `attempt`.
fn exponential(base: Duration, attempt: u32) -> Duration {
    crate::backoff::Backoff {
        base,
        // Far above what `max_attempts` reaches with the default base; a
        // request that needs longer is better retried with its delivery.
        cap: Duration::from_secs(30),
        jitter: 0.25,
    }
    .delay(attempt)
}

/// How long to wait before retrying a rate-limited response, or `None` when
/// the response is not a rate limit (a plain 403 is a permission problem).
fn rate_limit_wait(resp: &Response) -> Option<Duration> {
    let status = resp.status;
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::FORBIDDEN {
        return None;
    }
    if let Some(secs) = resp
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_secs(secs));
    }
    let exhausted = resp.header("x-ratelimit-remaining").map(str::trim) == Some("0");
    if exhausted {
        if let Some(reset) = resp
            .header("x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            let now = crate::now_ms() / 1000;
            return Some(Duration::from_secs((reset - now).max(0) as u64 + 1));
        }
    }
    if status == StatusCode::TOO_MANY_REQUESTS || exhausted {
        // Secondary rate limits without headers: GitHub asks for at least a minute.
        return Some(Duration::from_secs(60));
    }
    None
}

fn error_for(resp: &Response) -> GitHubError {
    #[derive(serde::Deserialize)]
    struct Body {
        message: Option<String>,
        #[serde(default)]
        errors: Option<serde_json::Value>,
    }
    let message = match serde_json::from_slice::<Body>(&resp.body) {
        Ok(Body {
            message: Some(m),
            errors: Some(e),
        }) => format!("{m} ({e})"),
        Ok(Body {
            message: Some(m), ..
        }) => m,
        _ => String::from_utf8_lossy(&resp.body)
            .chars()
            .take(200)
            .collect(),
    };
    match resp.status.as_u16() {
        401 => GitHubError::Unauthorized(message),
        403 => GitHubError::Forbidden(message),
        404 => GitHubError::NotFound(message),
        422 => GitHubError::Unprocessable(message),
        status => GitHubError::Status { status, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)]) -> Response {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: Bytes::from_static(br#"{"message":"nope"}"#),
        }
    }

    #[test]
    fn plain_403_is_not_a_rate_limit() {
        assert_eq!(rate_limit_wait(&resp(403, &[])), None);
        assert!(matches!(error_for(&resp(403, &[])), GitHubError::Forbidden(m) if m == "nope"));
    }

    #[test]
    fn retry_after_and_reset_headers_set_the_wait() {
        assert_eq!(
            rate_limit_wait(&resp(429, &[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            rate_limit_wait(&resp(403, &[("retry-after", "0")])),
            Some(Duration::ZERO)
        );
        let reset = (crate::now_ms() / 1000 + 30).to_string();
        let wait = rate_limit_wait(&resp(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ],
        ))
        .unwrap();
        assert!((29..=32).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(
            rate_limit_wait(&resp(429, &[])),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn typed_errors_by_status() {
        assert!(matches!(
            error_for(&resp(401, &[])),
            GitHubError::Unauthorized(_)
        ));
        assert!(matches!(
            error_for(&resp(404, &[])),
            GitHubError::NotFound(_)
        ));
        assert!(matches!(
            error_for(&resp(422, &[])),
            GitHubError::Unprocessable(_)
        ));
        assert!(error_for(&resp(502, &[])).is_transient());
        assert!(!error_for(&resp(404, &[])).is_transient());
    }
}
