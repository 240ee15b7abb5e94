//! Who claims next: wakes idle worker loops when a delivery is stored, and
//! keeps each installation to its share of this process's loops. It sits
//! with the store so that ingress and handlers, which store work, and the
//! worker, which claims it, share it without importing each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Wakes idle worker loops when work is stored, and keeps each
/// installation to its share of this process's loops.
///
/// A delivery whose repository a loop of this process is processing is not
/// claimable until that one finishes (deliveries of a repository run in
/// order), and the loop that finishes it claims again at once. Waking for it
/// would only make an idle loop run a claim that finds nothing, and on SQLite
/// every claim is a turn of the one write connection that ingress commits
/// through too. Under a burst for one repository that was one empty claim
/// per delivery (bench/BENCHMARKS.md, "Empty claims"). So such a delivery
/// wakes no one; if the hold ends without the holder claiming again, the end
/// of the hold wakes a loop for it.
///
/// Likewise for installations: while an installation (tenant) has its share
/// of deliveries in processing here, claims pass over its deliveries and a
/// delivery stored for it wakes no one; when one of its slots frees while
/// something of it was passed over, a loop is woken for it.
#[derive(Clone, Default)]
pub struct Wake {
    notify: Arc<Notify>,
    /// Repositories with a delivery being processed here.
    held: Arc<Mutex<HashMap<String, Holds>>>,
    /// Deliveries being processed here, per installation.
    shares: Arc<Mutex<Shares>>,
    /// Claims of this process take turns (see `Worker::claim`).
    claiming: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct Holds {
    count: usize,
    /// A delivery of the repository was stored and woke no one.
    skipped: bool,
}

struct Shares {
    /// Deliveries of one installation in processing here, at most.
    share: usize,
    by_installation: HashMap<i64, Share>,
}

impl Default for Shares {
    /// No share until a worker runs (see `Worker::run`).
    fn default() -> Self {
        Shares {
            share: usize::MAX,
            by_installation: HashMap::new(),
        }
    }
}

#[derive(Default)]
struct Share {
    processing: usize,
    /// While the installation was at its share, a claim passed it over or a
    /// delivery of it was stored and woke no one.
    passed_over: bool,
}

impl Wake {
    /// A delivery of `repository` and `installation` was committed: wake a
    /// loop unless one of this process's loops holds that repository or the
    /// installation holds its share of the loops.
    pub fn stored(&self, repository: Option<&str>, installation: Option<i64>) {
        if let Some(repository) = repository {
            if let Some(holds) = self.held.lock().expect("poisoned").get_mut(repository) {
                holds.skipped = true;
                return;
            }
        }
        if let Some(installation) = installation {
            let mut shares = self.shares.lock().expect("poisoned");
            let share = shares.share;
            if let Some(s) = shares.by_installation.get_mut(&installation) {
                if s.processing >= share {
                    s.passed_over = true;
                    return;
                }
            }
        }
        self.notify.notify_one();
    }

    /// Claims of this process take turns: the guard is this loop's turn.
    pub async fn claim_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.claiming.lock().await
    }

    /// Wakes a loop whatever was stored (follow-up work from handlers).
    pub fn notify_one(&self) {
        self.notify.notify_one();
    }

    pub async fn notified(&self) {
        self.notify.notified().await
    }

    /// Sets how many deliveries of one installation may be in processing here.
    pub fn set_installation_share(&self, share: usize) {
        self.shares.lock().expect("poisoned").share = share.max(1);
    }

    /// The installations a claim must pass over: those holding their share,
    /// not counting the slot of `finishing` (the claiming loop's last
    /// delivery, done with). Each is marked passed over, so that its next
    /// free slot wakes a loop.
    pub fn installations_at_share(&self, finishing: Option<i64>) -> Vec<i64> {
        let mut shares = self.shares.lock().expect("poisoned");
        let share = shares.share;
        shares
            .by_installation
            .iter_mut()
            .filter(|(id, s)| {
                s.processing
                    .saturating_sub(usize::from(finishing == Some(**id)))
                    >= share
            })
            .map(|(id, s)| {
                s.passed_over = true;
                *id
            })
            .collect()
    }

    /// Marks `repository` as being processed, and takes a slot of
    /// `installation`, until the guard is dropped.
    pub fn hold(&self, repository: Option<&str>, installation: Option<i64>) -> Held {
        let repository = repository.map(str::to_string);
        if let Some(r) = &repository {
            let mut held = self.held.lock().expect("poisoned");
            held.entry(r.clone()).or_default().count += 1;
        }
        if let Some(i) = installation {
            let mut shares = self.shares.lock().expect("poisoned");
            shares.by_installation.entry(i).or_default().processing += 1;
        }
        Held {
            wake: self.clone(),
            repository,
            installation,
        }
    }
}

