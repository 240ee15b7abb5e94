//! Smoke benchmark: 50 checks against a local server that answers each
//! request after 200 ms. Checks run concurrently, so the suite should take
//! about as long as the slowest check, not 50 × 200 ms.
//!
//! `cargo bench --bench smoke` (optionally `-- ROUNDS`).

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use shipgate::smoke::{self, CheckSpec, SmokeConfig, SmokeOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let app = Router::new().route(
        "/slow/{n}",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            axum::Json(serde_json::json!({ "status": "healthy" }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let suite = SmokeConfig {
        checks: (0..50)
            .map(|i| {
                let mut c: CheckSpec = serde_yaml_ng::from_str(&format!(
                    "{{ name: check {i}, path: /slow/{i}, expect: {{ status: 200, json: ['$.status == \"healthy\"'], max_ms: 1000 }} }}"
                ))
                .unwrap();
                c.name = Some(format!("check {i}"));
                c
            })
            .collect(),
        ..SmokeConfig::default()
    };
    let opts = SmokeOptions::default();
    let base = url::Url::parse(&format!("http://{addr}/")).unwrap();
    let mut totals = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let report = smoke::run(&base, &suite, &opts, &smoke::Limits::none()).await;
        totals.push(started.elapsed());
        assert_eq!(
            report.count(smoke::Outcome::Pass),
            50,
            "{}",
            report.summary()
        );
    }
    totals.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "50 checks, each answered after 200 ms, {rounds} rounds (default options, concurrency {}):",
        opts.concurrency
    );
    println!(
        "  min {:.0} ms  median {:.0} ms  max {:.0} ms",
        ms(totals[0]),
        ms(totals[totals.len() / 2]),
        ms(totals[totals.len() - 1])
    );
}
