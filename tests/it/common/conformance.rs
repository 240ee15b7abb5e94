//! The GitHub REST API conformance run (`conformance/run.sh`): with
//! `SHIPGATE_CONFORMANCE_PRISM` set, every fake GitHub sits behind prism,
//! which validates each request and response against GitHub's published
//! OpenAPI description (`@octokit/openapi`, pinned in `conformance/`).
//!
//! One prism serves the whole run; each fake gets a front on its own port
//! (what `FakeGitHub::url` then returns). The front sends each request to
//! prism with an `x-shipgate-fake` header naming the fake's port; prism
//! forwards it to `conformance/dispatch.js`, which hands it to that fake.
//! Prism reports what it found in the `sl-violations` response header; the
//! front takes it off, drops allowlisted entries, and reports the rest to the
//! fake, whose `assert_no_unexpected` fails the test naming method, path and
//! violation. Every request is also logged for the run's summary.

#![allow(dead_code)]

use std::io::Write;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

/// prism's address; conformance mode is on when it is set.
pub const PRISM_ENV: &str = "SHIPGATE_CONFORMANCE_PRISM";
/// A file that gets one JSON line per request validated.
pub const LOG_ENV: &str = "SHIPGATE_CONFORMANCE_LOG";

pub fn prism_url() -> Option<String> {
    std::env::var(PRISM_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .map(|u| u.trim_end_matches('/').to_string())
}

/// A violation prism reports that is prism's or the description's mistake,
/// not shipgate's or the fake's. Each entry matches one method, one path
/// shape and one message, and says why it is allowed.
struct Allowed {
    /// `*` matches any method.
    method: &'static str,
    /// Path segments; `*` matches any one segment; an empty list any path.
    path: &'static [&'static str],
    /// A substring of the violation as formatted by `format_violation`.
    violation: &'static str,
    status: Option<u16>,
    /// Only on answers a test injected with a fault knob (`fail_next`,
    /// `rate_limit_next`).
    injected: bool,
    /// Only where the answer's value at the violation's location is `""`.
    empty_only: bool,
    reason: &'static str,
}

const ALLOWED: &[Allowed] = &[
    Allowed {
        method: "*",
        path: &["repos", "*", "*", "deployments", "*", "statuses"],
        violation: "must match format \"uri\"",
        status: None,
        injected: false,
        empty_only: true,
        reason: "GitHub sends \"\" for a deployment status's target_url, environment_url and log_url when none was set; the description says uri",
    },
    Allowed {
        method: "PUT",
        path: &["repos", "*", "*", "branches", "*", "protection"],
        violation: "request.body.required_status_checks: Request body property required_status_checks must have required property 'contexts'",
        status: None,
        injected: false,
        empty_only: false,
        reason: "GitHub takes `checks` alone and refuses it together with the deprecated `contexts` (422, oneOf), yet the description requires `contexts`",
    },
    Allowed {
        method: "*",
        path: &[],
        violation: "response: Unable to match the returned status code",
        status: None,
        injected: true,
        empty_only: false,
        reason: "GitHub can answer any endpoint with 5xx, a rate limit or a permission error; the description lists them for few endpoints",
    },
];

fn allowed(
    method: &str,
    path: &str,
    status: u16,
    injected: bool,
    body: &Value,
    violation: &str,
) -> Option<&'static str> {
    let segments = prism_segments(path);
    ALLOWED
        .iter()
        .find(|a| {
            (a.method == "*" || a.method == method)
                && a.status.is_none_or(|s| s == status)
                && (!a.injected || injected)
                && (!a.empty_only || value_at(body, violation) == Some(&json!("")))
                && (a.path.is_empty()
                    || (a.path.len() == segments.len()
                        && a.path
                            .iter()
                            .zip(&segments)
                            .all(|(p, s)| *p == "*" || p == s)))
                && violation.contains(a.violation)
        })
        .map(|a| a.reason)
}

/// The path's segments as prism should see them. prism matches each
/// `{param}` against one segment, but GitHub's contents `{path}` spans
/// segments (`/repos/o/r/contents/.github/shipgate.yml`): its slashes are
/// sent to prism as `%2F`, which prism decodes into the one parameter. The
/// fake still gets the path as shipgate sent it (`x-shipgate-path`).
fn prism_segments(path: &str) -> Vec<String> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["repos", owner, repo, "contents", rest @ ..] if rest.len() > 1 => {
            vec![
                "repos".into(),
                owner.to_string(),
                repo.to_string(),
                "contents".into(),
                rest.join("%2F"),
            ]
        }
        _ => segments.iter().map(|s| s.to_string()).collect(),
    }
}

/// The answer's value where a violation points (`[Error] response.body.0.log_url: …`).
fn value_at<'a>(body: &'a Value, violation: &str) -> Option<&'a Value> {
    let location = violation.split_once("] ")?.1.split_once(": ")?.0;
    let mut at = body;
    for key in location.strip_prefix("response.body.")?.split('.') {
        at = match key.parse::<usize>() {
            Ok(i) if at.is_array() => at.get(i)?,
            _ => at.get(key)?,
        };
    }
    Some(at)
}

/// Answers of the fake that a test injected carry this header (the front
/// takes it off).
pub const INJECTED_HEADER: &str = "x-shipgate-injected-fault";

