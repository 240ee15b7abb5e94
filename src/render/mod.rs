//! Everything shipgate writes for people — Markdown for comments, check runs
//! and job summaries, text for terminals and logs, JSON reports — comes
//! from here, one named function per piece, each pinned by a snapshot test
//! (`src/render/snapshots/`). One renderer for the server and the Action:
//! the deploy domain and the handlers hand it data, never Markdown.
//!
//! Text from outside shipgate reaches it only through [`inline_text`].

pub mod action;
pub mod chatops;
pub mod freeze;
pub mod gates;
pub mod policy;
pub mod protection;
pub mod release;
pub mod secrets;
pub mod smoke;

pub use crate::text::{inline_text, short};
pub use chatops::{
    render_deploy_reply, render_message, run_marker, DeployKind, DeployOutcome, DeployReply,
    DeploymentProgress,
};
pub use smoke::{smoke_json, smoke_markdown, smoke_text};
