//! JSON assertions for smoke checks: `$.a.b[0] == "x"`, `$.n > 3`,
//! `$.tags contains "v2"`, `$.v matches "^1\."`, `$.id exists`, `$.err !exists`.
//!
//! Paths are the dotted/indexed subset of JSONPath that health endpoints need.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone)]
enum Op {
    Eq(Value),
    Ne(Value),
    Gt(f64),
    Lt(f64),
    Ge(f64),
    Le(f64),
    Contains(Value),
    Matches(regex::Regex),
    Exists,
    Absent,
}

#[derive(Debug, Clone)]
pub struct Assertion {
    text: String,
    path: Vec<Segment>,
    op: Op,
}

fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| format!("a path starts with `$`, got `{path}`"))?;
    let mut segs = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    key.push(n);
                    chars.next();
                }
                if key.is_empty() {
                    return Err(format!("empty key in `{path}`"));
                }
                segs.push(Segment::Key(key));
            }
            '[' => {
                let mut inner = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    inner.push(n);
                }
                let inner = inner.trim();
                if let Ok(i) = inner.parse::<usize>() {
                    segs.push(Segment::Index(i));
                } else if let Some(k) = inner
                    .strip_prefix('"')
                    .and_then(|k| k.strip_suffix('"'))
                    .or_else(|| inner.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')))
                {
                    segs.push(Segment::Key(k.to_string()));
                } else {
                    return Err(format!("expected [N] or [\"key\"] in `{path}`"));
                }
            }
            other => return Err(format!("unexpected `{other}` in `{path}`")),
        }
    }
    Ok(segs)
}

fn select<'a>(path: &[Segment], mut v: &'a Value) -> Option<&'a Value> {
    for seg in path {
        v = match seg {
            Segment::Key(k) => v.get(k)?,
            Segment::Index(i) => v.get(*i)?,
        };
    }
    Some(v)
}

/// A path alone (`$.access_token`, `$.data[0].id`): what a flow step's
/// `save:` reads from a JSON answer.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(Vec<Segment>);

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        parse_path(text.trim()).map(JsonPath)
    }

    /// The value at the path; `None` when nothing is there (a JSON `null`
    /// counts as nothing: it is no token to send on).
    pub fn select<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        select(&self.0, doc).filter(|v| !v.is_null())
    }
}

fn literal(text: &str) -> Value {
    // A JSON literal, or else the bare text as a string.
    serde_json::from_str(text.trim()).unwrap_or_else(|_| Value::String(text.trim().to_string()))
}

fn number(text: &str) -> Result<f64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("expected a number, got `{}`", text.trim()))
}

