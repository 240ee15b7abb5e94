//! The command line's own lines: what `shipgate check`, `config validate`,
//! `migrate` and `webhook send` say when they succeed. (Errors are one line
//! each, from the error's own type.)

/// `shipgate check` with no gate named and no `gates` input.
pub const NO_GATES: &str = "no gates selected: nothing to check";

/// `shipgate config validate` on a valid file.
pub fn config_valid(path: &str, environments: usize) -> String {
    format!("{path}: valid ({environments} environment(s))")
}

/// `shipgate migrate` done; the URL comes without its password.
pub fn migrations_applied(redacted_url: &str) -> String {
    format!("migrations applied to {redacted_url}")
}

/// `shipgate webhook send`: what the server answered.
pub fn server_answer(status: u16, body: &str) -> String {
    format!("{status} {}", crate::render::admin::terminal_text(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_lines() {
        insta::assert_snapshot!([
            NO_GATES.to_string(),
            config_valid(".github/shipgate.yml", 2),
            migrations_applied("postgres://app:****@db/shipgate"),
            server_answer(202, "{\"queued\":true}\u{1b}[2J"),
        ]
        .join("\n"));
    }
}
