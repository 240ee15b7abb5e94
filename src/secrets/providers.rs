//! Rules for the providers small web teams hold keys of: AI APIs (OpenAI,
//! Anthropic), payments (MercadoPago), hosting (Vercel, Railway, Supabase),
//! error tracking (Sentry), messaging (Twilio, Mailgun), Google service
//! accounts, and JWT signing secrets in env files. Stripe, SendGrid, Twilio
//! API keys, Google API keys and JWTs themselves are in `rules.rs`.
//!
//! Each rule's shape follows the provider's published format; where a
//! token has no prefix of its own (Railway's UUIDs, Vercel's older 24
//! characters, Twilio's auth token), the rule asks for the provider's name
//! in the key it is assigned to, and that name is the keyword.

use std::sync::LazyLock;

use base64::Engine;
use regex::bytes::Regex as BytesRegex;

use super::rule::{rule, Check, Rule};

/// The id and description of a Supabase service-role key (a JWT whose
/// payload says `"role":"service_role"`).
pub(super) const SUPABASE_SERVICE_ROLE: (&str, &str) =
    ("supabase-service-role-key", "Supabase service-role key");

/// `KEY = value`, `KEY: "value"`, `"key": "value"`, `key => 'value'`:
/// the end of a key, an assignment, and an optional quote.
const ASSIGN: &str = r#"["'`]?\s*(?:=>|:=|=|:)\s*["'`]?"#;

/// `.env`, `.env.local`, `production.env`: files of `KEY=value` lines.
fn env_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    name.starts_with(".env") || name.ends_with(".env")
}

pub(super) fn provider_rules() -> Vec<Rule> {
    let mut rules = prefixed_rules();
    rules.extend(keyed_rules());
    rules
}

/// Tokens with a prefix of their own.
fn prefixed_rules() -> Vec<Rule> {
    vec![
        rule(
            "openai-api-key",
            "OpenAI API key",
            // Project, service-account and admin keys (`sk-proj-…`), and
            // the legacy `sk-` + 48 with `T3BlbkFJ` ("OpenAI" in base64) inside.
            r"\b(?P<s>sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})(?:[^A-Za-z0-9_\-]|$)",
            &["sk-proj-", "sk-svcacct-", "sk-admin-", "T3BlbkFJ"],
            true,
            3.5,
            &[],
            Check::None,
        ),
        rule(
            "anthropic-api-key",
            "Anthropic API key",
            r"\b(?P<s>sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_\-]{80,120})(?:[^A-Za-z0-9_\-]|$)",
            &["sk-ant-"],
            true,
            3.5,
            &[],
            Check::None,
        ),
        rule(
            "mercadopago-access-token",
            "MercadoPago access token",
            // `APP_USR-<app id>-<date>-<32 hex>-<user id>`; the public key
            // (`APP_USR-` and a UUID) is meant for the browser.
            r"\b(?P<s>APP_USR-[0-9]{10,20}-[0-9]{6}-[0-9a-f]{32}-[0-9]{6,12})\b",
            &["APP_USR-"],
            true,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "supabase-secret-key",
            "Supabase secret key",
            // `sb_secret_…`; `sb_publishable_…` is public.
            r"\b(?P<s>sb_secret_[A-Za-z0-9_\-]{20,})",
            &["sb_secret_"],
            true,
            3.5,
            &[],
            Check::None,
        ),
        rule(
            "sentry-dsn-secret",
            "Sentry DSN with a secret key",
            // The legacy `https://<public>:<secret>@host/<project>` form; a
            // DSN with the public key only is meant to ship to browsers.
            r"(?i)\bhttps?://[0-9a-f]{32}:(?P<s>[0-9a-f]{32})@[a-z0-9.\-]+(?::[0-9]+)?/(?:[a-z0-9_.\-]+/)*[0-9]+",
            &["sentry"],
            false,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "sentry-auth-token",
            "Sentry auth token",
            r"\b(?P<s>sntry[su]_[A-Za-z0-9+/=_\-]{40,})",
            &["sntrys_", "sntryu_"],
            true,
            3.5,
            &[],
            Check::None,
        ),
        rule(
            "vercel-token",
            "Vercel token",
            // Personal, integration, app access and refresh tokens, API keys.
            r"\b(?P<s>vc[pirak]_[A-Za-z0-9_\-]{24,})(?:[^A-Za-z0-9_\-]|$)",
            &["vcp_", "vci_", "vca_", "vcr_", "vck_"],
            true,
            3.5,
            &[],
            Check::None,
        ),
    ]
}

