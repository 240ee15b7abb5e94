//! What a smoke run may do beyond what its suite asks. The server probes
//! from its own network on behalf of any repository, so it passes caps and
//! an SSRF guard; the Action runs on the user's own runner and passes
//! [`Limits::none`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::guard::Guard;

/// The smoke engine runs on the server's network for any repository that
/// installs the App, so each run and each installation gets a bounded share
/// of it. The Action (`shipgate check smoke`) runs on the user's own runner
/// and is not limited by these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeSettings {
    /// Checks run per suite; the rest are reported as not run.
    pub max_checks: usize,
    /// Latency samples per check (a check's `samples` is cut to this).
    pub max_samples: u32,
    /// Requests in a `rate_limit` burst (a check's `burst` is cut to this).
    pub max_burst: u32,
    /// Requests per smoke run, every retry, sample and redirect included.
    pub max_requests: u32,
    /// Requests of one run in flight at once.
    pub concurrency: usize,
    /// Requests per installation per hour, in this process.
    pub hourly_budget: u32,
    /// Whether a repository's `preview.allow_private` is honoured.
    pub allow_private: bool,
}

impl Default for SmokeSettings {
    fn default() -> Self {
        SmokeSettings {
            max_checks: 20,
            max_samples: 50,
            max_burst: 100,
            max_requests: 300,
            concurrency: 4,
            hourly_budget: 5000,
            allow_private: false,
        }
    }
}

/// Caps and the guard of one run (`None`: no limit).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Every hop of every request is admitted by it, and names resolve through it.
    pub guard: Option<Guard>,
    pub max_checks: Option<usize>,
    pub max_samples: Option<u32>,
    pub max_burst: Option<u32>,
    /// Hosts a `rate_limit` burst may be sent to.
    pub burst_hosts: Option<Vec<String>>,
    /// Requests the run may send, every hop counted.
    pub max_requests: Option<RequestCap>,
}

/// A number of requests, and the sentence shown when they run out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCap {
    pub requests: u32,
    pub reason: String,
}

impl Limits {
    /// No caps and no guard: the Action's, on the user's own runner.
    pub fn none() -> Limits {
        Limits {
            guard: None,
            max_checks: None,
            max_samples: None,
            max_burst: None,
            burst_hosts: None,
            max_requests: None,
        }
    }
}

/// The server's caps and the installations' hourly budgets. Cloned into
/// every delivery's context; the budgets are shared between the clones.
#[derive(Debug, Clone, Default)]
pub struct ServerProbes {
    pub settings: SmokeSettings,
    budgets: Arc<Budgets>,
}

impl ServerProbes {
    pub fn new(settings: SmokeSettings) -> ServerProbes {
        ServerProbes {
            settings,
            budgets: Arc::default(),
        }
    }

    /// Takes one run's requests from the installation's hourly budget: the
    /// per-run cap, or what is left. `None` when nothing is left.
    pub fn reserve(&self, installation: Option<i64>) -> Option<RequestCap> {
        let s = &self.settings;
        let granted = self.budgets.take(
            installation,
            s.max_requests,
            s.hourly_budget,
            Instant::now(),
        );
        if granted == 0 {
            return None;
        }
        let reason = if granted < s.max_requests {
            format!(
                "the installation's budget of {} smoke requests per hour was reached",
                s.hourly_budget
            )
        } else {
            format!(
                "the server's limit of {} requests per smoke run was reached",
                s.max_requests
            )
        };
        Some(RequestCap {
            requests: granted,
            reason,
        })
    }

    /// Why a run was not started.
    pub fn budget_spent(&self) -> String {
        format!(
            "the installation's budget of {} smoke requests per hour is spent",
            self.settings.hourly_budget
        )
    }

    /// Gives back what a run reserved but did not send.
    pub fn refund(&self, installation: Option<i64>, unused: u32) {
        self.budgets.give_back(
            installation,
            unused,
            self.settings.hourly_budget,
            Instant::now(),
        );
    }

    /// The limits of a run that may send `cap` requests.
    pub fn limits(&self, guard: Guard, burst_hosts: Vec<String>, cap: RequestCap) -> Limits {
        let s = &self.settings;
        Limits {
            guard: Some(guard),
            max_checks: Some(s.max_checks),
            max_samples: Some(s.max_samples),
            max_burst: Some(s.max_burst),
            burst_hosts: Some(burst_hosts),
            max_requests: Some(cap),
        }
    }
}

