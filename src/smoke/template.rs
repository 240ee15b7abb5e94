//! Values in a check's request: `${env.NAME}` (a secret from the step's
//! environment, never a literal in the repository file), `${totp.NAME}`
//! (the current one-time code of the TOTP secret in `NAME`, for a login
//! with two factors) and `${name}` (a value an earlier step of the flow
//! saved). Every such value is a secret:
//! [`Vars::redact`] takes them out of whatever a result says.

use std::collections::BTreeMap;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Env(String),
    /// The current code of the base32 TOTP secret in this variable.
    Totp(String),
    Saved(String),
}

/// A request field with its `${…}` references, parsed when the config loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Template {
    /// `$${` writes a literal `${`; any other `${` must be a well-formed
    /// reference.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("${") {
            if rest[..at].ends_with('$') {
                literal.push_str(&rest[..at - 1]);
                literal.push_str("${");
                rest = &rest[at + 2..];
                continue;
            }
            literal.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("`${{` without its closing `}}` in `{text}`"))?;
            let inner = after[..end].trim();
            let part = match (inner.strip_prefix("env."), inner.strip_prefix("totp.")) {
                (Some(name), _) if is_name(name) => Part::Env(name.to_string()),
                (_, Some(name)) if is_name(name) => Part::Totp(name.to_string()),
                (None, None) if is_name(inner) && !RESERVED.contains(&inner) => {
                    Part::Saved(inner.to_string())
                }
                _ => {
                    return Err(format!(
                        "`${{{inner}}}` is not `${{env.NAME}}`, `${{totp.NAME}}` or the name of a saved value"
                    ))
                }
            };
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(part);
            rest = &after[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template(parts))
    }

    /// The environment variables it uses (`${env.NAME}`, `${totp.NAME}`).
    pub fn env_names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Env(n) | Part::Totp(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// The saved values it uses.
    pub fn saved_names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Saved(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// The text with every reference filled in, or the reference that has
    /// no value.
    pub fn render(&self, vars: &Vars) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Env(n) => out.push_str(
                    vars.env
                        .get(n)
                        .ok_or_else(|| format!("`${{env.{n}}}` is not set"))?,
                ),
                Part::Totp(n) => {
                    let secret = vars
                        .env
                        .get(n)
                        .ok_or_else(|| format!("`${{totp.{n}}}` is not set"))?;
                    out.push_str(&totp_now(secret).map_err(|e| format!("`${{totp.{n}}}`: {e}"))?);
                }
                Part::Saved(n) => out.push_str(
                    vars.saved
                        .get(n)
                        .ok_or_else(|| format!("`${{{n}}}` was not saved"))?,
                ),
            }
        }
        Ok(out)
    }
}

/// Names a saved value may not take: they start the other references.
const RESERVED: &[&str] = &["env", "totp"];

/// The current 6-digit code (RFC 6238: SHA-1, 30-second steps) of a base32
/// secret as authenticator apps take it (spaces, lower case and padding
/// allowed).
fn totp_now(secret: &str) -> Result<String, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| format!("the clock is before 1970: {e}"))?;
    totp_at(secret, now.as_secs())
}

fn totp_at(secret: &str, unix_secs: u64) -> Result<String, String> {
    let cleaned: String = secret
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bytes = totp_rs::Secret::Encoded(cleaned)
        .to_bytes()
        .map_err(|_| "the variable does not hold a base32 TOTP secret".to_string())?;
    // Unchecked: apps commonly issue 80-bit secrets, under RFC 4226's 128.
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes);
    Ok(totp.generate(unix_secs))
}

/// The values a run may fill in: the environment the caller handed over
/// (the Action's step environment; the server holds none) and what a flow
/// saved. Debug output names them and never shows a value.
#[derive(Clone, Default)]
pub struct Vars {
    env: BTreeMap<String, String>,
    saved: BTreeMap<String, String>,
}

impl std::fmt::Debug for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vars")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("saved", &self.saved.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The values a run filled in, for the Action to mask; never serialized,
/// and its Debug output shows only how many there are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.0.len())
    }
}

impl Secrets {
    pub fn values(&self) -> &[String] {
        &self.0
    }

