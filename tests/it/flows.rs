//! Smoke flows on the engine against a loopback app with a login: ordered
//! steps, `${env.NAME}` values, saved values, the step that failed named,
//! and no secret in anything the run reports.

use std::collections::BTreeMap;
use std::time::Duration;

use shipgate::smoke::template::Vars;
use shipgate::smoke::{self, Limits, Outcome, SmokeConfig, SmokeOptions, SmokeReport};
use url::Url;

use crate::common::sites::{login_site, FLOWS, SESSION_TOKEN, SMOKE_PASSWORD};

fn suite(yaml: &str) -> SmokeConfig {
    let c: SmokeConfig = serde_yaml_ng::from_str(yaml).unwrap();
    c.validate("smoke").unwrap();
    c
}

fn with_env(password: Option<&str>) -> SmokeOptions {
    SmokeOptions {
        retry_base: Duration::from_millis(5),
        request_timeout: Duration::from_secs(2),
        env: password.map(|p| {
            Vars::with_env(BTreeMap::from([(
                "SMOKE_PASSWORD".to_string(),
                p.to_string(),
            )]))
        }),
        ..SmokeOptions::default()
    }
}

/// Everything a report can show: its JSON and each rendering.
fn everything_shown(r: &SmokeReport) -> String {
    format!(
        "{}\n{:?}\n{}\n{}",
        serde_json::to_string(r).unwrap(),
        r,
        shipgate::render::smoke_markdown(r),
        r.summary()
    )
}

fn assert_no_secret(shown: &str) {
    for secret in [SMOKE_PASSWORD, SESSION_TOKEN] {
        assert!(!shown.contains(secret), "`{secret}` shown in:\n{shown}");
    }
}

#[tokio::test]
async fn a_flow_logs_in_and_reads_with_the_saved_token_and_shows_neither() {
    let (addr, seen) = login_site().await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let r = smoke::run(
        &base,
        &suite(&format!("checks:{FLOWS}")),
        &with_env(Some(SMOKE_PASSWORD)),
        &Limits::none(),
    )
    .await;
    assert_eq!(r.outcome(), Outcome::Pass, "{:?}", r.results);
    assert_eq!(r.results[0].name, "log in, then read the settlements");
    assert!(
        r.results[0].reason.starts_with("2 steps in ")
            && r.results[0].reason.ends_with(": log in 200, dashboard 200"),
        "{}",
        r.results[0].reason
    );
    assert_eq!(
        (seen.logins(), seen.dashboards(), seen.bookings()),
        (1, 1, 1)
    );
    assert_no_secret(&everything_shown(&r));
    // Both values go to the Action to mask.
    let masked = r.secrets.values();
    assert!(
        masked.contains(&SMOKE_PASSWORD.to_string()) && masked.contains(&SESSION_TOKEN.to_string()),
        "{masked:?}"
    );
}

#[tokio::test]
async fn a_failed_step_stops_its_flow_and_is_named_without_its_values() {
    let (addr, seen) = login_site().await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    // A wrong password: the login answers 401 and echoes what it was sent.
    let wrong = "wrong-password-123";
    let r = smoke::run(
        &base,
        &suite(&format!("checks:{FLOWS}")),
        &with_env(Some(wrong)),
        &Limits::none(),
    )
    .await;
    let login = &r.results[0];
    assert_eq!(login.outcome, Outcome::Fail);
    assert_eq!(
        login.reason, "step 1 `log in`: status 401 (expected 200)",
        "{login:?}"
    );
    assert_eq!(seen.dashboards(), 0, "the flow went on after a failed step");
    assert!(!everything_shown(&r).contains(wrong));

    // An assertion that quotes the answer, which holds the saved token.
    let echo = r#"
checks:
  - name: session echo
    flow:
      - { name: log in, method: POST, path: /api/login, headers: { content-type: application/json }, body: '{"email": "smoke@example.com", "password": "${env.SMOKE_PASSWORD}"}', save: { token: $.access_token } }
      - { name: dashboard, path: /api/dashboard, headers: { authorization: 'Bearer ${token}' }, expect: { json: ['$.session == "someone else"'] } }
"#;
    let r = smoke::run(
        &base,
        &suite(echo),
        &with_env(Some(SMOKE_PASSWORD)),
        &Limits::none(),
    )
    .await;
    assert_eq!(r.outcome(), Outcome::Fail);
    assert!(
        r.results[0].reason.starts_with("step 2 `dashboard`: ")
            && r.results[0].reason.contains("***"),
        "{:?}",
        r.results[0]
    );
    assert_no_secret(&everything_shown(&r));
}

