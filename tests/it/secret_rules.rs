//! Provider secret rules (issue 20, item 2) and a repository's own rules,
//! `secrets.rules` (item 3): each provider rule with true and false
//! examples, custom rules validated when the configuration is read, scanned
//! and reported like the built-in ones, and in a pull request added to the
//! base's but never taking them away.
//!
//! Every fake secret is assembled at run time, so this file holds no
//! realistic key (the repository's own secrets scan and GitHub push
//! protection stay quiet).

use serde_json::json;
use shipgate::config::repo::RepoConfig;
use shipgate::render::secrets::sarif;
use shipgate::secrets::{scan_text, scan_tree, CustomRule, Finding, ScanOptions, ScanReport};

use crate::action::{fake_token, pr_checkout, run_in, stderr, stdout, Step};
use crate::common;

fn findings(path: &str, text: &str) -> Vec<Finding> {
    scan_text(path, text, &ScanOptions::default())
}

/// Exactly one finding of `rule`, and its secret is `secret`.
fn flags(path: &str, text: &str, rule: &str, secret: &str) -> Finding {
    let found = findings(path, text);
    let hits: Vec<&Finding> = found.iter().filter(|f| f.rule == rule).collect();
    assert_eq!(hits.len(), 1, "{rule} in {text:?}: {found:?}");
    assert_eq!(hits[0].secret, secret, "{rule}");
    assert!(
        !hits[0].redacted.contains(&secret[6..]),
        "redaction leaks: {}",
        hits[0].redacted
    );
    assert_eq!(found.len(), 1, "one finding only: {found:?}");
    hits[0].clone()
}

fn clean(path: &str, text: &str) {
    let found = findings(path, text);
    assert!(found.is_empty(), "expected nothing in {text:?}: {found:?}");
}

/// Random characters from `alphabet`, the same for the same seed.
fn rand_from(alphabet: &[u8], n: usize, seed: u64) -> String {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % alphabet.len() as u64) as usize] as char
        })
        .collect()
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn alnum(n: usize, seed: u64) -> String {
    rand_from(ALNUM, n, seed)
}

fn hex(n: usize, seed: u64) -> String {
    rand_from(b"0123456789abcdef", n, seed)
}

fn digits(n: usize, seed: u64) -> String {
    rand_from(b"123456789", n, seed)
}

fn uuid(seed: u64) -> String {
    let h = hex(32, seed);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

// ---------------------------------------------------------------- providers

#[test]
fn openai_project_and_legacy_keys() {
    let marker = format!("{}{}", "T3Blbk", "FJ");
    let project = format!("sk-{}-{}{marker}{}", "proj", alnum(74, 1), alnum(74, 2));
    flags(
        ".env",
        &format!("OPENAI_API_KEY={project}\n"),
        "openai-api-key",
        &project,
    );
    let service = format!("sk-{}-{}", "svcacct", alnum(60, 3));
    flags(
        "app.py",
        &format!("client = OpenAI(api_key=\"{service}\")\n"),
        "openai-api-key",
        &service,
    );
    let legacy = format!("sk-{}{marker}{}", alnum(20, 4), alnum(20, 5));
    flags(
        "bot.js",
        &format!("const openai = new OpenAI({{ apiKey: '{legacy}' }});\n"),
        "openai-api-key",
        &legacy,
    );
    // A placeholder, a short fragment, and `sk-` + 48 without the marker.
    clean(
        "README.md",
        &format!("Set OPENAI_API_KEY=sk-{}-{}\n", "proj", "x".repeat(60)),
    );
    clean(
        "README.md",
        &format!("keys look like sk-{}-abc123\n", "proj"),
    );
    clean("notes.txt", &format!("id sk-{}\n", alnum(48, 6)));
}

#[test]
fn anthropic_keys() {
    let key = format!("sk-{}-api03-{}AA", "ant", rand_from(ALNUM, 93, 7));
    flags(
        "agent.ts",
        &format!("const anthropic = new Anthropic({{ apiKey: \"{key}\" }});\n"),
        "anthropic-api-key",
        &key,
    );
    let admin = format!("sk-{}-admin01-{}AA", "ant", alnum(93, 8));
    flags(
        ".env.local",
        &format!("ANTHROPIC_ADMIN_KEY={admin}\n"),
        "anthropic-api-key",
        &admin,
    );
    clean(
        "README.md",
        &format!(
            "Keys start with `sk-{}-api03-` followed by 95 characters.\n",
            "ant"
        ),
    );
    clean("a.txt", &format!("sk-{}-api03-{}\n", "ant", alnum(30, 9)));
}

#[test]
fn mercadopago_access_token_but_not_the_public_key() {
    let token = format!(
        "APP_{}-{}-{}-{}-{}",
        "USR",
        digits(16, 10),
        digits(6, 11),
        hex(32, 12),
        digits(9, 13)
    );
    flags(
        "server/pagos.js",
        &format!("mercadopago.configure({{ access_token: '{token}' }});\n"),
        "mercadopago-access-token",
        &token,
    );
    flags(
        ".env",
        &format!("MP_ACCESS_TOKEN={token}\n"),
        "mercadopago-access-token",
        &token,
    );
    // The public key goes to the browser on purpose.
    let public = format!("APP_{}-{}", "USR", uuid(14));
    clean(
        "web/checkout.js",
        &format!("const mp = new MercadoPago('{public}');\n"),
    );
}

#[test]
fn stripe_restricted_and_secret_live_keys() {
    let restricted = format!("rk_{}_{}", "live", alnum(99, 15));
    let f = flags(
        "billing.rb",
        &format!("Stripe.api_key = \"{restricted}\"\n"),
        "stripe-live-key",
        &restricted,
    );
    assert_eq!(f.description, "Stripe live secret or restricted key");
    clean(
        "billing.rb",
        &format!("RESTRICTED = \"rk_{}_{}\"\n", "test", alnum(99, 16)),
    );
    clean(
        "checkout.js",
        &format!("Stripe('pk_{}_{}')\n", "live", alnum(99, 17)),
    );
}

fn jwt(payload: serde_json::Value, seed: u64) -> String {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        e.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string()),
        e.encode(payload.to_string()),
        rand_from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            43,
            seed
        )
    )
}

