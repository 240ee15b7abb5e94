//! Checks whose requests carry values: a `flow` (ordered steps that save
//! values from one answer for the next) and a request check that uses
//! `${env.NAME}`. Values are filled in just before a request is sent and
//! redacted from everything the result says.

use std::time::Instant;

use url::Url;

use super::check::{assert_response, planned_request};
use super::config::{CheckSpec, FlowStep, SaveFrom};
use super::fetch::{failed, fetch_ready, Ctx, Fetched};
use super::template::{Template, Vars};
use super::{result, CheckResult, Outcome};

/// Why a check that needs `${env.…}` values is not run where no
/// environment was handed over (the server holds no repository secrets).
fn not_run_without_env(name: String, needs: &[String]) -> CheckResult {
    let names: Vec<String> = needs.iter().map(|n| format!("`{n}`")).collect();
    result(
        name,
        Outcome::Skipped,
        format!(
            "not run: it needs {} from the workflow's secrets, and the server holds no repository secrets (the Action runs it)",
            names.join(", ")
        ),
        0,
    )
}

/// The display name of a check or step before any value is filled in, so
/// a value can never become part of a name.
fn plain_name(c: &CheckSpec) -> String {
    c.name.clone().unwrap_or_else(|| {
        format!(
            "{} {}",
            c.method.as_deref().unwrap_or("GET").to_ascii_uppercase(),
            c.url.as_deref().or(c.path.as_deref()).unwrap_or("/")
        )
    })
}

/// `c` with its request fields filled in from `vars`.
fn filled(c: &CheckSpec, vars: &Vars) -> Result<CheckSpec, String> {
    let fill = |text: &str| Template::parse(text).and_then(|t| t.render(vars));
    let mut out = c.clone();
    out.name = Some(plain_name(c));
    out.path = c.path.as_deref().map(fill).transpose()?;
    out.url = c.url.as_deref().map(fill).transpose()?;
    out.body = c.body.as_deref().map(fill).transpose()?;
    for (k, v) in out.headers.iter_mut() {
        *v = fill(v).map_err(|e| format!("header `{k}`: {e}"))?;
    }
    Ok(out)
}

/// `r` with every value of `vars` taken out of what it says.
fn redacted(mut r: CheckResult, vars: &Vars) -> CheckResult {
    r.name = vars.redact(&r.name);
    r.reason = vars.redact(&r.reason);
    for d in r.details.iter_mut() {
        *d = vars.redact(d);
    }
    r
}

/// The run's environment, or the result of a check that cannot run here.
fn env_or_skip(cx: &Ctx, c: &CheckSpec, name: &str) -> Result<Vars, Box<CheckResult>> {
    let needs = c.env_names();
    match &cx.opts.env {
        Some(env) => Ok(env.clone()),
        None if needs.is_empty() => Ok(Vars::default()),
        None => Err(Box::new(not_run_without_env(name.to_string(), &needs))),
    }
}

/// A request check that uses `${env.NAME}`.
pub(super) async fn request_with_env(cx: &Ctx, base: &Url, c: &CheckSpec) -> CheckResult {
    let name = plain_name(c);
    let vars = match env_or_skip(cx, c, &name) {
        Ok(v) => v,
        Err(skipped) => return *skipped,
    };
    let r = match filled(c, &vars) {
        Ok(spec) => super::check::request_check_carrying(cx, base, &spec, true).await,
        Err(e) => result(name, Outcome::Fail, e, 0),
    };
    redacted(r, &vars)
}

/// A `flow`: its steps in order, each filled in from the environment and
/// what earlier steps saved; the first failed step stops it and is named.
pub(super) async fn run(cx: &Ctx, base: &Url, c: &CheckSpec) -> CheckResult {
    let name = c.name.clone().unwrap_or_else(|| "flow".into());
    let mut vars = match env_or_skip(cx, c, &name) {
        Ok(v) => v,
        Err(skipped) => return *skipped,
    };
    let started = Instant::now();
    let mut attempts = 0;
    let mut done = Vec::new();
    for (i, step) in c.flow.iter().enumerate() {
        let step_name = plain_name(&step.as_check());
        let label = format!("step {} `{step_name}`", i + 1);
        match run_step(cx, base, step, i == 0, &mut vars).await {
            Ok((status, tries)) => {
                attempts += tries;
                done.push(format!("{step_name} {status}"));
            }
            Err((why, tries)) => {
                attempts += tries;
                let mut r = result(name, Outcome::Fail, format!("{label}: {why}"), attempts);
                r.details = vec![format!("{label}: {why}")];
                cx.keep_secrets(&vars);
                return redacted(r, &vars);
            }
        }
    }
    cx.keep_secrets(&vars);
    let reason = format!(
        "{} step{} in {} ms: {}",
        done.len(),
        if done.len() == 1 { "" } else { "s" },
        started.elapsed().as_millis(),
        done.join(", ")
    );
    redacted(result(name, Outcome::Pass, reason, attempts.max(1)), &vars)
}

/// One step: filled in, sent (the first with the readiness wait, the rest
/// once: a retried POST could create twice), asserted on, its values saved.
/// `Ok((status, attempts))` or `Err((why, attempts))`.
async fn run_step(
    cx: &Ctx,
    base: &Url,
    step: &FlowStep,
    first: bool,
    vars: &mut Vars,
) -> Result<(u16, u32), (String, u32)> {
    let unfilled = step.as_check();
    let spec = filled(&unfilled, vars).map_err(|e| (e, 0))?;
    let carries_values = !unfilled.templates().is_empty();
    let (_, req, timeout) =
        planned_request(cx, base, &spec, carries_values).map_err(|r| (r.reason, 0))?;
    let (answer, attempts) = if first {
        fetch_ready(cx, &req, timeout).await
    } else {
        (cx.send(&req, timeout, cx.opts.body_cap).await, 1)
    };
    let answer = answer.map_err(|e| (failed(String::new(), &e, attempts).reason, attempts))?;
    let failures = assert_response(&answer, &spec);
    if !failures.is_empty() {
        return Err((failures.join("; "), attempts));
    }
    for (key, from) in &step.save {
        let value =
            saved_value(&answer, from).map_err(|why| (format!("save `{key}`: {why}"), attempts))?;
        vars.save(key, value);
    }
    Ok((answer.status, attempts))
}

/// The value a `save:` entry reads from an answer, or why there is none.
fn saved_value(answer: &Fetched, from: &str) -> Result<String, String> {
    match SaveFrom::parse(from)? {
        SaveFrom::Json(path) => {
            let doc: serde_json::Value = serde_json::from_slice(&answer.body)
                .map_err(|_| format!("`{from}`: the answer is not JSON"))?;
            match path.select(&doc) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(other) => Ok(other.to_string()),
                None => Err(format!("`{from}` matched nothing in the answer")),
            }
        }
        SaveFrom::Header(name) => {
            let value = answer
                .headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("the answer has no `{name}` header"))?;
            // A cookie is sent back as its `name=value`, without attributes.
            Ok(if name == "set-cookie" {
                value.split(';').next().unwrap_or("").trim().to_string()
            } else {
                value.to_string()
            })
        }
    }
}
