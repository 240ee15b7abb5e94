//! `POST /webhook`: verify, extract, store, acknowledge.
//!
//! The delivery is committed to the store before the 2xx goes out, and the
//! handlers run later in the worker, so the answer comes in milliseconds
//! whatever the handlers do. Order of checks: size (413, by the body limit),
//! signature (401; nothing is read before it holds), content type (415),
//! headers (400), body (400), store (503).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::Notify;

use crate::events::Envelope;
use crate::handlers::Handlers;
use crate::metrics::Metrics;
use crate::signature;
use crate::store::{DynStore, InsertOutcome, NewDelivery};

/// GitHub caps payloads at 25 MB; anything larger is not from GitHub.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

#[derive(Clone)]
pub struct Ingress {
    pub secrets: Arc<Vec<SecretString>>,
    pub store: DynStore,
    pub handlers: Handlers,
    pub metrics: Metrics,
    pub wake: Arc<Notify>,
}

/// A refusal: status, a reason label for metrics, and a one-line message.
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.2 }))).into_response()
    }
}

pub async fn webhook(
    State(ingress): State<Ingress>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match accept(&ingress, &headers, body).await {
        Ok(resp) => resp,
        Err(Refusal(status, reason, message)) => {
            let delivery = header(&headers, "x-github-delivery").unwrap_or("-");
            tracing::warn!(delivery, status = status.as_u16(), reason, %message, "webhook refused");
            ingress
                .metrics
                .deliveries_rejected
                .with_label_values(&[reason])
                .inc();
            Refusal(status, reason, message).into_response()
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

async fn accept(
    ingress: &Ingress,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("body exceeds {} MiB", MAX_BODY_BYTES >> 20),
            )
        } else {
            Refusal(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                format!("could not read the body: {e}"),
            )
        }
    })?;

    signature::verify(
        &ingress.secrets,
        header(headers, "x-hub-signature-256"),
        &body,
    )
    .map_err(|e| Refusal(StatusCode::UNAUTHORIZED, "signature", e.to_string()))?;

    let content_type = header(headers, "content-type").unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let payload: Bytes = match mime.as_str() {
        "application/json" => body,
        "application/x-www-form-urlencoded" => form_payload(&body).ok_or_else(|| {
            Refusal(StatusCode::BAD_REQUEST, "bad_form", "form body has no `payload` field".into())
        })?,
        _ => {
            return Err(Refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_type",
                format!("content type `{content_type}` is not application/json or application/x-www-form-urlencoded"),
            ))
        }
    };

    let event = header(headers, "x-github-event").ok_or_else(|| {
        Refusal(
            StatusCode::BAD_REQUEST,
            "missing_event",
            "missing X-GitHub-Event header".into(),
        )
    })?;
    let delivery_id = header(headers, "x-github-delivery").ok_or_else(|| {
        Refusal(
            StatusCode::BAD_REQUEST,
            "missing_delivery",
            "missing X-GitHub-Delivery header".into(),
        )
    })?;
    if event.starts_with("shipgate_") {
        // Internal follow-up work (e.g. smoke runs) is never accepted from outside.
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "bad_header",
            format!("`{event}` is not a GitHub event"),
        ));
    }
    if delivery_id.len() > 200 || event.len() > 100 {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "bad_header",
            "X-GitHub-Event or X-GitHub-Delivery is too long".into(),
        ));
    }

    let envelope = Envelope::parse(&payload).map_err(|e| {
        Refusal(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("body is not a JSON object: {e}"),
        )
    })?;
    let action = envelope.action.clone();

    if !ingress.handlers.wants(event, action.as_deref()) {
        ingress
            .metrics
            .deliveries_received
            .with_label_values(&["ignored"])
            .inc();
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "queued": false, "delivery": delivery_id })),
        )
            .into_response());
    }

    let text = String::from_utf8(payload.to_vec()).map_err(|_| {
        Refusal(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "body is not UTF-8".into(),
        )
    })?;
    let new = NewDelivery {
        delivery_id: delivery_id.to_string(),
        event: event.to_string(),
        action,
        installation_id: envelope.installation.map(|i| i.id),
        repository: envelope.repository.map(|r| r.full_name),
        payload: text,
    };
    match ingress.store.insert_delivery(&new, crate::now_ms()).await {
        Ok(InsertOutcome::Inserted) => {
            ingress
                .metrics
                .deliveries_received
                .with_label_values(&["accepted"])
                .inc();
            ingress.wake.notify_one();
            tracing::info!(delivery = delivery_id, event, "delivery stored");
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "queued": true, "delivery": delivery_id })),
            )
                .into_response())
        }
        Ok(InsertOutcome::Duplicate) => {
            ingress
                .metrics
                .deliveries_received
                .with_label_values(&["duplicate"])
                .inc();
            tracing::info!(delivery = delivery_id, event, "duplicate delivery ignored");
            Ok((
                StatusCode::OK,
                Json(json!({ "duplicate": true, "delivery": delivery_id })),
            )
                .into_response())
        }
        Err(e) => {
            tracing::error!(delivery = delivery_id, error = %e, "could not store delivery");
            Err(Refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store",
                "could not store the delivery; redeliver it later".into(),
            ))
        }
    }
}

/// The url-decoded `payload` field of a form-encoded delivery.
fn form_payload(body: &[u8]) -> Option<Bytes> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| Bytes::from(v.into_owned()))
}