#[tokio::test]
async fn a_save_path_that_matches_nothing_fails_its_step_naming_the_path() {
    let (addr, seen) = login_site().await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let yaml = r#"
checks:
  - name: login
    flow:
      - { name: log in, method: POST, path: /api/login, headers: { content-type: application/json }, body: '{"email": "smoke@example.com", "password": "${env.SMOKE_PASSWORD}"}', save: { token: $.token } }
      - { name: dashboard, path: /api/dashboard, headers: { authorization: 'Bearer ${token}' } }
"#;
    let r = smoke::run(
        &base,
        &suite(yaml),
        &with_env(Some(SMOKE_PASSWORD)),
        &Limits::none(),
    )
    .await;
    assert_eq!(
        r.results[0].reason,
        "step 1 `log in`: save `token`: `$.token` matched nothing in the answer"
    );
    assert_eq!(seen.dashboards(), 0);
}

/// Where no environment is handed over (the server), a flow that needs
/// `${env.…}` is not run and says why; one that needs none runs.
#[tokio::test]
async fn without_an_environment_only_flows_that_need_none_run() {
    let (addr, seen) = login_site().await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let r = smoke::run(
        &base,
        &suite(&format!("checks:{FLOWS}")),
        &with_env(None),
        &Limits::none(),
    )
    .await;
    let (login, booking) = (&r.results[0], &r.results[1]);
    assert_eq!(login.outcome, Outcome::Skipped, "{login:?}");
    assert!(
        login
            .reason
            .starts_with("not run: it needs `SMOKE_PASSWORD` from the workflow's secrets"),
        "{}",
        login.reason
    );
    assert_eq!(booking.outcome, Outcome::Pass, "{booking:?}");
    assert_eq!(seen.logins(), 0);
    assert_eq!(seen.bookings(), 1);
    assert_eq!(r.outcome(), Outcome::Pass);
}

#[test]
fn malformed_flows_are_config_errors_naming_the_place() {
    for (yaml, want) in [
        (
            "checks:\n  - flow:\n      - { path: /a, headers: { authorization: 'Bearer ${token}' } }\n",
            "smoke.checks[0].flow[0].headers.authorization: `${token}` is not saved by an earlier step",
        ),
        (
            "checks:\n  - flow:\n      - { path: '/a/${env.}' }\n",
            "smoke.checks[0].flow[0].path: `${env.}` is not `${env.NAME}`, `${totp.NAME}` or the name of a saved value",
        ),
        (
            "checks:\n  - { path: /a, headers: { authorization: 'Bearer ${token}' } }\n",
            "smoke.checks[0].headers.authorization: `${token}` is a saved value, and only a `flow` step can use one",
        ),
        (
            "checks:\n  - { path: /a, flow: [{ path: /b }] }\n",
            "smoke.checks[0]: a `flow` check takes only `name`, `severity` and its steps; put the requests in the steps",
        ),
        (
            "checks:\n  - flow:\n      - { path: /a, save: { token: 'access_token' } }\n",
            "smoke.checks[0].flow[0].save.token: a path starts with `$`, got `access_token`",
        ),
        (
            "checks:\n  - { rule: rate_limit, path: /login, method: POST, body: 'p=${env.PASSWORD}' }\n",
            "smoke.checks[0].body: a `rule` check does not fill in `${env.…}`",
        ),
    ] {
        let c: SmokeConfig = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(c.validate("smoke").unwrap_err(), want, "{yaml}");
    }
}