impl Assertion {
    pub fn parse(text: &str) -> Result<Assertion, String> {
        let t = text.trim();
        let (path, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        let rest = rest.trim();
        let (op, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let op = match op {
            "==" => Op::Eq(literal(arg)),
            "!=" => Op::Ne(literal(arg)),
            ">" => Op::Gt(number(arg)?),
            "<" => Op::Lt(number(arg)?),
            ">=" => Op::Ge(number(arg)?),
            "<=" => Op::Le(number(arg)?),
            "contains" => Op::Contains(literal(arg)),
            "matches" => {
                let pattern = match literal(arg) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                Op::Matches(regex::Regex::new(&pattern).map_err(|e| e.to_string())?)
            }
            "exists" if arg.is_empty() => Op::Exists,
            "!exists" if arg.is_empty() => Op::Absent,
            "" => return Err(format!("`{t}` has no operator (==, !=, <, >, <=, >=, contains, matches, exists, !exists)")),
            other => return Err(format!("unknown operator `{other}` (==, !=, <, >, <=, >=, contains, matches, exists, !exists)")),
        };
        Ok(Assertion {
            text: t.to_string(),
            path: parse_path(path)?,
            op,
        })
    }

    fn select<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        select(&self.path, v)
    }

    /// `Ok(())` when it holds, else the reason.
    pub fn check(&self, doc: &Value) -> Result<(), String> {
        let found = self.select(doc);
        let show = |v: &Value| {
            let s = v.to_string();
            if s.len() > 80 {
                format!(
                    "{}…",
                    &s[..s.char_indices().take(80).last().map_or(0, |(i, _)| i)]
                )
            } else {
                s
            }
        };
        let fail = |why: String| Err(format!("`{}`: {why}", self.text));
        match (&self.op, found) {
            (Op::Absent, None) => Ok(()),
            (Op::Absent, Some(v)) => fail(format!("present ({})", show(v))),
            (_, None) => fail("not found".into()),
            (Op::Exists, Some(_)) => Ok(()),
            (Op::Eq(want), Some(v)) => {
                if v == want {
                    Ok(())
                } else {
                    fail(format!("got {}", show(v)))
                }
            }
            (Op::Ne(want), Some(v)) => {
                if v != want {
                    Ok(())
                } else {
                    fail(format!("got {}", show(v)))
                }
            }
            (Op::Gt(n) | Op::Lt(n) | Op::Ge(n) | Op::Le(n), Some(v)) => {
                let Some(x) = v.as_f64() else {
                    return fail(format!("not a number: {}", show(v)));
                };
                let ok = match self.op {
                    Op::Gt(_) => x > *n,
                    Op::Lt(_) => x < *n,
                    Op::Ge(_) => x >= *n,
                    _ => x <= *n,
                };
                if ok {
                    Ok(())
                } else {
                    fail(format!("got {x}"))
                }
            }
            (Op::Contains(want), Some(v)) => {
                let ok = match (v, want) {
                    (Value::String(s), Value::String(w)) => s.contains(w.as_str()),
                    (Value::Array(items), w) => items.contains(w),
                    (Value::Object(map), Value::String(k)) => map.contains_key(k),
                    _ => false,
                };
                if ok {
                    Ok(())
                } else {
                    fail(format!("got {}", show(v)))
                }
            }
            (Op::Matches(re), Some(v)) => {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if re.is_match(&s) {
                    Ok(())
                } else {
                    fail(format!("got {}", show(v)))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(expr: &str, doc: &Value) -> Result<(), String> {
        Assertion::parse(expr).unwrap().check(doc)
    }

    #[test]
    fn every_operator() {
        let doc = json!({"status": "healthy", "checks": {"db": {"latency_ms": 12}}, "tags": ["v2", "eu"], "version": "1.4.2", "items": [{"id": 7}]});
        assert_eq!(check("$.status == \"healthy\"", &doc), Ok(()));
        assert_eq!(
            check("$.status == healthy", &doc),
            Ok(()),
            "bare strings are strings"
        );
        assert_eq!(check("$.status != \"down\"", &doc), Ok(()));
        assert_eq!(check("$.checks.db.latency_ms < 50", &doc), Ok(()));
        assert_eq!(check("$.checks.db.latency_ms >= 12", &doc), Ok(()));
        assert_eq!(check("$.tags contains \"v2\"", &doc), Ok(()));
        assert_eq!(check("$.version matches \"^1\\\\.\"", &doc), Ok(()));
        assert_eq!(check("$.items[0].id == 7", &doc), Ok(()));
        assert_eq!(check("$[\"status\"] exists", &doc), Ok(()));
        assert_eq!(check("$.error !exists", &doc), Ok(()));
    }

    #[test]
    fn failures_say_what_was_found() {
        let doc = json!({"status": "degraded", "n": "x"});
        assert_eq!(
            check("$.status == \"healthy\"", &doc),
            Err("`$.status == \"healthy\"`: got \"degraded\"".into())
        );
        assert_eq!(
            check("$.missing exists", &doc),
            Err("`$.missing exists`: not found".into())
        );
        assert_eq!(
            check("$.n > 1", &doc),
            Err("`$.n > 1`: not a number: \"x\"".into())
        );
        assert_eq!(
            check("$.status !exists", &doc),
            Err("`$.status !exists`: present (\"degraded\")".into())
        );
    }

    #[test]
    fn bad_assertions_are_refused_at_load() {
        assert!(Assertion::parse("status == 1")
            .unwrap_err()
            .contains("starts with `$`"));
        assert!(Assertion::parse("$.a ~= 1")
            .unwrap_err()
            .contains("unknown operator `~=`"));
        assert!(Assertion::parse("$.a > many")
            .unwrap_err()
            .contains("expected a number"));
        assert!(Assertion::parse("$.a").unwrap_err().contains("no operator"));
        assert!(Assertion::parse("$.a matches \"(\"").is_err());
    }
}