/// What prism made of one request and its response.
#[derive(Debug, Clone)]
pub struct Checked {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub violations: Vec<String>,
    /// Allowlisted violations, with the reason.
    pub allowed: Vec<String>,
}

impl Checked {
    /// Appends this request to the run's log (see `conformance/summary.js`).
    /// `expected`: the test provokes violations on purpose.
    pub fn log(&self, expected: bool) {
        let Ok(path) = std::env::var(LOG_ENV) else {
            return;
        };
        let mut line = json!({
            "method": self.method, "path": self.path, "status": self.status,
            "violations": self.violations, "allowed": self.allowed, "expected": expected,
        })
        .to_string();
        line.push('\n');
        // One write per line on an O_APPEND file: lines of concurrent tests
        // and test binaries do not interleave.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("conformance log {path}: {e}"));
        f.write_all(line.as_bytes()).unwrap();
    }
}

type Report = Arc<dyn Fn(Checked) + Send + Sync>;

#[derive(Clone)]
struct Front {
    prism: String,
    fake_port: u16,
    http: reqwest::Client,
    report: Report,
}

/// Serves the front of the fake on `fake_port` on `listener`.
pub fn serve_front(
    listener: tokio::net::TcpListener,
    prism: String,
    fake_port: u16,
    report: impl Fn(Checked) + Send + Sync + 'static,
) {
    let front = Front {
        prism,
        fake_port,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        report: Arc::new(report),
    };
    let app = Router::new().fallback(forward).with_state(front);
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
}

/// Headers that belong to one connection, not to the request or response.
fn hop_by_hop(name: &HeaderName) -> bool {
    name == header::HOST
        || name == header::CONNECTION
        || name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name.as_str() == "keep-alive"
}

async fn forward(
    State(front): State<Front>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let original = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let target = format!(
        "{}/{}{}",
        front.prism,
        prism_segments(&path).join("/"),
        uri.query().map(|q| format!("?{q}")).unwrap_or_default()
    );
    let mut req = front.http.request(method.clone(), target);
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            req = req.header(name, value);
        }
    }
    req = req
        .header("x-shipgate-fake", front.fake_port.to_string())
        .header("x-shipgate-path", original)
        .body(body);
    let mut checked = Checked {
        method: method.to_string(),
        path,
        status: 0,
        violations: Vec::new(),
        allowed: Vec::new(),
    };
    let answer = match req.send().await {
        Ok(a) => a,
        Err(e) => {
            checked.status = 502;
            checked
                .violations
                .push(format!("prism did not answer: {e}"));
            (front.report)(checked);
            return (
                StatusCode::BAD_GATEWAY,
                format!("prism did not answer: {e}"),
            )
                .into_response();
        }
    };
    let status = answer.status();
    checked.status = status.as_u16();
    let mut out = HeaderMap::new();
    let mut found = Vec::new();
    let mut injected = false;
    for (name, value) in answer.headers() {
        if name.as_str() == INJECTED_HEADER {
            injected = true;
        } else if name.as_str() == "sl-violations" {
            found = parse_violations(value.to_str().unwrap_or("unreadable sl-violations header"));
        } else if !hop_by_hop(name) && !name.as_str().starts_with("access-control-") {
            out.append(name, value.clone());
        }
    }
    let body = match answer.bytes().await {
        Ok(b) => b,
        Err(e) => {
            found.push(format!("reading prism's answer: {e}"));
            Bytes::new()
        }
    };
    if status.as_u16() >= 500
        && out
            .get("content-type")
            .is_some_and(|c| c == "application/problem+json")
    {
        // prism's own error (e.g. it could not reach the dispatcher).
        found.push(format!("prism error: {}", String::from_utf8_lossy(&body)));
    }
    let answer_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    for v in found {
        match allowed(
            &checked.method,
            &checked.path,
            checked.status,
            injected,
            &answer_json,
            &v,
        ) {
            Some(reason) => checked.allowed.push(format!("{v} (allowed: {reason})")),
            None => checked.violations.push(v),
        }
    }
    (front.report)(checked);
    let mut resp = (status, body).into_response();
    *resp.headers_mut() = out;
    resp
}

/// prism's `sl-violations`: a JSON array of `{location, message, severity}`,
/// or "Too many violations! " and a cut-off array.
fn parse_violations(header: &str) -> Vec<String> {
    if let Ok(list) = serde_json::from_str::<Vec<Value>>(header) {
        return list.iter().map(format_violation).collect();
    }
    // Cut off: read the whole entries before the cut.
    let entry =
        regex::Regex::new(r#"\{"location":\[[^\]]*\](?:,"[a-z]+":(?:"(?:[^"\\]|\\.)*"|\d+))*\}"#)
            .unwrap();
    let mut found: Vec<String> = entry
        .find_iter(header)
        .filter_map(|m| serde_json::from_str::<Value>(m.as_str()).ok())
        .map(|v| format_violation(&v))
        .collect();
    found.push(format!(
        "(prism cut its sl-violations header at {} characters: more violations may follow)",
        header.len()
    ));
    found
}

fn format_violation(v: &Value) -> String {
    let location = v["location"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|s| {
                    s.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| s.to_string())
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_default();
    let severity = v["severity"].as_str().unwrap_or("");
    format!(
        "[{severity}] {location}: {}",
        v["message"].as_str().unwrap_or("")
    )
}
