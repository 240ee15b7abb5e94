//! Smoke check configuration (`smoke:` in `.github/shipgate.yml`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::template::Template;
use crate::duration::DurationText;

/// The most `samples` a check may ask for (`shipgate serve` allows fewer:
/// `SHIPGATE_SMOKE_MAX_SAMPLES`).
pub const MAX_SAMPLES: u32 = 1000;
/// The largest `burst` a `rate_limit` check may ask for (`shipgate serve`
/// allows less: `SHIPGATE_SMOKE_MAX_BURST`).
pub const MAX_BURST: u32 = 500;

/// A suite: readiness-wait settings and the checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmokeConfig {
    /// How long to wait for a deployment that is still warming up.
    #[serde(default)]
    pub wait: WaitConfig,
    /// The checks; none means the zero-config default (`GET /` answers 2xx/3xx
    /// within 10 s, security headers and TLS as warnings). The server runs
    /// the first `SHIPGATE_SMOKE_MAX_CHECKS` (default 20) and sends at most
    /// `SHIPGATE_SMOKE_MAX_REQUESTS` (default 300) requests per run; the
    /// Action is not limited.
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitConfig {
    /// Deadline for retrying a check whose failure is retryable (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
    /// Failures that are retried until the deadline: `connect`, `timeout`, or
    /// status codes (default: connect, timeout, 408, 429, 502, 503, 504).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<RetryOn>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RetryOn {
    Status(u16),
    Kind(RetryKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RetryKind {
    Connect,
    Timeout,
}

/// A built-in rule check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    SecurityHeaders,
    Tls,
    HttpsRedirect,
    Cors,
    RateLimit,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::SecurityHeaders => "security headers",
            Rule::Tls => "TLS",
            Rule::HttpsRedirect => "HTTP → HTTPS redirect",
            Rule::Cors => "CORS",
            Rule::RateLimit => "rate limit",
        }
    }
}

/// How a failed rule counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warn,
    #[default]
    Fail,
}

/// One check: an HTTP request with expectations, or a built-in `rule`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A built-in rule instead of a request check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// `warn` makes a failure a warning (rules default to `fail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Path relative to the deployment URL (default `/`). On the server, the
    /// URL it makes, and every redirect, must pass the SSRF guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// An absolute URL instead of a path (on the server: a host in
    /// `preview.allowed_hosts` with public addresses, like the deployment URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Follow redirects (default `true`). With `false` a redirect is the
    /// answer, so `expect` can assert on its status (`301`) and its
    /// `location` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    /// Per-request timeout (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
    #[serde(default)]
    pub expect: Expect,
    /// Requests to send for latency percentiles (default 1, at most 1000; the
    /// server cuts it to `SHIPGATE_SMOKE_MAX_SAMPLES`, default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
    /// `rate_limit`: requests in the burst (default 50, at most 500; the server
    /// cuts it to `SHIPGATE_SMOKE_MAX_BURST`, default 100, and sends bursts
    /// only to the hosts of `environments.*.url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// `tls`: warn when the certificate expires in fewer days (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_days: Option<u32>,
    /// `tls`: fail when the certificate expires in fewer days (default 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_days: Option<u32>,
    /// `tls`: the oldest acceptable protocol, `1.2` (default) or `1.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// `security_headers`: headers the team decided not to check, by name
    /// (case-insensitive; one of the six the rule knows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// `security_headers`: headers that must be present. A missing
    /// `Referrer-Policy` or `Permissions-Policy` then fails instead of
    /// warning; any other header name is checked for presence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<String>,
    /// `security_headers`: what the `Content-Security-Policy` may allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csp: Option<CspOptions>,
    /// `security_headers`: what `Strict-Transport-Security` must say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<HstsOptions>,
    /// Ordered requests instead of one (log in, then read the dashboard):
    /// a step can `save` values from its answer for later steps (`${name}`),
    /// and a failed step stops the flow. Takes only `name`, `severity` and
    /// the steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flow: Vec<FlowStep>,
}

