//! `POST /webhook`: read, verify, extract, store, acknowledge.
//!
//! The delivery is committed to the store before the 2xx goes out, and the
//! handlers run later in the worker, so the answer comes in milliseconds
//! whatever the handlers do.
//!
//! Anyone can open a connection, so the body is read before the request
//! takes one of the in-flight permits: a stranger's slow body holds only
//! what reading costs, and that is bounded on its own (a per-address cap on
//! unfinished bodies, a minimum body rate after the first second, the body
//! timeout, and a shared byte budget for bodies in memory). The permits
//! guard only verify, parse and store, which take milliseconds.
//!
//! Order of checks: unfinished bodies from the client's address (429),
//! declared size (413, before any of the body is read), body arrival (408
//! when it stalls below the minimum rate or outlasts the body timeout; 413
//! when it outgrows the limit; 503 when the body buffer is full), load (503
//! when too many requests are being verified and stored), signature (401;
//! nothing is parsed before it holds), content type (415), headers (400),
//! body (400), store (503).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::settings::BodyLimits;
use crate::github::events::Envelope;
use crate::github::signature;
use crate::handlers::Handlers;
use crate::metrics::Metrics;
use crate::store::{DeliveryWriter, DynStore, InsertOutcome, NewDelivery, Wake, MAX_BODY_BYTES};

/// How long a body may take before the minimum rate applies: enough for
/// any connection to get going, far too little to hold anything for long.
const BODY_RATE_GRACE: Duration = Duration::from_secs(1);

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
    /// Permits for requests being verified and stored; none left answers 503.
    pub in_flight: Arc<Semaphore>,
    pub max_in_flight: usize,
    /// How bodies are read (rate, per-address cap, buffer size).
    pub bodies: BodyLimits,
    /// Bodies being read, by client address.
    pub readers: Arc<BodyReaders>,
    /// One permit per byte of webhook body held in memory.
    pub body_buffer: Arc<Semaphore>,
}

impl Ingress {
    /// Webhook requests under way: bodies being read, and requests being
    /// verified and stored.
    pub fn requests_in_flight(&self) -> usize {
        self.bodies_reading() + (self.max_in_flight - self.in_flight.available_permits())
    }

    /// Webhook requests whose body is still being read.
    pub fn bodies_reading(&self) -> usize {
        self.readers.reading.load(Ordering::Relaxed)
    }

    /// Bytes of webhook bodies held in memory.
    pub fn body_bytes(&self) -> usize {
        self.bodies.buffer_bytes - self.body_buffer.available_permits()
    }
}

/// The TCP peer's address, put on each request by the server.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// What one client counts as: an IPv4 address, or an IPv6 /64 (the least a
/// host is usually given, so a single attacker does not get 2^64 shares).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ClientKey(IpAddr);

impl ClientKey {
    fn of(addr: IpAddr) -> Self {
        match addr.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                ClientKey(IpAddr::V6(prefix.into()))
            }
            v4 => ClientKey(v4),
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Bodies being read: in all, and per client.
#[derive(Default)]
pub struct BodyReaders {
    reading: AtomicUsize,
    per_client: Mutex<HashMap<ClientKey, usize>>,
}

impl BodyReaders {
    /// Counts a body as being read until the guard drops; `None` when the
    /// client already has `max_per_client` unfinished.
    fn start(
        self: &Arc<Self>,
        client: Option<ClientKey>,
        max_per_client: usize,
    ) -> Option<ReadingBody> {
        if let Some(client) = client {
            let mut per_client = self.per_client.lock().expect("poisoned");
            let unfinished = per_client.entry(client).or_default();
            if *unfinished >= max_per_client {
                return None;
            }
            *unfinished += 1;
        }
        self.reading.fetch_add(1, Ordering::Relaxed);
        Some(ReadingBody {
            readers: self.clone(),
            client,
        })
    }
}

/// A body being read; see [`BodyReaders::start`].
struct ReadingBody {
    readers: Arc<BodyReaders>,
    client: Option<ClientKey>,
}

impl Drop for ReadingBody {
    fn drop(&mut self) {
        self.readers.reading.fetch_sub(1, Ordering::Relaxed);
        if let Some(client) = self.client {
            let mut per_client = self.readers.per_client.lock().expect("poisoned");
            if let Some(unfinished) = per_client.get_mut(&client) {
                *unfinished -= 1;
                if *unfinished == 0 {
                    per_client.remove(&client);
                }
            }
        }
    }
}

/// A refusal: status, a reason label for metrics, and a one-line message.
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut resp = (self.0, Json(json!({ "error": self.2 }))).into_response();
        if matches!(
            self.0,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        ) {
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        resp
    }
}

