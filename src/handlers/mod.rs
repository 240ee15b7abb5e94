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
use crate::github::events::Event;
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
    /// The repository's config at `git_ref` when it loads and validates;
    /// `None` when it does not: the `shipgate/config` status reports the
    /// file, and what needs the config does nothing.
    pub async fn valid_config(
        &self,
        api: &crate::github::Api,
        repo: &str,
        git_ref: &str,
    ) -> Result<Option<std::sync::Arc<crate::config::repo::RepoConfig>>, GitHubError> {
        Ok(self.config(api, repo, git_ref).await?.config.ok())
    }

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

/// How the worker treats a delivery a handler did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Retried with backoff.
    Transient,
    /// GitHub's rate limit: retried no sooner than the reset.
    RateLimited(std::time::Duration),
    /// The delivery fails at once.
    Permanent,
}

/// What made a handler fail, with its own chain of sources.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a handler did not finish: how to retry, in which handler, and the
/// cause, whose chain of sources is kept (`source()`), not flattened into
/// text. [`HandlerError::report`] writes the whole chain, once each.
#[derive(Debug)]
pub struct HandlerError {
    pub retry: Retry,
    handler: Option<&'static str>,
    cause: Cause,
}

impl HandlerError {
    pub fn transient(cause: impl Into<Cause>) -> Self {
        Self::new(Retry::Transient, cause)
    }
    pub fn rate_limited(cause: impl Into<Cause>, wait: std::time::Duration) -> Self {
        Self::new(Retry::RateLimited(wait), cause)
    }
    pub fn permanent(cause: impl Into<Cause>) -> Self {
        Self::new(Retry::Permanent, cause)
    }
    fn new(retry: Retry, cause: impl Into<Cause>) -> Self {
        HandlerError {
            retry,
            handler: None,
            cause: cause.into(),
        }
    }

    /// The same failure, as the named handler's.
    pub fn in_handler(mut self, name: &'static str) -> Self {
        self.handler = Some(name);
        self
    }

    pub fn is_permanent(&self) -> bool {
        self.retry == Retry::Permanent
    }

    /// The handler, the cause and each of its sources: `chatops: GitHub
    /// answered 502: …`. What the store records and operators read.
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            // Errors that also print their source (`"database error: {0}"`
            // with `#[from]`) would say it twice.
            let text = e.to_string();
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            next = e.source();
        }
        out
    }
}

/// The handler and the cause; the cause's sources follow through `source()`.
impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(h) = self.handler {
            write!(f, "{h}: ")?;
        }
        write!(f, "{}", self.cause)
    }
}

impl std::error::Error for HandlerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The cause itself is already in `Display`.
        self.cause.source()
    }
}

/// A payload a handler cannot read: the delivery fails for good.
#[derive(Debug, thiserror::Error)]
#[error("payload does not have the expected shape")]
pub struct PayloadShape(#[from] pub serde_json::Error);

impl From<GitHubError> for HandlerError {
    fn from(e: GitHubError) -> Self {
        if let GitHubError::RateLimited { retry_after } = e {
            HandlerError::rate_limited(e, retry_after)
        } else if e.is_transient() {
            HandlerError::transient(e)
        } else {
            HandlerError::permanent(e)
        }
    }
}

impl From<serde_json::Error> for HandlerError {
    fn from(e: serde_json::Error) -> Self {
        HandlerError::permanent(PayloadShape(e))
    }
}

impl From<crate::store::StoreError> for HandlerError {
    fn from(e: crate::store::StoreError) -> Self {
        HandlerError::transient(e)
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
    /// Reads the payload of one of the handler's own jobs (`shipgate_*`
    /// events) the way [`Handler::handle`] does, without acting on it.
    /// Webhooks are decoded once for all handlers ([`Event::decode`]).
    fn decode_internal(&self, _event: &str, _payload: &str) -> Result<(), HandlerError> {
        Ok(())
    }
    /// Processes a delivery: `event` is its webhook, decoded once.
    async fn handle(
        &self,
        cx: &Context,
        delivery: &ClaimedDelivery,
        event: &Event,
    ) -> Result<(), HandlerError>;
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
            Arc::new(previews::RollbackJob),
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
        let decoded = Event::decode(event, text);
        Ok(wanting
            .into_iter()
            .map(|h| {
                let result = match &decoded {
                    Err(e) => Err(HandlerError::permanent(e.to_string())),
                    Ok(Event::Internal) => h.decode_internal(event, text),
                    Ok(_) => Ok(()),
                };
                (h.name(), result)
            })
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
        let event = Event::decode(&d.event, &d.payload)?;
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
            let result = h.handle(cx, d, &event).await;
            observe(h.name(), started.elapsed());
            if let Err(e) = result {
                tracing::warn!(handler = h.name(), delivery = %d.delivery_id, error = %e.report(), "handler failed");
                let e = e.in_handler(h.name());
                worst = match worst {
                    Some(p) if p.is_permanent() => Some(p),
                    _ => Some(e),
                };
            }
        }
        worst.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handler_error_keeps_its_cause_chain_and_reports_each_link_once() {
        let bad: serde_json::Error = serde_json::from_str::<i64>("{").unwrap_err();
        let e = HandlerError::from(bad).in_handler("chatops");
        assert!(e.is_permanent());
        assert_eq!(
            e.to_string(),
            "chatops: payload does not have the expected shape"
        );
        let source = std::error::Error::source(&e).expect("the JSON error is kept");
        assert!(source.is::<serde_json::Error>());
        assert_eq!(
            e.report(),
            "chatops: payload does not have the expected shape: invalid type: map, expected i64 at line 1 column 0"
        );
        // A cause that prints its own source is not repeated.
        let store = crate::store::StoreError::Database(sqlx::Error::PoolTimedOut);
        let e = HandlerError::from(store).in_handler("previews");
        assert_eq!(e.retry, Retry::Transient);
        assert_eq!(
            e.report(),
            "previews: database error: pool timed out while waiting for an open connection"
        );
    }

    #[test]
    fn github_errors_keep_their_retry_class() {
        let limited = HandlerError::from(GitHubError::RateLimited {
            retry_after: std::time::Duration::from_secs(60),
        });
        assert_eq!(
            limited.retry,
            Retry::RateLimited(std::time::Duration::from_secs(60))
        );
        let down = HandlerError::from(GitHubError::Status {
            status: 502,
            message: "bad gateway".into(),
        });
        assert_eq!(down.retry, Retry::Transient);
        assert!(HandlerError::from(GitHubError::NotFound("x".into())).is_permanent());
    }
}
