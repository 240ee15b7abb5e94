//! The operator's toolbox: `shipgate deliveries list|show|retry`,
//! `shipgate locks list|release` and `shipgate requests list`, on the
//! database `DATABASE_URL` names (SQLite or PostgreSQL, the one the server
//! uses; a running server sees the changes on its next worker turn).
//!
//! Each command returns the text to print; `cli.rs` prints it. Exit codes
//! ([`AdminError::exit_code`]): 0 done, 1 what was asked for is not there
//! (an unknown delivery id, a repository with no deliveries, an environment
//! with no lock) or the database failed, 2 bad usage or a database that
//! cannot be opened.
//!
//! Much of what is printed came from outside: repository and environment
//! names, GitHub logins, payload fields, error messages that quote responses.
//! All of it goes through [`terminal_text`] (tables) or [`json_text`]
//! (`--json`), so no escape sequence reaches the terminal. A password in
//! `DATABASE_URL` never appears, errors included.

use serde_json::{json, Value};

use crate::render::admin::{
    deliveries_table, delivery_details, lock_json, locks_table, record_json, request_json,
    requests_table,
};
pub use crate::render::admin::{json_text, terminal_text};

use crate::config::settings::DatabaseUrl;
use crate::store::{DeliveryFilter, DeliveryState, DynStore, RetryOutcome, StoreError};

/// Rows `deliveries list` shows unless `--limit` says otherwise.
pub const DEFAULT_LIST_LIMIT: i64 = 50;
/// The longest `--limit`.
pub const MAX_LIST_LIMIT: i64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// What was asked for is not there: exit 1.
    #[error("{0}")]
    NotFound(String),
    /// The command cannot do what was asked (a delivery that is not failed,
    /// a lock that changed hands meanwhile), or the database failed: exit 1.
    #[error("{0}")]
    Failed(String),
    /// Bad usage or configuration: exit 2.
    #[error("{0}")]
    Usage(String),
}

impl AdminError {
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::NotFound(_) | AdminError::Failed(_) => 1,
            AdminError::Usage(_) => 2,
        }
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// One toolbox command, as the command line gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    ListDeliveries {
        state: Option<DeliveryState>,
        repository: Option<String>,
        limit: i64,
    },
    ShowDelivery {
        id: String,
        payload: bool,
    },
    RetryDelivery {
        id: String,
    },
    ListLocks,
    ReleaseLock {
        repository: String,
        environment: String,
    },
    ListRequests,
}

/// Opens the database for a toolbox command. Nothing is created and no
/// migration runs: an SQLite path that does not exist is a usage error
/// (most likely a wrong DATABASE_URL), not a new empty database.
pub async fn open(url: &DatabaseUrl) -> Result<DynStore, AdminError> {
    if !url.is_postgres() {
        let path = sqlite_path(url.expose());
        if !path.is_empty() && path != ":memory:" && !std::path::Path::new(path).exists() {
            return Err(AdminError::Usage(format!(
                "DATABASE_URL: no database at {} (is DATABASE_URL the server's?)",
                terminal_text(path)
            )));
        }
    }
    crate::store::connect(url).await.map_err(|e| {
        AdminError::Usage(format!(
            "DATABASE_URL: cannot open {}: {}",
            terminal_text(&url.redacted()),
            scrub(url, &e.to_string())
        ))
    })
}

/// The file of an `sqlite:` URL.
fn sqlite_path(url: &str) -> &str {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    rest.split('?').next().unwrap_or(rest)
}

/// An error's text without the URL's password (a driver may quote the URL),
/// made inert for a terminal.
pub fn scrub(url: &DatabaseUrl, text: &str) -> String {
    let mut text = text.to_string();
    if let Ok(u) = url::Url::parse(url.expose()) {
        if let Some(password) = u.password().filter(|p| !p.is_empty()) {
            text = text.replace(password, "****");
            // The URL's parser keeps percent-escapes; a driver may decode them.
            if let Ok(decoded) = percent_decode(password) {
                if !decoded.is_empty() {
                    text = text.replace(&decoded, "****");
                }
            }
        }
    }
    terminal_text(&text)
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let bytes: Vec<u8> = form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .ok_or(())?;
    String::from_utf8(bytes).map_err(|_| ())
}

