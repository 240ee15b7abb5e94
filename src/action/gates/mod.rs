//! The Action's gates, one module each. Each returns a [`GateResult`]
//! (a [`crate::deploy::gates::Gate`] and what the Action reports with it);
//! [`crate::action::check`] runs them in the order asked.
//!
//! A gate does not obey what it judges: see [`crate::action::config`]. A
//! release is judged by the default branch's `release:` rules, not the
//! tagged commit's. Text from a config or a response reaches Markdown only
//! through [`crate::render::inline_text`].

pub mod freeze;
pub mod policy;
pub mod protection;
pub mod release;
pub mod secrets;
pub mod smoke;

pub use crate::action::request::GateResult;