#[test]
fn supabase_service_role_keys_but_not_the_anon_key() {
    let claims = |role: &str| json!({"iss": "supabase", "ref": alnum(20, 18), "role": role, "iat": 1700000000, "exp": 2000000000});
    let service = jwt(claims("service_role"), 19);
    let f = flags(
        ".env",
        &format!("SUPABASE_SERVICE_ROLE_KEY={service}\n"),
        "supabase-service-role-key",
        &service,
    );
    assert_eq!(f.description, "Supabase service-role key");
    assert!(f.fingerprint.starts_with("supabase-service-role-key:.env:"));
    // The anon key is public by design: in the browser bundle it is fine.
    let anon = jwt(claims("anon"), 20);
    clean(
        "src/lib/supabase.ts",
        &format!("export const supabase = createClient(url, \"{anon}\");\n"),
    );
    // Other JWTs are still JWTs.
    let other = jwt(json!({"sub": "1234", "name": "a user"}), 21);
    flags(
        "api.http",
        &format!("Authorization: Bearer {other}\n"),
        "jwt",
        &other,
    );
    // The newer secret keys; the publishable ones are public.
    let secret = format!("sb_{}_{}", "secret", alnum(32, 22));
    flags(
        "supabase/functions/.env",
        &format!("SUPABASE_SECRET_KEY={secret}\n"),
        "supabase-secret-key",
        &secret,
    );
    clean(
        "src/client.ts",
        &format!("const key = \"sb_{}_{}\";\n", "publishable", alnum(32, 23)),
    );
}

#[test]
fn sentry_dsns_with_a_secret_and_auth_tokens() {
    let secret = hex(32, 24);
    let dsn = format!(
        "https://{}:{secret}@o{}.ingest.sentry.io/{}",
        hex(32, 25),
        digits(6, 26),
        digits(7, 27)
    );
    flags(
        "settings.py",
        &format!("sentry_sdk.init(dsn=\"{dsn}\")\n"),
        "sentry-dsn-secret",
        &secret,
    );
    // A modern DSN carries the public key only: it ships to browsers.
    let public = format!(
        "https://{}@o{}.ingest.sentry.io/{}",
        hex(32, 28),
        digits(6, 29),
        digits(7, 30)
    );
    clean(
        "sentry.client.config.ts",
        &format!("Sentry.init({{ dsn: \"{public}\" }});\n"),
    );
    let token = format!("sntry{}_{}", "u", hex(64, 31));
    flags(
        ".sentryclirc",
        &format!("token={token}\n"),
        "sentry-auth-token",
        &token,
    );
}

