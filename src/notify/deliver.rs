//! One notification's way to one destination: the body its kind takes,
//! POSTed with retries (`crate::backoff`) on connection errors, 5xx and
//! 429, a bounded number of times. What a failure says never holds the URL.

use std::time::Duration;

use super::destination::{Destination, Kind};
use super::Message;
use crate::backoff::Backoff;

/// How often and how patiently a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub backoff: Backoff,
    /// Each attempt's time limit.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            backoff: Backoff {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(30),
                jitter: 0.2,
            },
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The default policy whose first wait is `base`.
    pub fn with_base(base: Duration) -> Self {
        let mut p = RetryPolicy::default();
        p.backoff.base = base;
        p.backoff.cap = p.backoff.cap.max(base);
        p
    }
}

/// A delivery that did not arrive: after how many attempts, and why (no URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (after {attempts} attempt(s))")]
pub struct Failure {
    pub attempts: u32,
    pub reason: String,
}

/// The HTTP client notifications are sent with: no redirects (a webhook
/// answers, it does not send elsewhere), a per-attempt time limit.
pub fn client(policy: &RetryPolicy) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(policy.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("shipgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// The body `kind` takes for `message`. Slack's text has `&`, `<` and `>`
/// escaped as Slack asks, so text from outside (an environment's name, a
/// URL) cannot mention `<!channel>` or draw a link of its own.
pub fn body(kind: Kind, message: &Message) -> serde_json::Value {
    match kind {
        Kind::Slack => serde_json::json!({ "text": slack_escape(&message.text) }),
        Kind::Json => message.json_body(),
    }
}

fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

enum Attempt {
    Sent,
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
    GiveUp(String),
}

async fn attempt(client: &reqwest::Client, url: &str, body: &serde_json::Value) -> Attempt {
    match client.post(url).json(body).send().await {
        Ok(r) if r.status().is_success() => Attempt::Sent,
        Ok(r) => {
            let status = r.status();
            let reason = format!("answered {}", status.as_u16());
            if status.as_u16() == 429 {
                let wait = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                Attempt::Retry { reason, wait }
            } else if status.is_server_error() {
                Attempt::Retry { reason, wait: None }
            } else {
                Attempt::GiveUp(reason)
            }
        }
        // Only what the error is, never its text: it can carry the URL.
        Err(e) if e.is_connect() => Attempt::Retry {
            reason: "could not connect".into(),
            wait: None,
        },
        // The request may have arrived: not sent again.
        Err(e) if e.is_timeout() => Attempt::GiveUp("timed out".into()),
        Err(_) => Attempt::GiveUp("the request failed".into()),
    }
}

/// POSTs `message` to `destination`, retrying as `policy` says. `Ok`: the
/// attempts it took.
pub async fn deliver(
    client: &reqwest::Client,
    destination: &Destination,
    message: &Message,
    policy: &RetryPolicy,
) -> Result<u32, Failure> {
    let body = body(destination.kind, message);
    let attempts = policy.attempts.max(1);
    for n in 1..=attempts {
        let (reason, wait) = match attempt(client, destination.url(), &body).await {
            Attempt::Sent => return Ok(n),
            Attempt::GiveUp(reason) => {
                return Err(Failure {
                    attempts: n,
                    reason,
                })
            }
            Attempt::Retry { reason, wait } => (reason, wait),
        };
        if n == attempts {
            return Err(Failure {
                attempts: n,
                reason,
            });
        }
        let backoff = policy.backoff.delay(n);
        // A 429's Retry-After is honoured, within the backoff's cap.
        let wait = wait
            .map(|w| w.min(policy.backoff.cap).max(backoff))
            .unwrap_or(backoff);
        tracing::debug!(destination = %destination.name, attempt = n, reason = %reason, "notification will be retried");
        tokio::time::sleep(wait).await;
    }
    unreachable!("the loop returns on its last attempt")
}
