//! Everything shipgate writes for people — Markdown for comments, check runs
//! and job summaries, text for terminals and logs, JSON reports — comes
//! from here, one named function per piece, each pinned by a snapshot test
//! (`src/render/snapshots/`). One renderer for the server and the Action:
//! the deploy domain and the handlers hand it data, never Markdown.
//!
//! Text from outside shipgate reaches it only through [`inline_text`].

pub mod action;
pub mod admin;
pub mod chatops;
pub mod cli;
pub mod commands;
pub mod config;
pub mod freeze;
pub mod gates;
pub mod notify;
pub mod policy;
pub mod previews;
pub mod previews_closed;
pub mod protection;
pub mod release;
pub mod secrets;
pub mod smoke;
pub mod soak;

pub use crate::text::{inline_text, short};
pub use chatops::{
    render_deploy_reply, render_message, run_marker, DeployKind, DeployOutcome, DeployReply,
    DeploymentProgress,
};
pub use smoke::{smoke_json, smoke_markdown, smoke_text};

/// An http(s) URL as a Markdown link target: characters that would end the
/// link or the table cell are percent-encoded; anything else is no link.
pub fn link_target(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    for c in url.trim().chars() {
        match c {
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '|' => out.push_str("%7C"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '[' => out.push_str("%5B"),
            ']' => out.push_str("%5D"),
            c if c.is_whitespace() || c.is_control() => {
                for b in c.encode_utf8(&mut [0; 4]).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// A URL from outside shipgate (a deployment status, a log), shown as a
/// link when it is http(s), else as escaped text.
pub fn link(url: &str) -> String {
    match link_target(url) {
        Some(target) => format!("[{}]({target})", inline_text(url).replace(['[', ']'], "")),
        None => inline_text(url),
    }
}
