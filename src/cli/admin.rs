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

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::config::settings::DatabaseUrl;
use crate::store::{
    DeliveryFilter, DeliveryRecord, DeliveryState, DynStore, Lock, ProtectionRequest, RetryOutcome,
    StoreError,
};

/// Rows `deliveries list` shows unless `--limit` says otherwise.
pub const DEFAULT_LIST_LIMIT: i64 = 50;
/// The longest `--limit`.
pub const MAX_LIST_LIMIT: i64 = 10_000;
/// Characters of an error message a table cell shows (`show` has it all).
const ERROR_CELL_CHARS: usize = 80;

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
    let db =
        |e: StoreError| AdminError::Failed(format!("database: {}", scrub(url, &e.to_string())));
    match request {
        Request::ListDeliveries {
            state,
            repository,
            limit,
        } => {
            if let Some(repo) = repository {
                check_repository(repo)?;
            }
            if !(1..=MAX_LIST_LIMIT).contains(limit) {
                return Err(AdminError::Usage(format!(
                    "--limit must be between 1 and {MAX_LIST_LIMIT}"
                )));
            }
            let filter = DeliveryFilter {
                state: *state,
                repository: repository.clone(),
                limit: *limit,
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
        } => {
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
            let delivery =
                crate::handlers::lock_released_delivery(repository, environment, installation);
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

// ------------------------------------------------------------------ output

/// Text from outside made inert for a terminal, on one line: control
/// characters (C0 with ESC, DEL, C1 with CSI), bidirectional overrides and
/// line separators are shown as `\x1b`, `\u{202e}`… instead of acting.
pub fn terminal_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_dangerous(c) {
            if (c as u32) < 0x80 {
                let _ = write!(out, "\\x{:02x}", c as u32);
            } else {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Pretty JSON with every character a terminal could act on escaped
/// (`serde_json` escapes C0 itself; DEL, C1 and the bidirectional
/// controls it writes as they are). They occur only inside strings, where
/// `\uXXXX` means the same character.
pub fn json_text(value: &Value) -> String {
    let raw = serde_json::to_string_pretty(value).expect("a Value serializes");
    let mut out = String::with_capacity(raw.len() + 1);
    for c in raw.chars() {
        if is_dangerous(c) && c != '\n' {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out.push('\n');
    out
}

/// A millisecond timestamp as RFC 3339 (UTC, seconds).
fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".into(), T::to_string)
}

fn cut(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(chars - 1).collect();
        s.push('…');
        s
    }
}

/// Columns padded to their widest cell. Cells are already inert.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(cell);
            let pad = widths[i].saturating_sub(cell.chars().count());
            l.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn deliveries_table(rows: &[DeliveryRecord]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                terminal_text(&r.delivery_id),
                terminal_text(&match &r.action {
                    Some(a) => format!("{}.{a}", r.event),
                    None => r.event.clone(),
                }),
                terminal_text(&opt(&r.repository)),
                r.state.as_str().into(),
                r.attempts.to_string(),
                time(r.received_at),
                terminal_text(&cut(&opt(&r.last_error), ERROR_CELL_CHARS)),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "EVENT",
            "REPOSITORY",
            "STATE",
            "ATTEMPTS",
            "RECEIVED",
            "LAST ERROR",
        ],
        &cells,
    )
}

fn delivery_details(r: &DeliveryRecord, payload: Option<&str>) -> String {
    let fields: Vec<(&str, String)> = vec![
        ("id", terminal_text(&r.delivery_id)),
        ("event", terminal_text(&r.event)),
        ("action", terminal_text(&opt(&r.action))),
        ("repository", terminal_text(&opt(&r.repository))),
        ("installation", opt(&r.installation_id)),
        ("state", r.state.as_str().into()),
        ("attempts", r.attempts.to_string()),
        ("received", time(r.received_at)),
        ("next attempt", time(r.next_attempt_at)),
        ("finished", r.finished_at.map_or_else(|| "-".into(), time)),
        ("claimed by", terminal_text(&opt(&r.locked_by))),
        (
            "claim until",
            r.locked_until.map_or_else(|| "-".into(), time),
        ),
        ("last error", terminal_text(&opt(&r.last_error))),
    ];
    let mut out = String::new();
    for (k, v) in fields {
        let _ = writeln!(out, "{:<14}{v}", format!("{k}:"));
    }
    if let Some(p) = payload {
        out.push_str("payload:\n");
        // Pretty when it is JSON; either way escaped, one line per line.
        let text = serde_json::from_str::<Value>(p)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| p.to_string());
        for line in text.lines() {
            let _ = writeln!(out, "  {}", terminal_text(line));
        }
    }
    out
}

fn record_json(r: &DeliveryRecord, payload: Option<&str>) -> Value {
    let mut v = json!({
        "id": r.delivery_id,
        "event": r.event,
        "action": r.action,
        "repository": r.repository,
        "installation_id": r.installation_id,
        "state": r.state.as_str(),
        "attempts": r.attempts,
        "last_error": r.last_error,
        "received_at": time(r.received_at),
        "next_attempt_at": time(r.next_attempt_at),
        "finished_at": r.finished_at.map(time),
        "claimed_by": r.locked_by,
        "claimed_until": r.locked_until.map(time),
    });
    if let Some(p) = payload {
        v["payload"] =
            serde_json::from_str::<Value>(p).unwrap_or_else(|_| Value::String(p.to_string()));
    }
    v
}

fn locks_table(locks: &[Lock]) -> String {
    let cells: Vec<Vec<String>> = locks
        .iter()
        .map(|l| {
            vec![
                terminal_text(&l.repository),
                terminal_text(&l.environment),
                l.kind.as_str().into(),
                terminal_text(&l.holder),
                l.pr.map_or_else(|| "-".into(), |pr| format!("#{pr}")),
                opt(&l.deployment_id),
                time(l.created_at),
                l.expires_at.map_or_else(|| "-".into(), time),
                terminal_text(&cut(&opt(&l.reason), ERROR_CELL_CHARS)),
            ]
        })
        .collect();
    table(
        &[
            "REPOSITORY",
            "ENVIRONMENT",
            "KIND",
            "HOLDER",
            "PR",
            "DEPLOYMENT",
            "SINCE",
            "EXPIRES",
            "REASON",
        ],
        &cells,
    )
}

/// A lock without its owner token (what releases it; nobody reads it here).
fn lock_json(l: &Lock) -> Value {
    json!({
        "repository": l.repository,
        "environment": l.environment,
        "kind": l.kind.as_str(),
        "holder": l.holder,
        "pr": l.pr,
        "deployment_id": l.deployment_id,
        "reason": l.reason,
        "created_at": time(l.created_at),
        "expires_at": l.expires_at.map(time),
    })
}

fn requests_table(requests: &[ProtectionRequest]) -> String {
    let cells: Vec<Vec<String>> = requests
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                terminal_text(&r.repository),
                terminal_text(&r.environment),
                r.deployment_id.to_string(),
                terminal_text(&r.git_ref),
                terminal_text(crate::text::short(&r.sha)),
                r.pr.map_or_else(|| "-".into(), |pr| format!("#{pr}")),
                time(r.created_at),
                time(r.deadline),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "REPOSITORY",
            "ENVIRONMENT",
            "DEPLOYMENT",
            "REF",
            "SHA",
            "PR",
            "SINCE",
            "DEADLINE",
        ],
        &cells,
    )
}

