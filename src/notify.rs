//! Optional Slack-compatible notifications (`SHIPGATE_SLACK_WEBHOOK_URL`).
//! Sent in the background; a failure is logged and never blocks anything.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

#[derive(Clone, Default)]
pub struct Notifier {
    url: Option<Arc<SecretString>>,
    client: reqwest::Client,
}

impl Notifier {
    pub fn new(url: Option<SecretString>) -> Self {
        Notifier {
            url: url.map(Arc::new),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// Posts `{"text": …}`; returns at once.
    pub fn send(&self, text: String) {
        let Some(url) = self.url.clone() else { return };
        let client = self.client.clone();
        tokio::spawn(async move {
            let sent = client
                .post(url.expose_secret())
                .json(&serde_json::json!({ "text": text }))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {}
                // The URL is a secret: never log it.
                Ok(r) => tracing::warn!(status = r.status().as_u16(), "Slack notification refused"),
                Err(e) => tracing::warn!(error = %e.without_url(), "Slack notification failed"),
            }
        });
    }
}