/// Values known by the key they are assigned to, the line they are on, or
/// the file they are in.
fn keyed_rules() -> Vec<Rule> {
    vec![
        rule(
            "vercel-token",
            "Vercel token",
            // The older 24 characters without a prefix, assigned to a key
            // that names Vercel.
            &format!(
                r"(?i)vercel[a-z0-9_.\-]*(?:token|key){ASSIGN}(?P<s>[A-Za-z0-9]{{24}})(?:[^A-Za-z0-9_\-]|$)"
            ),
            &["vercel"],
            false,
            3.3,
            &[],
            Check::Placeholder,
        ),
        rule(
            "railway-token",
            "Railway token",
            // Account, team and project tokens are UUIDs: only assigned to a
            // key naming a Railway token (a project id is not one).
            &format!(
                r"(?i)railway[a-z0-9_.\-]*token{ASSIGN}(?P<s>[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}})\b"
            ),
            &["railway"],
            false,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "twilio-auth-token",
            "Twilio auth token",
            &format!(
                r"(?i)twilio[a-z0-9_.\-]*(?:auth[_\-]?token|secret){ASSIGN}(?P<s>[0-9a-f]{{32}})\b"
            ),
            &["twilio"],
            false,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "mailgun-api-key",
            "Mailgun API key",
            // `key-` + 32 hex (older) or 32-8-8 hex, on a line naming Mailgun;
            // `pubkey-…` (the validation key) is public.
            r"(?i)(?:^|[^a-z0-9_\-])(?P<s>key-[0-9a-f]{32}|[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8})\b",
            &["mailgun"],
            false,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "gcp-service-account-key",
            "Google service account key",
            // Firebase Admin and Google Cloud service-account JSON: the key
            // is one JSON string with `\n` escapes.
            r#""private_key"\s*:\s*"-----BEGIN (?:RSA )?PRIVATE KEY-----\\n(?P<s>[A-Za-z0-9+/=]{40,})"#,
            &["private_key"],
            false,
            0.0,
            &[],
            Check::ServiceAccount,
        ),
        Rule {
            only_in: Some(env_file),
            ..rule(
                "jwt-signing-secret",
                "JWT signing secret",
                r#"(?i)^\s*(?:export\s+)?[a-z0-9_.\-]*jwt[a-z0-9_.\-]*(?:secret|key)[a-z0-9_]*\s*[=:]\s*["']?(?P<s>[^\s"'#]{16,})["']?\s*(?:#.*)?$"#,
                &["jwt"],
                false,
                3.0,
                &[],
                Check::Placeholder,
            )
        },
    ]
}

/// What a JWT's payload says it is for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum JwtKind {
    /// `"role":"anon"`: Supabase's anon key, meant for the browser.
    Public,
    /// `"role":"service_role"`: bypasses row-level security.
    ServiceRole,
    Other,
}

/// Reads the `role` claim of a JWT's payload (base64url JSON).
pub(super) fn jwt_kind(token: &str) -> JwtKind {
    let Some(payload) = token.split('.').nth(1) else {
        return JwtKind::Other;
    };
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Ok(json) = engine.decode(payload.trim_end_matches('=')) else {
        return JwtKind::Other;
    };
    let role = serde_json::from_slice::<serde_json::Value>(&json)
        .ok()
        .and_then(|v| v.get("role").and_then(|r| r.as_str()).map(str::to_string));
    match role.as_deref() {
        Some("anon") => JwtKind::Public,
        Some("service_role") => JwtKind::ServiceRole,
        _ => JwtKind::Other,
    }
}

static SERVICE_ACCOUNT: LazyLock<BytesRegex> = LazyLock::new(|| {
    BytesRegex::new(r#""type"\s*:\s*"service_account""#).expect("service account regex")
});

/// The file (or the lines of it a diff adds) says it is a service account.
pub(super) fn is_service_account(data: &[u8]) -> bool {
    SERVICE_ACCOUNT.is_match(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.{}",
            e.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            e.encode(payload),
            "x".repeat(43)
        )
    }

    #[test]
    fn jwt_roles() {
        let anon = jwt(r#"{"iss":"supabase","ref":"abcd","role":"anon","iat":1}"#);
        assert_eq!(jwt_kind(&anon), JwtKind::Public);
        let service = jwt(r#"{"iss":"supabase","role":"service_role"}"#);
        assert_eq!(jwt_kind(&service), JwtKind::ServiceRole);
        assert_eq!(jwt_kind(&jwt(r#"{"sub":"1"}"#)), JwtKind::Other);
        assert_eq!(jwt_kind("eyJ.not base64.x"), JwtKind::Other);
        assert_eq!(jwt_kind("no-dots"), JwtKind::Other);
    }

    #[test]
    fn env_files() {
        for p in [".env", "app/.env.local", "prod.env", ".env.example"] {
            assert!(env_file(p), "{p}");
        }
        for p in ["src/env.ts", "environment.yml", "config/jwt.js"] {
            assert!(!env_file(p), "{p}");
        }
    }
}
