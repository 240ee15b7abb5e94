//! `shipgate check`: the gate checks, also run as the GitHub Action. The gates
//! themselves arrive with their own modules; this loads the repository config
//! and runs the selected gates.

use std::path::Path;

use crate::repo_config::{RepoConfig, CONFIG_PATH};

/// Gates `shipgate check` will know. None is implemented yet.
pub const KNOWN_GATES: &[&str] = &[];

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    #[error("unknown gate `{0}`; no gates are available in this version")]
    UnknownGate(String),
}

/// Loads the config at `path` (a missing file means defaults).
pub fn load_config(path: &Path) -> Result<RepoConfig, CheckError> {
    match std::fs::read_to_string(path) {
        Ok(text) => RepoConfig::parse(&text).map_err(|e| CheckError::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RepoConfig::default()),
        Err(e) => Err(CheckError::Config {
            path: path.display().to_string(),
            message: format!("cannot read: {e}"),
        }),
    }
}

/// Runs the selected gates; returns the lines to print.
pub fn run(gates: &[String], config_path: Option<&Path>) -> Result<Vec<String>, CheckError> {
    let path = config_path.unwrap_or(Path::new(CONFIG_PATH));
    let _config = load_config(path)?;
    if let Some(unknown) = gates.iter().find(|g| !KNOWN_GATES.contains(&g.as_str())) {
        return Err(CheckError::UnknownGate(unknown.clone()));
    }
    Ok(vec!["no gates selected: nothing to check".to_string()])
}