#[test]
fn vercel_tokens() {
    let token = format!("vc{}_{}", "p", alnum(40, 32));
    flags(
        "scripts/deploy.sh",
        &format!("vercel deploy --token {token}\n"),
        "vercel-token",
        &token,
    );
    let older = alnum(24, 33);
    flags(
        ".github/workflows/deploy.yml",
        &format!("      VERCEL_TOKEN: {older}\n"),
        "vercel-token",
        &older,
    );
    clean(
        ".github/workflows/deploy.yml",
        "      VERCEL_TOKEN: ${{ secrets.VERCEL_TOKEN }}\n",
    );
    clean(
        ".github/workflows/deploy.yml",
        &format!("      VERCEL_PROJECT_ID: prj_{}\n", alnum(28, 34)),
    );
    clean("a.txt", &format!("vc{}_{}\n", "p", "a".repeat(40)));
}

#[test]
fn railway_tokens_but_not_project_ids() {
    let token = uuid(35);
    flags(
        ".github/workflows/deploy.yml",
        &format!("      RAILWAY_TOKEN: {token}\n"),
        "railway-token",
        &token,
    );
    flags(
        "deploy.sh",
        &format!("export RAILWAY_API_TOKEN=\"{token}\"\n"),
        "railway-token",
        &token,
    );
    clean(
        ".github/workflows/deploy.yml",
        &format!("      RAILWAY_PROJECT_ID: {}\n", uuid(36)),
    );
    clean(
        ".github/workflows/deploy.yml",
        "      RAILWAY_TOKEN: ${{ secrets.RAILWAY_TOKEN }}\n",
    );
}

#[test]
fn twilio_auth_tokens_and_api_keys() {
    let token = hex(32, 37);
    flags(
        ".env",
        &format!("TWILIO_AUTH_TOKEN={token}\n"),
        "twilio-auth-token",
        &token,
    );
    let key = format!("S{}{}", "K", hex(32, 38));
    flags(
        "sms.py",
        &format!("client = Client(\"{key}\", secret)\n"),
        "twilio-api-key",
        &key,
    );
    // The account SID names the account; it is not a credential.
    clean(
        ".env.example",
        &format!("TWILIO_ACCOUNT_SID=A{}{}\n", "C", hex(32, 39)),
    );
}

#[test]
fn sendgrid_and_mailgun_keys() {
    let key = format!("S{}.{}.{}", "G", alnum(22, 40), alnum(43, 41));
    flags(
        "mail.js",
        &format!("sgMail.setApiKey('{key}');\n"),
        "sendgrid-api-key",
        &key,
    );
    let older = format!("key-{}", hex(32, 42));
    flags(
        ".env",
        &format!("MAILGUN_API_KEY={older}\n"),
        "mailgun-api-key",
        &older,
    );
    let newer = format!("{}-{}-{}", hex(32, 43), hex(8, 44), hex(8, 45));
    flags(
        "mail.py",
        &format!("mailgun = Mailgun(api_key=\"{newer}\")\n"),
        "mailgun-api-key",
        &newer,
    );
    // The public validation key, and the domain.
    clean(
        "mail.js",
        &format!("const mailgunPublic = 'pubkey-{}';\n", hex(32, 46)),
    );
    clean(".env", "MAILGUN_DOMAIN=mg.example.com\n");
}

fn service_account(kind: &str, seed: u64) -> (String, String) {
    let body = alnum(64, seed);
    let pem = format!(
        "-----BEGIN {}-----\\n{body}\\n{}\\n-----END {}-----\\n",
        "PRIVATE KEY",
        alnum(64, seed + 1),
        "PRIVATE KEY"
    );
    let json = format!(
        "{{\n  \"type\": \"{kind}\",\n  \"project_id\": \"tienda-prod\",\n  \"private_key_id\": \"{}\",\n  \"private_key\": \"{pem}\",\n  \"client_email\": \"firebase-adminsdk@tienda-prod.iam.gserviceaccount.com\"\n}}\n",
        hex(40, seed + 2)
    );
    (json, body)
}

