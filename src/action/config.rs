//! The configuration the gates obey. In a pull request it comes from the
//! base commit (through git when the checkout has it, else through the
//! contents API), and the pull request's own config only adds what makes
//! gates stricter ([`judged_config`]). Paths the step writes stay inside the
//! workspace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::action::request::{client, CheckError, CheckRequest};
use crate::action::Runner;
use crate::config::repo::RepoConfig;
use crate::freeze::FreezeWindow;
use crate::github::content::FileRead;
use crate::github::Api;
use crate::secrets::git;

/// Whether `path` stays inside the workspace once symlinks are followed.
/// A pull request's checkout can make any file in it a symlink to anywhere
/// on the runner (`/proc/self/environ`, `$GITHUB_ENV`). A path that does
/// not exist (yet) is judged by its nearest ancestor that does.
fn resolves_inside(ws: &Path, path: &Path) -> bool {
    let Ok(ws) = ws.canonicalize() else {
        return true;
    };
    let mut at = path;
    let resolved = loop {
        let here = if at.as_os_str().is_empty() {
            Path::new(".")
        } else {
            at
        };
        if std::fs::symlink_metadata(here).is_ok() {
            // A dangling symlink does not resolve: it leads nowhere safe.
            break here.canonicalize();
        }
        match at.parent() {
            Some(parent) => at = parent,
            None => return true,
        }
    };
    resolved.is_ok_and(|r| r.starts_with(&ws))
}

/// Whether `path`, as written, names something inside the workspace.
fn named_inside(ws: &Path, path: &Path) -> bool {
    match (std::path::absolute(ws), std::path::absolute(path)) {
        (Ok(ws), Ok(path)) => path.starts_with(ws),
        _ => false,
    }
}

/// Refuses to write `path` when it is named inside the workspace but
/// leads out of it through a symlink the checkout holds.
pub fn check_output_path(ws: &Path, path: &Path, what: &str) -> Result<(), CheckError> {
    if named_inside(ws, path) && !resolves_inside(ws, path) {
        return Err(CheckError::Input(format!(
            "{what}: {} leads out of the workspace through a symbolic link; not writing through it",
            path.display()
        )));
    }
    Ok(())
}

/// Loads the config at `path` (a missing file means defaults). A config
/// named inside the workspace must stay there: a symlink out of it is an
/// error that does not quote what it points at.
pub fn load_config(ws: &Path, path: &Path) -> Result<RepoConfig, CheckError> {
    if named_inside(ws, path) && !resolves_inside(ws, path) {
        return Err(CheckError::Config {
            path: path.display().to_string(),
            message: "a symbolic link out of the workspace; not read".into(),
        });
    }
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

/// The configuration the gates obey.
#[derive(Debug, Clone, Default)]
pub struct GateConfig {
    /// The checked-out config; in a pull request, its base's with what the
    /// pull request adds that only makes gates stricter ([`judged_config`]).
    pub config: RepoConfig,
    /// Freeze windows a pull request adds to environments its base does not
    /// name: they apply when the `freeze` gate runs for that environment.
    pub added_freezes: BTreeMap<String, Vec<FreezeWindow>>,
    /// The fingerprints in `.shipgateignore` (in a pull request, its base's).
    pub ignored: Vec<String>,
    /// In a pull request, the base commit the config was read at.
    pub base: Option<String>,
}

/// What a pull request is judged by: its base's configuration, made
/// stricter by the pull request's own. Freeze windows it adds apply as
/// well, debug leftovers are reported when either asks for them, and the
/// secret rules it adds (`secrets.rules`) run beside the base's, which it
/// cannot remove or change: a rule of the pull request's with the id of
/// one of the base's is left out, so the base's stays as written.
/// Everything else (protection policies, `secrets.exclude`, the override
/// label, environments and their URLs and smoke checks) is the base's, so
/// a pull request cannot loosen the gates that judge it.
pub fn judged_config(
    base: RepoConfig,
    pr: &RepoConfig,
) -> (RepoConfig, BTreeMap<String, Vec<FreezeWindow>>) {
    let mut judged = base;
    let add = |to: &mut Vec<FreezeWindow>, from: &[FreezeWindow]| {
        for w in from {
            if !to.contains(w) {
                to.push(w.clone());
            }
        }
    };
    add(&mut judged.freeze.windows, &pr.freeze.windows);
    let mut added = BTreeMap::new();
    for (name, env) in &pr.environments {
        match judged.environments.get_mut(name) {
            Some(base_env) => add(&mut base_env.freeze, &env.freeze),
            None if !env.freeze.is_empty() => {
                added.insert(name.clone(), env.freeze.clone());
            }
            None => {}
        }
    }
    for rule in &pr.secrets.rules {
        if !judged.secrets.rules.iter().any(|r| r.id == rule.id) {
            judged.secrets.rules.push(rule.clone());
        }
    }
    let on = |v: Option<bool>| v.unwrap_or(true);
    judged.secrets.debug_leftovers =
        Some(on(judged.secrets.debug_leftovers) || on(pr.secrets.debug_leftovers));
    (judged, added)
}

/// The base commit of the pull request the step runs for, if it does.
fn pull_request_base(runner: &Runner) -> Result<Option<String>, CheckError> {
    let Some(pr) = runner.pull_request() else {
        return Ok(None);
    };
    match pr.base_sha() {
        Some(sha) if git::is_commit_id(sha) => Ok(Some(sha.to_string())),
        _ => Err(CheckError::Input(
            "the pull_request event has no base.sha: cannot read the configuration the pull request is judged by".into(),
        )),
    }
}

/// `file`'s path from the root of the repository checked out at `ws`
/// (forward slashes), to read it at another commit.
pub fn repo_path(ws: &Path, file: &Path) -> Result<String, CheckError> {
    let outside = || {
        CheckError::Input(format!(
            "{} is outside the repository: it cannot be read at another commit",
            file.display()
        ))
    };
    let rel = if file.is_absolute() {
        let ws = if ws.is_absolute() {
            ws.to_path_buf()
        } else {
            std::env::current_dir().map_err(|_| outside())?.join(ws)
        };
        file.strip_prefix(&ws).map_err(|_| outside())?.to_path_buf()
    } else {
        file.to_path_buf()
    };
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::CurDir => {}
            _ => return Err(outside()),
        }
    }
    // The workspace may be a directory inside the repository.
    let prefix = git::text(ws, &["rev-parse", "--show-prefix"]).unwrap_or_default();
    Ok(format!("{prefix}{}", parts.join("/")))
}

