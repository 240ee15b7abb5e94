//! The webhook server: routes, startup and graceful shutdown.

pub mod ingress;
pub mod redeliver;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::repo::{ConfigCache, ConfigCacheLimits};
use crate::config::settings::{ServerSettings, SettingsError};
use crate::github::{GitHub, RetryPolicy};
use crate::handlers::{Context, Handlers};
use crate::metrics::Metrics;
use crate::store::{self, DeliveryWriter, DynStore};
use crate::store::{Wake, MAX_BODY_BYTES};
use ingress::{ClientAddr, Ingress};
use worker::Worker;

/// The HTTP routes. Kept apart from `start` so tests can serve them directly.
pub fn router(ingress: Ingress) -> Router {
    Router::new()
        .route("/webhook", post(ingress::webhook))
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .with_state(ingress)
}

async fn readyz(State(ingress): State<Ingress>) -> impl IntoResponse {
    match ingress.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "store unreachable" })),
            )
        }
    }
}

async fn metrics(State(ingress): State<Ingress>) -> impl IntoResponse {
    let now = crate::now_ms();
    if let Ok(stats) = ingress.store.pending_stats().await {
        ingress
            .metrics
            .set_pending(stats.depth, stats.oldest_received_at, now);
    }
    ingress.metrics.refresh_rate_limits(now);
    ingress
        .metrics
        .webhooks_in_flight
        .set(ingress.requests_in_flight() as i64);
    ingress
        .metrics
        .webhook_bodies_reading
        .set(ingress.bodies_reading() as i64);
    ingress
        .metrics
        .webhook_body_bytes
        .set(ingress.body_bytes() as i64);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ingress.metrics.render(),
    )
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub store: DynStore,
    pub github: GitHub,
    /// Parsed repository configs, shared by the handlers.
    pub configs: Arc<ConfigCache>,
    /// Attempts finished by this process's worker.
    pub finished: watch::Receiver<u64>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

/// Options beyond the environment, for tests and tools.
#[derive(Default)]
pub struct StartOptions {
    pub retry: Option<RetryPolicy>,
    pub handlers: Option<Handlers>,
    pub smoke: Option<crate::smoke::SmokeOptions>,
}

/// Connects the store, applies migrations, binds the listener, and starts the
/// HTTP server and the worker. Returns once the server accepts connections.
pub async fn start(settings: ServerSettings, options: StartOptions) -> anyhow::Result<Running> {
    let metrics = Metrics::new();
    let store = open_store(&settings).await?;
    let github = GitHub::new(
        &settings.github_auth,
        &settings.github_api_url,
        options.retry.unwrap_or_default(),
        metrics.clone(),
    )?;
    let handlers = options.handlers.unwrap_or_default();
    let wake = Wake::default();
    let ingress = ingress(&settings, &store, &handlers, &metrics, &wake);
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| SettingsError {
            var: "SHIPGATE_LISTEN",
            problem: format!("cannot listen on {}: {e}", settings.listen),
        })?;
    let addr = listener.local_addr()?;

    let worker_id = format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple());
    let sweeper = (settings.redeliver.enabled && github.is_app()).then(|| {
        crate::serve::redeliver::Sweeper::new(
            github.clone(),
            store.clone(),
            handlers.clone(),
            settings.redeliver.clone(),
            metrics.clone(),
            worker_id.clone(),
        )
    });
    let (finished_tx, finished_rx) = watch::channel(0u64);
    let configs = Arc::new(ConfigCache::with_limits(ConfigCacheLimits {
        entries: settings.config_cache.entries,
        text_bytes: settings.config_cache.text_bytes,
        ..Default::default()
    }));
    let worker = Worker {
        store: store.clone(),
        handlers,
        context: Context {
            github: github.clone(),
            store: store.clone(),
            configs: configs.clone(),
            read_this_delivery: Default::default(),
            notifier: crate::notify::Notifier::new(
                settings.notify.destinations.clone(),
                settings.notify.limits,
            )
            .with_metrics(metrics.clone()),
            smoke: crate::smoke::SmokeOptions {
                server: crate::smoke::ServerProbes::new(settings.smoke.clone()),
                ..options.smoke.unwrap_or_default()
            },
            wake: wake.clone(),
            policy_delay: settings.worker.policy_delay,
        },
        settings: settings.worker.clone(),
        metrics,
        wake,
        id: worker_id,
        finished: finished_tx,
    };

    learn_bot_login(github.clone());

    let shutdown = CancellationToken::new();
    let app = router(ingress);
    let http = settings.http.clone();
    let stop = shutdown.clone();
    let closing_store = store.clone();
    let task = tokio::spawn(async move {
        let worker_stop = stop.clone();
        let worker_task = tokio::spawn(worker.run(worker_stop));
        let sweeper_task = sweeper.map(|s| tokio::spawn(s.run(stop.clone())));
        serve_http(listener, app, &http, stop.clone()).await;
        let _ = worker_task.await;
        if let Some(t) = sweeper_task {
            let _ = t.await;
        }
        // Every in-flight delivery is recorded: let the database go cleanly.
        closing_store.close().await;
    });
    tracing::info!(%addr, store = store.backend(), "shipgate listening");
    Ok(Running {
        addr,
        store,
        github,
        configs,
        finished: finished_rx,
        shutdown,
        task,
    })
}