/// Runs one command; returns what to print on stdout.
pub async fn run(
    store: &DynStore,
    url: &DatabaseUrl,
    request: &Request,
    format: Format,
    now: i64,
) -> Result<String, AdminError> {
    let db = db_error(url);
    match request {
        Request::ListDeliveries {
            state,
            repository,
            limit,
        } => list_deliveries(store, url, *state, repository.as_deref(), *limit, format).await,
        Request::ShowDelivery { id, payload } => {
            let (record, text) = store
                .delivery_record(id)
                .await
                .map_err(db)?
                .ok_or_else(|| delivery_not_found(id))?;
            let payload = payload.then_some(text.as_str());
            Ok(match format {
                Format::Json => json_text(&record_json(&record, payload)),
                Format::Table => delivery_details(&record, payload),
            })
        }
        Request::RetryDelivery { id } => match store.retry_delivery(id, now).await.map_err(db)? {
            RetryOutcome::Retried => Ok(match format {
                Format::Json => json_text(&json!({ "delivery_id": id, "state": "received" })),
                Format::Table => format!(
                    "delivery {}: failed -> received, attempts reset; the next free worker takes it\n",
                    terminal_text(id)
                ),
            }),
            RetryOutcome::NotFound => Err(delivery_not_found(id)),
            RetryOutcome::NotFailed(state) => Err(AdminError::Failed(format!(
                "delivery {} is {}, not failed: only failed deliveries are retried",
                terminal_text(id),
                state.as_str()
            ))),
        },
        Request::ListLocks => {
            let locks = store.all_locks(now).await.map_err(db)?;
            Ok(match format {
                Format::Json => json_text(&Value::Array(locks.iter().map(lock_json).collect())),
                Format::Table if locks.is_empty() => "no locks held\n".into(),
                Format::Table => locks_table(&locks),
            })
        }
        Request::ReleaseLock {
            repository,
            environment,
        } => release_lock(store, url, repository, environment, format, now).await,
        Request::ListRequests => {
            let requests = store.all_pending_protection_requests().await.map_err(db)?;
            Ok(match format {
                Format::Json => json_text(&Value::Array(
                    requests.iter().map(request_json).collect(),
                )),
                Format::Table if requests.is_empty() => {
                    "no pending protection rule requests\n".into()
                }
                Format::Table => requests_table(&requests),
            })
        }
    }
}

/// A database error as the toolbox reports it: without the URL's password.
fn db_error(url: &DatabaseUrl) -> impl Fn(StoreError) -> AdminError + Copy + '_ {
    move |e| AdminError::Failed(format!("database: {}", scrub(url, &e.to_string())))
}

/// `deliveries list`: newest first; a repository with no delivery stored at
/// all is not found rather than an empty list.
async fn list_deliveries(
    store: &DynStore,
    url: &DatabaseUrl,
    state: Option<DeliveryState>,
    repository: Option<&str>,
    limit: i64,
    format: Format,
) -> Result<String, AdminError> {
    let db = db_error(url);
    if let Some(repo) = repository {
        check_repository(repo)?;
    }
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(AdminError::Usage(format!(
            "--limit must be between 1 and {MAX_LIST_LIMIT}"
        )));
    }
    let filter = DeliveryFilter {
        state,
        repository: repository.map(str::to_string),
        limit,
    };
    let rows = store.list_deliveries(&filter).await.map_err(db)?;
    if rows.is_empty() {
        if let Some(repo) = repository {
            if store
                .repository_installation(repo)
                .await
                .map_err(db)?
                .is_none()
            {
                return Err(AdminError::NotFound(format!(
                    "repository {} not found: no delivery of it is stored",
                    terminal_text(repo)
                )));
            }
        }
    }
    Ok(match format {
        Format::Json => json_text(&Value::Array(
            rows.iter().map(|r| record_json(r, None)).collect(),
        )),
        Format::Table if rows.is_empty() => "no deliveries match\n".into(),
        Format::Table => deliveries_table(&rows),
    })
}