/// Where files are read at a commit that is not the one checked out.
pub enum CommitReader {
    Git {
        ws: PathBuf,
        commit: String,
    },
    Api {
        api: Api,
        repo: String,
        commit: String,
    },
}

impl CommitReader {
    /// Through git when the checkout has `commit`, else through the
    /// contents API when there is a token; `what` says which commit it is.
    pub fn new(
        runner: &Runner,
        req: &CheckRequest,
        commit: &str,
        what: &str,
    ) -> Result<CommitReader, CheckError> {
        let ws = runner.workspace();
        if git::succeeds(&ws, &["cat-file", "-e", &format!("{commit}^{{commit}}")]).unwrap_or(false)
        {
            return Ok(CommitReader::Git {
                ws,
                commit: commit.to_string(),
            });
        }
        if req.token.is_none() {
            return Err(CheckError::Input(format!(
                "{what} {} is not in the checkout and there is no token to read it through the API: fetch it (`fetch-depth: 0`) or pass `token`",
                crate::render::short(commit)
            )));
        }
        let (_, api, repo) = client(runner, req, "config")?;
        Ok(CommitReader::Api {
            api,
            repo,
            commit: commit.to_string(),
        })
    }

    /// The text of `path` (from the repository's root), `None` if the
    /// commit has no such file.
    pub async fn read(&self, path: &str) -> Result<Option<String>, CheckError> {
        match self {
            CommitReader::Git { ws, commit } => {
                let spec = format!("{commit}:{path}");
                let failed = |e: git::GitError| CheckError::Input(format!("{path}: {e}"));
                if !git::succeeds(ws, &["cat-file", "-e", &spec]).map_err(failed)? {
                    return Ok(None);
                }
                let bytes = git::output(ws, &["cat-file", "blob", &spec]).map_err(failed)?;
                String::from_utf8(bytes).map(Some).map_err(|_| {
                    CheckError::Input(format!(
                        "{path} at {} is not UTF-8",
                        crate::render::short(commit)
                    ))
                })
            }
            CommitReader::Api { api, repo, commit } => {
                match api.get_file(repo, path, commit, None).await {
                    Ok(FileRead::Found(f)) => Ok(Some(f.text)),
                    Ok(FileRead::Missing) => Ok(None),
                    Ok(FileRead::NotModified) => Err(CheckError::Input(format!(
                        "{path}: GitHub answered 304 to a request without an etag"
                    ))),
                    Err(e) => Err(CheckError::Input(format!(
                        "cannot read {path} at {}: {e}",
                        crate::render::short(commit)
                    ))),
                }
            }
        }
    }
}