/// One request of a `flow`. `path`, `url`, header values and `body` may use
/// `${env.NAME}` (from the step's environment: the Action's `env:`, fed
/// from `secrets`) and `${name}` (saved by an earlier step).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
    #[serde(default)]
    pub expect: Expect,
    /// Values to keep for later steps: a JSON path into the answer
    /// (`token: $.access_token`) or a response header (`session:
    /// header:set-cookie`, the cookie's `name=value`). A path that matches
    /// nothing fails the step. Saved values are secrets, like `${env.…}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub save: BTreeMap<String, String>,
}

impl FlowStep {
    /// The step as a request check, with its templates still unfilled.
    pub fn as_check(&self) -> CheckSpec {
        CheckSpec {
            name: self.name.clone(),
            path: self.path.clone(),
            url: self.url.clone(),
            method: self.method.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            follow_redirects: self.follow_redirects,
            timeout: self.timeout,
            expect: self.expect.clone(),
            ..CheckSpec::default()
        }
    }
}

/// Where a `save:` entry reads its value.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveFrom {
    Json(super::jsonpath::JsonPath),
    /// A response header, lower-cased.
    Header(String),
}

impl SaveFrom {
    pub fn parse(text: &str) -> Result<SaveFrom, String> {
        match text.trim().strip_prefix("header:") {
            Some(name) if !name.trim().is_empty() => {
                Ok(SaveFrom::Header(name.trim().to_ascii_lowercase()))
            }
            Some(_) => Err("`header:` needs a header name".into()),
            None => super::jsonpath::JsonPath::parse(text).map(SaveFrom::Json),
        }
    }
}

/// The headers `rule: security_headers` checks, as it names them.
pub const SECURITY_HEADERS: [&str; 6] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Permissions-Policy",
    "Content-Security-Policy",
];

/// `security_headers`: relaxations of the `Content-Security-Policy` check.
/// Each allows one source expression in `script-src` (or `default-src`);
/// nothing else of the check changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CspOptions {
    /// Accept `'unsafe-inline'` without a nonce or hash (default false).
    #[serde(default)]
    pub allow_unsafe_inline: bool,
    /// Accept `'unsafe-eval'` (default false).
    #[serde(default)]
    pub allow_unsafe_eval: bool,
}

/// `security_headers`: the `Strict-Transport-Security` check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HstsOptions {
    /// The shortest acceptable `max-age`, such as `365d` (default `180d`,
    /// 15552000 seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_max_age: Option<DurationText>,
    /// Require the `includeSubDomains` directive (default false).
    #[serde(default)]
    pub include_subdomains: bool,
}

/// The keys only `rule: security_headers` takes, checked when the config
/// loads: elsewhere they are refused, and `ignore` names headers the rule knows.
fn validate_header_keys(c: &CheckSpec, here: &str) -> Result<(), String> {
    let used = [
        ("ignore", !c.ignore.is_empty()),
        ("require", !c.require.is_empty()),
        ("csp", c.csp.is_some()),
        ("hsts", c.hsts.is_some()),
    ];
    if c.rule != Some(Rule::SecurityHeaders) {
        return match used.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(format!(
                "{here}.{key}: only `rule: security_headers` takes `{key}`"
            )),
            None => Ok(()),
        };
    }
    let ignored = |name: &str| c.ignore.iter().any(|i| i.trim().eq_ignore_ascii_case(name));
    for name in &c.ignore {
        if !SECURITY_HEADERS
            .iter()
            .any(|k| k.eq_ignore_ascii_case(name.trim()))
        {
            let known: Vec<String> = SECURITY_HEADERS
                .iter()
                .map(|k| k.to_ascii_lowercase())
                .collect();
            return Err(format!(
                "{here}.ignore: {name:?} is not a header the rule checks (it checks {})",
                known.join(", ")
            ));
        }
    }
    for name in &c.require {
        if reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).is_err() {
            return Err(format!("{here}.require: {name:?} is not a header name"));
        }
        if ignored(name) {
            return Err(format!(
                "{here}: {name:?} is both in `ignore` and in `require`"
            ));
        }
    }
    for (key, header) in [
        ("csp", "content-security-policy"),
        ("hsts", "strict-transport-security"),
    ] {
        if used.iter().any(|(k, set)| *k == key && *set) && ignored(header) {
            return Err(format!(
                "{here}.{key}: {header} is in `ignore`, so `{key}` would change nothing"
            ));
        }
    }
    Ok(())
}

