//! git, run the one way shipgate runs it (the scanner and the Action's
//! gates): in a given directory, trusting that directory whoever owns it
//! (the Action's container runs as root on the runner's checkout), with
//! paths never quoted (`core.quotePath=false`; callers use git's
//! NUL-separated forms wherever it has them) and messages in English.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

/// At most this much of git's stderr is kept for an error message.
const STDERR_CAP: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started (not installed, not on `PATH`).
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// git ran and failed; `message` is the first line of its stderr.
    #[error("git {args}: {message}")]
    Failed { args: String, message: String },
    /// Reading git's output failed.
    #[error("git {args}: {message}")]
    Read { args: String, message: String },
}

/// A `git` command in `dir`, with shipgate's settings.
pub fn command(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args(["-c", "safe.directory=*", "-c", "core.quotePath=false"]);
    c
}

fn first_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("failed without a message");
    line.to_string()
}

/// Runs git to completion and returns its stdout.
pub fn output(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let out = command(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(GitError::Spawn)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(GitError::Failed {
            args: args.join(" "),
            message: first_line(&out.stderr),
        })
    }
}

/// Runs git to completion and returns its stdout as trimmed text.
pub fn text(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    output(dir, args).map(|o| String::from_utf8_lossy(&o).trim().to_string())
}

/// Whether git succeeds (`cat-file -e`, `merge-base --is-ancestor`).
pub fn succeeds(dir: &Path, args: &[&str]) -> Result<bool, GitError> {
    match output(dir, args) {
        Ok(_) => Ok(true),
        Err(GitError::Failed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs git and hands its stdout to `read` as it arrives, so output larger
/// than memory (a repository's whole history as patches) is never held at
/// once. If `read` fails, git is stopped.
pub fn stream<T>(
    dir: &Path,
    args: &[&str],
    read: impl FnOnce(&mut dyn BufRead) -> std::io::Result<T>,
) -> Result<T, GitError> {
    let joined = args.join(" ");
    let mut child = command(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(GitError::Spawn)?;
    let stderr = child.stderr.take().expect("piped");
    // Drain stderr beside stdout so git never blocks on a full pipe.
    let errors = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 8192];
        let mut stderr = stderr;
        while let Ok(n) = stderr.read(&mut chunk) {
            if n == 0 {
                break;
            }
            let room = STDERR_CAP.saturating_sub(kept.len());
            kept.extend_from_slice(&chunk[..n.min(room)]);
        }
        kept
    });
    let mut stdout = BufReader::with_capacity(256 * 1024, child.stdout.take().expect("piped"));
    let result = read(&mut stdout);
    if result.is_err() {
        let _ = child.kill();
    }
    drop(stdout);
    let status = child.wait();
    let stderr = errors.join().unwrap_or_default();
    let value = result.map_err(|e| GitError::Read {
        args: joined.clone(),
        message: e.to_string(),
    })?;
    match status {
        Ok(s) if s.success() => Ok(value),
        Ok(_) => Err(GitError::Failed {
            args: joined,
            message: first_line(&stderr),
        }),
        Err(e) => Err(GitError::Read {
            args: joined,
            message: e.to_string(),
        }),
    }
}

/// A full commit id (SHA-1 or SHA-256), so it can be passed to git as a
/// revision without being taken for an option or a ref name.
pub fn is_commit_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_ids_only() {
        assert!(is_commit_id(&"a".repeat(40)));
        assert!(is_commit_id(&"0".repeat(64)));
        for bad in [
            "HEAD",
            "--output=x",
            "main",
            &"g".repeat(40),
            &"a".repeat(41),
        ] {
            assert!(!is_commit_id(bad), "{bad}");
        }
    }
}
