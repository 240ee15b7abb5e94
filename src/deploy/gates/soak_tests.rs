use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::deploy::gates::Verdict;

const SHA: &str = "abc1234def5678abc1234def5678abc1234def56";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
}

fn ago(d: Duration) -> DateTime<Utc> {
    now() - d
}

fn success(at: DateTime<Utc>, deployment: i64) -> SoakEvent {
    SoakEvent {
        at,
        kind: SoakEventKind::Succeeded { deployment },
    }
}

fn failure(at: DateTime<Utc>, deployment: i64, state: &str) -> SoakEvent {
    SoakEvent {
        at,
        kind: SoakEventKind::Failed {
            deployment,
            state: state.into(),
        },
    }
}

fn rollback(at: DateTime<Utc>, rollback: i64) -> SoakEvent {
    SoakEvent {
        at,
        kind: SoakEventKind::RolledBack { rollback },
    }
}

fn facts(events: Vec<SoakEvent>) -> SoakFacts {
    SoakFacts {
        environment: "staging".into(),
        soak: std::time::Duration::from_secs(24 * 3600),
        sha: SHA.into(),
        events,
    }
}

fn gate(events: Vec<SoakEvent>) -> Gate {
    soak_gate("production", &facts(events), now(), None)
}

fn actor(role: Role) -> Actor {
    Actor {
        login: "maya".into(),
        role: Some(role),
        listed: false,
    }
}

#[test]
fn exactly_the_soak_passes_and_a_second_less_waits_with_the_time_left() {
    let g = gate(vec![success(ago(Duration::hours(24)), 7)]);
    assert_eq!(g.verdict, Verdict::Pass, "{g:?}");
    assert_eq!(
        g.reason,
        "`abc1234` has run in `staging` for 24h without incident (deployment 7, since 2026-12-03 12:00 UTC; needs 24h)"
    );

    let g = gate(vec![success(
        ago(Duration::hours(24) - Duration::seconds(1)),
        7,
    )]);
    assert_eq!(g.verdict, Verdict::Wait, "{g:?}");
    assert!(
        g.reason.starts_with("`staging` soak: 1m left"),
        "{}",
        g.reason
    );

    let g = gate(vec![success(ago(Duration::minutes(20 * 60 + 48)), 7)]);
    assert_eq!(
        g.reason,
        "`staging` soak: 3h 12m left (deployed `abc1234` at 2026-12-03 15:12 UTC, deployment 7; needs 24h)"
    );
    assert_eq!(
        facts(vec![success(ago(Duration::hours(23)), 7)]).ends_at(now()),
        Some(now() + Duration::hours(1))
    );
}

#[test]
fn no_deployment_at_all_fails() {
    let g = gate(vec![]);
    assert_eq!(g.verdict, Verdict::Fail);
    assert_eq!(
        g.reason,
        "`abc1234` was never deployed to `staging` successfully; `production` takes a commit after 24h there without incident"
    );
    assert_eq!(facts(vec![]).ends_at(now()), None);
}

#[test]
fn a_failure_after_the_success_resets_the_soak() {
    let g = gate(vec![
        success(ago(Duration::hours(30)), 7),
        failure(ago(Duration::hours(2)), 7, "failure"),
    ]);
    assert_eq!(g.verdict, Verdict::Fail);
    assert_eq!(
        g.reason,
        "`staging` soak reset: deployment 7 reported `failure` at 2026-12-04 10:00 UTC, and no deployment of `abc1234` to `staging` succeeded since; `production` takes it after 24h there without incident"
    );
    // An `error` counts too; a redeploy that succeeds restarts the clock.
    let g = gate(vec![
        success(ago(Duration::hours(40)), 7),
        failure(ago(Duration::hours(30)), 7, "error"),
        success(ago(Duration::hours(5)), 9),
    ]);
    assert_eq!(g.verdict, Verdict::Wait);
    assert!(
        g.reason.starts_with("`staging` soak: 19h left (deployed `abc1234` at 2026-12-04 07:00 UTC, deployment 9; needs 24h); restarted after deployment 7 reported `error`"),
        "{}",
        g.reason
    );
    // A failed attempt before the first success is no incident of what runs.
    let g = gate(vec![
        failure(ago(Duration::hours(27)), 6, "failure"),
        success(ago(Duration::hours(26)), 7),
    ]);
    assert_eq!(g.verdict, Verdict::Pass, "{g:?}");
}

#[test]
fn a_rollback_away_from_the_commit_resets_the_soak() {
    let g = gate(vec![
        success(ago(Duration::hours(30)), 7),
        rollback(ago(Duration::hours(1)), 11),
    ]);
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(
        g.reason.starts_with(
            "`staging` soak reset: rollback deployment 11 took it away from `abc1234` at 2026-12-04 11:00 UTC"
        ),
        "{}",
        g.reason
    );
}

#[test]
fn the_earliest_success_since_the_last_incident_counts() {
    let g = gate(vec![
        success(ago(Duration::hours(3)), 9),
        success(ago(Duration::hours(26)), 7),
    ]);
    assert_eq!(g.verdict, Verdict::Pass);
    assert!(g.reason.contains("for 26h without incident (deployment 7"));
}

#[test]
fn force_by_a_maintainer_overrides_and_says_so_and_a_writer_cannot() {
    let f = facts(vec![success(ago(Duration::hours(23)), 7)]);
    let g = soak_gate("production", &f, now(), Some(&actor(Role::Maintain)));
    assert_eq!(g.verdict, Verdict::Pass);
    assert!(
        g.reason
            .ends_with("1h left (deployed `abc1234` at 2026-12-03 13:00 UTC, deployment 7; needs 24h) — overridden with `force` by @maya"),
        "{}",
        g.reason
    );
    let g = soak_gate("production", &f, now(), Some(&actor(Role::Write)));
    assert_eq!(g.verdict, Verdict::Wait);
    assert!(g.reason.ends_with("(`force` needs maintain or admin)"));
}

#[test]
fn spans_round_time_left_up_and_time_run_down() {
    assert_eq!(span(Duration::seconds(1), true), "1m");
    assert_eq!(span(Duration::seconds(59), false), "0m");
    assert_eq!(span(Duration::minutes(192), true), "3h 12m");
    assert_eq!(span(Duration::hours(25), false), "25h");
}
