//! The one outcome of a gate, for the server and the Action alike: a name,
//! a verdict and its reason.

use serde::{Deserialize, Serialize};

/// How a gate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Open.
    Pass,
    /// Did not apply (nothing to check).
    Skipped,
    /// Open, with something worth a look.
    Warn,
    /// Closed for now; it may open by itself later (checks running, a lock,
    /// a freeze that ends), so a caller that can wait should.
    Wait,
    /// Closed.
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Skipped => "skipped",
            Verdict::Warn => "warn",
            Verdict::Wait => "wait",
            Verdict::Fail => "fail",
        }
    }
}

/// A smoke run's outcome as the verdict of the gate that ran it.
impl From<crate::smoke::Outcome> for Verdict {
    fn from(o: crate::smoke::Outcome) -> Verdict {
        use crate::smoke::Outcome;
        match o {
            Outcome::Pass => Verdict::Pass,
            Outcome::Skipped => Verdict::Skipped,
            Outcome::Warn => Verdict::Warn,
            Outcome::Fail => Verdict::Fail,
        }
    }
}

/// One gate's outcome: a name, a verdict and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredGate")]
pub struct Gate {
    pub name: String,
    pub verdict: Verdict,
    pub reason: String,
}

impl Gate {
    fn new(name: &str, verdict: Verdict, reason: impl Into<String>) -> Gate {
        Gate {
            name: name.into(),
            verdict,
            reason: reason.into(),
        }
    }
    pub fn pass(name: &str, reason: impl Into<String>) -> Gate {
        Gate::new(name, Verdict::Pass, reason)
    }
    pub fn skipped(name: &str, reason: impl Into<String>) -> Gate {
        Gate::new(name, Verdict::Skipped, reason)
    }
    pub fn warn(name: &str, reason: impl Into<String>) -> Gate {
        Gate::new(name, Verdict::Warn, reason)
    }
    pub fn wait(name: &str, reason: impl Into<String>) -> Gate {
        Gate::new(name, Verdict::Wait, reason)
    }
    pub fn fail(name: &str, reason: impl Into<String>) -> Gate {
        Gate::new(name, Verdict::Fail, reason)
    }
    /// Open without reservation: what a deploy needs of every gate.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
    /// Closed for now, and may open by itself.
    pub fn waiting(&self) -> bool {
        self.verdict == Verdict::Wait
    }
}

/// A gate as stored before `wait` was a verdict of its own (deploy replies
/// in the store are re-rendered as deployments progress): a failed gate
/// marked `temporary`, its reason named `detail`.
#[derive(Deserialize)]
struct StoredGate {
    name: String,
    verdict: Verdict,
    #[serde(alias = "detail")]
    reason: String,
    #[serde(default)]
    temporary: bool,
}

impl From<StoredGate> for Gate {
    fn from(g: StoredGate) -> Gate {
        let verdict = match g.verdict {
            Verdict::Fail if g.temporary => Verdict::Wait,
            v => v,
        };
        Gate {
            name: g.name,
            verdict,
            reason: g.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_stored_with_temporary_gates_reads_them_as_waiting() {
        let old: Vec<Gate> = serde_json::from_str(
            r#"[{"name":"Lock","verdict":"fail","detail":"locked by #3","temporary":true},
                {"name":"Checks","verdict":"fail","detail":"`ci` failure","temporary":false},
                {"name":"Permission","verdict":"pass","detail":"@a has write"}]"#,
        )
        .unwrap();
        assert_eq!(
            old,
            vec![
                Gate::wait("Lock", "locked by #3"),
                Gate::fail("Checks", "`ci` failure"),
                Gate::pass("Permission", "@a has write"),
            ]
        );
    }

    #[test]
    fn a_gate_round_trips_in_its_own_shape() {
        let g = Gate::warn("Smoke", "p95 over budget");
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(
            json,
            r#"{"name":"Smoke","verdict":"warn","reason":"p95 over budget"}"#
        );
        assert_eq!(serde_json::from_str::<Gate>(&json).unwrap(), g);
    }
}
