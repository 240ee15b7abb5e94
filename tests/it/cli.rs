//! The command line through the built binary: what it does with its standard
//! streams (src/stdio.rs).

use std::process::{Command, Output, Stdio};

/// The binary with a clean environment (no Actions variables, no backtrace
/// setting) in `dir`.
fn shipgate(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipgate"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// The write end of a pipe whose read end is already closed: the first write
/// fails with EPIPE, as in `shipgate … | head -1` once head has exited. (The
/// read end is the stdin of `true`, which has exited; std::io::pipe is newer
/// than the crate's MSRV.)
fn closed_pipe() -> Stdio {
    let mut reader = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let writer = reader.stdin.take().unwrap();
    assert!(reader.wait().unwrap().success());
    Stdio::from(writer)
}

/// Runs `cmd` with stdout a closed pipe.
fn with_closed_stdout(mut cmd: Command) -> Output {
    cmd.stdout(closed_pipe()).output().unwrap()
}

fn assert_quiet_141(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert_eq!(stderr, "", "{what}: nothing on stderr");
    assert_eq!(
        out.status.code(),
        Some(141),
        "{what}: 128 + SIGPIPE, never a pass; stderr: {stderr}"
    );
}

/// A workspace with a file the secrets gate reports, so there is output.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    // Built here, so this file holds no key-shaped literal.
    let key = format!("AKIA{}", "Z4Q7RT5XNB2KQWPL");
    std::fs::write(
        dir.path().join("deploy.sh"),
        format!("export AWS_ACCESS_KEY_ID={key}\n"),
    )
    .unwrap();
    dir
}

#[test]
fn check_secrets_into_a_closed_pipe_exits_141_without_a_panic() {
    let ws = workspace();
    // As a sanity check, the same run into a real pipe prints the gate's lines.
    let full = shipgate(ws.path(), &["check", "secrets"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&full.stdout).contains("secrets"),
        "{full:?}"
    );
    let out = with_closed_stdout(shipgate(ws.path(), &["check", "secrets"]));
    assert_quiet_141("check secrets", &out);
}

#[test]
fn config_schema_and_help_into_a_closed_pipe_exit_141() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["config", "schema"][..], &["--help"], &["--version"]] {
        let out = with_closed_stdout(shipgate(dir.path(), args));
        assert_quiet_141(&args.join(" "), &out);
    }
}

#[test]
fn stderr_into_a_closed_pipe_exits_141_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // A config that does not exist: one line on stderr, status 2 normally.
    let out = shipgate(dir.path(), &["config", "validate", "missing.yml"])
        .stdout(Stdio::piped())
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_on_stdout_is_one_line_and_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = shipgate(dir.path(), &["config", "schema"])
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("shipgate: cannot write to stdout: "),
        "{stderr}"
    );
}
