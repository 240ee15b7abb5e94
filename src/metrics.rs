//! Prometheus metrics, served as text on `GET /metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

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
    /// GitHub API responses by status code (or `error` for transport failures).
    pub github_api_calls: IntCounterVec,
    /// Time spent in handlers per event.
    pub handler_seconds: HistogramVec,
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
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("shipgate".into()), None).expect("valid prefix");
        let deliveries_received = IntCounterVec::new(
            Opts::new(
                "deliveries_received_total",
                "Webhook deliveries acknowledged, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let deliveries_rejected = IntCounterVec::new(
            Opts::new(
                "deliveries_rejected_total",
                "Webhook deliveries refused, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let deliveries_processed = IntCounterVec::new(
            Opts::new(
                "deliveries_processed_total",
                "Delivery processing attempts, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let queue_depth = IntGauge::new(
            "queue_depth",
            "Deliveries stored and not yet done or failed",
        )
        .expect("valid metric");
        let github_api_calls = IntCounterVec::new(
            Opts::new("github_api_calls_total", "GitHub API responses, by status"),
            &["status"],
        )
        .expect("valid metric");
        let handler_seconds = HistogramVec::new(
            HistogramOpts::new(
                "handler_duration_seconds",
                "Time to process one delivery, by event",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["event"],
        )
        .expect("valid metric");
        let redelivery_sweeps = IntCounterVec::new(
            Opts::new("redelivery_sweeps_total", "Redelivery sweeps, by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let redeliveries = IntCounterVec::new(
            Opts::new(
                "redeliveries_total",
                "Redeliveries asked of GitHub for deliveries never stored, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let redelivery_missing = IntGauge::new(
            "redelivery_missing",
            "Failed deliveries shipgate never stored, as of the last sweep",
        )
        .expect("valid metric");
        let webhooks_in_flight = IntGauge::new(
            "webhooks_in_flight",
            "Webhook requests being handled (reading, verifying, storing)",
        )
        .expect("valid metric");
        let webhook_bodies_reading = IntGauge::new(
            "webhook_bodies_reading",
            "Webhook requests whose body is still being read (before an in-flight permit)",
        )
        .expect("valid metric");
        let webhook_body_bytes = IntGauge::new(
            "webhook_body_bytes",
            "Bytes of webhook bodies held in memory (SHIPGATE_BODY_BUFFER_MIB in use)",
        )
        .expect("valid metric");
        let delivery_batch_rows = Histogram::with_opts(
            HistogramOpts::new(
                "delivery_batch_rows",
                "Deliveries stored per ingress commit (deliveries that arrive during a commit share the next one)",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        )
        .expect("valid metric");
        for c in [
            Box::new(deliveries_received.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(deliveries_rejected.clone()),
            Box::new(deliveries_processed.clone()),
            Box::new(queue_depth.clone()),
            Box::new(github_api_calls.clone()),
            Box::new(handler_seconds.clone()),
            Box::new(redelivery_sweeps.clone()),
            Box::new(redeliveries.clone()),
            Box::new(redelivery_missing.clone()),
            Box::new(webhooks_in_flight.clone()),
            Box::new(webhook_bodies_reading.clone()),
            Box::new(webhook_body_bytes.clone()),
            Box::new(delivery_batch_rows.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Metrics {
            registry,
            deliveries_received,
            deliveries_rejected,
            deliveries_processed,
            queue_depth,
            github_api_calls,
            handler_seconds,
            redelivery_sweeps,
            redeliveries,
            redelivery_missing,
            webhooks_in_flight,
            webhook_bodies_reading,
            webhook_body_bytes,
            delivery_batch_rows,
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