    pub(crate) fn extend(&mut self, vars: &Vars) {
        for v in vars.secrets() {
            if !self.0.iter().any(|k| k == v) {
                self.0.push(v.to_string());
            }
        }
    }
}

/// Values shorter than this are not redacted: a `1` or `ok` would mangle
/// every message, and no credential is that short.
const MIN_REDACTED_LEN: usize = 3;

impl Vars {
    pub fn with_env(env: BTreeMap<String, String>) -> Vars {
        Vars {
            env,
            saved: BTreeMap::new(),
        }
    }

    pub fn save(&mut self, name: &str, value: String) {
        self.saved.insert(name.to_string(), value);
    }

    /// Every value that must never be shown, longest first (so a value
    /// that contains another is replaced whole).
    pub fn secrets(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .env
            .values()
            .chain(self.saved.values())
            .map(String::as_str)
            .filter(|v| v.len() >= MIN_REDACTED_LEN)
            .collect();
        all.sort_by_key(|v| std::cmp::Reverse(v.len()));
        all.dedup();
        all
    }

    /// `text` with every secret value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets() {
            if out.contains(s) {
                out = out.replace(s, "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::with_env(BTreeMap::from([("PASSWORD".into(), "hunter2!".into())]));
        v.save("token", "tok-abc123".into());
        v
    }

    #[test]
    fn references_are_filled_in_and_escapes_kept() {
        let t = Template::parse(r#"{"p":"${env.PASSWORD}","t":"${ token }","x":"$${env.NOT}"}"#)
            .unwrap();
        assert_eq!(
            t.render(&vars()).unwrap(),
            r#"{"p":"hunter2!","t":"tok-abc123","x":"${env.NOT}"}"#
        );
        assert_eq!(t.env_names().collect::<Vec<_>>(), ["PASSWORD"]);
        assert_eq!(t.saved_names().collect::<Vec<_>>(), ["token"]);
        assert_eq!(
            Template::parse("plain")
                .unwrap()
                .render(&Vars::default())
                .unwrap(),
            "plain"
        );
    }

    #[test]
    fn malformed_references_are_refused_naming_them() {
        for (text, says) in [
            ("${env.}", "`${env.}`"),
            ("${env.A-B}", "`${env.A-B}`"),
            ("${1x}", "`${1x}`"),
            ("${env}", "`${env}`"),
            ("${totp}", "`${totp}`"),
            ("Bearer ${token", "closing"),
        ] {
            let e = Template::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn totp_codes_follow_rfc_6238_and_take_secrets_as_apps_show_them() {
        // RFC 6238's SHA-1 vector: "12345678901234567890" at 59 s → 94287082.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(totp_at(secret, 59).unwrap(), "287082");
        assert_eq!(
            totp_at("gezd gnbv gy3t qojq gezd gnbv gy3t qojq==", 59).unwrap(),
            "287082"
        );
        assert!(totp_at("not base32!", 59).unwrap_err().contains("base32"));
        let t = Template::parse("${totp.OTP_SECRET}").unwrap();
        assert_eq!(t.env_names().collect::<Vec<_>>(), ["OTP_SECRET"]);
        let vars = Vars::with_env(BTreeMap::from([("OTP_SECRET".into(), secret.into())]));
        let code = t.render(&vars).unwrap();
        assert!(
            code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
            "{code}"
        );
        assert_eq!(
            t.render(&Vars::default()).unwrap_err(),
            "`${totp.OTP_SECRET}` is not set"
        );
    }

    #[test]
    fn a_missing_value_names_its_reference() {
        let e = Template::parse("${env.OTHER}")
            .unwrap()
            .render(&vars())
            .unwrap_err();
        assert_eq!(e, "`${env.OTHER}` is not set");
        let e = Template::parse("${id}")
            .unwrap()
            .render(&vars())
            .unwrap_err();
        assert_eq!(e, "`${id}` was not saved");
    }

    #[test]
    fn redaction_removes_every_value_and_debug_shows_none() {
        let v = vars();
        assert_eq!(
            v.redact("got tok-abc123 for hunter2! (tok-abc123)"),
            "got *** for *** (***)"
        );
        let debug = format!("{v:?}");
        assert!(
            debug.contains("PASSWORD") && !debug.contains("hunter2"),
            "{debug}"
        );
    }
}
