//! `POST /webhook`: verify, extract, store, acknowledge.
//!
//! The delivery is committed to the store before the 2xx goes out, and the
//! handlers run later in the worker, so the answer comes in milliseconds
//! whatever the handlers do. Order of checks: load (503 when too many
//! requests are in flight), declared size (413, before any of the body is
//! read), body arrival (408 after the body timeout; 413 when it outgrows the
//! limit), signature (401; nothing is parsed before it holds), content type
//! (415), headers (400), body (400), store (503).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::events::Envelope;
use crate::handlers::Handlers;
use crate::metrics::Metrics;
use crate::signature;
use crate::store::{DeliveryWriter, DynStore, InsertOutcome, NewDelivery};
use crate::worker::Wake;

/// GitHub caps payloads at 25 MB; anything larger is not from GitHub.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

#[derive(Clone)]
pub struct Ingress {
    pub secrets: Arc<Vec<SecretString>>,
    pub store: DynStore,
    /// Commits deliveries, several per statement under load.
    pub writer: DeliveryWriter,
    pub handlers: Handlers,
    pub metrics: Metrics,
    pub wake: Wake,
    /// The whole body must arrive within this long.
    pub body_timeout: Duration,
    /// Permits for webhook requests in flight; none left answers 503.
    pub in_flight: Arc<Semaphore>,
    pub max_in_flight: usize,
}

/// A refusal: status, a reason label for metrics, and a one-line message.
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.2 }))).into_response()
    }
}

pub async fn webhook(State(ingress): State<Ingress>, headers: HeaderMap, body: Body) -> Response {
    // Shed load before reading anything: a 503 costs nothing, and GitHub
    // lists the delivery as failed, so the redelivery sweeper brings it back.
    let Ok(_permit) = ingress.in_flight.clone().try_acquire_owned() else {
        ingress
            .metrics
            .deliveries_rejected
            .with_label_values(&["busy"])
            .inc();
        tracing::warn!(
            delivery = header(&headers, "x-github-delivery").unwrap_or("-"),
            "webhook refused: too many requests in flight"
        );
        let mut resp = Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many webhook requests in flight; redeliver it later".into(),
        )
        .into_response();
        resp.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        return resp;
    };
    let body = read_body(&ingress, &headers, body).await;
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

fn too_large() -> Refusal {
    Refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("body exceeds {} MiB", MAX_BODY_BYTES >> 20),
    )
}

/// Reads the whole body within the body timeout and the size limit. A
/// declared `Content-Length` over the limit is refused before reading.
async fn read_body(ingress: &Ingress, headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
    let declared = header(headers, "content-length").and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(
        ingress.body_timeout,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    {
        Err(_) => Err(Refusal(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the body did not arrive within {} s",
                ingress.body_timeout.as_secs()
            ),
        )),
        Ok(Err(e)) => {
            let e = e.into_inner();
            if e.is::<http_body_util::LengthLimitError>() {
                Err(too_large())
            } else {
                Err(Refusal(
                    StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    format!("could not read the body: {e}"),
                ))
            }
        }
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

async fn accept(
    ingress: &Ingress,
    headers: &HeaderMap,
    body: Result<Bytes, Refusal>,
) -> Result<Response, Refusal> {
    let body = body?;

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

    // Takes the buffer over without a copy when nothing else holds it.
    let text = String::from_utf8(Vec::from(payload)).map_err(|_| {
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
        payload: text.into(),
    };
    let (repository, installation) = (new.repository.clone(), new.installation_id);
    match ingress.writer.insert(new).await {
        Ok(InsertOutcome::Inserted) => {
            ingress
                .metrics
                .deliveries_received
                .with_label_values(&["accepted"])
                .inc();
            ingress.wake.stored(repository.as_deref(), installation);
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