/// The store, migrated, with the work an earlier run of this process left
/// in processing put back (SQLite; PostgreSQL waits for the leases).
async fn open_store(settings: &ServerSettings) -> anyhow::Result<DynStore> {
    let store = store::connect(&settings.database_url)
        .await
        .map_err(|e| SettingsError {
            var: "DATABASE_URL",
            problem: format!("cannot open {}: {e}", settings.database_url.redacted()),
        })?;
    store.migrate().await?;
    let requeued = store.requeue_processing().await?;
    if requeued > 0 {
        tracing::info!(
            requeued,
            "resuming deliveries left in processing by an earlier run"
        );
    }
    Ok(store)
}

/// The webhook face: its secrets, the store's writer, and the limits on
/// requests and bodies.
fn ingress(
    settings: &ServerSettings,
    store: &DynStore,
    handlers: &Handlers,
    metrics: &Metrics,
    wake: &Wake,
) -> Ingress {
    Ingress {
        secrets: Arc::new(settings.webhook_secrets.clone()),
        store: store.clone(),
        writer: {
            let batch_rows = metrics.delivery_batch_rows.clone();
            DeliveryWriter::spawn(store.clone(), move |rows| batch_rows.observe(rows as f64))
        },
        handlers: handlers.clone(),
        metrics: metrics.clone(),
        wake: wake.clone(),
        body_timeout: settings.http.body_timeout,
        in_flight: Arc::new(tokio::sync::Semaphore::new(settings.http.max_in_flight)),
        max_in_flight: settings.http.max_in_flight,
        bodies: settings.bodies.clone(),
        readers: Default::default(),
        body_buffer: Arc::new(tokio::sync::Semaphore::new(settings.bodies.buffer_bytes)),
    }
}

/// Learns the bot's login now, so handlers can ignore the bot's own
/// comments; a GitHub outage must not stop ingress, so failure only warns.
fn learn_bot_login(github: GitHub) {
    tokio::spawn(async move {
        match github.bot_login().await {
            Ok(login) => tracing::info!(%login, "acting on GitHub as"),
            Err(e) => {
                tracing::warn!(error = %e, "could not learn the bot's login yet; will retry when needed")
            }
        }
    });
}

/// Accepts connections until `stop`, then lets open ones finish their
/// requests. Slow clients are cut off: headers must arrive within the header
/// timeout (idle keep-alive connections close after it too), bodies within
/// the body timeout and at the minimum rate (in ingress), and at most
/// `max_connections` are open. Each request carries its peer's address.
async fn serve_http(
    listener: TcpListener,
    app: Router,
    limits: &crate::config::settings::HttpSettings,
    stop: CancellationToken,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;

    // HTTP/1.1 only, as GitHub delivers webhooks: sniffing for HTTP/2 would
    // wait for a silent client's first bytes with no timeout at all.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        // Wait for a free slot first, so excess connections queue in the
        // kernel's backlog rather than in memory.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = stop.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off and go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        // Ingress counts unfinished bodies per client address.
        let client = ClientAddr(peer.ip());
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(client);
                req
            },
        ));
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open 30 s after shutdown began; closing them");
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "shipgate".into())
}

/// `shipgate serve`: runs until SIGTERM or Ctrl-C, then stops accepting,
/// drains in-flight deliveries, and returns.
pub async fn serve(settings: ServerSettings) -> anyhow::Result<()> {
    let running = start(settings, StartOptions::default()).await?;
    let stop = running.shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight deliveries");
        stop.cancel();
    });
    running.task.await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("can install a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
