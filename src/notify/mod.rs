//! Notifications: deploy and smoke events sent to the destinations the
//! operator named (`SHIPGATE_NOTIFY`, and `SHIPGATE_SLACK_WEBHOOK_URL` as
//! the destination `slack`), routed by a repository's `notify:`.
//!
//! Sending never blocks the caller: each notification is admitted into its
//! destination's bounded queue (and the owner's share of it) or dropped
//! with a log line, then delivered in the background, a few at a time per
//! destination, with retries. No log line ever holds a destination's URL.

pub mod deliver;
pub mod destination;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use deliver::{Failure, RetryPolicy};
pub use destination::{Destination, Kind, DEFAULT_DESTINATION};

/// What happened: the names a repository's `notify:` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A deployment status says `in_progress`.
    DeployStarted,
    /// A deployment status says `success`.
    DeploySucceeded,
    /// A deployment status says `failure` or `error`.
    DeployFailed,
    /// The server's smoke run of a deployment failed.
    SmokeFailed,
    /// A smoke run passed after the environment's previous one failed.
    SmokeRecovered,
    /// An automatic rollback (or why there was none).
    Rollback,
    /// `/deploy … force` deployed through a freeze.
    FreezeOverride,
    /// The deployment protection rule rejected a deployment.
    ProtectionRejected,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::DeployStarted => "deploy_started",
            Event::DeploySucceeded => "deploy_succeeded",
            Event::DeployFailed => "deploy_failed",
            Event::SmokeFailed => "smoke_failed",
            Event::SmokeRecovered => "smoke_recovered",
            Event::Rollback => "rollback",
            Event::FreezeOverride => "freeze_override",
            Event::ProtectionRejected => "protection_rejected",
        }
    }
}

/// The events a repository without `notify:` sends to `slack`: what
/// shipgate sent before routes existed.
pub const DEFAULT_EVENTS: &[Event] = &[
    Event::DeploySucceeded,
    Event::DeployFailed,
    Event::SmokeFailed,
    Event::Rollback,
];

/// One route of a repository's `notify:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// A destination the server's operator named in `SHIPGATE_NOTIFY` (or
    /// `slack`, the operator's `SHIPGATE_SLACK_WEBHOOK_URL`).
    pub to: String,
    /// The events sent there (default: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
}

impl Route {
    pub fn wants(&self, event: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e.as_str() == event))
    }
}

/// One notification: the event, what it is about, and its text (from
/// `render/`).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// An [`Event`]'s name, or the Action's `check_passed`/`check_warned`/`check_failed`.
    pub event: &'static str,
    pub repository: String,
    pub environment: Option<String>,
    pub sha: Option<String>,
    /// The deployment's URL, its log, or the workflow run.
    pub url: Option<String>,
    pub text: String,
}

impl Message {
    pub fn new(event: Event, repository: &str, text: String) -> Self {
        Message {
            event: event.as_str(),
            repository: repository.to_string(),
            environment: None,
            sha: None,
            url: None,
            text,
        }
    }

    pub fn environment(mut self, environment: &str) -> Self {
        self.environment = Some(environment.to_string());
        self
    }

    pub fn sha(mut self, sha: &str) -> Self {
        self.sha = Some(sha.to_string());
        self
    }

    pub fn url(mut self, url: Option<&str>) -> Self {
        self.url = url.map(str::to_string);
        self
    }

    /// The JSON webhook's body (version 1): `version`, `event`,
    /// `repository`, `environment`, `sha`, `url`, `text`; absent values are `null`.
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::json!({
            "version": 1,
            "event": self.event,
            "repository": self.repository,
            "environment": self.environment,
            "sha": self.sha,
            "url": self.url,
            "text": self.text,
        })
    }
}

/// How much of the server notifications may hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NotifyLimits {
    /// Notifications waiting or being sent, per destination; more are dropped.
    pub queue: usize,
    /// Of those, at most this many from one repository owner (so one tenant
    /// cannot fill a shared destination's queue).
    pub per_owner: usize,
    /// Deliveries under way at once, per destination.
    pub concurrency: usize,
    pub retry: RetryPolicy,
}

impl Default for NotifyLimits {
    fn default() -> Self {
        NotifyLimits {
            queue: 256,
            per_owner: 32,
            concurrency: 2,
            retry: RetryPolicy::default(),
        }
    }
}

/// A destination with its queue.
struct Lane {
    destination: Destination,
    /// Admitted and not yet finished, by owner.
    queued: Mutex<HashMap<String, usize>>,
    sending: tokio::sync::Semaphore,
}

struct Inner {
    lanes: BTreeMap<String, Arc<Lane>>,
    client: reqwest::Client,
    limits: NotifyLimits,
    metrics: Option<crate::metrics::Metrics>,
}

impl Inner {
    /// Counts an outcome of a destination the operator named (never a
    /// name a repository made up: the label set stays the operator's).
    fn count(&self, destination: &str, outcome: &str) {
        if let Some(m) = &self.metrics {
            m.notifications
                .with_label_values(&[destination, outcome])
                .inc();
        }
    }
}

/// Sends notifications; cheap to clone. The default sends nothing.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

