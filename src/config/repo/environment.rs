//! The `environments` section: one environment's gates (deployers,
//! approvals, required checks, refs, freeze windows, smoke suite). Apart
//! from the other sections because it is most of the schema and has its own
//! types and parsing (`RequiredCheck`, `Deployers`, `Role`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DurationText, SmokeConfig};
use crate::freeze::FreezeWindow;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// The deployed URL (smoke checks run against it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Minimum role (read | triage | write | maintain | admin) or a list of logins and @org/team names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployers: Option<Deployers>,
    /// Approving reviews the pull request needs.
    #[serde(default)]
    pub required_approvals: u32,
    /// Check-run names or status contexts that must be green on the deployed
    /// commit; `all` means every check. `{ name: ci, app: github-actions }`
    /// accepts only a check run of that app (by its slug).
    #[serde(default)]
    pub required_checks: Vec<RequiredCheck>,
    /// `/deploy` only from pull requests that target these branches (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_branches: Vec<String>,
    /// Marks deployments as production (`production_environment`).
    #[serde(default)]
    pub production: bool,
    /// Freeze windows for this environment (the top-level `freeze` applies too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<FreezeWindow>,
    /// How long a lock lasts when `/lock` gives no `ttl=`, and how long a
    /// deploy's lock lasts at most if its deployment never reports a final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_ttl: Option<DurationText>,
    /// Smoke checks for this environment (default: the top-level `smoke`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeConfig>,
    /// When a deployment here succeeds but its smoke checks fail, roll back
    /// to the last successful deployment.
    #[serde(default)]
    pub auto_rollback: bool,
    /// Branches (globs such as `main` or `release/*`) and tags
    /// (`refs/tags/v*`) that may deploy here, checked for deployments
    /// shipgate did not create (deployment protection rule); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<String>,
    /// How long a deployment protection rule request may wait for a gate that
    /// is only temporarily closed before it is rejected (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_timeout: Option<DurationText>,
    /// Approvals of an earlier head commit still count (default false: only
    /// approvals of the commit being deployed count).
    #[serde(default)]
    pub stale_approvals: bool,
    /// Pull requests whose head lives in a fork may deploy here (default
    /// false: a fork's code would run with this environment's secrets).
    #[serde(default)]
    pub allow_forks: bool,
    /// Promotion after soak: a commit deploys here only after it ran in
    /// another environment successfully for `soak`, with no failed or
    /// rolled-back deployment of it there since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_from: Option<PromoteFrom>,
}

/// `promote_from: { environment: staging, soak: 24h }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteFrom {
    /// The environment the commit must have soaked in (another one of `environments`).
    pub environment: String,
    /// How long the commit must have run there without incident (`24h`, `1d12h`).
    pub soak: DurationText,
}

impl EnvironmentConfig {
    /// `promote_from` names another configured environment.
    pub fn validate_promotion<'a>(
        &self,
        name: &str,
        mut environments: impl Iterator<Item = &'a String>,
    ) -> Result<(), String> {
        let Some(p) = &self.promote_from else {
            return Ok(());
        };
        if p.environment == name {
            return Err(format!(
                "environments.{name}.promote_from.environment: `{name}` cannot soak in itself; name the environment commits come from (e.g. staging)"
            ));
        }
        if !environments.any(|e| e == &p.environment) {
            return Err(format!(
                "environments.{name}.promote_from.environment: `{}` is not one of the environments",
                p.environment
            ));
        }
        Ok(())
    }
}

/// A required check: a name (any app or status), or a name and the slug of
/// the GitHub App whose check run counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum RequiredCheck {
    Name(String),
    FromApp {
        /// The check run's name.
        name: String,
        /// The slug of the App that must report it (e.g. `github-actions`).
        app: String,
    },
}

impl RequiredCheck {
    pub fn name(&self) -> &str {
        match self {
            RequiredCheck::Name(n) | RequiredCheck::FromApp { name: n, .. } => n,
        }
    }

    pub fn app(&self) -> Option<&str> {
        match self {
            RequiredCheck::Name(_) => None,
            RequiredCheck::FromApp { app, .. } => Some(app),
        }
    }

    /// As shown to people: `ci`, or `ci` from `github-actions`.
    pub fn label(&self) -> String {
        match self {
            RequiredCheck::Name(n) => n.clone(),
            RequiredCheck::FromApp { name, app } => format!("{name} (from {app})"),
        }
    }
}

impl<'de> Deserialize<'de> for RequiredCheck {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RequiredCheck;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a check name, or `{ name: CHECK, app: APP_SLUG }`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RequiredCheck, E> {
                Ok(RequiredCheck::Name(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RequiredCheck, A::Error> {
                use serde::de::Error;
                let (mut name, mut app) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => name = Some(map.next_value::<String>()?),
                        "app" => app = Some(map.next_value::<String>()?),
                        other => return Err(A::Error::unknown_field(other, &["name", "app"])),
                    }
                }
                match (name, app) {
                    (Some(name), Some(app)) => Ok(RequiredCheck::FromApp { name, app }),
                    (None, _) => Err(A::Error::missing_field("name")),
                    (_, None) => Err(A::Error::missing_field("app")),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl From<&str> for RequiredCheck {
    fn from(name: &str) -> Self {
        RequiredCheck::Name(name.to_string())
    }
}

impl EnvironmentConfig {
    /// The minimum role, or the allowed logins and teams.
    pub fn deployers(&self) -> Deployers {
        self.deployers
            .clone()
            .unwrap_or(Deployers::Role(Role::Write))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Deployers {
    Role(Role),
    List(Vec<String>),
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Triage => "triage",
            Role::Write => "write",
            Role::Maintain => "maintain",
            Role::Admin => "admin",
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::repo::RepoConfig;

    #[test]
    fn promote_from_names_another_environment_and_a_soak_duration() {
        let c = RepoConfig::parse(
            "environments:\n  staging: {}\n  production:\n    promote_from: { environment: staging, soak: 24h }\n",
        )
        .unwrap();
        let p = c.environments["production"].promote_from.clone().unwrap();
        assert_eq!(p.environment, "staging");
        assert_eq!(p.soak.0, std::time::Duration::from_secs(24 * 3600));

        let e = RepoConfig::parse(
            "environments:\n  production:\n    promote_from: { environment: production, soak: 1h }\n",
        )
        .unwrap_err();
        assert!(
            e.message.contains(
                "environments.production.promote_from.environment: `production` cannot soak in itself"
            ),
            "{e}"
        );
        let e = RepoConfig::parse(
            "environments:\n  production:\n    promote_from: { environment: stagign, soak: 1h }\n",
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("`stagign` is not one of the environments"),
            "{e}"
        );
        let e = RepoConfig::parse(
            "environments:\n  staging: {}\n  production:\n    promote_from: { environment: staging, soak: a day }\n",
        )
        .unwrap_err();
        assert!(e.message.contains("expected a duration"), "{e}");
        let e = RepoConfig::parse(
            "environments:\n  staging: {}\n  production:\n    promote_from: { environment: staging }\n",
        )
        .unwrap_err();
        assert!(e.message.contains("missing field `soak`"), "{e}");
        let e = RepoConfig::parse(
            "environments:\n  staging: {}\n  production:\n    promote_from: { environment: staging, soak: 1h, hours: 2 }\n",
        )
        .unwrap_err();
        assert!(e.message.contains("unknown field `hours`"), "{e}");
    }
}