fn request_json(r: &ProtectionRequest) -> Value {
    json!({
        "id": r.id,
        "repository": r.repository,
        "environment": r.environment,
        "deployment_id": r.deployment_id,
        "ref": r.git_ref,
        "sha": r.sha,
        "pr": r.pr,
        "installation_id": r.installation_id,
        "created_at": time(r.created_at),
        "deadline": time(r.deadline),
        "next_check_at": time(r.next_check_at),
        "last_comment": r.last_comment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_leaves_no_escape_sequence_acting() {
        let evil = "acme/\u{1b}[2J\u{1b}]0;pwned\u{7}app\r\n\u{9b}31m\u{202e}gpj.exe\u{7f}";
        let safe = terminal_text(evil);
        assert!(!safe.chars().any(is_dangerous), "{safe:?}");
        assert_eq!(
            safe,
            "acme/\\x1b[2J\\x1b]0;pwned\\x07app\\x0d\\x0a\\u{9b}31m\\u{202e}gpj.exe\\x7f"
        );
        // Ordinary text, accents and all, is kept.
        assert_eq!(terminal_text("café / staging-é"), "café / staging-é");
    }

    #[test]
    fn json_text_escapes_what_serde_json_leaves_raw_and_stays_json() {
        let v = json!({ "name": "a\u{1b}[31m\u{9b}b\u{202e}c\u{7f}" });
        let text = json_text(&v);
        assert!(
            !text.chars().any(|c| is_dangerous(c) && c != '\n'),
            "{text:?}"
        );
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v, "the same value after escaping");
    }

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
    fn tables_align_on_characters() {
        let t = table(
            &["A", "B"],
            &[
                vec!["é".into(), "x".into()],
                vec!["long".into(), "y".into()],
            ],
        );
        assert_eq!(t, "A     B\né     x\nlong  y\n");
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
