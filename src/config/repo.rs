//! The repository configuration, `.github/shipgate.yml` (schema v1).
//!
//! Parsed with serde_yaml_ng (a maintained fork of the archived serde_yaml).
//! Unknown keys are rejected so a typo is an error, not a silently ignored
//! rule; errors carry line and column. A missing or empty file means
//! defaults. The JSON Schema (`shipgate config schema`) is generated from
//! these types.
//!
//! The file comes from whoever can push a branch or open a pull request, so
//! it is refused before parsing when it is over [`MAX_CONFIG_BYTES`] or nests
//! deeper than [`MAX_CONFIG_DEPTH`]: the YAML scanner does work proportional
//! to the nesting depth for every token, so `[[[[…` costs time quadratic in
//! its length (40 KB took seconds). The CLI, the Action and the server all
//! parse through [`RepoConfig::parse`], so they share these caps; the server
//! also parses off its async threads, a few at a time, within a time budget
//! ([`ConfigCache`]).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::freeze::FreezeWindow;

mod cache;
mod environment;
mod locate;
mod rulesets;
mod sections;

pub use cache::{ConfigCache, ConfigCacheLimits, ConfigSource, LoadedConfig, MISSING_CONFIG_TTL};
pub use environment::{Deployers, EnvironmentConfig, PromoteFrom, RequiredCheck, Role};
pub use rulesets::{
    BypassActor, BypassMode, BypassRole, PullRequestRule, RulesetConfig, RulesetEnforcement,
    RulesetRules, RulesetTarget, StatusChecksRule, MAX_RULESETS,
};
pub use sections::{
    BranchProtection, FreezeConfig, PreviewConfig, ProtectionConfig, ProtectionMode, ReleaseConfig,
    SecretsConfig,
};

pub const CONFIG_PATH: &str = ".github/shipgate.yml";

/// The largest config file accepted (real ones are a few KiB).
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// The deepest nesting of mappings and sequences accepted, the top-level
/// mapping being level 1 (the schema itself needs fewer than 10).
pub const MAX_CONFIG_DEPTH: usize = 32;

/// The most routes `notify:` may list (each event is looked up on each).
pub const MAX_NOTIFY_ROUTES: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// Schema version; only 1 exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Environment `/deploy` uses when none is named (default: the only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_environment: Option<String>,
    /// Deployment environments and their gates.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentConfig>,
    /// Smoke checks run against deployed URLs.
    #[serde(default)]
    pub smoke: SmokeConfig,
    /// Preview URL comments on pull requests.
    #[serde(default)]
    pub preview: PreviewConfig,
    /// Branch protection policy.
    #[serde(default)]
    pub protection: ProtectionConfig,
    /// Committed-secret scanning.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// Deploy freeze windows.
    #[serde(default)]
    pub freeze: FreezeConfig,
    /// Release tag rules (the Action's `release` gate).
    #[serde(default)]
    pub release: ReleaseConfig,
    /// Where notifications go: routes to the server operator's destinations,
    /// each with the events it wants. Absent: `slack` gets deploy, smoke
    /// and rollback failures and successful deploys; `[]`: nothing is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Vec<crate::notify::Route>>,
}

pub use crate::duration::{humanize, DurationText};

pub use crate::smoke::config::SmokeConfig;

/// A config file that does not parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", location.map(|(l, c)| format!("line {l} column {c}: ")).unwrap_or_default())]
pub struct ConfigError {
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

impl RepoConfig {
    /// The environment `/deploy` uses when none is named: `default_environment`,
    /// or the only environment.
    pub fn default_environment(&self) -> Option<&str> {
        match &self.default_environment {
            Some(name) => Some(name.as_str()),
            None if self.environments.len() == 1 => {
                self.environments.keys().next().map(String::as_str)
            }
            None => None,
        }
    }

    /// The smoke suite for a deployment to `environment`: the environment's
    /// own, else for a preview (an environment not in the config)
    /// `preview.smoke`, else the top-level `smoke` (empty: the default suite).
    pub fn smoke_suite(&self, environment: &str) -> &SmokeConfig {
        match self.environments.get(environment) {
            Some(env) => env.smoke.as_ref().unwrap_or(&self.smoke),
            None => self.preview.smoke.as_ref().unwrap_or(&self.smoke),
        }
    }

