//! Feature handlers. Each handler says which events it wants (ingress queues
//! only those) and processes a stored delivery. Handlers must be idempotent:
//! after a crash a delivery can be processed again.

pub mod chatops;
pub mod config_check;
pub mod previews;
pub mod protection;
pub mod protection_rules;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::repo::{ConfigCache, LoadedConfig};
use crate::github::{GitHub, GitHubError};
use crate::store::{ClaimedDelivery, DynStore};

/// What a handler needs to do its work.
#[derive(Clone)]
pub struct Context {
    pub github: GitHub,
    pub store: DynStore,
    pub configs: Arc<ConfigCache>,
    /// Configs already read for the delivery being processed: several
    /// handlers want the same file, and one read per delivery is enough. A
    /// failed read is remembered too, so an outage costs one read's retries
    /// per attempt, not one per handler.
    pub read_this_delivery: Arc<std::sync::Mutex<ConfigReads>>,
    pub notifier: crate::notify::Notifier,
    pub smoke: crate::smoke::SmokeOptions,
    /// Wakes the worker when a handler stores follow-up work.
    pub wake: crate::store::Wake,
    /// How long a stored policy job waits for more events of its commit.
    pub policy_delay: std::time::Duration,
}

/// Config reads of one delivery, by (repository, ref), failures included.
pub type ConfigReads =
    std::collections::HashMap<(String, String), Result<LoadedConfig, GitHubError>>;

impl Context {
    /// `.github/shipgate.yml` of `repo` at `git_ref`, read once per delivery.
    pub async fn config(
        &self,
        api: &crate::github::Api,
        repo: &str,
        git_ref: &str,
    ) -> Result<LoadedConfig, GitHubError> {
        let key = (repo.to_string(), git_ref.to_string());
        if let Some(found) = self.read_this_delivery.lock().expect("poisoned").get(&key) {
            return found.clone();
        }
        // The generation is read before GitHub is asked, so a push processed
        // meanwhile makes the answer's "missing" stale at once.
        let generation = if self.configs.wants_generation(repo, git_ref) {
            match self.store.config_generation(repo).await {
                Ok(g) => Some(g),
                Err(e) => {
                    tracing::warn!(repo, error = %e, "could not read the config generation; asking GitHub");
                    None
                }
            }
        } else {
            None
        };
        let loaded = self
            .configs
            .load_at_generation(api, repo, git_ref, generation)
            .await;
        self.read_this_delivery
            .lock()
            .expect("poisoned")
            .insert(key, loaded.clone());
        loaded
    }
}

/// Why a handler did not finish. Transient failures are retried with
/// backoff; permanent ones mark the delivery failed at once.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("{0}")]
    Transient(String),
    /// GitHub's rate limit: retry no sooner than the reset.
    #[error("{0}")]
    RateLimited(String, std::time::Duration),
    #[error("{0}")]
    Permanent(String),
}

impl HandlerError {
    fn prefixed(self, prefix: &str) -> Self {
        match self {
            HandlerError::Transient(m) => HandlerError::Transient(format!("{prefix}: {m}")),
            HandlerError::RateLimited(m, wait) => {
                HandlerError::RateLimited(format!("{prefix}: {m}"), wait)
            }
            HandlerError::Permanent(m) => HandlerError::Permanent(format!("{prefix}: {m}")),
        }
    }
}

impl From<GitHubError> for HandlerError {
    fn from(e: GitHubError) -> Self {
        if let GitHubError::RateLimited { retry_after } = e {
            HandlerError::RateLimited(e.to_string(), retry_after)
        } else if e.is_transient() {
            HandlerError::Transient(e.to_string())
        } else {
            HandlerError::Permanent(e.to_string())
        }
    }
}

impl From<serde_json::Error> for HandlerError {
    fn from(e: serde_json::Error) -> Self {
        HandlerError::Permanent(format!("payload does not have the expected shape: {e}"))
    }
}

impl From<crate::store::StoreError> for HandlerError {
    fn from(e: crate::store::StoreError) -> Self {
        HandlerError::Transient(e.to_string())
    }
}

impl From<crate::deploy::FactsError> for HandlerError {
    fn from(e: crate::deploy::FactsError) -> Self {
        match e {
            crate::deploy::FactsError::GitHub(e) => e.into(),
            crate::deploy::FactsError::Store(e) => e.into(),
        }
    }
}

/// The one step after an environment's lock is released (a deployment's
/// final status, `/unlock`, a PR closing, a failed deploy giving its lock
/// back, a lock's TTL running out): start the environment's queued deploys
/// and re-check the repository's pending protection rule requests.
pub async fn lock_released(
    cx: &Context,
    repo: &str,
    environment: &str,
    installation: Option<i64>,
) -> Result<(), HandlerError> {
    // Boxed: a queued deploy that fails gives its lock back, which comes here again.
    Box::pin(chatops::deploy::run_queue(
        cx,
        repo,
        environment,
        installation,
    ))
    .await?;
    protection_rules::enqueue_recheck(cx, repo, installation).await
}

