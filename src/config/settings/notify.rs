//! The notification settings: `SHIPGATE_NOTIFY` (named destinations),
//! `SHIPGATE_SLACK_WEBHOOK_URL` (the destination `slack`, as before) and
//! `SHIPGATE_NOTIFY_RETRY_BASE_MS`. URLs are secrets: no error quotes one.

use std::time::Duration;

use super::env::{non_empty, parse_number, RawEnv};
use super::{bad, SettingsError};
use crate::notify::{Destination, Kind, NotifyLimits, RetryPolicy, DEFAULT_DESTINATION};

/// Where notifications may go, and how they are sent.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub destinations: Vec<Destination>,
    pub limits: NotifyLimits,
}

pub(super) fn notify_settings(raw: &RawEnv) -> Result<NotifySettings, SettingsError> {
    let mut destinations = match non_empty(raw.shipgate_notify.clone()) {
        None => Vec::new(),
        Some(v) => {
            crate::notify::destination::parse_list(&v).map_err(|e| bad("SHIPGATE_NOTIFY", e))?
        }
    };
    if let Some(url) = non_empty(raw.shipgate_slack_webhook_url.clone()) {
        if destinations.iter().any(|d| d.name == DEFAULT_DESTINATION) {
            return Err(bad(
                "SHIPGATE_NOTIFY",
                "names a destination `slack` and SHIPGATE_SLACK_WEBHOOK_URL is set too (it is the destination `slack`); keep one",
            ));
        }
        let url = match url::Url::parse(url.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                secrecy::SecretString::from(url.trim().to_string())
            }
            // The value is a secret: do not echo it.
            _ => {
                return Err(bad(
                    "SHIPGATE_SLACK_WEBHOOK_URL",
                    "expected an https:// incoming-webhook URL",
                ))
            }
        };
        destinations.push(Destination {
            name: DEFAULT_DESTINATION.into(),
            // Slack-compatible whatever its host, as it always was.
            kind: Kind::Slack,
            url,
            owners: Vec::new(),
        });
    }
    let base_ms: u64 = parse_number(
        "SHIPGATE_NOTIFY_RETRY_BASE_MS",
        raw.shipgate_notify_retry_base_ms.clone(),
        1000,
    )?;
    if base_ms == 0 || base_ms > 60_000 {
        return Err(bad(
            "SHIPGATE_NOTIFY_RETRY_BASE_MS",
            format!("must be between 1 and 60000, got {base_ms}"),
        ));
    }
    Ok(NotifySettings {
        destinations,
        limits: NotifyLimits {
            retry: RetryPolicy::with_base(Duration::from_millis(base_ms)),
            ..NotifyLimits::default()
        },
    })
}
