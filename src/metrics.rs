//! Prometheus metrics, served as text on `GET /metrics`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// How long a low rate-limit reading is kept: the gauge shows the lowest
/// `x-ratelimit-remaining` of the current window and the one before it, so
/// a reading stays visible for one to two windows.
pub const RATE_LIMIT_WINDOW_MS: i64 = 60_000;
/// Rate-limit resources tracked at most (GitHub has about a dozen); the
/// name comes from a response header, so it must not grow a label set.
const MAX_RATE_LIMIT_RESOURCES: usize = 16;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Deliveries by outcome at ingress: accepted, ignored (event not handled), duplicate.
    pub deliveries_received: IntCounterVec,
    /// Deliveries refused at ingress, by reason.
    pub deliveries_rejected: IntCounterVec,
    /// Worker outcomes: done, retry, failed.
    pub deliveries_processed: IntCounterVec,
    pub queue_depth: IntGauge,
    /// Age of the oldest delivery not yet done or failed (0 when none), set on scrape.
    pub queue_oldest_age_seconds: Gauge,
    /// GitHub API responses by status code (or `error` for transport failures).
    pub github_api_calls: IntCounterVec,
    /// Time to process one delivery (all the handlers that want it), by
    /// the delivery's event.
    pub handler_seconds: HistogramVec,
    /// Time of one handler on one delivery, by handler.
    pub handler_run_seconds: HistogramVec,
    /// The lowest `x-ratelimit-remaining` GitHub reported lately, by resource.
    pub github_rate_limit_remaining: IntGaugeVec,
    rate_limits: Arc<Mutex<HashMap<String, RateWindow>>>,
    names: Arc<Vec<String>>,
    /// Redelivery sweeps, by outcome: done, skipped (another replica's turn), error.
    pub redelivery_sweeps: IntCounterVec,
    /// Redeliveries asked of GitHub, by outcome: requested, refused.
    pub redeliveries: IntCounterVec,
    /// Failed deliveries shipgate never stored, as of the last sweep.
    pub redelivery_missing: IntGauge,
    /// Webhook requests being handled right now.
    pub webhooks_in_flight: IntGauge,
    /// Of those, the ones whose body is still being read.
    pub webhook_bodies_reading: IntGauge,
    /// Bytes of webhook bodies held in memory (the body buffer in use).
    pub webhook_body_bytes: IntGauge,
    /// Deliveries per ingress commit (group commit; see `store::writer`).
    pub delivery_batch_rows: Histogram,
    /// Notifications by destination (the operator's names) and outcome:
    /// sent, failed (after its retries), dropped (the queue was full).
    pub notifications: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Buckets of the handler timings, in seconds.
const HANDLER_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A counter with one label.
fn counter_vec(name: &str, help: &str, label: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric")
}

fn int_gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric")
}

/// A handler timing with one label, in [`HANDLER_BUCKETS`].
fn timing_vec(name: &str, help: &str, label: &str) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(HANDLER_BUCKETS.to_vec()),
        &[label],
    )
    .expect("valid metric")
}

