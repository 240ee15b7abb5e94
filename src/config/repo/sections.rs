//! The smaller top-level sections of the file: `release`, `preview`,
//! `protection`, `secrets` and `freeze`. Each is a plain struct of settings;
//! they are apart from `repo.rs` so the file's root and its parsing read alone.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SmokeConfig;
use crate::freeze::FreezeWindow;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseConfig {
    /// Regular expression release tags must match (default: SemVer `v1.2.3`, optional pre-release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_pattern: Option<String>,
    /// The tag must carry a verified signature.
    #[serde(default)]
    pub require_signed: bool,
    /// The changelog that must have a section for the version (default `CHANGELOG.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog: Option<String>,
    /// The branch release tags must be on (default: the default branch), for
    /// teams that tag from `main` while `develop` is the default branch. The
    /// `release:` rules are still read from the default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewConfig {
    /// Post the preview comment on pull requests.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Hosts (globs) that may be probed; default: the common preview providers
    /// (`*.vercel.app`, `*.netlify.app`, …) and the hosts of `environments.*.url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    /// Probe URLs that resolve to loopback, private or link-local addresses.
    #[serde(default)]
    pub allow_private: bool,
    /// Smoke checks for previews (default: the top-level `smoke`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtectionConfig {
    /// `enforce` restores drift; `audit` only reports it.
    #[serde(default)]
    pub mode: ProtectionMode,
    /// Desired protection per branch; keys not given are left as GitHub has them.
    #[serde(default)]
    pub branches: BTreeMap<String, BranchProtection>,
    /// Repository rulesets by name (branch and tag patterns, bypass
    /// actors). Rulesets with other names are left alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rulesets: BTreeMap<String, super::RulesetConfig>,
}

impl ProtectionConfig {
    /// Whether the section asks for anything (branches or rulesets).
    pub fn is_empty(&self) -> bool {
        self.branches.is_empty() && self.rulesets.is_empty()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtectionMode {
    #[default]
    Enforce,
    Audit,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchProtection {
    pub required_approvals: Option<u32>,
    pub dismiss_stale_reviews: Option<bool>,
    pub require_code_owner_reviews: Option<bool>,
    pub require_last_push_approval: Option<bool>,
    pub required_checks: Option<Vec<String>>,
    pub strict: Option<bool>,
    pub enforce_admins: Option<bool>,
    pub allow_force_pushes: Option<bool>,
    pub allow_deletions: Option<bool>,
    pub required_linear_history: Option<bool>,
    pub required_conversation_resolution: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Paths (gitignore syntax) never scanned.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Report debug leftovers (`console.log`, `dbg!`, `pdb.set_trace()`, …) as warnings (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_leftovers: Option<bool>,
    /// The repository's own content rules, scanned with the built-in ones.
    /// In a pull request, the base's rules apply and the pull request may
    /// add its own; it cannot take the base's away.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<crate::secrets::CustomRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeConfig {
    /// Freeze windows for every environment.
    #[serde(default)]
    pub windows: Vec<FreezeWindow>,
    /// A pull request label that turns the Action's `freeze` failure into a
    /// warning (default `freeze-override`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_label: Option<String>,
}

impl Default for PreviewConfig {
    fn default() -> Self {
        PreviewConfig {
            enabled: true,
            allowed_hosts: None,
            allow_private: false,
            smoke: None,
        }
    }
}

fn yes() -> bool {
    true
}