#[test]
fn google_and_firebase_service_account_json() {
    let (json, body) = service_account("service_account", 47);
    let found = findings("firebase-adminsdk.json", &json);
    let sa: Vec<&Finding> = found
        .iter()
        .filter(|f| f.rule == "gcp-service-account-key")
        .collect();
    assert_eq!(sa.len(), 1, "{found:?}");
    assert_eq!((sa[0].line, sa[0].secret.as_str()), (5, body.as_str()));
    assert!(!sa[0].redacted.contains(&body[4..]), "{}", sa[0].redacted);
    assert!(
        !found.iter().any(|f| f.rule == "private-key"),
        "the key is reported once, as the service account's: {found:?}"
    );
    // A key that is not a service account's is still a private key.
    let (other, _) = service_account("external_account", 50);
    let rules: Vec<String> = findings("key.json", &other)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert!(rules.contains(&"private-key".to_string()), "{rules:?}");
    assert!(
        !rules.contains(&"gcp-service-account-key".to_string()),
        "{rules:?}"
    );
    // Without a key, a service-account file is only a description.
    clean(
        "config/sa.json",
        "{\n  \"type\": \"service_account\",\n  \"private_key\": \"\"\n}\n",
    );
}

#[test]
fn jwt_signing_secrets_in_env_files() {
    // 64 hex digits: two character classes, which the generic rule for
    // `.env` values lets pass.
    let secret = hex(64, 53);
    flags(
        ".env.production",
        &format!("JWT_SECRET={secret}\n"),
        "jwt-signing-secret",
        &secret,
    );
    flags(
        "api/.env",
        &format!("export AUTH_JWT_KEY=\"{secret}\"\n"),
        "jwt-signing-secret",
        &secret,
    );
    clean(".env.example", "JWT_SECRET=${JWT_SECRET}\n");
    clean(".env", "JWT_SECRET=changeme\n");
    clean(".env", "JWT_EXPIRES_IN=7d\n");
    clean(".env", &format!("JWT_SECRET={}\n", "ab".repeat(16)));
    // The rule is for env files; source has the generic rule.
    assert!(
        !findings("src/auth.ts", &format!("// JWT_SECRET={secret}\n"))
            .iter()
            .any(|f| f.rule == "jwt-signing-secret")
    );
}

// ---------------------------------------------------------------- custom rules

const ACME_RULE: &str = "secrets:\n  rules:\n    - id: acme-api-key\n      description: Acme API key\n      regex: 'acme_(?P<secret>[a-z0-9]{32})'\n      keywords: [acme_]\n      entropy: 3.0\n";

fn custom_opts(yaml: &str) -> ScanOptions {
    let config = RepoConfig::parse(yaml).unwrap();
    ScanOptions::default()
        .with_rules(&config.secrets.rules)
        .unwrap()
}

#[test]
fn a_custom_rule_finds_its_secret_and_is_reported_like_a_built_in_one() {
    let opts = custom_opts(ACME_RULE);
    let key = hex(32, 60);
    let found = scan_text(
        "src/acme.js",
        &format!("// Acme\nconst k = 'acme_{key}';\n"),
        &opts,
    );
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f.rule, "acme-api-key");
    assert_eq!(f.description, "Acme API key");
    assert_eq!(f.secret, key, "the `secret` group");
    assert_eq!((f.line, f.column), (2, 17));
    assert!(!f.redacted.contains(&key[4..]), "{}", f.redacted);
    assert!(
        f.fingerprint.starts_with("acme-api-key:src/acme.js:"),
        "{}",
        f.fingerprint
    );
    // SARIF names the rule and its description; the secret is not in it.
    let report = ScanReport {
        findings: found.clone(),
        ..Default::default()
    };
    let s = sarif(&report, "0.0.0");
    assert_eq!(s["runs"][0]["results"][0]["ruleId"], "acme-api-key");
    assert_eq!(
        s["runs"][0]["tool"]["driver"]["rules"][0]["shortDescription"]["text"],
        "Acme API key"
    );
    assert!(!s.to_string().contains(&key));

    // Low entropy, and a line without the keyword, are not findings (the
    // regex runs only where a keyword is).
    assert!(scan_text("a.js", &format!("acme_{}\n", "0".repeat(32)), &opts).is_empty());
    let no_keyword = RepoConfig::parse(
        "secrets:\n  rules:\n    - id: order-key\n      regex: 'ord[0-9]{8}'\n      keywords: [orders]\n",
    )
    .unwrap();
    let opts = ScanOptions::default()
        .with_rules(&no_keyword.secrets.rules)
        .unwrap();
    assert!(scan_text("a.txt", "x = ord12345678\n", &opts).is_empty());
    let found = scan_text("a.txt", "orders = ord12345678\n", &opts);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].secret, "ord12345678", "the whole match");
    assert_eq!(found[0].description, "order-key", "the id by default");
}

