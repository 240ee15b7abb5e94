//! Group commit for ingress. Every delivery must be committed before its 2xx
//! goes out, and a commit costs the same whether it holds one delivery or
//! sixty: on SQLite a write to the WAL and the lock hand-off, on PostgreSQL a
//! round trip and a WAL flush. So one task writes, and the deliveries that
//! arrive while it is writing go out together in its next statement. Under
//! light load a batch is one delivery and nothing waits; under heavy load
//! batches grow and the cost per delivery falls.

use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use super::{DynStore, InsertOutcome, NewDelivery, StoreError};

/// At most this many deliveries per statement (six parameters each, well
/// under both backends' parameter limits).
pub const MAX_BATCH_ROWS: usize = 64;
/// A batch stops growing once its payloads reach this size, so one statement
/// never carries more than about this much (plus one payload).
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Why a delivery was not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Store(Arc<StoreError>),
    #[error("storing the delivery panicked")]
    Panicked,
    #[error("the delivery writer stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<InsertOutcome, WriteError>>;

/// Handle to the writer task; cheap to clone. The task ends when the last
/// handle is dropped.
#[derive(Clone)]
pub struct DeliveryWriter {
    queue: mpsc::Sender<(NewDelivery, Reply)>,
}

impl DeliveryWriter {
    /// Starts the writer task on the current runtime. `on_batch` sees the
    /// size of every batch written (for metrics).
    pub fn spawn(store: DynStore, on_batch: impl Fn(usize) + Send + 'static) -> Self {
        // The queue only needs to hold what ingress admits at once; the
        // in-flight limit bounds that, and `send` waits beyond it.
        let (queue, mut incoming) = mpsc::channel::<(NewDelivery, Reply)>(1024);
        tokio::spawn(async move {
            let mut rows = Vec::with_capacity(MAX_BATCH_ROWS);
            let mut replies = Vec::with_capacity(MAX_BATCH_ROWS);
            while let Some((first, reply)) = incoming.recv().await {
                let mut bytes = first.payload.as_stored().len();
                rows.push(first);
                replies.push(reply);
                while rows.len() < MAX_BATCH_ROWS && bytes < MAX_BATCH_BYTES {
                    let Ok((next, reply)) = incoming.try_recv() else {
                        break;
                    };
                    bytes += next.payload.as_stored().len();
                    rows.push(next);
                    replies.push(reply);
                }
                on_batch(rows.len());
                // A panic below the store must not take the writer down with
                // it: every later delivery would be refused.
                let written =
                    std::panic::AssertUnwindSafe(store.insert_deliveries(&rows, crate::now_ms()))
                        .catch_unwind()
                        .await;
                let outcomes = match written {
                    Ok(Ok(outcomes)) if outcomes.len() == rows.len() => Ok(outcomes),
                    Ok(Ok(outcomes)) => Err(WriteError::Store(Arc::new(StoreError::Corrupt(
                        format!("{} outcomes for {} deliveries", outcomes.len(), rows.len()),
                    )))),
                    Ok(Err(e)) => Err(WriteError::Store(Arc::new(e))),
                    Err(_) => Err(WriteError::Panicked),
                };
                rows.clear();
                for (i, reply) in replies.drain(..).enumerate() {
                    // The request may be gone (client hung up); its delivery
                    // is stored all the same and a redelivery is a duplicate.
                    let _ = reply.send(outcomes.as_ref().map(|o| o[i]).map_err(Clone::clone));
                }
            }
        });
        DeliveryWriter { queue }
    }

    /// Stores one delivery, together with whatever else is waiting, and
    /// returns once it is committed.
    pub async fn insert(&self, delivery: NewDelivery) -> Result<InsertOutcome, WriteError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send((delivery, reply))
            .await
            .map_err(|_| WriteError::Stopped)?;
        outcome.await.map_err(|_| WriteError::Stopped)?
    }
}
