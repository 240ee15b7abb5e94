//! `shipgate webhook send`: signs a payload file and posts it the way GitHub
//! does, to try a server by hand.

use std::path::Path;

use crate::github::signature;

pub struct SendRequest<'a> {
    pub url: &'a str,
    pub secret: &'a str,
    pub event: &'a str,
    pub delivery: Option<&'a str>,
    pub file: &'a Path,
}

/// Posts the file; returns the response status and body.
pub async fn send(req: SendRequest<'_>) -> anyhow::Result<(u16, String)> {
    let body =
        std::fs::read(req.file).map_err(|e| anyhow::anyhow!("{}: {e}", req.file.display()))?;
    serde_json::from_slice::<serde_json::Value>(&body)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", req.file.display()))?;
    let delivery = req
        .delivery
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let response = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?
        .post(req.url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/shipgate")
        .header("x-github-event", req.event)
        .header("x-github-delivery", &delivery)
        .header(
            "x-hub-signature-256",
            signature::sign(req.secret.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("POST {}: {e}", req.url))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    Ok((status, text))
}