/// Installations tracked at most. A bucket that has refilled is the same as
/// none, so full ones are dropped first.
const MAX_TRACKED: usize = 10_000;

/// Token buckets of requests per installation: `hourly` tokens, refilled
/// evenly over the hour.
#[derive(Debug, Default)]
struct Budgets {
    buckets: Mutex<HashMap<Option<i64>, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, hourly: u32, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * hourly as f64 / 3600.0;
        self.tokens = (self.tokens + earned).min(hourly as f64);
        self.at = now;
    }
}

impl Budgets {
    fn take(&self, key: Option<i64>, want: u32, hourly: u32, now: Instant) -> u32 {
        let mut buckets = self.buckets.lock().expect("poisoned");
        if !buckets.contains_key(&key) && buckets.len() >= MAX_TRACKED {
            buckets.retain(|_, b| {
                b.refill(hourly, now);
                b.tokens < hourly as f64
            });
            if buckets.len() >= MAX_TRACKED {
                // Still full: forget the installation that used least.
                if let Some(k) = buckets
                    .iter()
                    .max_by(|a, b| a.1.tokens.total_cmp(&b.1.tokens))
                    .map(|(k, _)| *k)
                {
                    buckets.remove(&k);
                }
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: hourly as f64,
            at: now,
        });
        bucket.refill(hourly, now);
        let granted = (bucket.tokens.floor() as u32).min(want);
        bucket.tokens -= granted as f64;
        granted
    }

    fn give_back(&self, key: Option<i64>, n: u32, hourly: u32, now: Instant) {
        if let Some(b) = self.buckets.lock().expect("poisoned").get_mut(&key) {
            b.refill(hourly, now);
            b.tokens = (b.tokens + n as f64).min(hourly as f64);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().expect("poisoned").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_budget_is_spent_refunded_and_refilled_per_installation() {
        let b = Budgets::default();
        let t0 = Instant::now();
        assert_eq!(b.take(Some(1), 300, 500, t0), 300);
        assert_eq!(b.take(Some(1), 300, 500, t0), 200);
        assert_eq!(b.take(Some(1), 300, 500, t0), 0);
        // Another installation has its own.
        assert_eq!(b.take(Some(2), 300, 500, t0), 300);
        b.give_back(Some(1), 50, 500, t0);
        assert_eq!(b.take(Some(1), 300, 500, t0), 50);
        // 500 an hour: 50 in six minutes.
        assert_eq!(b.take(Some(1), 300, 500, t0 + Duration::from_secs(360)), 50);
        // Never more than the hour's budget, however long it rests.
        assert_eq!(
            b.take(Some(1), 1000, 500, t0 + Duration::from_secs(86_400)),
            500
        );
    }

    #[test]
    fn the_tracked_installations_are_capped() {
        let b = Budgets::default();
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED as i64 {
            b.take(Some(i), 1, 10, t0);
        }
        assert_eq!(b.len(), MAX_TRACKED);
        // None has refilled yet: one is forgotten to make room.
        assert_eq!(b.take(Some(-1), 1, 10, t0), 1);
        assert_eq!(b.len(), MAX_TRACKED);
        // An hour later every bucket is full again and is dropped.
        b.take(Some(-2), 1, 10, t0 + Duration::from_secs(3600));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn the_reason_names_the_limit_that_cut_the_run() {
        let p = ServerProbes::new(SmokeSettings {
            max_requests: 300,
            hourly_budget: 400,
            ..SmokeSettings::default()
        });
        let first = p.reserve(Some(7)).unwrap();
        assert_eq!(first.requests, 300);
        assert_eq!(
            first.reason,
            "the server's limit of 300 requests per smoke run was reached"
        );
        let second = p.reserve(Some(7)).unwrap();
        assert_eq!(second.requests, 100);
        assert_eq!(
            second.reason,
            "the installation's budget of 400 smoke requests per hour was reached"
        );
        assert_eq!(p.reserve(Some(7)), None);
        p.refund(Some(7), 20);
        assert_eq!(p.reserve(Some(7)).unwrap().requests, 20);
    }
}