/// `locks release`: compare-and-delete on the lock's token, then the step
/// the server runs after any release, stored as a delivery.
async fn release_lock(
    store: &DynStore,
    url: &DatabaseUrl,
    repository: &str,
    environment: &str,
    format: Format,
    now: i64,
) -> Result<String, AdminError> {
    let db = db_error(url);
    check_repository(repository)?;
    let lock = store
        .get_lock(repository, environment, now)
        .await
        .map_err(db)?
        .ok_or_else(|| {
            AdminError::NotFound(format!(
                "no lock on environment {} of {}",
                terminal_text(environment),
                terminal_text(repository)
            ))
        })?;
    // Compare-and-delete on the holder's token: a lock someone took
    // between the read and now is theirs, and stays.
    let released = store
        .release_lock(repository, environment, &lock.owner_token)
        .await
        .map_err(db)?;
    if !released {
        return Err(AdminError::Failed(format!(
            "the lock on environment {} of {} changed hands meanwhile; nothing released (see `shipgate locks list`)",
            terminal_text(environment),
            terminal_text(repository)
        )));
    }
    // What the server does after any release, run by whichever
    // replica's worker takes it: the queue, then waiting requests.
    let installation = installation_of(store, repository, environment)
        .await
        .map_err(db)?;
    let delivery = crate::handlers::lock_released_delivery(repository, environment, installation);
    store.insert_delivery(&delivery, now).await.map_err(db)?;
    Ok(match format {
        Format::Json => json_text(&json!({
            "released": lock_json(&lock),
            "delivery_id": delivery.delivery_id,
        })),
        Format::Table => format!(
            "released the {} lock on {} of {} (held by {}{}); its deploy queue and waiting protection rule requests start with delivery {}\n",
            lock.kind.as_str(),
            terminal_text(environment),
            terminal_text(repository),
            terminal_text(&lock.holder),
            lock.pr.map(|pr| format!(", #{pr}")).unwrap_or_default(),
            terminal_text(&delivery.delivery_id),
        ),
    })
}

/// The installation a lock-released step acts as: the one of the first
/// queued deploy, else of a waiting request, else of the repository's
/// newest delivery (none with a token instead of an App).
async fn installation_of(
    store: &DynStore,
    repository: &str,
    environment: &str,
) -> Result<Option<i64>, StoreError> {
    if let Some(id) = store
        .queued_deploys(repository, environment)
        .await?
        .iter()
        .find_map(|q| q.installation_id)
    {
        return Ok(Some(id));
    }
    if let Some(id) = store
        .pending_protection_requests(repository)
        .await?
        .iter()
        .find_map(|r| r.installation_id)
    {
        return Ok(Some(id));
    }
    Ok(store.repository_installation(repository).await?.flatten())
}

fn delivery_not_found(id: &str) -> AdminError {
    AdminError::NotFound(format!("no delivery with id {}", terminal_text(id)))
}

/// `OWNER/NAME`, as GitHub spells repositories.
fn check_repository(repo: &str) -> Result<(), AdminError> {
    let ok = repo.split_once('/').is_some_and(|(owner, name)| {
        !owner.is_empty()
            && !name.is_empty()
            && !name.contains('/')
            && repo
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    });
    if ok {
        Ok(())
    } else {
        Err(AdminError::Usage(format!(
            "repository {} is not OWNER/NAME",
            terminal_text(repo)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_must_be_owner_slash_name() {
        for good in ["acme/app", "a-b/c.d_e"] {
            assert!(check_repository(good).is_ok(), "{good}");
        }
        for bad in [
            "acme",
            "acme/",
            "/app",
            "a/b/c",
            "acme/ap p",
            "acme/\u{1b}x",
        ] {
            let e = check_repository(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(!e.to_string().contains('\u{1b}'));
        }
    }

    #[test]
    fn a_password_never_survives_scrubbing() {
        let url = DatabaseUrl::new("postgres://app:s3cr%3Dt@db.example/shipgate");
        let text =
            "connecting to postgres://app:s3cr%3Dt@db.example failed; password s3cr=t refused";
        let out = scrub(&url, text);
        assert!(!out.contains("s3cr"), "{out}");
        assert!(out.contains("****"));
    }

    #[test]
    fn sqlite_paths_are_read_from_both_url_spellings() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/s.db?mode=rwc"),
            "/var/lib/s.db"
        );
        assert_eq!(sqlite_path("sqlite://shipgate.db"), "shipgate.db");
        assert_eq!(sqlite_path("sqlite:shipgate.db"), "shipgate.db");
    }
}