/// Registers `collectors`; returns their full names (`shipgate_…`), in order.
fn register_all(
    registry: &Registry,
    collectors: Vec<Box<dyn prometheus::core::Collector>>,
) -> Vec<String> {
    let mut names = Vec::new();
    for c in collectors {
        // The registry adds the prefix when it gathers.
        names.extend(c.desc().iter().map(|d| format!("shipgate_{}", d.fq_name)));
        registry.register(c).expect("metric registered once");
    }
    names
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("shipgate".into()), None).expect("valid prefix");
        let deliveries_received = counter_vec(
            "deliveries_received_total",
            "Webhook deliveries acknowledged, by outcome",
            "outcome",
        );
        let deliveries_rejected = counter_vec(
            "deliveries_rejected_total",
            "Webhook deliveries refused, by reason",
            "reason",
        );
        let deliveries_processed = counter_vec(
            "deliveries_processed_total",
            "Delivery processing attempts, by outcome",
            "outcome",
        );
        let queue_depth = int_gauge(
            "queue_depth",
            "Deliveries stored and not yet done or failed",
        );
        let queue_oldest_age_seconds = Gauge::new(
            "queue_oldest_age_seconds",
            "Seconds since the oldest delivery not yet done or failed arrived (0 when none)",
        )
        .expect("valid metric");
        let github_api_calls = counter_vec(
            "github_api_calls_total",
            "GitHub API responses, by status",
            "status",
        );
        let handler_seconds = timing_vec(
            "handler_duration_seconds",
            "Time to process one delivery, by event",
            "event",
        );
        let handler_run_seconds = timing_vec(
            "handler_run_duration_seconds",
            "Time of one handler on one delivery, by handler",
            "handler",
        );
        let github_rate_limit_remaining = IntGaugeVec::new(
            Opts::new(
                "github_rate_limit_remaining",
                "Lowest x-ratelimit-remaining GitHub reported in the last minute or two, by resource",
            ),
            &["resource"],
        )
        .expect("valid metric");
        let redelivery_sweeps = counter_vec(
            "redelivery_sweeps_total",
            "Redelivery sweeps, by outcome",
            "outcome",
        );
        let redeliveries = counter_vec(
            "redeliveries_total",
            "Redeliveries asked of GitHub for deliveries never stored, by outcome",
            "outcome",
        );
        let redelivery_missing = int_gauge(
            "redelivery_missing",
            "Failed deliveries shipgate never stored, as of the last sweep",
        );
        let webhooks_in_flight = int_gauge(
            "webhooks_in_flight",
            "Webhook requests being handled (reading, verifying, storing)",
        );
        let webhook_bodies_reading = int_gauge(
            "webhook_bodies_reading",
            "Webhook requests whose body is still being read (before an in-flight permit)",
        );
        let webhook_body_bytes = int_gauge(
            "webhook_body_bytes",
            "Bytes of webhook bodies held in memory (SHIPGATE_BODY_BUFFER_MIB in use)",
        );
        let delivery_batch_rows = Histogram::with_opts(
            HistogramOpts::new(
                "delivery_batch_rows",
                "Deliveries stored per ingress commit (deliveries that arrive during a commit share the next one)",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        )
        .expect("valid metric");
        let notifications = IntCounterVec::new(
            Opts::new(
                "notifications_total",
                "Notifications by destination and outcome (sent, failed after retries, dropped)",
            ),
            &["destination", "outcome"],
        )
        .expect("valid metric");
        let mut metrics = Metrics {
            registry,
            deliveries_received,
            deliveries_rejected,
            deliveries_processed,
            queue_depth,
            queue_oldest_age_seconds,
            github_api_calls,
            handler_seconds,
            handler_run_seconds,
            github_rate_limit_remaining,
            rate_limits: Arc::default(),
            names: Arc::default(),
            redelivery_sweeps,
            redeliveries,
            redelivery_missing,
            webhooks_in_flight,
            webhook_bodies_reading,
            webhook_body_bytes,
            delivery_batch_rows,
            notifications,
        };
        let names = register_all(&metrics.registry, metrics.collectors());
        metrics.names = Arc::new(names);
        metrics
    }

    /// Every metric, in the order they are registered.
    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.deliveries_received.clone()),
            Box::new(self.deliveries_rejected.clone()),
            Box::new(self.deliveries_processed.clone()),
            Box::new(self.queue_depth.clone()),
            Box::new(self.queue_oldest_age_seconds.clone()),
            Box::new(self.github_api_calls.clone()),
            Box::new(self.handler_seconds.clone()),
            Box::new(self.handler_run_seconds.clone()),
            Box::new(self.github_rate_limit_remaining.clone()),
            Box::new(self.redelivery_sweeps.clone()),
            Box::new(self.redeliveries.clone()),
            Box::new(self.redelivery_missing.clone()),
            Box::new(self.webhooks_in_flight.clone()),
            Box::new(self.webhook_bodies_reading.clone()),
            Box::new(self.webhook_body_bytes.clone()),
            Box::new(self.delivery_batch_rows.clone()),
            Box::new(self.notifications.clone()),
        ]
    }

    /// Every metric's full name (`shipgate_…`), including those with no
    /// value yet (a labelled family shows up in `/metrics` only once used).
    pub fn names(&self) -> Vec<String> {
        self.names.to_vec()
    }

    /// Queue depth and the oldest pending delivery's age, as of `now_ms`.
    pub fn set_pending(&self, depth: i64, oldest_received_at: Option<i64>, now_ms: i64) {
        self.queue_depth.set(depth);
        let age_ms = oldest_received_at.map_or(0, |at| now_ms.saturating_sub(at).max(0));
        self.queue_oldest_age_seconds.set(age_ms as f64 / 1000.0);
    }

    /// One `x-ratelimit-remaining` reading of a response (its
    /// `x-ratelimit-resource`, `core` when absent). Resource names that are
    /// not GitHub's shape (lowercase, digits, `_`) and resources beyond the
    /// first 16 are not tracked.
    pub fn observe_rate_limit(&self, resource: &str, remaining: i64, now_ms: i64) {
        let valid = !resource.is_empty()
            && resource.len() <= 40
            && resource
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return;
        }
        let lowest = {
            let mut windows = self.rate_limits.lock().expect("poisoned");
            if !windows.contains_key(resource) && windows.len() >= MAX_RATE_LIMIT_RESOURCES {
                return;
            }
            let w = windows
                .entry(resource.to_string())
                .or_insert_with(|| RateWindow::new(now_ms));
            w.observe(remaining, now_ms);
            w.lowest()
        };
        self.github_rate_limit_remaining
            .with_label_values(&[resource])
            .set(lowest);
    }

    /// Lets old readings go: each resource's gauge shows the lowest of its
    /// last one to two windows (the latest reading when none is that recent).
    pub fn refresh_rate_limits(&self, now_ms: i64) {
        let windows = {
            let mut windows = self.rate_limits.lock().expect("poisoned");
            windows
                .iter_mut()
                .map(|(r, w)| {
                    w.roll(now_ms);
                    (r.clone(), w.lowest())
                })
                .collect::<Vec<_>>()
        };
        for (resource, lowest) in windows {
            self.github_rate_limit_remaining
                .with_label_values(&[&resource])
                .set(lowest);
        }
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(out).expect("Prometheus text is UTF-8")
    }
}