pub async fn webhook(
    State(ingress): State<Ingress>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client.map(|Extension(ClientAddr(addr))| ClientKey::of(addr));
    match receive(&ingress, client, &headers, body).await {
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

/// Reads the body under its own limits, then verifies and stores it under
/// an in-flight permit.
async fn receive(
    ingress: &Ingress,
    client: Option<ClientKey>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let reading = ingress
        .readers
        .start(client, ingress.bodies.max_per_client)
        .ok_or_else(|| {
            let from = client.map_or_else(|| "this address".into(), |c| c.to_string());
            Refusal(
                StatusCode::TOO_MANY_REQUESTS,
                "client_busy",
                format!("too many unfinished webhook bodies from {from}; redeliver it later"),
            )
        })?;
    // `_buffered` keeps the body's bytes counted until the answer.
    let (body, _buffered) = read_body(ingress, headers, body).await?;
    drop(reading);
    // A 503 costs nothing, and GitHub lists the delivery as failed, so the
    // redelivery sweeper brings it back.
    let _permit = ingress.in_flight.clone().try_acquire_owned().map_err(|_| {
        Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many webhook requests in flight; redeliver it later".into(),
        )
    })?;
    accept(ingress, headers, body).await
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

/// Reads the whole body: within the size limit (a declared
/// `Content-Length` over it is refused before reading), within the body
/// timeout, at the minimum rate once the grace second is over, and within
/// the shared body buffer, whose permits come back with the bytes.
async fn read_body(
    ingress: &Ingress,
    headers: &HeaderMap,
    mut body: Body,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Refusal> {
    let declared = header(headers, "content-length").and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let started = tokio::time::Instant::now();
    let give_up = started + ingress.body_timeout;
    let min_rate = ingress.bodies.min_bytes_per_sec;
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut received = 0usize;
    let mut buffered: Option<OwnedSemaphorePermit> = None;
    loop {
        // When the bytes so far stop covering the minimum rate.
        let too_slow = (min_rate > 0).then(|| {
            started + BODY_RATE_GRACE + Duration::from_secs_f64(received as f64 / min_rate as f64)
        });
        let deadline = too_slow.map_or(give_up, |t| t.min(give_up));
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) if deadline < give_up => {
                return Err(Refusal(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_too_slow",
                    format!("the body arrived slower than {min_rate} bytes a second"),
                ))
            }
            Err(_) => {
                return Err(Refusal(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!(
                        "the body did not arrive within {} s",
                        ingress.body_timeout.as_secs()
                    ),
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(Refusal(
                    StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    format!("could not read the body: {e}"),
                ))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if received + data.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        let bytes = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let permit = ingress
            .body_buffer
            .clone()
            .try_acquire_many_owned(bytes)
            .map_err(|_| {
                Refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "buffer_full",
                    "webhook bodies fill the body buffer; redeliver it later".into(),
                )
            })?;
        match &mut buffered {
            Some(held) => held.merge(permit),
            None => buffered = Some(permit),
        }
        received += data.len();
        chunks.push(data);
    }
    let body = match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().expect("one chunk"),
        _ => {
            let mut all = Vec::with_capacity(received);
            for chunk in &chunks {
                all.extend_from_slice(chunk);
            }
            Bytes::from(all)
        }
    };
    Ok((body, buffered))
}

async fn accept(ingress: &Ingress, headers: &HeaderMap, body: Bytes) -> Result<Response, Refusal> {
    signature::verify(
        &ingress.secrets,
        header(headers, "x-hub-signature-256"),
        &body,
    )
    .map_err(|e| Refusal(StatusCode::UNAUTHORIZED, "signature", e.to_string()))?;

    let payload = payload_of(headers, body)?;

    let (event, delivery_id) = event_and_delivery(headers)?;

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
    store(ingress, new, delivery_id, event).await
}

/// The payload a delivery carries: the body itself (JSON) or its form's
/// `payload` field; any other content type is refused.
fn payload_of(headers: &HeaderMap, body: Bytes) -> Result<Bytes, Refusal> {
    let content_type = header(headers, "content-type").unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Ok(match mime.as_str() {
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
    })
}

/// The `X-GitHub-Event` and `X-GitHub-Delivery` headers, checked: present,
/// of a sane length, and not one of shipgate's internal events.
fn event_and_delivery(headers: &HeaderMap) -> Result<(&str, &str), Refusal> {
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
    Ok((event, delivery_id))
}

/// Stores an accepted delivery and wakes the workers; a delivery stored
/// before is answered as a duplicate. `delivery_id` and `event` are the
/// headers' (what `new` holds), for the log and the answer.
async fn store(
    ingress: &Ingress,
    new: NewDelivery,
    delivery_id: &str,
    event: &str,
) -> Result<Response, Refusal> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_slash_64() {
        let key = |s: &str| ClientKey::of(s.parse().unwrap());
        assert_eq!(key("192.0.2.7").to_string(), "192.0.2.7");
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
        // One host's /64 is one client, however many addresses it uses.
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
        // An IPv4 peer on a dual-stack socket is still its IPv4 address.
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
    }

    #[test]
    fn unfinished_bodies_are_counted_per_client_until_they_finish() {
        let readers = Arc::new(BodyReaders::default());
        let a = Some(ClientKey::of("192.0.2.1".parse().unwrap()));
        let b = Some(ClientKey::of("192.0.2.2".parse().unwrap()));
        let first = readers.start(a, 2).unwrap();
        let _second = readers.start(a, 2).unwrap();
        assert!(
            readers.start(a, 2).is_none(),
            "a third from the same address"
        );
        let other = readers.start(b, 2).unwrap();
        let unknown = readers.start(None, 2).unwrap();
        assert_eq!(readers.reading.load(Ordering::Relaxed), 4);
        drop(first);
        assert!(readers.start(a, 2).is_some(), "a slot came back");
        drop((other, unknown));
        assert_eq!(
            readers.per_client.lock().unwrap().len(),
            1,
            "no empty entries"
        );
    }
}