#[test]
fn a_custom_rule_with_paths_applies_only_there() {
    let opts = custom_opts(
        "secrets:\n  rules:\n    - id: internal-token\n      regex: 'itk-[A-Za-z0-9]{20}'\n      keywords: [itk-]\n      paths: ['config/**', '*.env']\n",
    );
    let line = format!("ref: itk-{}\n", alnum(20, 61));
    assert_eq!(scan_text("config/prod.yml", &line, &opts).len(), 1);
    assert_eq!(scan_text("deploy/prod.env", &line, &opts).len(), 1);
    assert!(scan_text("docs/tokens.md", &line, &opts).is_empty());
}

#[test]
fn a_custom_rule_and_the_shipgateignore_work_together_in_a_tree_scan() {
    let dir = tempfile::tempdir().unwrap();
    let key_a = hex(32, 62);
    let key_b = hex(32, 63);
    std::fs::write(dir.path().join("a.js"), format!("k = 'acme_{key_a}'\n")).unwrap();
    std::fs::write(dir.path().join("b.js"), format!("k = 'acme_{key_b}'\n")).unwrap();
    let opts = custom_opts(ACME_RULE);
    let report = scan_tree(dir.path(), &opts).unwrap();
    assert_eq!(report.findings.len(), 2, "{:?}", report.findings);
    let fp = report
        .findings
        .iter()
        .find(|f| f.path == "b.js")
        .unwrap()
        .fingerprint
        .clone();
    std::fs::write(dir.path().join(".shipgateignore"), format!("{fp}\n")).unwrap();
    let report = scan_tree(dir.path(), &opts).unwrap();
    let paths: Vec<&str> = report.findings.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["a.js"]);
}

fn config_error(yaml: &str) -> String {
    RepoConfig::parse(yaml).unwrap_err().to_string()
}

#[test]
fn a_bad_custom_rule_is_a_configuration_error_with_line_and_column() {
    let e = config_error(
        "version: 1\nsecrets:\n  rules:\n    - id: acme\n      regex: 'acme_([a-z'\n      keywords: [acme_]\n",
    );
    assert_eq!(
        e,
        "line 5 column 7: secrets.rules[0]: regex: unclosed character class (at character 7)"
    );
    assert!(!e.contains('\n'), "one line: {e}");
    let e = config_error("secrets:\n  rules:\n    - id: acme\n      regex: 'acme_[a-z]{32}'\n");
    assert!(e.contains("missing field `keywords`"), "{e}");
    let e = config_error(
        "secrets:\n  rules:\n    - id: acme\n      regex: 'acme_[a-z]{32}'\n      keywords: []\n",
    );
    assert!(
        e.starts_with("line 5 column 7: secrets.rules[0]: keywords: name 1 to 16"),
        "{e}"
    );
    let e = config_error(
        "secrets:\n  rules:\n    - id: acme\n      regex: 'acme_[a-z]{32}'\n      keywords: [a]\n",
    );
    assert!(e.contains("keywords: \"a\" is 1 characters"), "{e}");
    let e = config_error(
        "secrets:\n  rules:\n    - id: Acme Key\n      regex: 'x'\n      keywords: [acme]\n",
    );
    assert!(
        e.starts_with("line 3 column 7: secrets.rules[0]: id: \"Acme Key\" is not an id"),
        "{e}"
    );
    let e = config_error(
        "secrets:\n  rules:\n    - id: github-token\n      regex: 'x'\n      keywords: [acme]\n",
    );
    assert!(e.contains("is a built-in rule's"), "{e}");
    let e = config_error(
        "secrets:\n  rules:\n    - { id: a1, regex: x, keywords: [acme] }\n    - { id: a1, regex: y, keywords: [acme] }\n",
    );
    assert!(
        e.contains("secrets.rules[1] (a1): the id is used by an earlier rule"),
        "{e}"
    );
    let e = config_error(
        "secrets:\n  rules:\n    - id: a1\n      regex: 'acme_[a-z]*'\n      keywords: [acme]\n    - id: a2\n      regex: '(?P<secret>x*)'\n      keywords: [acme]\n",
    );
    assert_eq!(
        e,
        "line 7 column 7: secrets.rules[1]: regex: matches the empty string; a rule must match the secret itself"
    );
    let e = config_error(
        "secrets:\n  rules:\n    - { id: a1, regex: x, keywords: [acme], entropy: 9 }\n",
    );
    assert!(e.contains("secrets.rules[0] (a1).entropy: 9"), "{e}");
    let e = config_error(
        "secrets:\n  rules:\n    - { id: a1, regex: x, keywords: [acme], severity: low }\n",
    );
    assert!(e.contains("unknown field `severity`"), "{e}");
    let many: String = (0..33)
        .map(|i| format!("    - {{ id: r{i}, regex: x, keywords: [acme] }}\n"))
        .collect();
    let e = config_error(&format!("secrets:\n  rules:\n{many}"));
    assert!(
        e.contains("secrets.rules: 33 rules; the limit is 32"),
        "{e}"
    );
}