/// Expectations of a request check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `200`, `[200, 204]` or a class such as `"2xx"` (default: 2xx or 3xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusExpect>,
    /// Assertions on the JSON body: `$.status == "healthy"`, `$.items exists`,
    /// `$.count > 0`, `$.tags contains "v2"`, `$.version matches "^1\."`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json: Vec<String>,
    /// Response headers: `present: true`, `equals: …` or `matches: …`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, HeaderExpect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// A regular expression the body must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_matches: Option<String>,
    /// Every sample must answer within this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StatusExpect {
    Code(u16),
    List(Vec<u16>),
    Class(String),
}

impl StatusExpect {
    pub fn matches(&self, status: u16) -> bool {
        match self {
            StatusExpect::Code(c) => *c == status,
            StatusExpect::List(l) => l.contains(&status),
            StatusExpect::Class(c) => {
                let c = c.trim().to_ascii_lowercase();
                c.len() == 3 && c.ends_with("xx") && c.as_bytes()[0] == b'0' + (status / 100) as u8
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            StatusExpect::Code(c) => c.to_string(),
            StatusExpect::List(l) => l
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
            StatusExpect::Class(c) => c.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderExpect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
}

/// The request fields that may hold `${…}` references, with their labels.
fn template_fields<'a>(
    path: &'a Option<String>,
    url: &'a Option<String>,
    headers: &'a BTreeMap<String, String>,
    body: &'a Option<String>,
) -> Vec<(String, &'a str)> {
    let mut fields = Vec::new();
    fields.extend(path.as_deref().map(|p| ("path".to_string(), p)));
    fields.extend(url.as_deref().map(|u| ("url".to_string(), u)));
    fields.extend(
        headers
            .iter()
            .map(|(k, v)| (format!("headers.{k}"), v.as_str())),
    );
    fields.extend(body.as_deref().map(|b| ("body".to_string(), b)));
    fields
}

impl CheckSpec {
    /// Its request fields (its steps' for a flow) that reference values,
    /// as (label, template).
    pub fn templates(&self) -> Vec<(String, Template)> {
        let mut all = Vec::new();
        let mut push = |label: String, text: &str| {
            if let Ok(t) = Template::parse(text) {
                if t.env_names().next().is_some() || t.saved_names().next().is_some() {
                    all.push((label, t));
                }
            }
        };
        for (label, text) in template_fields(&self.path, &self.url, &self.headers, &self.body) {
            push(label, text);
        }
        for (i, step) in self.flow.iter().enumerate() {
            for (label, text) in template_fields(&step.path, &step.url, &step.headers, &step.body) {
                push(format!("flow[{i}].{label}"), text);
            }
        }
        all
    }

    /// The `${env.NAME}` names it needs, each once.
    pub fn env_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .templates()
            .iter()
            .flat_map(|(_, t)| t.env_names().map(str::to_string).collect::<Vec<_>>())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

impl SmokeConfig {
    /// Where each `${env.NAME}` is used: (`checks[i].field`, NAME).
    pub fn env_uses(&self) -> Vec<(String, String)> {
        let mut uses = Vec::new();
        for (i, c) in self.checks.iter().enumerate() {
            for (label, t) in c.templates() {
                for name in t.env_names() {
                    uses.push((format!("checks[{i}].{label}"), name.to_string()));
                }
            }
        }
        uses
    }

    /// Checked when the config loads: rules and requests are told apart,
    /// regular expressions, JSON assertions and `${…}` references parse.
    pub fn validate(&self, at: &str) -> Result<(), String> {
        for (i, c) in self.checks.iter().enumerate() {
            let here = format!("{at}.checks[{i}]");
            if c.flow.is_empty() {
                validate_check(&here, c)?;
            } else {
                validate_flow(&here, c)?;
            }
        }
        Ok(())
    }
}

fn validate_check(here: &str, c: &CheckSpec) -> Result<(), String> {
    // `rate_limit` sends the check's request (a login is limited on
    // its POST); the other rules make requests of their own.
    let sends_request = c.rule == Some(Rule::RateLimit);
    if c.rule.is_some() && c.samples.is_some() {
        return Err(format!("{here}: a `rule` check takes no samples"));
    }
    if c.rule.is_some() && !sends_request && (c.body.is_some() || c.method.is_some()) {
        return Err(format!(
            "{here}: only `rate_limit` of the rules takes a body or a method"
        ));
    }
    validate_header_keys(c, here)?;
    if c.path.is_some() && c.url.is_some() {
        return Err(format!("{here}: give `path` or `url`, not both"));
    }
    if let Some(n) = c.samples {
        if !(1..=MAX_SAMPLES).contains(&n) {
            return Err(format!(
                "{here}.samples: expected 1 to {MAX_SAMPLES}, got {n}"
            ));
        }
    }
    if let Some(n) = c.burst {
        if !(1..=MAX_BURST).contains(&n) {
            return Err(format!("{here}.burst: expected 1 to {MAX_BURST}, got {n}"));
        }
    }
    validate_expect(here, &c.expect)?;
    if let Some(v) = &c.min_version {
        if !matches!(v.as_str(), "1.2" | "1.3") {
            return Err(format!(
                "{here}.min_version: expected \"1.2\" or \"1.3\", got \"{v}\""
            ));
        }
    }
    for (label, text) in template_fields(&c.path, &c.url, &c.headers, &c.body) {
        let t = Template::parse(text).map_err(|e| format!("{here}.{label}: {e}"))?;
        if let Some(name) = t.saved_names().next() {
            return Err(format!(
                "{here}.{label}: `${{{name}}}` is a saved value, and only a `flow` step can use one"
            ));
        }
        if c.rule.is_some() && t.env_names().next().is_some() {
            // A burst of logins with a real password would lock the account.
            return Err(format!(
                "{here}.{label}: a `rule` check does not fill in `${{env.…}}`"
            ));
        }
    }
    Ok(())
}

fn validate_expect(here: &str, e: &Expect) -> Result<(), String> {
    if let Some(re) = &e.body_matches {
        regex::Regex::new(re).map_err(|err| format!("{here}.expect.body_matches: {err}"))?;
    }
    for (name, h) in &e.headers {
        if let Some(re) = &h.matches {
            regex::Regex::new(re)
                .map_err(|err| format!("{here}.expect.headers.{name}.matches: {err}"))?;
        }
    }
    for (j, a) in e.json.iter().enumerate() {
        super::jsonpath::Assertion::parse(a)
            .map_err(|err| format!("{here}.expect.json[{j}]: {err}"))?;
    }
    Ok(())
}

/// A flow takes its requests in its steps; each step's references must be
/// to the environment or to a value an earlier step saved.
fn validate_flow(here: &str, c: &CheckSpec) -> Result<(), String> {
    let alone = CheckSpec {
        name: c.name.clone(),
        severity: c.severity,
        flow: c.flow.clone(),
        ..CheckSpec::default()
    };
    if *c != alone {
        return Err(format!(
            "{here}: a `flow` check takes only `name`, `severity` and its steps; put the requests in the steps"
        ));
    }
    let mut saved: Vec<&str> = Vec::new();
    for (i, step) in c.flow.iter().enumerate() {
        let at = format!("{here}.flow[{i}]");
        if step.path.is_some() && step.url.is_some() {
            return Err(format!("{at}: give `path` or `url`, not both"));
        }
        validate_expect(&at, &step.expect)?;
        for (label, text) in template_fields(&step.path, &step.url, &step.headers, &step.body) {
            let t = Template::parse(text).map_err(|e| format!("{at}.{label}: {e}"))?;
            let unsaved = t.saved_names().find(|n| !saved.contains(n));
            if let Some(name) = unsaved {
                return Err(format!(
                    "{at}.{label}: `${{{name}}}` is not saved by an earlier step"
                ));
            }
        }
        for (name, from) in &step.save {
            if !super::template::is_name(name) || name == "env" || name == "totp" {
                return Err(format!(
                    "{at}.save: `{name}` is not a name (letters, digits and `_`, not `env` or `totp`)"
                ));
            }
            SaveFrom::parse(from).map_err(|e| format!("{at}.save.{name}: {e}"))?;
        }
        saved.extend(step.save.keys().map(String::as_str));
    }
    Ok(())
}