/// The readings of one rate-limit resource.
#[derive(Debug, Clone)]
struct RateWindow {
    /// When the current window started.
    start: i64,
    /// Lowest reading of the current window.
    current: Option<i64>,
    /// Lowest reading of the window before, if it ended less than a window ago.
    previous: Option<i64>,
    /// The latest reading.
    last: i64,
}

impl RateWindow {
    fn new(now_ms: i64) -> Self {
        RateWindow {
            start: now_ms,
            current: None,
            previous: None,
            last: 0,
        }
    }

    fn roll(&mut self, now_ms: i64) {
        let elapsed = now_ms - self.start;
        if elapsed >= RATE_LIMIT_WINDOW_MS {
            self.previous = if elapsed < 2 * RATE_LIMIT_WINDOW_MS {
                self.current
            } else {
                None
            };
            self.current = None;
            self.start = now_ms;
        }
    }

    fn observe(&mut self, remaining: i64, now_ms: i64) {
        self.roll(now_ms);
        self.current = Some(self.current.map_or(remaining, |c| c.min(remaining)));
        self.last = remaining;
    }

    fn lowest(&self) -> i64 {
        match (self.current, self.previous) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => self.last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(m: &Metrics, prefix: &str) -> String {
        m.render()
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} missing"))
            .to_string()
    }

    #[test]
    fn the_lowest_rate_limit_reading_is_kept_for_a_window_then_let_go() {
        let m = Metrics::new();
        let t0 = 1_000_000;
        m.observe_rate_limit("core", 4000, t0);
        m.observe_rate_limit("core", 3100, t0 + 1_000);
        m.observe_rate_limit("core", 3900, t0 + 2_000);
        m.observe_rate_limit("search", 28, t0 + 2_000);
        let remaining = r#"shipgate_github_rate_limit_remaining{resource="core"}"#;
        assert_eq!(line(&m, remaining), format!("{remaining} 3100"));
        assert_eq!(
            line(
                &m,
                r#"shipgate_github_rate_limit_remaining{resource="search"}"#
            ),
            r#"shipgate_github_rate_limit_remaining{resource="search"} 28"#
        );
        // The next window still remembers the low reading of the one before.
        m.observe_rate_limit("core", 4500, t0 + RATE_LIMIT_WINDOW_MS + 10);
        assert_eq!(line(&m, remaining), format!("{remaining} 3100"));
        // Two windows on, only the recent readings count.
        m.observe_rate_limit("core", 4400, t0 + 2 * RATE_LIMIT_WINDOW_MS + 20);
        assert_eq!(line(&m, remaining), format!("{remaining} 4400"));
        // With no readings for long, a scrape shows the latest one.
        m.refresh_rate_limits(t0 + 10 * RATE_LIMIT_WINDOW_MS);
        assert_eq!(line(&m, remaining), format!("{remaining} 4400"));
    }

    #[test]
    fn rate_limit_resources_from_headers_cannot_grow_the_label_set() {
        let m = Metrics::new();
        m.observe_rate_limit("Core\u{1b}[31m", 1, 0);
        m.observe_rate_limit("", 1, 0);
        for i in 0..100 {
            m.observe_rate_limit(&format!("r{i}"), i, 0);
        }
        let series = m
            .render()
            .lines()
            .filter(|l| l.starts_with("shipgate_github_rate_limit_remaining{"))
            .count();
        assert_eq!(series, MAX_RATE_LIMIT_RESOURCES);
    }

    #[test]
    fn the_oldest_pending_age_is_in_seconds_and_zero_when_the_queue_is_empty() {
        let m = Metrics::new();
        m.set_pending(3, Some(10_000), 72_500);
        assert_eq!(
            line(&m, "shipgate_queue_oldest_age_seconds "),
            "shipgate_queue_oldest_age_seconds 62.5"
        );
        assert_eq!(line(&m, "shipgate_queue_depth "), "shipgate_queue_depth 3");
        m.set_pending(0, None, 80_000);
        assert_eq!(
            line(&m, "shipgate_queue_oldest_age_seconds "),
            "shipgate_queue_oldest_age_seconds 0"
        );
    }
}
