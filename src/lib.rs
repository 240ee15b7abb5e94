//! shipgate: a deployment gatekeeper for GitHub.
//!
//! One library, two faces: the webhook server (`shipgate serve`) and the gate
//! checks (`shipgate check`, also run as a GitHub Action). `main.rs` only calls
//! [`cli::run`].

// Every line the CLI prints goes through `outln!`/`errln!` (src/stdio.rs):
// the std macros panic on a closed pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod action;
pub mod admin;
pub mod backoff;
pub mod check;
pub mod cli;
pub mod commands;
pub mod deploy;
pub mod events;
pub mod freeze;
pub mod gates;
pub mod github;
pub mod handlers;
pub mod ingress;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod redeliver;
pub mod render;
pub mod repo_config;
pub mod secrets;
pub mod secrets_gate;

pub mod server;
pub mod settings;
pub mod signature;
pub mod smoke;
pub mod stdio;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod webhook_send;
pub mod worker;

/// Milliseconds since the Unix epoch: the one clock the store and the worker use.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