#[test]
fn a_custom_regex_cannot_make_the_scan_slow() {
    // Nested counted repetitions compile to a huge program: refused.
    let e = config_error(
        "secrets:\n  rules:\n    - id: slow\n      regex: '(?:\\w{50}){50}'\n      keywords: [acme]\n",
    );
    assert!(
        e.starts_with("line 4 column 7: secrets.rules[0]: regex: compiles to more than 512 KiB"),
        "{e}"
    );
    let e = config_error(&format!(
        "secrets:\n  rules:\n    - id: long\n      regex: '{}'\n      keywords: [acme]\n",
        "a".repeat(1025)
    ));
    assert!(
        e.contains("regex: 1025 characters; the limit is 1024"),
        "{e}"
    );
    let e = config_error(&format!(
        "secrets:\n  rules:\n    - id: deep\n      regex: '{}a{}'\n      keywords: [acme]\n",
        "(".repeat(40),
        ")".repeat(40)
    ));
    assert!(
        e.starts_with("line 4 column 7: secrets.rules[0]: regex: "),
        "{e}"
    );
    // What is accepted stays within the caps; its speed is the bench's
    // business (bench/, never a timed test).
    let opts = custom_opts(
        "secrets:\n  rules:\n    - id: broad\n      regex: '(?i)(?:[a-z0-9]{1,20}[._-]){1,5}(?P<secret>[a-z0-9]{8,64})'\n      keywords: [the]\n      entropy: 7.9\n",
    );
    let text = "the quick brown fox jumps over the lazy dog, then_again_and_again\n".repeat(64);
    assert!(scan_text("big.txt", &text, &opts).is_empty());
}

#[test]
fn the_json_schema_describes_custom_rules() {
    let schema = RepoConfig::json_schema().to_string();
    assert!(schema.contains("\"keywords\""), "{schema}");
    assert!(
        schema.contains("`secret`, else the whole match"),
        "{schema}"
    );
    let rule: CustomRule = serde_json::from_value(json!({
        "id": "acme-key", "regex": "acme_[0-9a-f]{32}", "keywords": ["acme_"]
    }))
    .unwrap();
    assert_eq!(rule.id.as_str(), "acme-key");
    assert!(serde_json::from_value::<CustomRule>(json!({
        "id": "acme-key", "regex": "acme_[", "keywords": ["acme_"]
    }))
    .is_err());
}

// ------------------------------------------------------- the Action, a pull request

const BASE_RULES: &str = "secrets:\n  rules:\n    - id: acme-api-key\n      description: Acme API key\n      regex: 'acme_(?P<secret>[a-z0-9]{32})'\n      keywords: [acme_]\n";

