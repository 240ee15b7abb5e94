//! What a smoke run reports: each check's outcome, reason and latency, and
//! the suite's summary. Apart from the runner so callers that only render
//! or judge results (`render`, the Action's gate) read just these types.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Skipped,
    Warn,
    Fail,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
            Outcome::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub samples: u32,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub outcome: Outcome,
    /// One line: why it passed, warned or failed.
    pub reason: String,
    /// Requests made for the readiness wait of the first request (1 when it answered at once).
    pub attempts: u32,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyStats>,
    /// Each failed or warned part, for annotations and details.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// A suite's results against one URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeReport {
    pub url: String,
    pub results: Vec<CheckResult>,
    pub duration_ms: u64,
    /// Requests sent, every retry, sample and redirect counted.
    #[serde(default)]
    pub requests: u32,
    /// `${env.…}` and saved values the run filled in: the Action masks
    /// them. Never serialized.
    #[serde(skip)]
    pub secrets: super::template::Secrets,
}

impl SmokeReport {
    /// The worst outcome (skipped checks do not count).
    pub fn outcome(&self) -> Outcome {
        self.results
            .iter()
            .map(|r| r.outcome)
            .filter(|o| *o != Outcome::Skipped)
            .max()
            .unwrap_or(Outcome::Pass)
    }
    pub fn count(&self, o: Outcome) -> usize {
        self.results.iter().filter(|r| r.outcome == o).count()
    }
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} warned, {} failed{}",
            self.count(Outcome::Pass),
            self.count(Outcome::Warn),
            self.count(Outcome::Fail),
            match self.count(Outcome::Skipped) {
                0 => String::new(),
                n => format!(", {n} skipped"),
            }
        )
    }
}

/// A check's result with no latency, details or duration yet.
pub(crate) fn result(name: String, outcome: Outcome, reason: String, attempts: u32) -> CheckResult {
    CheckResult {
        name,
        outcome,
        reason,
        attempts,
        duration_ms: 0,
        latency: None,
        details: Vec::new(),
    }
}