    /// Hosts a deployment URL may have to be probed.
    pub fn allowed_hosts(&self) -> Vec<String> {
        if let Some(hosts) = &self.preview.allowed_hosts {
            return hosts.clone();
        }
        let mut hosts: Vec<String> = crate::smoke::guard::DEFAULT_ALLOWED_HOSTS
            .iter()
            .map(|h| h.to_string())
            .collect();
        hosts.extend(self.environment_hosts());
        hosts
    }

    /// The hosts of `environments.*.url`, as the SSRF guard writes hosts
    /// (lower case, no trailing dot or IPv6 brackets).
    pub fn environment_hosts(&self) -> Vec<String> {
        self.environments
            .values()
            .filter_map(|env| env.url.as_deref())
            .filter_map(|u| url::Url::parse(u).ok())
            .filter_map(|u| crate::smoke::guard::host_of(&u).ok())
            .map(|(host, _)| host)
            .collect()
    }

    /// The freeze windows that apply to `environment`.
    pub fn freeze_windows<'a>(
        &'a self,
        environment: &'a EnvironmentConfig,
    ) -> impl Iterator<Item = &'a FreezeWindow> {
        self.freeze.windows.iter().chain(environment.freeze.iter())
    }

    /// Parses the YAML text of `.github/shipgate.yml`. An empty file is the default config.
    /// Files over [`MAX_CONFIG_BYTES`] or nested deeper than
    /// [`MAX_CONFIG_DEPTH`] are refused before they are parsed.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError {
                location: None,
                message: format!(
                    "the file is {} KiB; the limit is {} KiB",
                    text.len().div_ceil(1024),
                    MAX_CONFIG_BYTES / 1024
                ),
            });
        }
        if text.trim().is_empty()
            || text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Ok(RepoConfig::default());
        }
        if let Some(location) = nesting_beyond(text, MAX_CONFIG_DEPTH) {
            return Err(ConfigError {
                location: Some(location),
                message: format!(
                    "nested more than {MAX_CONFIG_DEPTH} levels deep; the limit is {MAX_CONFIG_DEPTH}"
                ),
            });
        }
        let located = |e: serde_yaml_ng::Error| {
            let location = e.location().map(|l| (l.line(), l.column()));
            // serde_yaml_ng appends " at line L column C"; we report it separately.
            let message = e.to_string();
            let message = match message.find(" at line ") {
                Some(i) if location.is_some() => message[..i].to_string(),
                _ => message,
            };
            let location = location.map(|at| locate::at_key(text, at, &message));
            ConfigError { location, message }
        };
        // Maps (environments, branches) keep the last of duplicate keys: an
        // environment named twice would silently lose its first rules.
        serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text).map_err(located)?;
        let config: RepoConfig = serde_yaml_ng::from_str(text).map_err(located)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that hold across sections.
    fn validate(&self) -> Result<(), ConfigError> {
        let err = |message: String| {
            Err(ConfigError {
                location: None,
                message,
            })
        };
        if let Some(v) = self.version {
            if v != 1 {
                return err(format!("version: only schema version 1 exists, got {v}"));
            }
        }
        for (i, w) in self.freeze.windows.iter().enumerate() {
            w.validate()
                .or_else(|m| err(format!("freeze.windows[{i}]: {m}")))?;
        }
        self.smoke.validate("smoke").or_else(err)?;
        if let Some(b) = &self.release.branch {
            if !crate::text::plain_branch_name(b) {
                return err(format!(
                    "release.branch: `{}` is not a branch name (write it as GitHub shows it, without `refs/heads/`)",
                    b.escape_debug()
                ));
            }
        }
        if let Some(p) = &self.release.tag_pattern {
            regex::Regex::new(p).map_err(|e| ConfigError {
                location: None,
                message: format!("release.tag_pattern: {e}"),
            })?;
        }
        if let Some(s) = &self.preview.smoke {
            s.validate("preview.smoke").or_else(err)?;
        }
        for (name, env) in &self.environments {
            if let Some(s) = &env.smoke {
                s.validate(&format!("environments.{name}.smoke"))
                    .or_else(err)?;
            }
            for (i, w) in env.freeze.iter().enumerate() {
                w.validate()
                    .or_else(|m| err(format!("environments.{name}.freeze[{i}]: {m}")))?;
            }
            env.validate_promotion(name, self.environments.keys())
                .or_else(err)?;
            if let Some(Deployers::List(list)) = &env.deployers {
                if list.is_empty() {
                    return err(format!("environments.{name}.deployers: an empty list lets nobody deploy; name a role or logins"));
                }
            }
        }
        crate::secrets::validate_rules(&self.secrets.rules, "secrets.rules").or_else(err)?;
        let routes = self.notify.as_deref().unwrap_or_default();
        if routes.len() > MAX_NOTIFY_ROUTES {
            return err(format!(
                "notify: {} routes; the limit is {MAX_NOTIFY_ROUTES}",
                routes.len()
            ));
        }
        for (i, route) in routes.iter().enumerate() {
            if !crate::notify::destination::valid_name(&route.to) {
                // Not quoted: it may be a webhook URL pasted by mistake.
                return err(format!(
                    "notify[{i}].to: expected the name of a destination the server's operator set up (letters, digits, `-` and `_`), not a URL"
                ));
            }
        }
        let rulesets = &self.protection.rulesets;
        if rulesets.len() > MAX_RULESETS {
            return err(format!(
                "protection.rulesets: {} rulesets; GitHub allows {MAX_RULESETS} per repository",
                rulesets.len()
            ));
        }
        for (name, r) in rulesets {
            r.validate(&format!("protection.rulesets.{name}"))
                .or_else(err)?;
        }
        if let Some(env) = &self.default_environment {
            if !self.environments.contains_key(env) {
                return err(format!(
                    "default_environment: `{env}` is not one of the environments ({})",
                    self.environments
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The JSON Schema of the file, generated from these types.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(RepoConfig)).expect("schema serializes")
    }
}

/// Where `text` first nests mappings and sequences (block or flow) more
/// than `limit` deep, as line and column; `None` if it never does, or if
/// the YAML is malformed before that (the full parse reports it, having
/// stopped there too).
///
/// It runs libyaml, the parser serde_yaml_ng uses, event by event and stops
/// at the first collection past the limit, so it sees exactly the nesting
/// the full parse would, and its cost stays small whatever the input: the
/// scanner reads ahead at most about 1,024 characters for a possible key, so
/// it never goes much deeper than the limit.
fn nesting_beyond(text: &str, limit: usize) -> Option<(usize, usize)> {
    use std::mem::MaybeUninit;
    use unsafe_libyaml as unsafe_yaml;

    /// An initialised parser, deleted on every way out. It is boxed because
    /// a parser reading a string points at itself.
    struct Parser(Box<MaybeUninit<unsafe_yaml::yaml_parser_t>>);
    impl Drop for Parser {
        fn drop(&mut self) {
            // SAFETY: a `Parser` is only built around an initialised parser.
            unsafe { unsafe_yaml::yaml_parser_delete(self.0.as_mut_ptr()) }
        }
    }

    let mut boxed = Box::new(MaybeUninit::<unsafe_yaml::yaml_parser_t>::uninit());
    // SAFETY: `boxed` is valid, writable memory for a parser.
    if unsafe { unsafe_yaml::yaml_parser_initialize(boxed.as_mut_ptr()) }.fail {
        return None; // out of memory: the full parse will say so
    }
    let mut parser = Parser(boxed);
    let p = parser.0.as_mut_ptr();
    // SAFETY: `p` is initialised; `text` outlives `parser`, which is
    // dropped at the end of this function.
    unsafe {
        unsafe_yaml::yaml_parser_set_encoding(p, unsafe_yaml::YAML_UTF8_ENCODING);
        unsafe_yaml::yaml_parser_set_input_string(p, text.as_ptr(), text.len() as u64);
    }
    let mut depth = 0usize;
    loop {
        let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
        // SAFETY: `p` is initialised and its input is alive; a successful
        // call initialises `event`, which is read and then deleted once.
        let (kind, mark) = unsafe {
            if unsafe_yaml::yaml_parser_parse(p, event.as_mut_ptr()).fail {
                return None;
            }
            let e = event.as_mut_ptr();
            let read = ((*e).type_, (*e).start_mark);
            unsafe_yaml::yaml_event_delete(e);
            read
        };
        match kind {
            unsafe_yaml::YAML_SEQUENCE_START_EVENT | unsafe_yaml::YAML_MAPPING_START_EVENT => {
                depth += 1;
                if depth > limit {
                    return Some((mark.line as usize + 1, mark.column as usize + 1));
                }
            }
            unsafe_yaml::YAML_SEQUENCE_END_EVENT | unsafe_yaml::YAML_MAPPING_END_EVENT => {
                depth = depth.saturating_sub(1)
            }
            unsafe_yaml::YAML_STREAM_END_EVENT => return None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_comment_only_files_are_defaults() {
        assert_eq!(RepoConfig::parse("").unwrap(), RepoConfig::default());
        assert_eq!(
            RepoConfig::parse("# nothing yet\n\n").unwrap(),
            RepoConfig::default()
        );
    }

    #[test]
    fn a_full_file_parses() {
        let c = RepoConfig::parse(
            "version: 1\ndefault_environment: staging\nenvironments:\n  staging:\n    url: https://staging.example.com\n    deployers: write\n  production:\n    deployers: [alice, '@acme/sre']\n    required_approvals: 2\n    required_checks: [ci]\nprotection:\n  mode: audit\n  branches:\n    main:\n      required_approvals: 2\n      strict: true\n",
        )
        .unwrap();
        assert_eq!(
            c.environments["staging"].deployers,
            Some(Deployers::Role(Role::Write))
        );
        assert_eq!(c.environments["production"].required_approvals, 2);
        assert_eq!(c.protection.mode, ProtectionMode::Audit);
        assert_eq!(c.protection.branches["main"].strict, Some(true));
        assert_eq!(c.protection.branches["main"].enforce_admins, None);
    }

    /// Found by the `repo_config` fuzz target (fuzz/regressions/repo_config/duplicate-environment).
    #[test]
    fn an_environment_named_twice_is_an_error_with_line_and_column() {
        let e = RepoConfig::parse(
            "environments:\n  production:\n    required_approvals: 2\n  production:\n    deployers: write\n",
        )
        .unwrap_err();
        // serde_yaml_ng points at the map that has the duplicate.
        assert_eq!(e.location, Some((2, 3)), "{e}");
        assert!(
            e.message
                .contains("duplicate entry with key \"production\""),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_line_and_column() {
        let e =
            RepoConfig::parse("environments:\n  staging:\n    required_aprovals: 1\n").unwrap_err();
        assert_eq!(e.location, Some((3, 5)), "{e}");
        assert!(
            e.message.contains("unknown field `required_aprovals`"),
            "{e}"
        );
        assert!(e.to_string().starts_with("line 3 column 5: "), "{e}");
        let e = RepoConfig::parse("enviroments: {}\n").unwrap_err();
        assert_eq!(e.location, Some((1, 1)), "{e}");
    }

    #[test]
    fn wrong_types_and_cross_section_mistakes_are_errors() {
        let e =
            RepoConfig::parse("environments:\n  prod:\n    required_approvals: two\n").unwrap_err();
        assert_eq!(e.location.map(|l| l.0), Some(3), "{e}");
        let e = RepoConfig::parse("default_environment: prod\nenvironments:\n  staging: {}\n")
            .unwrap_err();
        assert!(
            e.message
                .contains("`prod` is not one of the environments (staging)"),
            "{e}"
        );
        let e = RepoConfig::parse("version: 2\n").unwrap_err();
        assert!(e.message.contains("only schema version 1"), "{e}");
        assert!(RepoConfig::parse("- a list\n").is_err());
    }

    #[test]
    fn notify_routes_name_destinations_and_known_events() {
        use crate::notify::{Event, Route};
        let c = RepoConfig::parse(
            "notify:\n  - { to: team-chat, events: [deploy_failed, smoke_recovered] }\n  - { to: oncall }\n",
        )
        .unwrap();
        assert_eq!(
            c.notify.unwrap(),
            [
                Route {
                    to: "team-chat".into(),
                    events: Some(vec![Event::DeployFailed, Event::SmokeRecovered]),
                },
                Route {
                    to: "oncall".into(),
                    events: None,
                },
            ]
        );
        assert_eq!(
            RepoConfig::parse("notify: []\n").unwrap().notify,
            Some(vec![])
        );
        assert_eq!(RepoConfig::parse("version: 1\n").unwrap().notify, None);
        let e =
            RepoConfig::parse("notify:\n  - { to: ops, events: [deploy_exploded] }\n").unwrap_err();
        assert_eq!(e.location.map(|l| l.0), Some(2), "{e}");
        assert!(
            e.message.contains("unknown variant `deploy_exploded`"),
            "{e}"
        );
        let e =
            RepoConfig::parse("notify:\n  - { to: \"https://hooks.example/x\" }\n").unwrap_err();
        assert!(
            e.message
                .starts_with("notify[0].to: expected the name of a destination"),
            "{e}"
        );
        assert!(!e.message.contains("hooks.example"), "{e}");
        let many = format!("notify:\n{}", "  - { to: ops }\n".repeat(21));
        let e = RepoConfig::parse(&many).unwrap_err();
        assert_eq!(e.message, "notify: 21 routes; the limit is 20");
    }

    #[test]
    fn the_issue_example_parses() {
        let c = RepoConfig::parse(
            r#"
default_environment: staging
environments:
  staging:
    deployers: write
    required_approvals: 0
    required_checks: []
  production:
    deployers: maintain
    required_approvals: 2
    required_checks: [ci]
    base_branches: [main]
    production: true
    freeze:
      - { days: [fri, sat, sun], from: "15:00", to: "23:59", timezone: "America/Santiago" }
      - { dates: ["2026-12-24", "2026-12-31"] }
    lock_ttl: 2h
"#,
        )
        .unwrap();
        let prod = &c.environments["production"];
        assert_eq!(
            prod.lock_ttl.unwrap().0,
            std::time::Duration::from_secs(7200)
        );
        assert_eq!(prod.freeze.len(), 2);
        assert!(prod.production);
        assert_eq!(c.default_environment(), Some("staging"));
        assert_eq!(
            c.environments["staging"].deployers(),
            Deployers::Role(Role::Write)
        );
        let e =
            RepoConfig::parse("environments:\n  p:\n    freeze:\n      - { from: \"10:00\" }\n")
                .unwrap_err();
        assert!(
            e.message
                .contains("environments.p.freeze[0]: a freeze window needs"),
            "{e}"
        );
        let e = RepoConfig::parse("environments:\n  p:\n    lock_ttl: forever\n").unwrap_err();
        assert!(e.message.contains("expected a duration"), "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(3));
    }

    #[test]
    fn required_checks_are_names_or_names_with_their_app() {
        let c = RepoConfig::parse(
            "environments:\n  p:\n    required_checks: [ci, { name: e2e, app: github-actions }]\n",
        )
        .unwrap();
        assert_eq!(
            c.environments["p"].required_checks,
            [
                RequiredCheck::Name("ci".into()),
                RequiredCheck::FromApp {
                    name: "e2e".into(),
                    app: "github-actions".into()
                }
            ]
        );
        let e = RepoConfig::parse(
            "environments:\n  p:\n    required_checks: [{ name: ci, ap: github-actions }]\n",
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("unknown field `ap`, expected `name` or `app`"),
            "{e}"
        );
        assert_eq!(e.location.map(|l| l.0), Some(3), "{e}");
        let e = RepoConfig::parse("environments:\n  p:\n    required_checks: [{ name: ci }]\n")
            .unwrap_err();
        assert!(e.message.contains("missing field `app`"), "{e}");
        let e = RepoConfig::parse("environments:\n  p:\n    required_checks: [5]\n").unwrap_err();
        assert!(
            e.message
                .contains("expected a check name, or `{ name: CHECK, app: APP_SLUG }`"),
            "{e}"
        );
    }

    #[test]
    fn durations() {
        let d = |s: &str| DurationText::parse(s).map(|d| d.0.as_secs());
        assert_eq!(d("90s"), Ok(90));
        assert_eq!(d("1h30m"), Ok(5400));
        assert_eq!(d("2d"), Ok(172_800));
        for bad in ["", "10", "h", "1x", "0m", "-1h"] {
            assert!(d(bad).is_err(), "{bad}");
        }
        assert_eq!(humanize(std::time::Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn a_file_over_the_size_cap_is_refused_before_parsing() {
        // Valid YAML: a config, then comments.
        let at_cap = format!(
            "version: 1\n{}",
            "#".repeat(MAX_CONFIG_BYTES - "version: 1\n".len() - 1) + "\n"
        );
        assert_eq!(at_cap.len(), MAX_CONFIG_BYTES);
        assert!(RepoConfig::parse(&at_cap).is_ok());
        let e = RepoConfig::parse(&format!("{at_cap}#")).unwrap_err();
        assert_eq!(e.to_string(), "the file is 65 KiB; the limit is 64 KiB");
        let e = RepoConfig::parse(&" ".repeat(300 * 1024)).unwrap_err();
        assert_eq!(e.to_string(), "the file is 300 KiB; the limit is 64 KiB");
    }

    /// `environments: [[[[…` took serde_yaml_ng seconds at 40 KB (time
    /// quadratic in the depth), on whichever thread called `parse`.
    #[test]
    fn absurd_nesting_is_refused_quickly_with_its_position() {
        let deep = format!("environments: {}", "[".repeat(MAX_CONFIG_BYTES - 20));
        let started = std::time::Instant::now();
        let e = RepoConfig::parse(&deep).unwrap_err();
        let took = started.elapsed();
        // The top-level mapping is level 1, so the 32nd `[` is level 33.
        assert_eq!(
            e.to_string(),
            "line 1 column 46: nested more than 32 levels deep; the limit is 32"
        );
        // It stops at the limit: milliseconds, where a full parse took
        // seconds at 40 KB. The bound is loose on purpose (a shared CI box).
        assert!(took < std::time::Duration::from_secs(1), "{took:?}");
        let flow_maps = format!("environments: {}", "{a: ".repeat(10_000));
        let e = RepoConfig::parse(&flow_maps).unwrap_err();
        assert!(e.message.starts_with("nested more than 32"), "{e}");
    }

    #[test]
    fn the_depth_limit_counts_block_and_flow_nesting_as_the_parser_sees_it() {
        // 32 levels: no depth error (a type error instead); 33: the depth error.
        let nested = |levels: usize| {
            let mut text = String::from("smoke:\n");
            for i in 1..levels - 1 {
                text.push_str(&" ".repeat(2 * i));
                text.push_str("x:\n");
            }
            text.push_str(&" ".repeat(2 * (levels - 1)));
            text.push_str("[1]\n");
            text
        };
        let e = RepoConfig::parse(&nested(32)).unwrap_err();
        assert!(!e.message.contains("levels deep"), "{e}");
        let e = RepoConfig::parse(&nested(33)).unwrap_err();
        assert_eq!(e.location, Some((33, 65)), "{e}");
        assert!(e.message.contains("nested more than 32 levels deep"), "{e}");
        // Brackets in quoted strings, comments and block scalars are text, not nesting.
        let text = format!(
            "# {open}\nenvironments:\n  prod:\n    required_checks: [\"{open}\", '{open}']\n    url: |\n      {open}\n",
            open = "[".repeat(100)
        );
        let c = RepoConfig::parse(&text).unwrap();
        assert_eq!(
            c.environments["prod"].required_checks[0],
            RequiredCheck::Name("[".repeat(100))
        );
    }

    #[test]
    fn schema_names_every_top_level_section() {
        let schema = RepoConfig::json_schema();
        let props = schema["properties"].as_object().unwrap();
        for key in [
            "environments",
            "smoke",
            "preview",
            "protection",
            "secrets",
            "freeze",
        ] {
            assert!(props.contains_key(key), "{key} missing from schema");
        }
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    }
}