/// A repository and an installation's slot held by a worker loop; see
/// [`Wake::hold`].
pub struct Held {
    wake: Wake,
    repository: Option<String>,
    installation: Option<i64>,
}

impl Held {
    /// The installation whose slot this holds.
    pub fn installation(&self) -> Option<i64> {
        self.installation
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(r) = &self.repository {
            let mut held = self.wake.held.lock().expect("poisoned");
            if let Some(holds) = held.get_mut(r) {
                holds.count -= 1;
                if holds.count == 0 {
                    let skipped = holds.skipped;
                    held.remove(r);
                    if skipped {
                        self.wake.notify.notify_one();
                    }
                }
            }
        }
        if let Some(i) = self.installation {
            let mut shares = self.wake.shares.lock().expect("poisoned");
            let share = shares.share;
            if let Some(s) = shares.by_installation.get_mut(&i) {
                s.processing -= 1;
                if s.processing < share && s.passed_over {
                    s.passed_over = false;
                    self.wake.notify.notify_one();
                }
                if s.processing == 0 {
                    shares.by_installation.remove(&i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    /// Whether a loop waiting now would wake at once (takes the permit).
    fn woken(wake: &Wake) -> bool {
        wake.notified().now_or_never().is_some()
    }

    #[test]
    fn a_stored_delivery_wakes_a_loop_unless_its_repository_is_held_here() {
        let wake = Wake::default();
        wake.stored(Some("o/a"), None);
        assert!(woken(&wake));
        assert!(!woken(&wake), "one delivery, one wake-up");

        let held = wake.hold(Some("o/a"), None);
        wake.stored(Some("o/a"), None);
        assert!(!woken(&wake), "o/a waits for the loop that holds it");
        wake.stored(Some("o/b"), None);
        assert!(woken(&wake), "another repository is claimable");
        wake.stored(None, None);
        assert!(woken(&wake), "a delivery without a repository is claimable");
        wake.notify_one();
        assert!(woken(&wake), "follow-up work always wakes");

        drop(held);
        assert!(
            woken(&wake),
            "the hold's end wakes a loop for what it skipped"
        );
        wake.stored(Some("o/a"), None);
        assert!(woken(&wake), "released: o/a wakes again");
    }

    #[test]
    fn a_hold_that_skipped_nothing_ends_without_a_wake_up() {
        let wake = Wake::default();
        drop(wake.hold(Some("o/a"), None));
        assert!(!woken(&wake));
    }

    #[test]
    fn a_repository_stays_held_until_its_last_holder_lets_go() {
        let wake = Wake::default();
        let first = wake.hold(Some("o/a"), None);
        let second = wake.hold(Some("o/a"), None);
        let none = wake.hold(None, None);
        drop(first);
        wake.stored(Some("o/a"), None);
        assert!(!woken(&wake));
        drop(second);
        assert!(
            woken(&wake),
            "the last holder wakes a loop for what was skipped"
        );
        drop(none);
        assert!(wake.held.lock().unwrap().is_empty());
    }

    #[test]
    fn an_installation_at_its_share_is_passed_over_and_woken_for_when_a_slot_frees() {
        let wake = Wake::default();
        wake.set_installation_share(2);
        let first = wake.hold(Some("a/1"), Some(1));
        assert!(wake.installations_at_share(None).is_empty());
        let second = wake.hold(Some("a/2"), Some(1));
        let other = wake.hold(Some("b/1"), Some(2));
        assert_eq!(wake.installations_at_share(None), [1]);
        // The loop that finished `first` claims as if its slot were free.
        assert!(wake.installations_at_share(Some(1)).is_empty());

        wake.stored(Some("a/3"), Some(1));
        assert!(!woken(&wake), "installation 1 holds its share");
        wake.stored(Some("b/2"), Some(2));
        assert!(woken(&wake), "installation 2 has room");
        wake.stored(Some("c/1"), None);
        assert!(
            woken(&wake),
            "a delivery without an installation is never held back"
        );

        drop(other);
        assert!(!woken(&wake), "nothing of installation 2 was passed over");
        drop(first);
        assert!(
            woken(&wake),
            "a slot of installation 1 freed: wake a loop for what was passed over"
        );
        drop(second);
        assert!(!woken(&wake), "one wake-up per passing over");
        assert!(wake.shares.lock().unwrap().by_installation.is_empty());
    }

    #[test]
    fn without_a_running_worker_no_installation_is_held_back() {
        let wake = Wake::default();
        let _held: Vec<_> = (0..100).map(|_| wake.hold(None, Some(1))).collect();
        assert!(wake.installations_at_share(None).is_empty());
        wake.stored(None, Some(1));
        assert!(woken(&wake));
    }
}
