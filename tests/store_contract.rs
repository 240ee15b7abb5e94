//! One contract for the store, run against SQLite and PostgreSQL.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use shipgate::settings::DatabaseUrl;
use shipgate::store::{self, DeliveryState, DynStore, InsertOutcome, NewDelivery};

async fn sqlite() -> (DynStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::new(format!("sqlite://{}", dir.path().join("s.db").display()));
    let s = store::connect(&url).await.unwrap();
    s.migrate().await.unwrap();
    (s, dir)
}

async fn postgres() -> DynStore {
    let url = DatabaseUrl::new(common::fresh_postgres_url().await);
    let s = store::connect(&url).await.unwrap();
    s.migrate().await.unwrap();
    s
}

fn delivery(id: &str, repo: Option<&str>) -> NewDelivery {
    NewDelivery {
        delivery_id: id.into(),
        event: "push".into(),
        action: None,
        installation_id: Some(7),
        repository: repo.map(str::to_string),
        payload: format!(r#"{{"id":"{id}"}}"#),
    }
}

const LEASE: i64 = 60_000;

async fn insert_is_idempotent_by_delivery_id(s: DynStore) {
    assert_eq!(
        s.insert_delivery(&delivery("a", Some("o/r")), 1)
            .await
            .unwrap(),
        InsertOutcome::Inserted
    );
    assert_eq!(
        s.insert_delivery(&delivery("a", Some("o/r")), 2)
            .await
            .unwrap(),
        InsertOutcome::Duplicate
    );
    assert_eq!(s.queue_depth().await.unwrap(), 1);
    let st = s.delivery_status("a").await.unwrap().unwrap();
    assert_eq!((st.state, st.attempts), (DeliveryState::Received, 0));
    assert!(s.delivery_status("nope").await.unwrap().is_none());
    // Migrations can run again.
    s.migrate().await.unwrap();
}

async fn claims_follow_arrival_order_per_repository(s: DynStore) {
    s.insert_delivery(&delivery("r1-first", Some("o/one")), 1)
        .await
        .unwrap();
    s.insert_delivery(&delivery("r1-second", Some("o/one")), 2)
        .await
        .unwrap();
    s.insert_delivery(&delivery("r2-first", Some("o/two")), 3)
        .await
        .unwrap();
    s.insert_delivery(&delivery("no-repo", None), 4)
        .await
        .unwrap();

    let a = s.claim_next("w", 10, LEASE).await.unwrap().unwrap();
    assert_eq!((a.delivery_id.as_str(), a.attempts), ("r1-first", 1));
    // r1-second waits for r1-first; other repositories go on.
    let b = s.claim_next("w", 10, LEASE).await.unwrap().unwrap();
    assert_eq!(b.delivery_id, "r2-first");
    let c = s.claim_next("w", 10, LEASE).await.unwrap().unwrap();
    assert_eq!(c.delivery_id, "no-repo");
    assert!(s.claim_next("w", 10, LEASE).await.unwrap().is_none());

    s.mark_done(a.seq, 11).await.unwrap();
    let d = s.claim_next("w", 12, LEASE).await.unwrap().unwrap();
    assert_eq!(d.delivery_id, "r1-second");
    assert_eq!(d.payload, r#"{"id":"r1-second"}"#);
    assert_eq!(d.installation_id, Some(7));
}

async fn retries_wait_for_their_time_and_failures_are_final(s: DynStore) {
    s.insert_delivery(&delivery("x", Some("o/r")), 1)
        .await
        .unwrap();
    let x = s.claim_next("w", 10, LEASE).await.unwrap().unwrap();
    s.mark_retry(x.seq, "GitHub answered 502", 1_000)
        .await
        .unwrap();
    assert!(
        s.claim_next("w", 999, LEASE).await.unwrap().is_none(),
        "not before next_attempt_at"
    );
    let again = s.claim_next("w", 1_000, LEASE).await.unwrap().unwrap();
    assert_eq!(again.attempts, 2);
    let st = s.delivery_status("x").await.unwrap().unwrap();
    assert_eq!(st.last_error.as_deref(), Some("GitHub answered 502"));
    s.mark_failed(again.seq, "gave up", 1_001).await.unwrap();
    let st = s.delivery_status("x").await.unwrap().unwrap();
    assert_eq!((st.state, st.attempts), (DeliveryState::Failed, 2));
    assert!(s
        .claim_next("w", 10_000_000, LEASE)
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.queue_depth().await.unwrap(), 0);
}

async fn an_expired_claim_is_claimed_again(s: DynStore) {
    s.insert_delivery(&delivery("y", Some("o/r")), 1)
        .await
        .unwrap();
    let first = s
        .claim_next("dead-replica", 10, 100)
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.claim_next("other", 50, 100).await.unwrap().is_none(),
        "claim still live"
    );
    let second = s.claim_next("other", 111, 100).await.unwrap().unwrap();
    assert_eq!(second.seq, first.seq);
    assert_eq!(second.attempts, 2);
}

async fn finished_deliveries_are_pruned_after_retention(s: DynStore) {
    for (id, at) in [("old", 1), ("new", 500)] {
        s.insert_delivery(&delivery(id, None), at).await.unwrap();
        let d = s.claim_next("w", at, LEASE).await.unwrap().unwrap();
        s.mark_done(d.seq, at).await.unwrap();
    }
    s.insert_delivery(&delivery("pending", None), 2)
        .await
        .unwrap();
    assert_eq!(s.prune_finished(100).await.unwrap(), 1);
    assert!(s.delivery_status("old").await.unwrap().is_none());
    assert!(s.delivery_status("new").await.unwrap().is_some());
    assert!(s.delivery_status("pending").await.unwrap().is_some());
}

async fn concurrent_claims_take_each_delivery_once(s: DynStore) {
    for i in 0..60 {
        s.insert_delivery(
            &delivery(&format!("c{i}"), Some(&format!("o/r{}", i % 12))),
            i,
        )
        .await
        .unwrap();
    }
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for w in 0..6 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                match s.claim_next(&format!("w{w}"), 1_000, LEASE).await.unwrap() {
                    Some(d) => {
                        mine.push(d.delivery_id.clone());
                        s.mark_done(d.seq, 1_000).await.unwrap();
                    }
                    None => {
                        if s.queue_depth().await.unwrap() == 0 {
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 60, "every delivery claimed");
    assert_eq!(unique.len(), 60, "no delivery claimed twice");
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (s, _dir) = sqlite().await;
                super::$name(s).await;
            })*
        }
        mod on_postgres {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                super::$name(postgres().await).await;
            })*
        }
    };
}

contract!(
    insert_is_idempotent_by_delivery_id,
    claims_follow_arrival_order_per_repository,
    retries_wait_for_their_time_and_failures_are_final,
    an_expired_claim_is_claimed_again,
    finished_deliveries_are_pruned_after_retention,
    concurrent_claims_take_each_delivery_once,
);

#[tokio::test]
async fn sqlite_requeues_work_left_processing_by_a_dead_run() {
    let (s, _dir) = sqlite().await;
    s.insert_delivery(&delivery("z", Some("o/r")), 1)
        .await
        .unwrap();
    s.claim_next("crashed", 10, LEASE).await.unwrap().unwrap();
    assert_eq!(s.requeue_processing().await.unwrap(), 1);
    let d = s.claim_next("restarted", 11, LEASE).await.unwrap().unwrap();
    assert_eq!((d.delivery_id.as_str(), d.attempts), ("z", 2));
}