/// A deployed host may not take a request's values elsewhere: a redirect
/// to another origin of a request that carries `${…}` values is refused,
/// and that origin hears nothing (a 307 would re-send the body, a custom
/// header would travel with any redirect).
#[tokio::test]
async fn a_redirect_cannot_carry_a_flows_values_to_another_origin() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let elsewhere_hits = Arc::new(AtomicU32::new(0));
    let hits = elsewhere_hits.clone();
    let elsewhere = axum::Router::new().fallback(move || {
        let hits = hits.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            "thanks"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, elsewhere).await.unwrap() });
    let to = format!("http://{other}/collect");
    let app = axum::Router::new().fallback(move || {
        let to = to.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [("location", to)],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let yaml = r#"
checks:
  - { name: token check, path: /api/me, headers: { x-api-key: '${env.SMOKE_PASSWORD}' } }
  - name: login
    flow:
      - { name: log in, method: POST, path: /api/login, body: 'password=${env.SMOKE_PASSWORD}' }
"#;
    let r = smoke::run(
        &base,
        &suite(yaml),
        &with_env(Some(SMOKE_PASSWORD)),
        &Limits::none(),
    )
    .await;
    assert_eq!(
        elsewhere_hits.load(Ordering::SeqCst),
        0,
        "a value left for another origin"
    );
    for c in &r.results {
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(
            c.reason
                .contains("another origin, and this request carries `${…}` values"),
            "{c:?}"
        );
    }
    assert_no_secret(&everything_shown(&r));
}

/// A login with two factors: the second step sends the current code of the
/// account's TOTP secret (`${totp.NAME}`), which the site checks.
#[tokio::test]
async fn a_flow_passes_a_second_factor_with_the_current_totp_code() {
    use crate::common::sites::TOTP_SECRET;
    let (addr, seen) = login_site().await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let yaml = r#"
checks:
  - name: log in with 2FA, then read the settlements
    flow:
      - { name: log in, method: POST, path: /api/login, headers: { content-type: application/json }, body: '{"email": "smoke@example.com", "password": "${env.SMOKE_PASSWORD}"}', save: { token: $.access_token } }
      - { name: second factor, method: POST, path: /api/2fa, headers: { content-type: application/json, authorization: 'Bearer ${token}' }, body: '{"code": "${totp.SMOKE_TOTP}"}', expect: { status: 200 } }
      - { name: dashboard, path: /api/dashboard, headers: { authorization: 'Bearer ${token}' } }
"#;
    let mut opts = with_env(None);
    opts.env = Some(Vars::with_env(BTreeMap::from([
        ("SMOKE_PASSWORD".to_string(), SMOKE_PASSWORD.to_string()),
        ("SMOKE_TOTP".to_string(), TOTP_SECRET.to_string()),
    ])));
    let r = smoke::run(&base, &suite(yaml), &opts, &Limits::none()).await;
    assert_eq!(r.outcome(), Outcome::Pass, "{:?}", r.results);
    assert_eq!(seen.dashboards(), 1);
    assert!(!everything_shown(&r).contains(TOTP_SECRET));

    // A wrong secret gives a wrong code: the second step fails, named.
    opts.env = Some(Vars::with_env(BTreeMap::from([
        ("SMOKE_PASSWORD".to_string(), SMOKE_PASSWORD.to_string()),
        ("SMOKE_TOTP".to_string(), "GEZDGNBVGY3TQOJQ".to_string()),
    ])));
    let r = smoke::run(&base, &suite(yaml), &opts, &Limits::none()).await;
    assert_eq!(
        r.results[0].reason,
        "step 2 `second factor`: status 401 (expected 200)"
    );
    assert_eq!(seen.dashboards(), 1);
}
