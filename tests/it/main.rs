//! The integration tests: one binary, one module per area, so the harness
//! (`common`) and the library are compiled and linked once, not once per
//! file. Run one area with `cargo test --test it chatops::`.

#[macro_use]
mod common;

mod action;
mod admin;
mod chatops;
mod cli;
mod examples;
mod faults;
mod flows;
mod fuzz_regressions;
mod layering;
mod load;
mod notify;
mod previews;
mod previews_retired;
mod processes;
mod protection;
mod protection_rules;
mod redeliver;
mod release_branch;
mod rollbacks;
mod rulesets;
mod secret_rules;
mod secrets;
mod security;
mod server;
mod smoke;
mod soak;
mod store_contract;
mod topology;