/// Stores a lock-released step for each environment whose lock's TTL ran
/// out while protection rule requests wait, and for each queue left waiting
/// on a free lock (a deploy whose lock expired, or that gave it back on a
/// failure and never came back), each in its repository's order.
pub async fn sweep_locks(cx: &Context) -> Result<(), HandlerError> {
    let now = crate::now_ms();
    let mut due: Vec<(String, String, Option<i64>)> = Vec::new();
    for lock in cx.store.take_expired_locks(now).await? {
        let pending = cx
            .store
            .pending_protection_requests(&lock.repository)
            .await?;
        if let Some(first) = pending.first() {
            due.push((lock.repository, lock.environment, first.installation_id));
        }
    }
    for q in cx.store.stalled_queues(now).await? {
        if !due
            .iter()
            .any(|(r, e, _)| *r == q.repository && *e == q.environment)
        {
            due.push((q.repository, q.environment, q.installation_id));
        }
    }
    for (repo, environment, installation) in due {
        let new = lock_released_delivery(&repo, &environment, installation);
        cx.store.insert_delivery(&new, now).await?;
        cx.wake.notify_one();
    }
    Ok(())
}

/// The internal delivery that runs [`lock_released`] for an environment in
/// its repository's order, on whichever replica's worker claims it (the lock
/// sweep stores it, and so does `shipgate locks release`).
pub fn lock_released_delivery(
    repo: &str,
    environment: &str,
    installation: Option<i64>,
) -> crate::store::NewDelivery {
    let event = chatops::LockReleased {
        repository: repo.to_string(),
        environment: environment.to_string(),
        installation,
    };
    crate::store::NewDelivery {
        delivery_id: format!(
            "lock-released:{repo}:{environment}:{}",
            uuid::Uuid::new_v4().simple()
        ),
        event: chatops::LOCK_RELEASED_EVENT.into(),
        action: None,
        installation_id: installation,
        repository: Some(repo.to_string()),
        payload: serde_json::to_string(&event)
            .expect("the event serializes")
            .into(),
    }
}

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Whether this handler acts on `event` with `action`.
    fn wants(&self, event: &str, action: Option<&str>) -> bool;
    /// Reads a wanted delivery's payload the way [`Handler::handle`] does,
    /// without acting on it: `handle` starts with this same decoding, so a
    /// payload refused here is refused there with the same error.
    fn decode(&self, event: &str, payload: &str) -> Result<(), HandlerError>;
    async fn handle(&self, cx: &Context, delivery: &ClaimedDelivery) -> Result<(), HandlerError>;
}

/// A handler's name and how its decoding of a payload went.
pub type Decoded = (&'static str, Result<(), HandlerError>);

/// The set of enabled handlers.
#[derive(Clone)]
pub struct Handlers {
    list: Arc<Vec<Arc<dyn Handler>>>,
}

impl Default for Handlers {
    fn default() -> Self {
        Handlers::new(vec![
            Arc::new(config_check::ConfigCheck),
            Arc::new(chatops::ChatOps),
            Arc::new(previews::Previews),
            Arc::new(previews::SmokeJob),
            Arc::new(protection::Protection),
            Arc::new(protection_rules::ProtectionRules),
        ])
    }
}

impl Handlers {
    pub fn new(list: Vec<Arc<dyn Handler>>) -> Self {
        Handlers {
            list: Arc::new(list),
        }
    }

    /// Whether any handler wants this event; others are acknowledged and dropped.
    pub fn wants(&self, event: &str, action: Option<&str>) -> bool {
        self.list.iter().any(|h| h.wants(event, action))
    }

    /// Decodes a delivery's body as it would be on its way through shipgate,
    /// before any GitHub call: the envelope ingress reads (an error refuses
    /// the delivery), then each handler that wants the event decodes the
    /// payload as it does when processing it. Returns each wanting handler's
    /// name and result; none when no handler wants the event.
    pub fn decode(&self, event: &str, payload: &[u8]) -> Result<Vec<Decoded>, String> {
        let envelope = crate::github::events::Envelope::parse(payload)?;
        let wanting: Vec<_> = self
            .list
            .iter()
            .filter(|h| h.wants(event, envelope.action.as_deref()))
            .collect();
        if wanting.is_empty() {
            return Ok(Vec::new());
        }
        let text = std::str::from_utf8(payload).map_err(|_| "body is not UTF-8".to_string())?;
        Ok(wanting
            .into_iter()
            .map(|h| (h.name(), h.decode(event, text)))
            .collect())
    }

    /// Runs every handler that wants the delivery, all of them even when one
    /// fails; the most serious failure is returned.
    pub async fn dispatch(&self, cx: &Context, d: &ClaimedDelivery) -> Result<(), HandlerError> {
        self.dispatch_timed(cx, d, |_, _| {}).await
    }

    /// [`Handlers::dispatch`], telling `observe` each handler's name and
    /// how long it took.
    pub async fn dispatch_timed(
        &self,
        cx: &Context,
        d: &ClaimedDelivery,
        observe: impl Fn(&'static str, std::time::Duration) + Send + Sync,
    ) -> Result<(), HandlerError> {
        let mut worst: Option<HandlerError> = None;
        if d.event == "push" {
            if let Some(repo) = &d.repository {
                // Before any handler reads a config: a push may add
                // `.github/shipgate.yml`, and no replica may keep believing
                // it missing (see `ConfigCache::load_at_generation`).
                cx.store.bump_config_generation(repo).await?;
            }
        }
        for h in self
            .list
            .iter()
            .filter(|h| h.wants(&d.event, d.action.as_deref()))
        {
            let started = std::time::Instant::now();
            let result = h.handle(cx, d).await;
            observe(h.name(), started.elapsed());
            if let Err(e) = result {
                tracing::warn!(handler = h.name(), delivery = %d.delivery_id, error = %e, "handler failed");
                let e = e.prefixed(h.name());
                worst = match (worst, e) {
                    (Some(p @ HandlerError::Permanent(_)), _) => Some(p),
                    (_, e) => Some(e),
                };
            }
        }
        worst.map_or(Ok(()), Err)
    }
}
