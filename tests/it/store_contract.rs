//! One contract for the store, run against SQLite and PostgreSQL.

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;

use shipgate::config::settings::DatabaseUrl;
use shipgate::store::{
    self, CommandRun, DeliveryFilter, DeliveryState, DynStore, InsertOutcome, Lock, LockKind,
    LockOutcome, NewDelivery, PendingStats, ProtectionRequest, QueuedDeploy, RetryOutcome,
};

async fn sqlite() -> (DynStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::new(format!("sqlite://{}", dir.path().join("s.db").display()));
    let s = store::connect(&url).await.unwrap();
    s.migrate().await.unwrap();
    (s, dir)
}

async fn postgres() -> Option<DynStore> {
    let url = DatabaseUrl::new(common::fresh_postgres_url().await?);
    let s = store::connect(&url).await.unwrap();
    s.migrate().await.unwrap();
    Some(s)
}

fn delivery(id: &str, repo: Option<&str>) -> NewDelivery {
    NewDelivery {
        delivery_id: id.into(),
        event: "push".into(),
        action: None,
        installation_id: Some(7),
        repository: repo.map(str::to_string),
        payload: format!(r#"{{"id":"{id}"}}"#).into(),
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

    let a = s.claim_next("w", 10, LEASE, &[]).await.unwrap().unwrap();
    assert_eq!((a.delivery_id.as_str(), a.attempts), ("r1-first", 1));
    // r1-second waits for r1-first; other repositories go on.
    let b = s.claim_next("w", 10, LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(b.delivery_id, "r2-first");
    let c = s.claim_next("w", 10, LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(c.delivery_id, "no-repo");
    assert!(s.claim_next("w", 10, LEASE, &[]).await.unwrap().is_none());

    s.mark_done(&a, 11).await.unwrap();
    let d = s.claim_next("w", 12, LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(d.delivery_id, "r1-second");
    assert_eq!(d.payload, r#"{"id":"r1-second"}"#);
    assert_eq!(d.installation_id, Some(7));
}

async fn retries_wait_for_their_time_and_failures_are_final(s: DynStore) {
    s.insert_delivery(&delivery("x", Some("o/r")), 1)
        .await
        .unwrap();
    let x = s.claim_next("w", 10, LEASE, &[]).await.unwrap().unwrap();
    s.mark_retry(&x, "GitHub answered 502", 1_000)
        .await
        .unwrap();
    assert!(
        s.claim_next("w", 999, LEASE, &[]).await.unwrap().is_none(),
        "not before next_attempt_at"
    );
    let again = s.claim_next("w", 1_000, LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(again.attempts, 2);
    let st = s.delivery_status("x").await.unwrap().unwrap();
    assert_eq!(st.last_error.as_deref(), Some("GitHub answered 502"));
    s.mark_failed(&again, "gave up", 1_001).await.unwrap();
    let st = s.delivery_status("x").await.unwrap().unwrap();
    assert_eq!((st.state, st.attempts), (DeliveryState::Failed, 2));
    assert!(s
        .claim_next("w", 10_000_000, LEASE, &[])
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
        .claim_next("dead-replica", 10, 100, &[])
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.claim_next("other", 50, 100, &[]).await.unwrap().is_none(),
        "claim still live"
    );
    let second = s.claim_next("other", 111, 100, &[]).await.unwrap().unwrap();
    assert_eq!(second.seq, first.seq);
    assert_eq!(second.attempts, 2);
}

async fn finished_deliveries_are_pruned_after_retention(s: DynStore) {
    for (id, at) in [("old", 1), ("new", 500)] {
        s.insert_delivery(&delivery(id, None), at).await.unwrap();
        let d = s.claim_next("w", at, LEASE, &[]).await.unwrap().unwrap();
        s.mark_done(&d, at).await.unwrap();
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
                match s
                    .claim_next(&format!("w{w}"), 1_000, LEASE, &[])
                    .await
                    .unwrap()
                {
                    Some(d) => {
                        mine.push(d.delivery_id.clone());
                        s.mark_done(&d, 1_000).await.unwrap();
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

fn delivery_of(id: &str, repo: &str, installation: Option<i64>) -> NewDelivery {
    NewDelivery {
        installation_id: installation,
        ..delivery(id, Some(repo))
    }
}

/// Beyond 2^53: an id must not pass through a double on its way into the claim.
const BIG: i64 = 9_007_199_254_740_993;

async fn claims_pass_over_excluded_installations(s: DynStore) {
    for (at, (id, repo, installation)) in [
        ("a1", "a/1", Some(1)),
        ("a2", "a/2", Some(1)),
        ("n1", "n/1", None),
        ("b1", "b/1", Some(BIG)),
        ("a1-later", "a/1", Some(1)),
        ("c1", "c/1", Some(3)),
    ]
    .into_iter()
    .enumerate()
    {
        s.insert_delivery(&delivery_of(id, repo, installation), at as i64)
            .await
            .unwrap();
    }
    let claim = |excluded: &'static [i64]| {
        let s = s.clone();
        async move {
            s.claim_next("w", 10, LEASE, excluded)
                .await
                .unwrap()
                .map(|d| d.delivery_id)
        }
    };
    // Installation 1's heads are older, but passed over; a delivery without
    // an installation is never excluded.
    assert_eq!(claim(&[1]).await.as_deref(), Some("n1"));
    assert_eq!(claim(&[1, 3]).await.as_deref(), Some("b1"));
    assert_eq!(claim(&[1, 3]).await, None, "everything left is excluded");
    assert_eq!(claim(&[BIG, 3]).await.as_deref(), Some("a1"));
    assert_eq!(claim(&[3]).await.as_deref(), Some("a2"));
    // a1-later still waits behind a1: exclusion changes no repository's order.
    assert_eq!(claim(&[3, BIG]).await, None);
    assert_eq!(claim(&[]).await.as_deref(), Some("c1"));
    assert_eq!(claim(&[]).await, None);
    for id in ["a1", "a2", "n1", "b1", "c1"] {
        let st = s.delivery_status(id).await.unwrap().unwrap();
        assert_eq!(
            (st.state, st.attempts),
            (DeliveryState::Processing, 1),
            "{id}"
        );
    }
    let st = s.delivery_status("a1-later").await.unwrap().unwrap();
    assert_eq!(st.state, DeliveryState::Received);
}

async fn an_excluded_installations_lapsed_claim_is_not_taken_over(s: DynStore) {
    s.insert_delivery(&delivery_of("x", "a/1", Some(BIG)), 1)
        .await
        .unwrap();
    s.claim_next("dead-replica", 10, 100, &[])
        .await
        .unwrap()
        .unwrap();
    assert!(s
        .claim_next("w", 500, LEASE, &[BIG])
        .await
        .unwrap()
        .is_none());
    let again = s.claim_next("w", 500, LEASE, &[7]).await.unwrap().unwrap();
    assert_eq!((again.delivery_id.as_str(), again.attempts), ("x", 2));
}

/// A worker whose lease ran out while its handlers ran, and whose delivery
/// another replica then claimed, must not record its outcome over the newer
/// attempt's: not done, not a retry, not failed.
async fn a_stale_worker_cannot_record_an_outcome(s: DynStore) {
    s.insert_delivery(&delivery("s", Some("o/r")), 1)
        .await
        .unwrap();
    let stale = s
        .claim_next("replica-a/0", 10, 100, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stale.claimed_by, "replica-a/0");
    let fresh = s
        .claim_next("replica-b/0", 111, LEASE, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!((fresh.seq, fresh.attempts), (stale.seq, 2));
    let unchanged = |what: &'static str| {
        let s = s.clone();
        async move {
            let st = s.delivery_status("s").await.unwrap().unwrap();
            assert_eq!(
                (st.state, st.attempts, st.last_error),
                (DeliveryState::Processing, 2, None),
                "the stale worker's {what} changed the newer attempt's row"
            );
        }
    };
    assert!(!s.mark_done(&stale, 120).await.unwrap());
    unchanged("mark_done").await;
    assert!(!s.mark_retry(&stale, "stale", 130).await.unwrap());
    unchanged("mark_retry").await;
    assert!(!s.mark_failed(&stale, "stale", 140).await.unwrap());
    unchanged("mark_failed").await;
    // Still replica b's: nobody claims it until its lease runs out.
    assert!(s
        .claim_next("replica-c/0", 200, LEASE, &[])
        .await
        .unwrap()
        .is_none());
    // The same worker name on a later attempt is a different claim too.
    let same_name_old_attempt = store::ClaimedDelivery {
        claimed_by: fresh.claimed_by.clone(),
        attempts: 1,
        ..fresh.clone()
    };
    assert!(!s.mark_done(&same_name_old_attempt, 150).await.unwrap());
    unchanged("mark_done of an earlier attempt").await;

    assert!(s
        .mark_retry(&fresh, "GitHub answered 502", 300)
        .await
        .unwrap());
    let st = s.delivery_status("s").await.unwrap().unwrap();
    assert_eq!(
        (st.state, st.last_error.as_deref()),
        (DeliveryState::Received, Some("GitHub answered 502"))
    );
    // Its outcome is recorded once: a second report of the same claim finds
    // the row released.
    assert!(!s.mark_done(&fresh, 301).await.unwrap());
}

/// A claim whose lease ran out but that nobody claimed again still holds
/// the row: its outcome is recorded.
async fn a_lapsed_claim_nobody_took_over_still_records(s: DynStore) {
    s.insert_delivery(&delivery("l", Some("o/r")), 1)
        .await
        .unwrap();
    let slow = s.claim_next("w", 10, 100, &[]).await.unwrap().unwrap();
    assert!(s.mark_done(&slow, 5_000).await.unwrap());
    let st = s.delivery_status("l").await.unwrap().unwrap();
    assert_eq!((st.state, st.attempts), (DeliveryState::Done, 1));
}

fn lock(env: &str, pr: i64, kind: LockKind, token: &str, expires_at: Option<i64>) -> Lock {
    Lock {
        repository: "o/r".into(),
        environment: env.into(),
        kind,
        holder: format!("user{pr}"),
        pr: Some(pr),
        owner_token: token.into(),
        deployment_id: None,
        reason: None,
        expires_at,
        created_at: 0,
    }
}

async fn locks_are_exclusive_and_released_only_by_their_owner(s: DynStore) {
    let a = lock(
        "production",
        1,
        LockKind::Deploy,
        "deploy:100:0",
        Some(10_000),
    );
    assert_eq!(s.acquire_lock(&a, 1).await.unwrap(), LockOutcome::Acquired);
    let b = lock(
        "production",
        2,
        LockKind::Deploy,
        "deploy:200:0",
        Some(10_000),
    );
    match s.acquire_lock(&b, 2).await.unwrap() {
        LockOutcome::HeldBy(held) => assert_eq!(
            (held.pr, held.owner_token.as_str()),
            (Some(1), "deploy:100:0")
        ),
        other => panic!("{other:?}"),
    }
    // Another environment is independent.
    assert_eq!(
        s.acquire_lock(
            &lock("staging", 2, LockKind::Deploy, "deploy:200:1", None),
            2
        )
        .await
        .unwrap(),
        LockOutcome::Acquired
    );
    // Compare-and-delete: the wrong owner cannot release.
    assert!(!s
        .release_lock("o/r", "production", "deploy:200:0")
        .await
        .unwrap());
    assert!(s
        .set_lock_deployment("o/r", "production", "deploy:100:0", 555)
        .await
        .unwrap());
    assert_eq!(s.release_deployment_lock("o/r", 999).await.unwrap(), None);
    assert_eq!(
        s.release_deployment_lock("o/r", 555)
            .await
            .unwrap()
            .as_deref(),
        Some("production")
    );
    assert!(s.get_lock("o/r", "production", 3).await.unwrap().is_none());
    assert_eq!(s.acquire_lock(&b, 4).await.unwrap(), LockOutcome::Acquired);
    let locks = s.list_locks("o/r", 5).await.unwrap();
    assert_eq!(
        locks
            .iter()
            .map(|l| l.environment.as_str())
            .collect::<Vec<_>>(),
        ["production", "staging"]
    );
    assert_eq!(s.release_pr_locks("o/r", 2).await.unwrap().len(), 2);
    assert!(s.list_locks("o/r", 6).await.unwrap().is_empty());
}

async fn expired_locks_are_taken_over_and_same_pr_deploys_replace_their_lock(s: DynStore) {
    let sticky = lock("production", 1, LockKind::Sticky, "sticky:1:0", Some(100));
    assert_eq!(
        s.acquire_lock(&sticky, 1).await.unwrap(),
        LockOutcome::Acquired
    );
    let other = lock("production", 2, LockKind::Deploy, "deploy:2:0", None);
    assert!(matches!(
        s.acquire_lock(&other, 99).await.unwrap(),
        LockOutcome::HeldBy(_)
    ));
    assert!(
        s.get_lock("o/r", "production", 100)
            .await
            .unwrap()
            .is_none(),
        "expired at 100"
    );
    assert_eq!(
        s.acquire_lock(&other, 100).await.unwrap(),
        LockOutcome::Acquired
    );
    // PR 2 deploys again: its own deploy lock is replaced by the new deploy.
    let again = lock("production", 2, LockKind::Deploy, "deploy:2:1", None);
    assert_eq!(
        s.acquire_lock(&again, 101).await.unwrap(),
        LockOutcome::Acquired
    );
    assert_eq!(
        s.get_lock("o/r", "production", 102)
            .await
            .unwrap()
            .unwrap()
            .owner_token,
        "deploy:2:1"
    );
    // A sticky lock of PR 2 is kept when PR 2 deploys: reported as held by PR 2.
    let pin = lock("production", 2, LockKind::Sticky, "sticky:2:2", None);
    assert_eq!(
        s.acquire_lock(&pin, 103).await.unwrap(),
        LockOutcome::Acquired
    );
    match s
        .acquire_lock(
            &lock("production", 2, LockKind::Deploy, "deploy:2:3", None),
            104,
        )
        .await
        .unwrap()
    {
        LockOutcome::HeldBy(held) => assert_eq!(held.kind, LockKind::Sticky),
        other => panic!("{other:?}"),
    }
}

async fn fifty_concurrent_acquires_have_one_winner(s: DynStore) {
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for pr in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.acquire_lock(
                &lock(
                    "production",
                    pr,
                    LockKind::Deploy,
                    &format!("deploy:{pr}:0"),
                    None,
                ),
                1,
            )
            .await
            .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap() == LockOutcome::Acquired {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

fn command_run(comment_id: i64, line: i64, position: i64, actor: &str, at: i64) -> CommandRun {
    CommandRun {
        repository: "o/r".into(),
        comment_id,
        line,
        command: "deploy".into(),
        environment: Some("staging".into()),
        actor: actor.into(),
        pr: Some(5),
        reply_comment_id: None,
        deployment_id: None,
        model: None,
        created_at: at,
        position,
    }
}

async fn command_runs_are_recorded_once(s: DynStore) {
    let run = command_run(77, 0, 0, "alice", 1);
    assert_eq!(s.begin_run(&run).await.unwrap(), None);
    s.set_comment_reply("o/r", 77, 900).await.unwrap();
    s.set_run_deployment("o/r", 77, 0, 31, r#"{"d":1}"#)
        .await
        .unwrap();
    let again = s.begin_run(&run).await.unwrap().expect("recorded before");
    assert_eq!(
        (again.reply_comment_id, again.deployment_id),
        (Some(900), Some(31))
    );
    let by_dep = s.run_for_deployment("o/r", 31).await.unwrap().unwrap();
    assert_eq!(by_dep.model.as_deref(), Some(r#"{"d":1}"#));
    s.update_run_model("o/r", 77, 0, "{}").await.unwrap();
    assert_eq!(
        s.run_for_deployment("o/r", 31)
            .await
            .unwrap()
            .unwrap()
            .model
            .as_deref(),
        Some("{}")
    );
}

async fn a_comment_has_one_reply_over_its_runs_in_line_order(s: DynStore) {
    // Lines keyed by hash arrive in any key order; their position orders them.
    for (line, position) in [(900, 0), (5, 1), (77, 2)] {
        s.begin_run(&command_run(10, line, position, "mallory", 100 + position))
            .await
            .unwrap();
    }
    s.begin_run(&command_run(11, 1, 0, "mallory", 50))
        .await
        .unwrap();
    s.set_comment_reply("o/r", 10, 4242).await.unwrap();
    let runs = s.runs_of_comment("o/r", 10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.line).collect::<Vec<_>>(),
        [900, 5, 77]
    );
    assert!(runs.iter().all(|r| r.reply_comment_id == Some(4242)));
    assert_eq!(
        s.runs_of_comment("o/r", 11).await.unwrap()[0].reply_comment_id,
        None,
        "another comment's runs keep their own reply"
    );
    // Runs of an actor since a time: the reply budget of users without write access.
    assert_eq!(s.count_runs_since("o/r", "mallory", 0).await.unwrap(), 4);
    assert_eq!(s.count_runs_since("o/r", "mallory", 101).await.unwrap(), 2);
    assert_eq!(s.count_runs_since("o/r", "alice", 0).await.unwrap(), 0);
    assert_eq!(
        s.count_runs_since("o/other", "mallory", 0).await.unwrap(),
        0
    );
}

async fn the_deploy_queue_is_first_in_first_out(s: DynStore) {
    for (i, pr) in [(0, 7), (1, 8), (2, 9)] {
        let q = QueuedDeploy {
            seq: 0,
            repository: "o/r".into(),
            environment: "production".into(),
            pr,
            comment_id: 1000 + i,
            line: 0,
            actor: "bob".into(),
            git_ref: None,
            installation_id: Some(1),
            created_at: i,
        };
        s.enqueue_deploy(&q).await.unwrap();
        s.enqueue_deploy(&q).await.unwrap();
    }
    let prs = |v: Vec<QueuedDeploy>| v.into_iter().map(|q| q.pr).collect::<Vec<_>>();
    assert_eq!(
        prs(s.queued_deploys("o/r", "production").await.unwrap()),
        [7, 8, 9]
    );
    assert_eq!(s.drop_pr_queue("o/r", 8).await.unwrap(), 1);
    let head = s
        .next_queued_deploy("o/r", "production")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.pr, 7);
    // Looking at the head does not take it off: an error while it runs keeps it queued.
    assert_eq!(
        s.next_queued_deploy("o/r", "production")
            .await
            .unwrap()
            .unwrap()
            .pr,
        7
    );
    // Recording its deployment takes it off in the same step.
    s.begin_run(&command_run(1000, 0, 0, "bob", 1))
        .await
        .unwrap();
    s.set_run_deployment("o/r", 1000, 0, 55, "{}")
        .await
        .unwrap();
    assert_eq!(
        s.next_queued_deploy("o/r", "production")
            .await
            .unwrap()
            .unwrap()
            .pr,
        9
    );
    // A refused one is taken off by itself.
    assert!(s.dequeue_deploy("o/r", 1002, 0).await.unwrap());
    assert!(!s.dequeue_deploy("o/r", 1002, 0).await.unwrap());
    assert!(s
        .next_queued_deploy("o/r", "production")
        .await
        .unwrap()
        .is_none());
}

async fn expired_locks_are_taken_by_one_sweep(s: DynStore) {
    let ttl = lock("production", 1, LockKind::Deploy, "deploy:1:0", Some(100));
    let forever = lock("staging", 2, LockKind::Sticky, "sticky:2:0", None);
    s.acquire_lock(&ttl, 1).await.unwrap();
    s.acquire_lock(&forever, 1).await.unwrap();
    assert!(s.take_expired_locks(99).await.unwrap().is_empty());
    let taken = s.take_expired_locks(100).await.unwrap();
    assert_eq!(
        taken
            .iter()
            .map(|l| l.environment.as_str())
            .collect::<Vec<_>>(),
        ["production"]
    );
    assert!(
        s.take_expired_locks(200).await.unwrap().is_empty(),
        "taken once"
    );
    assert!(s.get_lock("o/r", "staging", 200).await.unwrap().is_some());
}

async fn problems_are_recorded_after_their_report_and_valid_configs_are_kept(s: DynStore) {
    assert!(!s.problem_reported("o/r", "forbidden").await.unwrap());
    s.record_problem("o/r", "forbidden", 1).await.unwrap();
    s.record_problem("o/r", "forbidden", 2).await.unwrap();
    assert!(s.problem_reported("o/r", "forbidden").await.unwrap());
    assert!(!s.problem_reported("o/other", "forbidden").await.unwrap());
    assert_eq!(s.valid_config("o/r").await.unwrap(), None);
    s.save_valid_config("o/r", "blob1", r#"{"a":1}"#, 1)
        .await
        .unwrap();
    s.save_valid_config("o/r", "blob2", r#"{"a":2}"#, 2)
        .await
        .unwrap();
    assert_eq!(
        s.valid_config("o/r").await.unwrap(),
        Some(("blob2".to_string(), r#"{"a":2}"#.to_string()))
    );
}

async fn a_batch_insert_reports_each_delivery_and_keeps_arrival_order(s: DynStore) {
    s.insert_delivery(&delivery("b", Some("o/r")), 1)
        .await
        .unwrap();
    let batch = [
        delivery("a", Some("o/r")),
        delivery("b", Some("o/r")),
        delivery("c", Some("o/r")),
        delivery("a", Some("o/r")),
        delivery("d", None),
    ];
    use InsertOutcome::{Duplicate, Inserted};
    assert_eq!(
        s.insert_deliveries(&batch, 2).await.unwrap(),
        [Inserted, Duplicate, Inserted, Duplicate, Inserted]
    );
    assert!(s.insert_deliveries(&[], 3).await.unwrap().is_empty());
    assert_eq!(s.queue_depth().await.unwrap(), 4);
    // One repository's deliveries are claimed in arrival order, the batch's
    // rows after the earlier "b" and in the batch's order.
    let mut order = Vec::new();
    while let Some(c) = s.claim_next("w", 10, LEASE, &[]).await.unwrap() {
        // The payload comes back as it went in (it is stored compressed).
        assert_eq!(c.payload, format!(r#"{{"id":"{}"}}"#, c.delivery_id));
        order.push(c.delivery_id.clone());
        s.mark_done(&c, 11).await.unwrap();
    }
    let repo_order: Vec<_> = order.iter().filter(|id| *id != "d").collect();
    assert_eq!(repo_order, ["b", "a", "c"]);
    assert!(order.contains(&"d".to_string()));
}

/// Deliveries waiting while the writer is busy share its next statement,
/// and each caller gets its own outcome.
async fn the_writer_commits_waiting_deliveries_together(s: DynStore) {
    let batches = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = batches.clone();
    let writer =
        store::DeliveryWriter::spawn(s.clone(), move |rows| seen.lock().unwrap().push(rows));
    // On this single-threaded runtime the writer task cannot run until the
    // test yields, so all 100 inserts (two of them repeats) are queued first.
    let mut inserts: Vec<_> = (0..98)
        .map(|i| delivery(&format!("w{i}"), Some("o/r")))
        .chain([delivery("w3", Some("o/r")), delivery("w97", None)])
        .map(|d| {
            let writer = writer.clone();
            Box::pin(async move { writer.insert(d).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for insert in &mut inserts {
        // Each insert is queued at its first poll.
        assert!(futures_util::poll!(insert).is_pending());
    }
    for insert in inserts {
        outcomes.push(insert.await);
    }
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == InsertOutcome::Duplicate)
        .count();
    assert_eq!((outcomes.len(), duplicates), (100, 2));
    assert_eq!(outcomes[98], InsertOutcome::Duplicate);
    assert_eq!(*batches.lock().unwrap(), [64, 36]);
    assert_eq!(s.queue_depth().await.unwrap(), 98);
    // Alone, a delivery is its own batch and waits for nothing.
    assert_eq!(
        writer.insert(delivery("alone", None)).await.unwrap(),
        InsertOutcome::Inserted
    );
    assert_eq!(*batches.lock().unwrap(), [64, 36, 1]);
}

#[tokio::test]
async fn the_writer_commits_waiting_deliveries_together_on_sqlite() {
    let (s, _dir) = sqlite().await;
    the_writer_commits_waiting_deliveries_together(s).await;
}

#[tokio::test]
async fn the_writer_commits_waiting_deliveries_together_on_postgres() {
    let Some(s) = postgres().await else { return };
    the_writer_commits_waiting_deliveries_together(s).await;
}

// ------------------------------------------------------------- operators

fn filter(state: Option<DeliveryState>, repo: Option<&str>, limit: i64) -> DeliveryFilter {
    DeliveryFilter {
        state,
        repository: repo.map(str::to_string),
        limit,
    }
}

async fn ids(s: &DynStore, f: DeliveryFilter) -> Vec<String> {
    s.list_deliveries(&f)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.delivery_id)
        .collect()
}

async fn operators_list_show_and_retry_deliveries(s: DynStore) {
    s.insert_delivery(&delivery("a", Some("o/one")), 1)
        .await
        .unwrap();
    s.insert_delivery(&delivery_of("b", "o/two", None), 2)
        .await
        .unwrap();
    s.insert_delivery(&delivery("c", Some("o/one")), 3)
        .await
        .unwrap();
    assert_eq!(
        s.pending_stats().await.unwrap(),
        PendingStats {
            depth: 3,
            oldest_received_at: Some(1)
        }
    );
    let a = s.claim_next("w", 10, LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(a.delivery_id, "a");
    s.mark_failed(&a, "GitHub answered 422", 11).await.unwrap();

    assert_eq!(ids(&s, filter(None, None, 50)).await, ["c", "b", "a"]);
    assert_eq!(
        ids(&s, filter(Some(DeliveryState::Failed), None, 50)).await,
        ["a"]
    );
    assert_eq!(ids(&s, filter(None, Some("o/one"), 50)).await, ["c", "a"]);
    assert_eq!(ids(&s, filter(None, None, 1)).await, ["c"]);
    assert!(ids(&s, filter(Some(DeliveryState::Done), None, 50))
        .await
        .is_empty());
    assert!(ids(&s, filter(None, Some("o/none"), 50)).await.is_empty());
    assert_eq!(
        s.pending_stats().await.unwrap(),
        PendingStats {
            depth: 2,
            oldest_received_at: Some(2)
        }
    );

    let (rec, payload) = s.delivery_record("a").await.unwrap().unwrap();
    assert_eq!(
        (rec.state, rec.attempts, rec.last_error.as_deref()),
        (DeliveryState::Failed, 1, Some("GitHub answered 422"))
    );
    assert_eq!(
        (rec.received_at, rec.finished_at, rec.repository.as_deref()),
        (1, Some(11), Some("o/one"))
    );
    assert_eq!(payload, r#"{"id":"a"}"#);
    assert!(s.delivery_record("nope").await.unwrap().is_none());

    // Only a failed delivery goes back; it keeps its place in its
    // repository's order, so it is claimed before the later `c`.
    assert_eq!(
        s.retry_delivery("b", 100).await.unwrap(),
        RetryOutcome::NotFailed(DeliveryState::Received)
    );
    assert_eq!(
        s.retry_delivery("nope", 100).await.unwrap(),
        RetryOutcome::NotFound
    );
    assert_eq!(
        s.retry_delivery("a", 100).await.unwrap(),
        RetryOutcome::Retried
    );
    assert_eq!(
        s.retry_delivery("a", 100).await.unwrap(),
        RetryOutcome::NotFailed(DeliveryState::Received),
        "a retry twice is refused the second time"
    );
    let (rec, _) = s.delivery_record("a").await.unwrap().unwrap();
    assert_eq!(
        (
            rec.state,
            rec.attempts,
            rec.finished_at,
            rec.next_attempt_at
        ),
        (DeliveryState::Received, 0, None, 100)
    );
    // Before it is due, `c` still waits behind it; `b` goes on.
    let b = s.claim_next("w2", 99, LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(b.delivery_id, "b");
    assert!(s.claim_next("w2", 99, LEASE, &[]).await.unwrap().is_none());
    let again = s.claim_next("w2", 100, LEASE, &[]).await.unwrap().unwrap();
    assert_eq!((again.delivery_id.as_str(), again.attempts), ("a", 1));
    s.mark_done(&again, 101).await.unwrap();
    let st = s.delivery_status("a").await.unwrap().unwrap();
    assert_eq!((st.state, st.last_error), (DeliveryState::Done, None));

    // The installation a repository's internal deliveries act as.
    assert_eq!(
        s.repository_installation("o/one").await.unwrap(),
        Some(Some(7))
    );
    assert_eq!(
        s.repository_installation("o/two").await.unwrap(),
        Some(None)
    );
    assert_eq!(s.repository_installation("o/none").await.unwrap(), None);

    // A delivery without a repository counts for the oldest too.
    s.insert_delivery(&delivery("no-repo", None), 0)
        .await
        .unwrap();
    assert_eq!(
        s.pending_stats().await.unwrap(),
        PendingStats {
            depth: 3,
            oldest_received_at: Some(0)
        }
    );
}

fn protection_request(repo: &str, deployment_id: i64) -> ProtectionRequest {
    ProtectionRequest {
        id: 0,
        repository: repo.into(),
        environment: "production".into(),
        deployment_id,
        callback_url: format!(
            "https://api.github.com/repos/{repo}/actions/runs/1/deployment_protection_rule"
        ),
        sha: "a".repeat(40),
        git_ref: "main".into(),
        pr: None,
        reviewed_sha: None,
        installation_id: Some(9),
        state: "pending".into(),
        deadline: 1_000,
        next_check_at: 500,
        progress_posts: 0,
        last_comment: None,
        created_at: deployment_id,
    }
}

async fn operators_see_every_repositorys_locks_and_pending_requests(s: DynStore) {
    let mut other = lock("staging", 2, LockKind::Sticky, "t2", None);
    other.repository = "a/first".into();
    for l in [
        lock("production", 1, LockKind::Deploy, "t1", Some(10_000)),
        other,
        lock("old", 3, LockKind::Sticky, "t3", Some(50)),
    ] {
        assert_eq!(s.acquire_lock(&l, 0).await.unwrap(), LockOutcome::Acquired);
    }
    let live: Vec<(String, String)> = s
        .all_locks(100)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.repository, l.environment))
        .collect();
    assert_eq!(
        live,
        [
            ("a/first".to_string(), "staging".to_string()),
            ("o/r".to_string(), "production".to_string())
        ],
        "expired locks are not listed"
    );

    let first = s
        .save_protection_request(&protection_request("o/r", 1))
        .await
        .unwrap();
    s.save_protection_request(&protection_request("a/first", 2))
        .await
        .unwrap();
    s.save_protection_request(&protection_request("o/r", 3))
        .await
        .unwrap();
    assert!(s
        .answer_protection_request(first.id, "approved")
        .await
        .unwrap());
    let pending: Vec<(String, i64)> = s
        .all_pending_protection_requests()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.repository, r.deployment_id))
        .collect();
    assert_eq!(
        pending,
        [("a/first".to_string(), 2), ("o/r".to_string(), 3)]
    );
}

async fn work_stored_for_later_is_claimed_only_when_due_and_arrives_now(s: DynStore) {
    let job = delivery("later", Some("o/r#policy"));
    assert_eq!(
        s.insert_delivery_due(&job, 100, 2_100).await.unwrap(),
        InsertOutcome::Inserted
    );
    assert_eq!(
        s.insert_delivery_due(&job, 200, 2_200).await.unwrap(),
        InsertOutcome::Duplicate
    );
    let (record, _) = s.delivery_record("later").await.unwrap().unwrap();
    assert_eq!((record.received_at, record.next_attempt_at), (100, 2_100));
    assert!(s
        .claim_next("w", 2_099, LEASE, &[])
        .await
        .unwrap()
        .is_none());
    let claimed = s.claim_next("w", 2_100, LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(claimed.delivery_id, "later");
}

fn names(batch: &[store::ClaimedDelivery]) -> Vec<&str> {
    batch.iter().map(|d| d.delivery_id.as_str()).collect()
}

async fn a_claim_takes_the_run_behind_its_head_in_order(s: DynStore) {
    for (i, id) in ["a1", "a2", "b1", "a3", "a4", "a5"].iter().enumerate() {
        let repo = if id.starts_with('a') { "o/a" } else { "o/b" };
        s.insert_delivery(&delivery(id, Some(repo)), i as i64)
            .await
            .unwrap();
    }
    // A delivery of o/a stored for later ends the run that can be claimed.
    s.insert_delivery_due(&delivery("a6-later", Some("o/a")), 6, 5_000)
        .await
        .unwrap();
    s.insert_delivery(&delivery("a7", Some("o/a")), 7)
        .await
        .unwrap();

    let first = s.claim_batch("w#1", 10, LEASE, &[], 3).await.unwrap();
    assert_eq!(
        names(&first),
        ["a1", "a2", "a3", "a4"],
        "the head and 3 behind it"
    );
    assert!(first
        .iter()
        .all(|d| d.claimed_by == "w#1" && d.attempts == 1));
    let second = s.claim_batch("w#2", 10, LEASE, &[], 31).await.unwrap();
    assert_eq!(names(&second), ["b1"], "o/a's rest waits for its head");
    assert!(s
        .claim_batch("w#3", 10, LEASE, &[], 31)
        .await
        .unwrap()
        .is_empty());

    // One statement records the batch; another claim's name matches nothing.
    let not_holder = store::ClaimedDelivery {
        claimed_by: "w#2".into(),
        ..first[0].clone()
    };
    assert_eq!(s.mark_done_many(&[not_holder], 11).await.unwrap(), 0);
    assert_eq!(s.mark_done_many(&first[..2], 11).await.unwrap(), 2);
    // What was not processed goes back without counting as an attempt.
    assert_eq!(s.release_claims(&first[2..]).await.unwrap(), 2);
    let a3 = s.delivery_status("a3").await.unwrap().unwrap();
    assert_eq!((a3.state, a3.attempts), (DeliveryState::Received, 0));
    assert_eq!(
        s.delivery_status("a1").await.unwrap().unwrap().state,
        DeliveryState::Done
    );

    // The run stops before the delivery that is not due yet.
    let third = s.claim_batch("w#4", 12, LEASE, &[], 31).await.unwrap();
    assert_eq!(names(&third), ["a3", "a4", "a5"]);
    s.mark_done_many(&third, 13).await.unwrap();
    assert!(s
        .claim_batch("w#5", 14, LEASE, &[], 31)
        .await
        .unwrap()
        .is_empty());
    let last = s.claim_batch("w#6", 5_000, LEASE, &[], 31).await.unwrap();
    assert_eq!(names(&last), ["a6-later", "a7"]);
}

async fn a_batch_whose_claim_ran_out_is_claimed_again_in_order(s: DynStore) {
    for (i, id) in ["a1", "a2", "a3"].iter().enumerate() {
        s.insert_delivery(&delivery(id, Some("o/a")), i as i64)
            .await
            .unwrap();
    }
    let dead = s.claim_batch("dead#1", 10, 100, &[], 31).await.unwrap();
    assert_eq!(names(&dead), ["a1", "a2", "a3"]);
    assert!(s
        .claim_batch("w#1", 109, LEASE, &[], 31)
        .await
        .unwrap()
        .is_empty());
    let again = s.claim_batch("w#2", 111, LEASE, &[], 31).await.unwrap();
    assert_eq!(names(&again), ["a1", "a2", "a3"]);
    assert!(again.iter().all(|d| d.attempts == 2));
    // The dead claim records nothing over the new one.
    assert_eq!(s.mark_done_many(&dead, 112).await.unwrap(), 0);
    assert_eq!(s.release_claims(&dead).await.unwrap(), 0);
    assert_eq!(s.mark_done_many(&again, 112).await.unwrap(), 3);

    // A batch holds one installation's share: another installation's
    // delivery ends it (and is not skipped).
    for (i, (id, installation)) in [("c1", 7), ("c2", 8), ("c3", 7)].iter().enumerate() {
        s.insert_delivery(&delivery_of(id, "o/c", Some(*installation)), 200 + i as i64)
            .await
            .unwrap();
    }
    let c = s.claim_batch("w#3", 300, LEASE, &[], 31).await.unwrap();
    assert_eq!(names(&c), ["c1"]);
}

async fn a_prs_previews_close_once_and_open_again_when_reopened(s: DynStore) {
    assert!(!s.previews_closed("o/r", 1).await.unwrap());
    s.set_previews_closed("o/r", 1, Some(10)).await.unwrap();
    // A redelivered close keeps the first.
    s.set_previews_closed("o/r", 1, Some(20)).await.unwrap();
    assert!(s.previews_closed("o/r", 1).await.unwrap());
    assert!(!s.previews_closed("o/r", 2).await.unwrap());
    assert!(!s.previews_closed("o/other", 1).await.unwrap());
    s.set_previews_closed("o/r", 1, None).await.unwrap();
    s.set_previews_closed("o/r", 1, None).await.unwrap();
    assert!(!s.previews_closed("o/r", 1).await.unwrap());
}

/// Each environment's last smoke outcome: what the previous deployment's
/// run was, the same answer for a retried job, environments apart.
async fn smoke_outcomes_say_what_the_previous_run_of_an_environment_was(s: DynStore) {
    let record = |env: &'static str, id: i64, passed: bool| {
        let s = s.clone();
        async move {
            s.record_smoke_outcome("o/r", env, id, passed, 1)
                .await
                .unwrap()
        }
    };
    assert_eq!(record("production", 1, false).await, None);
    assert_eq!(record("production", 1, false).await, None, "a retried job");
    assert_eq!(record("staging", 5, true).await, None, "environments apart");
    assert_eq!(record("production", 2, true).await, Some(false));
    assert_eq!(
        record("production", 2, true).await,
        Some(false),
        "a retried job"
    );
    assert_eq!(record("production", 3, true).await, Some(true));
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
                let Some(s) = postgres().await else { return };
                super::$name(s).await;
            })*
        }
    };
}

contract!(
    insert_is_idempotent_by_delivery_id,
    a_claim_takes_the_run_behind_its_head_in_order,
    a_batch_whose_claim_ran_out_is_claimed_again_in_order,
    work_stored_for_later_is_claimed_only_when_due_and_arrives_now,
    claims_follow_arrival_order_per_repository,
    retries_wait_for_their_time_and_failures_are_final,
    an_expired_claim_is_claimed_again,
    finished_deliveries_are_pruned_after_retention,
    concurrent_claims_take_each_delivery_once,
    locks_are_exclusive_and_released_only_by_their_owner,
    expired_locks_are_taken_over_and_same_pr_deploys_replace_their_lock,
    fifty_concurrent_acquires_have_one_winner,
    command_runs_are_recorded_once,
    a_comment_has_one_reply_over_its_runs_in_line_order,
    the_deploy_queue_is_first_in_first_out,
    expired_locks_are_taken_by_one_sweep,
    problems_are_recorded_after_their_report_and_valid_configs_are_kept,
    a_batch_insert_reports_each_delivery_and_keeps_arrival_order,
    claims_pass_over_excluded_installations,
    an_excluded_installations_lapsed_claim_is_not_taken_over,
    a_stale_worker_cannot_record_an_outcome,
    a_lapsed_claim_nobody_took_over_still_records,
    operators_list_show_and_retry_deliveries,
    operators_see_every_repositorys_locks_and_pending_requests,
    a_prs_previews_close_once_and_open_again_when_reopened,
    smoke_outcomes_say_what_the_previous_run_of_an_environment_was,
);

#[tokio::test]
async fn sqlite_requeues_work_left_processing_by_a_dead_run() {
    let (s, _dir) = sqlite().await;
    s.insert_delivery(&delivery("z", Some("o/r")), 1)
        .await
        .unwrap();
    s.claim_next("crashed", 10, LEASE, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.requeue_processing().await.unwrap(), 1);
    let d = s
        .claim_next("restarted", 11, LEASE, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.delivery_id.as_str(), d.attempts), ("z", 2));
}

/// Rows stored before payloads were compressed keep their text in `payload`;
/// an upgraded server still processes them.
#[tokio::test]
async fn sqlite_reads_payloads_stored_before_compression() {
    let (s, dir) = sqlite().await;
    let file = format!("sqlite://{}", dir.path().join("s.db").display());
    let raw = sqlx::SqlitePool::connect(&file).await.unwrap();
    sqlx::query(
        "INSERT INTO deliveries (delivery_id, event, installation_id, repository, payload, received_at, next_attempt_at)
         VALUES ('old', 'push', 7, 'o/r', '{\"before\":true}', 1, 1)",
    )
    .execute(&raw)
    .await
    .unwrap();
    let d = s.claim_next("w", 10, LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(
        (d.delivery_id.as_str(), d.payload.as_str()),
        ("old", r#"{"before":true}"#)
    );
}