/// The pull request drops the base's rule (and rewrites it under another
/// id) and adds a rule of its own.
const PR_RULES: &str = "secrets:\n  rules:\n    - id: acme-api-key\n      regex: 'never-matches-anything'\n      keywords: [acme_]\n    - id: billing-token\n      description: Billing token\n      regex: 'bill_[A-Za-z0-9]{24}'\n      keywords: [bill_]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_adds_secret_rules_but_cannot_remove_the_bases() {
    let gh = common::FakeGitHub::start().await;
    gh.add_repo("acme/app", &[(".github/shipgate.yml", BASE_RULES)]);
    gh.commit("acme/app", "feature", &[("a", Some("a"))]);
    let pr = gh.open_pr("acme/app", "feature", "alice");

    let mut step = Step::new();
    let ws = step.ws();
    let acme = hex(32, 70);
    let bill = format!("bill_{}", fake_token("", 71, 24));
    let pr_files = [
        (".github/shipgate.yml", PR_RULES.to_string()),
        ("src/acme.js", format!("const key = 'acme_{acme}';\n")),
        ("src/billing.js", format!("const token = \"{bill}\";\n")),
    ];
    let pr_files: Vec<(&str, &str)> = pr_files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let (base, head) = pr_checkout(&ws, &[(".github/shipgate.yml", BASE_RULES)], &pr_files);
    let mut event = gh.pull_request_payload("acme/app", pr, "opened");
    event["pull_request"]["base"]["sha"] = json!(base);
    event["pull_request"]["head"]["sha"] = json!(head);
    step.event("pull_request", event);
    step.set("GITHUB_API_URL", &gh.url())
        .set("INPUT_TOKEN", "ghs_test")
        .set("INPUT_GATES", "secrets")
        .set("INPUT_SARIF", "true");
    let env = step.env.clone();
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    // The base's rule, as the base wrote it, and the rule the PR adds.
    assert!(
        text.contains("::error file=src/acme.js,line=1,col=19,title=shipgate secrets%3A acme-api-key::Acme API key"),
        "{text}"
    );
    assert!(
        text.contains("::error file=src/billing.js,line=1,col=16,title=shipgate secrets%3A billing-token::Billing token"),
        "{text}"
    );
    assert!(text.contains("FAIL    secrets — 2 secret(s)"), "{text}");
    // Masked first, and in no output but the masks.
    assert!(text.starts_with("::add-mask::"), "{text}");
    let summary = step.summary();
    assert!(
        summary.contains("| ❌ `acme-api-key` | `src/acme.js:1` | Acme API key"),
        "{summary}"
    );
    assert!(
        summary.contains("| ❌ `billing-token` | `src/billing.js:1` | Billing token"),
        "{summary}"
    );
    let outputs = step.outputs();
    let sarif_path = outputs
        .lines()
        .find_map(|l| l.strip_prefix("sarif="))
        .expect("sarif output");
    let sarif_text = std::fs::read_to_string(sarif_path).unwrap();
    let sarif: serde_json::Value = serde_json::from_str(&sarif_text).unwrap();
    let ids: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme-api-key", "billing-token"]);
    for secret in [acme.as_str(), bill.as_str()] {
        let masks = format!("::add-mask::{secret}");
        assert_eq!(text.matches(secret).count(), 1, "only its mask: {text}");
        assert!(text.contains(&masks));
        for (what, body) in [("summary", &summary), ("SARIF", &sarif_text)] {
            assert!(!body.contains(secret), "the secret is in the {what}");
        }
    }
    gh.assert_no_unexpected();
}

#[test]
fn a_bad_regex_fails_the_step_with_one_line_naming_line_and_column() {
    let step = Step::new();
    step.config(
        "secrets:\n  rules:\n    - id: acme\n      regex: 'acme_(x'\n      keywords: [acme_]\n",
    );
    let mut step = step;
    step.set("INPUT_GATES", "secrets");
    let out = step.run();
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{all}");
    let line = all
        .lines()
        .find(|l| l.contains("line 4 column 7: secrets.rules[0]: regex: unclosed group"))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(line.contains(".github/shipgate.yml"), "{line}");
}

#[test]
fn a_custom_rules_description_cannot_ping_people_or_break_the_summary() {
    let opts = custom_opts(
        "secrets:\n  rules:\n    - id: acme-api-key\n      description: 'Acme key @acme/admins | <!-- shipgate:sticky -->'\n      regex: 'acme_[a-z0-9]{32}'\n      keywords: [acme_]\n",
    );
    let found = scan_text("a.js", &format!("k = 'acme_{}'\n", hex(32, 80)), &opts);
    let table = shipgate::render::secrets::findings_table(&found);
    let row = table.lines().nth(2).unwrap();
    assert_eq!(row.matches('|').count(), 4, "one row of three cells: {row}");
    assert!(!row.contains("@acme/admins"), "{row}");
    assert!(!row.contains("<!--"), "{row}");
}

/// A keyword that holds another (`sb_secret_` holds `secret`) enables the
/// other's rules too: the automaton reports only the longer one.
#[test]
fn a_keyword_inside_a_provider_keyword_still_enables_its_rules() {
    let value = format!("{}!{}", alnum(12, 90), alnum(12, 91));
    flags(
        ".env",
        &format!("SB_SECRET_VALUE={value}\n"),
        "generic-secret",
        &value,
    );
}
