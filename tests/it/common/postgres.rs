//! The PostgreSQL the tests use.
//!
//! `SHIPGATE_TEST_POSTGRES_URL` names a server to use. Without it, each test
//! process starts a throwaway cluster of its own (`initdb` and `pg_ctl` in a
//! temporary directory, on a free loopback port) the first time a test asks,
//! and stops it when the process exits. Without PostgreSQL's programs the
//! PostgreSQL tests are skipped with one loud line, except with `CI=true`,
//! where a missing PostgreSQL fails them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The user the tests connect as; `initdb` makes it the superuser.
const SUPERUSER: &str = "postgres";

/// What a test gets: a server's URL, or why there is none.
static SERVER: OnceLock<Result<String, String>> = OnceLock::new();

/// Holds the write end of the pipe the cluster's keeper reads: when this
/// process exits, the pipe closes and the keeper stops the cluster.
static KEEPER: Mutex<Option<Child>> = Mutex::new(None);

/// The base URL of a PostgreSQL for the tests, or `None` when there is none
/// and the tests that need it are to be skipped (announced once, loudly).
/// Panics with `CI=true` instead of skipping.
pub fn base_url() -> Option<String> {
    let server = SERVER.get_or_init(|| match std::env::var("SHIPGATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => throwaway_cluster(),
    });
    match server {
        Ok(url) => Some(url.clone()),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and no PostgreSQL for the tests: {why}")
        }
        Err(why) => {
            static ANNOUNCED: OnceLock<()> = OnceLock::new();
            ANNOUNCED.get_or_init(|| {
                // Straight to the stream: the test harness captures
                // `eprintln!` of a test that passes.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** SKIPPING the PostgreSQL tests: {why}. Install PostgreSQL's server \
                     programs (Debian: apt-get install postgresql) or set \
                     SHIPGATE_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/DB ***\n"
                );
            });
            None
        }
    }
}

/// Where `initdb` and `pg_ctl` are: `SHIPGATE_TEST_PG_BINDIR`, else `PATH`,
/// else Debian's `/usr/lib/postgresql/<newest>/bin`.
fn bindir() -> Result<PathBuf, String> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(dir) = std::env::var("SHIPGATE_TEST_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return if has_both(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "SHIPGATE_TEST_PG_BINDIR={} has no initdb and pg_ctl",
                dir.display()
            ))
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path.into_iter().find(|d| has_both(d)) {
        return Ok(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_both(dir))
        .collect();
    debian.sort();
    debian
        .pop()
        .map(|(_, dir)| dir)
        .ok_or_else(|| "initdb and pg_ctl are not on PATH nor in /usr/lib/postgresql".into())
}

/// `initdb` refuses to run as root: then the cluster's programs run as the
/// `postgres` account (which Debian's package creates), through `runuser`.
fn as_cluster_owner(program: &Path, as_root: bool) -> Command {
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn run(mut cmd: Command, what: &str, log: &Path) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let server_log = std::fs::read_to_string(log).unwrap_or_default();
    Err(format!(
        "{what} failed ({}): {}{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server_log
    ))
}

fn throwaway_cluster() -> Result<String, String> {
    let bin = bindir()?;
    let root = tempfile::Builder::new()
        .prefix("shipgate-test-pg.")
        .tempdir()
        .map_err(|e| format!("cannot make a directory for the cluster: {e}"))?
        // Removed by the keeper, after the cluster has stopped.
        .keep();
    let data = root.join("data");
    let log = root.join("server.log");
    let as_root = running_as_root();
    if as_root {
        // The cluster's owner must be able to write there.
        run(
            {
                let mut c = Command::new("chown");
                c.arg("postgres:").arg(&root);
                c
            },
            "chown postgres: (initdb cannot run as root)",
            &log,
        )?;
    }
    let mut initdb = as_cluster_owner(&bin.join("initdb"), as_root);
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync"])
        .arg("--no-instructions");
    run(initdb, "initdb", &log)?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))?
        .port();
    let mut start = as_cluster_owner(&bin.join("pg_ctl"), as_root);
    start
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .arg("-w")
        .arg("-o")
        // Durability is not what these tests are about; speed is. The
        // socket lives in the cluster's directory, not /var/run.
        .arg(format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            root.display()
        ))
        .arg("start");
    run(start, "pg_ctl start", &log)?;

    // The keeper waits for this process to end (its stdin closes), then
    // stops the cluster and removes its directory.
    let stop = format!(
        "cat >/dev/null; {runas}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{root}'",
        runas = if as_root { "runuser -u postgres -- " } else { "" },
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        root = root.display(),
    );
    let keeper = Command::new("sh")
        .arg("-c")
        .arg(stop)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the cluster's keeper: {e}"))?;
    *KEEPER.lock().unwrap() = Some(keeper);
    Ok(format!("postgres://{SUPERUSER}@127.0.0.1:{port}/postgres"))
}
