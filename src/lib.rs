//! shipgate: a deployment gatekeeper for GitHub.
//!
//! One library, two faces: the webhook server (`shipgate serve`) and the gate
//! checks (`shipgate check`, also run as a GitHub Action). `main.rs` only calls
//! [`cli::run`].

// Every line the CLI prints goes through `outln!`/`errln!` (src/stdio.rs):
// the std macros panic on a closed pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

// Layers, lowest first; a module imports only from its own layer or lower
// ones (tests/it/layering.rs holds the table and enforces it):
// foundations of text and time; the engines; metrics and telemetry; the
// store and the GitHub client; configuration; the deploy domain; the
// renderer; the webhook handlers; the server and the Action; the CLI.
pub mod backoff;
pub mod duration;
pub mod stdio;
pub mod text;

pub mod freeze;
pub mod secrets;
pub mod smoke;

pub mod metrics;
pub mod telemetry;

pub mod github;
pub mod notify;
pub mod store;

pub mod config;

pub mod deploy;

pub mod render;

pub mod handlers;

pub mod action;
pub mod serve;

pub mod cli;

/// Milliseconds since the Unix epoch: the one clock the store and the worker use.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
