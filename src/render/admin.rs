//! What the operator's toolbox prints: text from outside made inert for a
//! terminal, and tables and `--json` documents of deliveries, locks and
//! protection rule requests.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::store::{DeliveryRecord, Lock, ProtectionRequest};

/// Characters of an error message a table cell shows (`show` has it all).
const ERROR_CELL_CHARS: usize = 80;

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

pub fn deliveries_table(rows: &[DeliveryRecord]) -> String {
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

pub fn delivery_details(r: &DeliveryRecord, payload: Option<&str>) -> String {
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

pub fn record_json(r: &DeliveryRecord, payload: Option<&str>) -> Value {
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

pub fn locks_table(locks: &[Lock]) -> String {
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
pub fn lock_json(l: &Lock) -> Value {
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

pub fn requests_table(requests: &[ProtectionRequest]) -> String {
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

pub fn request_json(r: &ProtectionRequest) -> Value {
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

    fn record() -> DeliveryRecord {
        DeliveryRecord {
            seq: 7,
            delivery_id: "d-1".into(),
            event: "issue_comment".into(),
            action: Some("created".into()),
            installation_id: Some(42),
            repository: Some("acme/\u{1b}[31mapp".into()),
            state: crate::store::DeliveryState::Failed,
            attempts: 3,
            last_error: Some("chatops: GitHub answered 502: bad gateway".into()),
            received_at: 1_795_000_000_000,
            next_attempt_at: 1_795_000_060_000,
            locked_by: None,
            locked_until: None,
            finished_at: Some(1_795_000_120_000),
        }
    }

    fn lock() -> Lock {
        Lock {
            repository: "acme/app".into(),
            environment: "production".into(),
            kind: crate::store::LockKind::Sticky,
            holder: "bob".into(),
            pr: Some(12),
            owner_token: "run:1:2".into(),
            deployment_id: None,
            reason: Some("migration".into()),
            expires_at: None,
            created_at: 1_795_000_000_000,
        }
    }

    fn request() -> ProtectionRequest {
        ProtectionRequest {
            id: 3,
            repository: "acme/app".into(),
            environment: "production".into(),
            deployment_id: 99,
            callback_url:
                "https://api.github.com/repos/acme/app/actions/runs/1/deployment_protection_rule"
                    .into(),
            sha: "0123456789abcdef".into(),
            git_ref: "refs/heads/main".into(),
            pr: Some(12),
            reviewed_sha: None,
            installation_id: Some(42),
            state: "pending".into(),
            deadline: 1_795_003_600_000,
            next_check_at: 1_795_000_060_000,
            progress_posts: 1,
            last_comment: Some("shipgate: waiting".into()),
            created_at: 1_795_000_000_000,
        }
    }

    #[test]
    fn operator_tables() {
        insta::assert_snapshot!([
            deliveries_table(&[record()]),
            delivery_details(&record(), Some(r#"{"action":"created"}"#)),
            locks_table(&[lock()]),
            requests_table(&[request()]),
        ]
        .join("\n---\n"));
    }

    #[test]
    fn operator_json() {
        insta::assert_json_snapshot!(json!([
            record_json(&record(), None),
            lock_json(&lock()),
            request_json(&request()),
        ]));
    }
}
