//! The delivery types: a delivery as it arrives, its compressed payload, a
//! claim, and what operators see of it. Apart from the trait so the queue's
//! vocabulary reads in one place.

use super::{StoreError, MAX_BODY_BYTES};

/// A delivery as it arrives, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    /// `owner/name`; deliveries of one repository are processed in order.
    pub repository: Option<String>,
    /// The JSON payload (for form-encoded deliveries, the decoded `payload` field).
    pub payload: Payload,
}

/// A payload as stored: compressed with lz4. GitHub's JSON compresses about
/// six-fold (16–28 KB to 3.5–4.5 KB), so a stored delivery writes one or two
/// database pages instead of five to seven, once to the WAL and once more to
/// the database file. It is compressed where the delivery is built (on the
/// request's task, so both CPUs share the work), not in the one writer.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(Vec<u8>);

impl Payload {
    /// The text, compressed.
    pub fn compress(text: &str) -> Payload {
        // A 4-byte little-endian length, then one lz4 block.
        Payload(lz4_flex::block::compress_prepend_size(text.as_bytes()))
    }

    /// The stored bytes.
    pub fn as_stored(&self) -> &[u8] {
        &self.0
    }

    /// The text back from stored bytes; a length beyond what ingress accepts
    /// is refused before anything is allocated.
    pub fn decompress(stored: &[u8]) -> Result<String, StoreError> {
        let corrupt = |why: &str| StoreError::Corrupt(format!("compressed payload: {why}"));
        let (len, block) = stored
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("shorter than its length prefix"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > MAX_BODY_BYTES {
            return Err(corrupt("length beyond the body limit"));
        }
        let bytes = lz4_flex::block::decompress(block, len).map_err(|e| corrupt(&e.to_string()))?;
        String::from_utf8(bytes).map_err(|_| corrupt("not UTF-8"))
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Payload {
        Payload::compress(text)
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Payload {
        Payload::compress(&text)
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes compressed)", self.0.len())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    Duplicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Received,
    Processing,
    Done,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Received => "received",
            DeliveryState::Processing => "processing",
            DeliveryState::Done => "done",
            DeliveryState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "received" => DeliveryState::Received,
            "processing" => DeliveryState::Processing,
            "done" => DeliveryState::Done,
            "failed" => DeliveryState::Failed,
            other => return Err(StoreError::Corrupt(format!("delivery state `{other}`"))),
        })
    }
}

/// A delivery claimed by a worker.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub seq: i64,
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repository: Option<String>,
    pub payload: String,
    /// Attempts so far, including this one.
    pub attempts: i32,
    /// The worker that holds this claim. With `attempts`, it names the claim:
    /// an outcome is recorded only while this claim still holds the row.
    pub claimed_by: String,
}

/// What the store knows about one delivery, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    pub delivery_id: String,
    pub event: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// Everything the store keeps about a delivery but its payload, for
/// operators (`shipgate deliveries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub seq: i64,
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repository: Option<String>,
    pub state: DeliveryState,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub received_at: i64,
    pub next_attempt_at: i64,
    pub locked_by: Option<String>,
    pub locked_until: Option<i64>,
    pub finished_at: Option<i64>,
}

/// Which deliveries [`Store::list_deliveries`](super::Store::list_deliveries)
/// returns: newest first, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    pub repository: Option<String>,
    pub limit: i64,
}

/// What [`Store::retry_delivery`](super::Store::retry_delivery) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// It was failed and is `received` again, with no attempts.
    Retried,
    /// No delivery has that id.
    NotFound,
    /// It is not failed (only failed deliveries are retried); its state.
    NotFailed(DeliveryState),
}

/// Deliveries not yet done or failed: how many, and when the oldest arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PendingStats {
    pub depth: i64,
    pub oldest_received_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn payloads_are_stored_compressed_and_read_back() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/webhooks-examples/pull_request.12.json"
        ))
        .unwrap();
        let stored = super::Payload::from(text.as_str());
        // A real payload shrinks to well under a quarter.
        assert!(stored.as_stored().len() * 4 < text.len(), "{stored:?}");
        assert_eq!(
            super::Payload::decompress(stored.as_stored()).unwrap(),
            text
        );
        assert_eq!(
            super::Payload::decompress(super::Payload::from("").as_stored()).unwrap(),
            ""
        );
    }

    #[test]
    fn damaged_stored_payloads_are_refused_not_trusted() {
        let good = super::Payload::from("{\"action\":\"opened\"}");
        let refused = |bytes: &[u8]| super::Payload::decompress(bytes).unwrap_err().to_string();
        assert!(refused(&[1, 0]).contains("shorter than its length prefix"));
        // A length prefix far beyond the body limit allocates nothing.
        let mut huge = good.as_stored().to_vec();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(refused(&huge).contains("beyond the body limit"));
        // A block that does not decode to the declared length.
        let mut truncated = good.as_stored().to_vec();
        truncated.truncate(truncated.len() - 3);
        assert!(refused(&truncated).starts_with("invalid stored value: compressed payload"));
        let not_utf8 = lz4_flex::block::compress_prepend_size(&[0xff, 0xfe]);
        assert!(refused(&not_utf8).contains("not UTF-8"));
    }
}
