//! The one payload shipgate puts on the deployments it creates, and how it
//! reads the payload of any deployment (its own or another tool's).

use serde::{Deserialize, Deserializer, Serialize};

/// How the Action's smoke gate begins the description of the deployment
/// statuses it posts. A `failure` that carries it says the deployment went
/// out and its smoke checks failed, which asks for the environment's
/// automatic rollback (`auto_rollback: true`); a failure without it (the
/// build broke) leaves what runs alone.
pub const SMOKE_STATUS_MARK: &str = "shipgate smoke: ";

/// A deployment status that reports failed smoke checks of the Action:
/// `failure` with [`SMOKE_STATUS_MARK`]. Anyone who can post deployment
/// statuses can post one; what it may cause is bounded like any automatic
/// rollback (never past a newer deploy, a lock or the deploy decision).
pub fn is_smoke_failure(state: &str, description: Option<&str>) -> bool {
    state == "failure" && description.is_some_and(|d| d.starts_with(SMOKE_STATUS_MARK))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentKind {
    Deploy,
    Rollback,
}

impl DeploymentKind {
    /// As the payload spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentKind::Deploy => "deploy",
            DeploymentKind::Rollback => "rollback",
        }
    }
}

/// `payload` of a deployment. Deployment workflows read it (`kind`,
/// `pr`); shipgate reads it back to find its own deployments. A payload
/// written by someone else is read leniently: fields of another shape are
/// absent. Nothing in it is trusted for a decision unless the store says
/// shipgate created that deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentPayload {
    #[serde(default, deserialize_with = "lenient")]
    pub kind: Option<DeploymentKind>,
    /// The pull request (or issue) the command came from.
    #[serde(default, deserialize_with = "lenient")]
    pub pr: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    pub actor: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub comment_id: Option<i64>,
    /// The command line's id: a string, since it is a 64-bit hash and JSON
    /// readers that hold numbers as doubles (JavaScript) round past 2^53.
    /// Earlier versions wrote a number; both are read.
    #[serde(default, deserialize_with = "line_id")]
    pub line: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub previous_sha: Option<String>,
    /// Set when a maintainer deployed through a freeze with `force`.
    #[serde(default, deserialize_with = "lenient")]
    pub freeze_override: Option<String>,
    /// The command was given with `force` (its deployment protection rule
    /// request is decided with it too).
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "lenient_bool"
    )]
    pub force: bool,
    /// An automatic rollback (smoke checks failed after a deploy).
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "lenient_bool"
    )]
    pub auto: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub rolled_back_deployment: Option<i64>,
}

impl DeploymentPayload {
    /// Reads any deployment's payload; never fails.
    pub fn read(value: &serde_json::Value) -> DeploymentPayload {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("the payload serializes")
    }

    /// Whether this payload is the one of command line `line` of comment `comment_id`.
    pub fn is_run(&self, comment_id: i64, line: i64) -> bool {
        self.comment_id == Some(comment_id) && self.line.as_deref() == Some(&line.to_string())
    }
}

fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(lenient::<D, bool>(d)?.unwrap_or(false))
}

fn line_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_past_two_to_the_53_survives_as_a_string_and_old_numbers_still_match() {
        let line = 9_170_073_424_013_399_323_i64;
        let p = DeploymentPayload {
            comment_id: Some(7),
            line: Some(line.to_string()),
            ..Default::default()
        };
        assert_eq!(p.to_json()["line"], json!("9170073424013399323"));
        assert!(DeploymentPayload::read(&p.to_json()).is_run(7, line));
        let old = DeploymentPayload::read(&json!({ "comment_id": 7, "line": line }));
        assert!(old.is_run(7, line));
        assert!(!old.is_run(7, line - 1));
        assert!(!DeploymentPayload::default().is_run(7, line));
    }

    #[test]
    fn foreign_payloads_are_read_leniently() {
        let p = DeploymentPayload::read(&json!({ "kind": "canary", "pr": "twelve", "actor": 5 }));
        assert_eq!(p, DeploymentPayload::default());
        let p = DeploymentPayload::read(&json!("not an object"));
        assert_eq!(p, DeploymentPayload::default());
        let p = DeploymentPayload::read(
            &json!({ "kind": "rollback", "auto": true, "rolled_back_deployment": 9 }),
        );
        assert_eq!(p.kind, Some(DeploymentKind::Rollback));
        assert!(p.auto);
        assert_eq!(p.rolled_back_deployment, Some(9));
    }
}