/// Why a notification was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No destination of that name serves the repository.
    Unknown,
    /// The destination's queue, or the owner's share of it, is full.
    Full,
}

impl Notifier {
    pub fn new(destinations: Vec<Destination>, limits: NotifyLimits) -> Self {
        if destinations.is_empty() {
            return Notifier::default();
        }
        let lanes = destinations
            .into_iter()
            .map(|d| {
                let lane = Lane {
                    destination: d,
                    queued: Mutex::new(HashMap::new()),
                    sending: tokio::sync::Semaphore::new(limits.concurrency.max(1)),
                };
                (lane.destination.name.clone(), Arc::new(lane))
            })
            .collect();
        Notifier {
            inner: Some(Arc::new(Inner {
                lanes,
                client: deliver::client(&limits.retry),
                limits,
                metrics: None,
            })),
        }
    }

    /// The same notifier, counting its outcomes in `metrics`
    /// (`shipgate_notifications_total`). Call it before cloning the notifier.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        if let Some(inner) = self.inner.as_mut().and_then(Arc::get_mut) {
            inner.metrics = Some(metrics);
        }
        self
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Whether a destination `name` serves `repository` (an owner-scoped
    /// destination is unknown to other owners' repositories).
    pub fn serves(&self, name: &str, repository: &str) -> bool {
        self.lane(name, repository).is_some()
    }

    fn lane(&self, name: &str, repository: &str) -> Option<&Arc<Lane>> {
        self.inner
            .as_ref()?
            .lanes
            .get(name)
            .filter(|l| l.destination.serves(repository))
    }

    /// Sends `message` where `routes` (a repository's `notify:`) say; with
    /// no routes, to `slack` for the [`DEFAULT_EVENTS`]. Returns at once.
    pub fn send(&self, routes: Option<&[Route]>, message: Message) {
        if self.inner.is_none() {
            return;
        }
        let targets: Vec<&str> = match routes {
            None => {
                if !DEFAULT_EVENTS.iter().any(|e| e.as_str() == message.event) {
                    return;
                }
                // A server without `slack` sends nothing by default.
                if !self.serves(DEFAULT_DESTINATION, &message.repository) {
                    return;
                }
                vec![DEFAULT_DESTINATION]
            }
            Some(routes) => {
                let mut names: Vec<&str> = Vec::new();
                for r in routes.iter().filter(|r| r.wants(message.event)) {
                    if !names.contains(&r.to.as_str()) {
                        names.push(&r.to);
                    }
                }
                names
            }
        };
        for name in targets {
            match self.enqueue(name, &message) {
                Ok(()) => {}
                Err(Refused::Unknown) => tracing::warn!(
                    repo = %message.repository,
                    destination = %name,
                    event = message.event,
                    "notify: no destination of that name serves this repository; skipped"
                ),
                Err(Refused::Full) => tracing::warn!(
                    repo = %message.repository,
                    destination = %name,
                    event = message.event,
                    "notify: the destination's queue is full; notification dropped"
                ),
            }
        }
    }

    /// Admits `message` into `name`'s queue and sends it in the background.
    pub fn enqueue(&self, name: &str, message: &Message) -> Result<(), Refused> {
        let Some(inner) = self.inner.clone() else {
            return Err(Refused::Unknown);
        };
        let lane = self
            .lane(name, &message.repository)
            .cloned()
            .ok_or(Refused::Unknown)?;
        let owner = message
            .repository
            .split('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        {
            let mut queued = lane.queued.lock().expect("poisoned");
            let total: usize = queued.values().sum();
            let mine = queued.get(&owner).copied().unwrap_or(0);
            if total >= inner.limits.queue || mine >= inner.limits.per_owner {
                inner.count(name, "dropped");
                return Err(Refused::Full);
            }
            *queued.entry(owner.clone()).or_insert(0) += 1;
        }
        let message = message.clone();
        tokio::spawn(async move {
            let sent = match lane.sending.acquire().await {
                Ok(_permit) => {
                    deliver::deliver(
                        &inner.client,
                        &lane.destination,
                        &message,
                        &inner.limits.retry,
                    )
                    .await
                }
                Err(_) => Err(Failure {
                    attempts: 0,
                    reason: "closed".into(),
                }),
            };
            {
                let mut queued = lane.queued.lock().expect("poisoned");
                if let Some(n) = queued.get_mut(&owner) {
                    *n -= 1;
                    if *n == 0 {
                        queued.remove(&owner);
                    }
                }
            }
            inner.count(
                &lane.destination.name,
                if sent.is_ok() { "sent" } else { "failed" },
            );
            match sent {
                Ok(attempts) => tracing::debug!(
                    repo = %message.repository,
                    destination = %lane.destination.name,
                    event = message.event,
                    attempts,
                    "notification sent"
                ),
                // The destination's name, never its URL.
                Err(f) => tracing::warn!(
                    repo = %message.repository,
                    destination = %lane.destination.name,
                    kind = lane.destination.kind.as_str(),
                    event = message.event,
                    attempts = f.attempts,
                    reason = %f.reason,
                    "notification not delivered"
                ),
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