/// The configuration the gates obey (see [`GateConfig`]).
pub async fn gate_config(
    runner: &Runner,
    req: &CheckRequest,
    checked_out: RepoConfig,
) -> Result<GateConfig, CheckError> {
    let ws = runner.workspace();
    let wants_ignore = req.gates.iter().any(|g| g == "secrets");
    let Some(base) = pull_request_base(runner)? else {
        return Ok(GateConfig {
            config: checked_out,
            ignored: if wants_ignore {
                crate::secrets::load_ignore_file(&ws)
            } else {
                Vec::new()
            },
            ..GateConfig::default()
        });
    };
    let reader = CommitReader::new(runner, req, &base, "the pull request's base commit")?;
    let config_path = repo_path(&ws, &req.config)?;
    let base_config = match reader.read(&config_path).await? {
        Some(text) => RepoConfig::parse(&text).map_err(|e| CheckError::Config {
            path: format!(
                "{config_path} at the base commit {}",
                crate::render::short(&base)
            ),
            message: e.to_string(),
        })?,
        None => RepoConfig::default(),
    };
    let ignored = if wants_ignore {
        let path = repo_path(&ws, Path::new(".shipgateignore"))?;
        reader
            .read(&path)
            .await?
            .map(|text| crate::secrets::parse_ignore_file(&text))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let (config, added_freezes) = judged_config(base_config, &checked_out);
    Ok(GateConfig {
        config,
        added_freezes,
        ignored,
        base: Some(base),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> RepoConfig {
        RepoConfig::parse(yaml).unwrap()
    }

    #[test]
    fn a_pull_request_only_makes_its_gates_stricter() {
        let base = config(
            "environments:\n  production:\n    freeze:\n      - { days: [fri] }\nprotection:\n  branches:\n    main: { required_approvals: 2 }\nsecrets:\n  exclude: [vendor/]\n  debug_leftovers: false\nfreeze:\n  override_label: ok-to-ship\n",
        );
        let pr = config(
            "environments:\n  production:\n    freeze:\n      - { days: [fri] }\n      - { days: [mon] }\n  preview:\n    freeze:\n      - { days: [tue] }\nsecrets:\n  exclude: [leak.txt]\n  debug_leftovers: true\nfreeze:\n  override_label: anything\n  windows:\n    - { days: [sun] }\n",
        );
        let (judged, added) = judged_config(base.clone(), &pr);
        assert_eq!(judged.protection, base.protection, "the PR deleted it");
        assert_eq!(judged.secrets.exclude, ["vendor/"]);
        assert_eq!(judged.secrets.debug_leftovers, Some(true));
        assert_eq!(judged.freeze.override_label.as_deref(), Some("ok-to-ship"));
        assert_eq!(judged.freeze.windows, pr.freeze.windows);
        assert_eq!(
            judged.environments["production"].freeze.len(),
            2,
            "fri once, mon added"
        );
        assert!(!judged.environments.contains_key("preview"));
        assert_eq!(added["preview"], pr.environments["preview"].freeze);
        assert_eq!(judged.default_environment(), base.default_environment());
    }

    #[test]
    fn repo_paths_stay_inside_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        assert_eq!(
            repo_path(ws, &ws.join(".github/shipgate.yml")).unwrap(),
            ".github/shipgate.yml"
        );
        assert_eq!(
            repo_path(ws, Path::new("./deploy/shipgate.yml")).unwrap(),
            "deploy/shipgate.yml"
        );
        for outside in [Path::new("../x.yml"), Path::new("/etc/passwd")] {
            assert!(repo_path(ws, outside).is_err(), "{}", outside.display());
        }
    }

    #[cfg(unix)]
    #[test]
    fn paths_that_lead_out_of_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::write(dir.path().join("outside"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), ws.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), ws.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), ws.join("dangling")).unwrap();
        for inside in ["sub", "sub/new.sarif", "not/there/yet.yml", "x.sarif"] {
            assert!(resolves_inside(&ws, &ws.join(inside)), "{inside}");
        }
        for out in ["link", "dirlink/new.sarif", "dangling"] {
            assert!(!resolves_inside(&ws, &ws.join(out)), "{out}");
            assert!(check_output_path(&ws, &ws.join(out), "sarif").is_err());
        }
        // Named outside on purpose (a terminal's `--config /etc/x.yml`): not ours to refuse.
        assert!(check_output_path(&ws, &dir.path().join("outside"), "x").is_ok());
    }
}
