//! The environment lock a deployment is created under.
//!
//! Creating a deployment takes a [`LockGuard`]: the lock is taken first
//! (atomically, also across replicas), the deployment is created under it,
//! and the lock is bound to that deployment so the deployment's own
//! protection rule request passes it and its final status releases it. A
//! deployment GitHub refuses gives the lock back at once.

use crate::config::repo::EnvironmentConfig;
use crate::deploy::gates::{self, LockClaim};
use crate::github::repos::{Deployment, NewDeployment};
use crate::github::{Api, GitHubError};
use crate::store::{DynStore, Lock, LockKind, LockOutcome, StoreError};

/// Deploy locks expire after this when the environment sets no `lock_ttl`,
/// so a deployment that never reports a final state cannot block forever.
const DEFAULT_DEPLOY_LOCK_TTL_MS: i64 = 3600 * 1000;

/// How long a deploy holds its environment at most: `lock_ttl`, or an hour.
pub fn lock_ttl_ms(env: &EnvironmentConfig) -> i64 {
    env.lock_ttl
        .map(|d| d.0.as_millis() as i64)
        .unwrap_or(DEFAULT_DEPLOY_LOCK_TTL_MS)
}

/// The lock a deploy (or rollback) takes for its environment.
#[derive(Debug, Clone)]
pub struct DeployLock<'a> {
    pub repository: &'a str,
    pub environment: &'a str,
    pub env: &'a EnvironmentConfig,
    /// Who deploys (shown to others the lock stops).
    pub holder: &'a str,
    /// The pull request (or issue) deploying; `None` for shipgate itself.
    pub pr: Option<i64>,
    /// This deploy's own token: only it binds or releases the lock.
    pub owner_token: String,
    pub reason: Option<&'a str>,
}

impl DeployLock<'_> {
    /// What passes the environment's lock for this deploy: the PR's own
    /// locks (a PR may deploy again), nothing for shipgate's own deploys.
    pub fn claim(&self) -> LockClaim {
        LockClaim {
            pr: self.pr,
            deployment_id: None,
            same_pr_deploy: self.pr.is_some(),
        }
    }

    fn lock(&self, now: i64) -> Lock {
        Lock {
            repository: self.repository.to_string(),
            environment: self.environment.to_string(),
            kind: LockKind::Deploy,
            holder: self.holder.to_string(),
            pr: self.pr,
            owner_token: self.owner_token.clone(),
            deployment_id: None,
            reason: self.reason.map(str::to_string),
            expires_at: Some(now + lock_ttl_ms(self.env)),
            created_at: now,
        }
    }
}

/// How a deploy holds its environment.
#[derive(Debug)]
enum Hold {
    /// This deploy took the lock: it binds it to the deployment, or gives
    /// it back if the deployment is not created.
    Own { owner_token: String },
    /// The lock was already held for this claim (the PR's own `/lock`).
    Shared,
    /// A maintainer overrode another holder's lock with `force`.
    Overridden,
}

/// The right to create a deployment in one environment.
#[must_use = "a lock guard must create a deployment or be released"]
pub struct LockGuard {
    store: DynStore,
    repository: String,
    environment: String,
    hold: Hold,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("repository", &self.repository)
            .field("environment", &self.environment)
            .field("hold", &self.hold)
            .finish()
    }
}

/// The outcome of asking for the lock.
#[derive(Debug)]
pub enum Acquired {
    Guard(LockGuard),
    /// Held by someone else.
    HeldBy(Lock),
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LockGuard {
    /// Takes the deploy lock `request` describes, or passes through a lock
    /// already held for it (the PR's own `/lock`).
    pub async fn acquire(
        store: &DynStore,
        request: &DeployLock<'_>,
    ) -> Result<Acquired, StoreError> {
        let now = crate::now_ms();
        let lock = request.lock(now);
        let claim = request.claim();
        let guard = |hold| LockGuard {
            store: store.clone(),
            repository: lock.repository.clone(),
            environment: lock.environment.clone(),
            hold,
        };
        match store.acquire_lock(&lock, now).await? {
            LockOutcome::Acquired => Ok(Acquired::Guard(guard(Hold::Own {
                owner_token: lock.owner_token.clone(),
            }))),
            LockOutcome::HeldBy(held) if gates::lock_gate(Some(&held), claim).passed() => {
                Ok(Acquired::Guard(guard(Hold::Shared)))
            }
            LockOutcome::HeldBy(held) => Ok(Acquired::HeldBy(held)),
        }
    }

    /// Goes ahead past another holder's lock (`force` by a maintainer).
    pub fn overriding(store: &DynStore, repository: &str, environment: &str) -> LockGuard {
        LockGuard {
            store: store.clone(),
            repository: repository.to_string(),
            environment: environment.to_string(),
            hold: Hold::Overridden,
        }
    }

    /// Creates the deployment under the lock and binds the lock to it. When
    /// GitHub refuses, or the call fails, a lock this guard took is given
    /// back before the error is returned (`released` then says so: the
    /// caller runs the lock-released step).
    pub async fn create_deployment(
        self,
        api: &Api,
        request: &NewDeployment<'_>,
    ) -> Result<Deployment, Released<CreateError>> {
        match api.create_deployment(&self.repository, request).await {
            Ok(d) => {
                if let Hold::Own { owner_token } = &self.hold {
                    self.store
                        .set_lock_deployment(&self.repository, &self.environment, owner_token, d.id)
                        .await
                        .map_err(|e| Released {
                            error: CreateError::Store(e),
                            released: false,
                        })?;
                }
                Ok(d)
            }
            Err(e) => {
                let released = self.release().await.map_err(|s| Released {
                    error: CreateError::Store(s),
                    released: false,
                })?;
                Err(Released {
                    error: CreateError::GitHub(e),
                    released,
                })
            }
        }
    }

    /// Gives back a lock this guard took; whether one was released.
    pub async fn release(self) -> Result<bool, StoreError> {
        match &self.hold {
            Hold::Own { owner_token } => {
                self.store
                    .release_lock(&self.repository, &self.environment, owner_token)
                    .await
            }
            Hold::Shared | Hold::Overridden => Ok(false),
        }
    }

    /// Binds the lock to a deployment created before a crash (found again
    /// by its payload instead of created twice).
    pub async fn adopt(self, deployment_id: i64) -> Result<(), StoreError> {
        if let Hold::Own { owner_token } = &self.hold {
            self.store
                .set_lock_deployment(
                    &self.repository,
                    &self.environment,
                    owner_token,
                    deployment_id,
                )
                .await?;
        }
        Ok(())
    }
}

/// An error after which the guard's lock may have been given back.
#[derive(Debug)]
pub struct Released<E> {
    pub error: E,
    /// The guard's own lock was released.
    pub released: bool,
}
