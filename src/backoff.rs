//! The one backoff formula for every retry loop: the worker's retries of a
//! delivery, the GitHub client's retries of a request, and the smoke
//! engine's readiness wait. Exponential from a base, capped, with jitter so
//! that many callers retrying together spread out.

use std::time::Duration;

use rand::Rng;

/// Delays that double from `base` with each attempt, up to `cap`, each
/// multiplied by a random factor in `1 ± jitter`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Between 0 (none) and 1.
    pub jitter: f64,
}

impl Backoff {
    /// The wait after failed attempt `attempt` (the first attempt is 1):
    /// `base`, then twice that, and so on, at most `cap`, then jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        // 2^30 times any base above a nanosecond is past any sensible cap,
        // and the shift cannot overflow.
        let doubled = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(30));
        let capped = doubled.min(self.cap);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 {
            return capped;
        }
        capped.mul_f64(rand::rng().random_range(1.0 - jitter..1.0 + jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delays_double_from_the_base_up_to_the_cap() {
        let b = Backoff {
            base: 100 * MS,
            cap: 1000 * MS,
            jitter: 0.0,
        };
        let delays: Vec<_> = (1..=6).map(|a| b.delay(a)).collect();
        assert_eq!(
            delays,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
        assert_eq!(b.delay(0), 100 * MS, "attempt 0 counts as the first");
        assert_eq!(b.delay(u32::MAX), 1000 * MS, "no overflow far out");
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let b = Backoff {
            base: 1000 * MS,
            cap: Duration::from_secs(600),
            jitter: 0.5,
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let first = b.delay(1);
            assert!((500 * MS..=1500 * MS).contains(&first), "{first:?}");
            let third = b.delay(3);
            assert!((2000 * MS..=6000 * MS).contains(&third), "{third:?}");
            let late = b.delay(40);
            assert!(
                (Duration::from_secs(300)..=Duration::from_secs(900)).contains(&late),
                "{late:?}"
            );
            seen.insert(first);
        }
        assert!(seen.len() > 1, "the jitter varies the delay");
    }
}
