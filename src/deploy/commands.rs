//! The ChatOps command parser.
//!
//! A command is a line of a comment that starts with `/`. Lines in fenced or
//! indented code blocks, block quotes and inline code are not commands. A
//! line whose command name is close to a known one (a typo) is an error with
//! a suggestion; other `/words` belong to other bots and are ignored.

use std::time::Duration;

use crate::duration::DurationText;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Deploy {
        env: Option<String>,
        git_ref: Option<String>,
        force: bool,
        queue: bool,
    },
    Rollback {
        env: String,
        to: Option<RollbackTarget>,
        force: bool,
    },
    Lock {
        env: String,
        ttl: Option<Duration>,
        reason: Option<String>,
    },
    Unlock {
        env: String,
    },
    Status {
        env: Option<String>,
    },
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    Ref(String),
    Deployment(u64),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Deploy { .. } => "deploy",
            Command::Rollback { .. } => "rollback",
            Command::Lock { .. } => "lock",
            Command::Unlock { .. } => "unlock",
            Command::Status { .. } => "status",
            Command::Help => "help",
        }
    }

    /// The environment the command names, if any.
    pub fn env(&self) -> Option<&str> {
        match self {
            Command::Deploy { env, .. } | Command::Status { env } => env.as_deref(),
            Command::Rollback { env, .. } | Command::Lock { env, .. } | Command::Unlock { env } => {
                Some(env)
            }
            Command::Help => None,
        }
    }
}

/// Usage lines, for `/help` and for errors.
pub const USAGE: &[(&str, &str, &str)] = &[
    ("deploy", "/deploy [ENV] [ref=REF] [queue] [force]", "deploy the PR's head (or REF) to ENV; `queue` waits for a lock; `force` overrides a freeze or a soak (maintain/admin)"),
    ("rollback", "/rollback ENV [to=REF|DEPLOYMENT_ID] [force]", "redeploy the last good deployment of ENV (or the given one)"),
    ("lock", "/lock ENV [ttl=DURATION] [REASON...]", "hold ENV for this PR until /unlock, the TTL or the PR closing"),
    ("unlock", "/unlock ENV", "release ENV's lock (its holder, or maintain/admin)"),
    ("status", "/status [ENV]", "current deployment, lock, freeze and queue"),
    ("help", "/help", "this help"),
];

fn usage(name: &str) -> &'static str {
    USAGE
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, u, _)| *u)
        .unwrap_or("/help")
}

/// A line that looked like one of our commands but did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One command line of a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The line with whitespace normalised, used to tell new lines of an
    /// edited comment from old ones.
    pub text: String,
    pub parsed: Result<Command, ParseError>,
}

/// The closest of `candidates` to `word`, if it is close enough to be a typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&word, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, c)| *d > 0 && *d <= 2.min(c.len().saturating_sub(1)).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

const NAMES: &[&str] = &["deploy", "rollback", "lock", "unlock", "status", "help"];

/// A word of the comment, quoted back in a reply: it must not mention anyone.
fn shown(word: &str) -> String {
    crate::text::inline_text(word)
}

/// The command lines of a comment body, in order.
pub fn parse_comment(body: &str) -> Vec<CommandLine> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    for raw in body.lines() {
        let trimmed = raw.trim_start();
        // Fenced code: ``` or ~~~ opens, the same marker closes.
        for marker in ["```", "~~~"] {
            if trimmed.starts_with(marker) {
                fence = match fence {
                    None => Some(marker),
                    Some(open) if open == marker => None,
                    other => other,
                };
            }
        }
        if fence.is_some() || trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            continue;
        }
        // Indented code (4 spaces or a tab), block quotes and inline code never start with `/`.
        let indent = raw.len() - trimmed.len();
        if indent >= 4 || raw.starts_with('\t') || !trimmed.starts_with('/') {
            continue;
        }
        let words: Vec<&str> = trimmed[1..].split_whitespace().collect();
        let Some(first) = words.first() else { continue };
        let name = first.to_ascii_lowercase();
        let text = format!("/{}", words.join(" "));
        let parsed = if NAMES.contains(&name.as_str()) {
            parse_command(&name, &words[1..])
        } else if let Some(suggestion) = did_you_mean(&name, NAMES.iter().copied()) {
            Err(ParseError {
                message: format!(
                    "unknown command `/{}`; did you mean `/{suggestion}`?",
                    shown(first)
                ),
            })
        } else {
            // Not ours (another bot's command, or a path).
            continue;
        };
        out.push(CommandLine { text, parsed });
    }
    out
}

fn parse_command(name: &str, args: &[&str]) -> Result<Command, ParseError> {
    let args = Args::split(name, args)?;
    match name {
        "deploy" => {
            args.at_most(1)?;
            Ok(Command::Deploy {
                env: args.positional.first().map(|s| s.to_string()),
                git_ref: args.key("ref"),
                force: args.flag("force"),
                queue: args.flag("queue"),
            })
        }
        "rollback" => {
            let env = args.env()?;
            args.at_most(1)?;
            let to = args.key("to").map(|t| match t.parse::<u64>() {
                Ok(id) if !t.starts_with('0') && t.len() < 16 => RollbackTarget::Deployment(id),
                _ => RollbackTarget::Ref(t),
            });
            Ok(Command::Rollback {
                env,
                to,
                force: args.flag("force"),
            })
        }
        "lock" => {
            let env = args.env()?;
            let ttl = match args.key("ttl") {
                None => None,
                Some(t) => Some(
                    DurationText::parse(&t)
                        .map_err(|m| ParseError {
                            message: format!("ttl: {}", shown(&m)),
                        })?
                        .0,
                ),
            };
            let reason = args.positional[1..].join(" ");
            Ok(Command::Lock {
                env,
                ttl,
                reason: (!reason.is_empty()).then_some(reason),
            })
        }
        "unlock" => {
            let env = args.env()?;
            args.at_most(1)?;
            Ok(Command::Unlock { env })
        }
        "status" => {
            args.at_most(1)?;
            Ok(Command::Status {
                env: args.positional.first().map(|s| s.to_string()),
            })
        }
        _ => Ok(Command::Help),
    }
}

/// The `key=` arguments each command knows.
fn known_keys(name: &str) -> &'static [&'static str] {
    match name {
        "deploy" => &["ref"],
        "rollback" => &["to"],
        "lock" => &["ttl"],
        _ => &[],
    }
}

/// The flags each command knows.
fn known_flags(name: &str) -> &'static [&'static str] {
    match name {
        "deploy" => &["force", "queue"],
        "rollback" => &["force"],
        _ => &[],
    }
}

/// One command's arguments, sorted: the `key=value` pairs and flags it
/// knows, and the rest (the environment, a lock's reason) in order.
struct Args<'a> {
    name: &'a str,
    positional: Vec<&'a str>,
    keyed: Vec<(&'static str, &'a str)>,
    flags: Vec<&'static str>,
}

impl<'a> Args<'a> {
    /// Sorts `args`; an unknown, empty or repeated `key=` is an error.
    fn split(name: &'a str, args: &[&'a str]) -> Result<Self, ParseError> {
        let err = |message: String| Err(ParseError { message });
        let keys = known_keys(name);
        let flags = known_flags(name);
        let mut split = Args {
            name,
            positional: Vec::new(),
            keyed: Vec::new(),
            flags: Vec::new(),
        };
        for (i, arg) in args.iter().enumerate() {
            if name == "lock" && !split.positional.is_empty() && !arg.starts_with("ttl=") {
                // Everything after ENV (but ttl=) is the reason.
                split.positional.extend_from_slice(&args[i..]);
                break;
            }
            if let Some((k, v)) = arg.split_once('=') {
                let key = k.to_ascii_lowercase();
                if !keys.contains(&key.as_str()) {
                    let hint = did_you_mean(&key, keys.iter().copied())
                        .map(|s| format!("; did you mean `{s}=`?"))
                        .unwrap_or_default();
                    return err(format!(
                        "unknown argument `{}` for `/{name}`{hint} (usage: `{}`)",
                        shown(arg),
                        usage(name)
                    ));
                }
                if v.is_empty() {
                    return err(format!(
                        "`{}=` needs a value (usage: `{}`)",
                        shown(k),
                        usage(name)
                    ));
                }
                if split.keyed.iter().any(|(existing, _)| *existing == key) {
                    return err(format!("`{}=` is given twice", shown(k)));
                }
                split
                    .keyed
                    .push((keys.iter().find(|k| **k == key).copied().unwrap_or(""), v));
            } else if flags.contains(&arg.to_ascii_lowercase().as_str()) {
                split.flags.push(
                    flags
                        .iter()
                        .find(|f| **f == arg.to_ascii_lowercase())
                        .copied()
                        .unwrap_or(""),
                );
            } else {
                split.positional.push(arg);
            }
        }
        Ok(split)
    }

    fn key(&self, k: &str) -> Option<String> {
        self.keyed
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string())
    }

    fn flag(&self, f: &str) -> bool {
        self.flags.contains(&f)
    }

    /// The environment, the first positional argument, which the command needs.
    fn env(&self) -> Result<String, ParseError> {
        let name = self.name;
        self.positional
            .first()
            .map(|s| s.to_string())
            .ok_or_else(|| ParseError {
                message: format!("`/{name}` needs an environment (usage: `{}`)", usage(name)),
            })
    }

    /// No more than `n` positional arguments; the first extra one is an error.
    fn at_most(&self, n: usize) -> Result<(), ParseError> {
        let name = self.name;
        match self.positional.get(n) {
            Some(extra) => {
                let hint = did_you_mean(extra, known_flags(name).iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                Err(ParseError {
                    message: format!(
                        "unexpected argument `{}` for `/{name}`{hint} (usage: `{}`)",
                        shown(extra),
                        usage(name)
                    ),
                })
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(body: &str) -> Result<Command, ParseError> {
        let lines = parse_comment(body);
        assert_eq!(lines.len(), 1, "{body:?} gave {lines:?}");
        lines.into_iter().next().unwrap().parsed
    }

    fn error(body: &str) -> String {
        only(body).unwrap_err().message
    }

    #[test]
    fn words_quoted_back_cannot_mention_anyone() {
        let e = error("/deploy staging x`@acme/everyone`");
        assert!(!e.contains("@acme"), "{e}");
        assert!(
            e.starts_with("unexpected argument `x`@\u{2060}acme/everyone``"),
            "{e}"
        );
        let e = error("/deploy staging @acme/sre=1");
        assert!(!e.contains("@acme"), "{e}");
        let e = error("/lock production ttl=@acme");
        assert!(!e.contains("@acme"), "{e}");
    }

    #[test]
    fn deploy_forms() {
        assert_eq!(
            only("/deploy"),
            Ok(Command::Deploy {
                env: None,
                git_ref: None,
                force: false,
                queue: false
            })
        );
        assert_eq!(
            only("/deploy production ref=v1.2.0 force queue"),
            Ok(Command::Deploy {
                env: Some("production".into()),
                git_ref: Some("v1.2.0".into()),
                force: true,
                queue: true
            })
        );
        assert_eq!(
            only("  /Deploy   staging  "),
            Ok(Command::Deploy {
                env: Some("staging".into()),
                git_ref: None,
                force: false,
                queue: false
            })
        );
    }

    #[test]
    fn other_commands() {
        assert_eq!(
            only("/rollback production to=1234"),
            Ok(Command::Rollback {
                env: "production".into(),
                to: Some(RollbackTarget::Deployment(1234)),
                force: false
            })
        );
        assert_eq!(
            only("/rollback production to=abc1234"),
            Ok(Command::Rollback {
                env: "production".into(),
                to: Some(RollbackTarget::Ref("abc1234".into())),
                force: false
            })
        );
        assert_eq!(
            only("/lock production ttl=2h database migration in progress"),
            Ok(Command::Lock {
                env: "production".into(),
                ttl: Some(Duration::from_secs(7200)),
                reason: Some("database migration in progress".into())
            })
        );
        assert_eq!(
            only("/lock staging"),
            Ok(Command::Lock {
                env: "staging".into(),
                ttl: None,
                reason: None
            })
        );
        assert_eq!(
            only("/unlock staging"),
            Ok(Command::Unlock {
                env: "staging".into()
            })
        );
        assert_eq!(only("/status"), Ok(Command::Status { env: None }));
        assert_eq!(only("/help"), Ok(Command::Help));
    }

    #[test]
    fn several_commands_run_in_order_and_prose_is_ignored() {
        let lines = parse_comment(
            "Looks good!\n/lock staging\nthen\n/deploy staging\n/cc @octocat\n/etc/hosts is fine",
        );
        let names: Vec<_> = lines
            .iter()
            .map(|l| l.parsed.as_ref().unwrap().name())
            .collect();
        assert_eq!(names, ["lock", "deploy"]);
    }

    #[test]
    fn code_blocks_quotes_and_inline_code_are_not_commands() {
        let body = "```\n/deploy production\n```\n> /deploy production\n    /deploy production\n`/deploy production`\n~~~sh\n/rollback production\n~~~\n";
        assert!(parse_comment(body).is_empty(), "{:?}", parse_comment(body));
        assert_eq!(parse_comment("```\n/deploy x\n```\n/status").len(), 1);
    }

    #[test]
    fn typos_get_suggestions() {
        assert_eq!(
            error("/deplyo staging"),
            "unknown command `/deplyo`; did you mean `/deploy`?"
        );
        assert_eq!(
            error("/rollbak production"),
            "unknown command `/rollbak`; did you mean `/rollback`?"
        );
        assert!(error("/deploy staging rf=main")
            .contains("unknown argument `rf=main` for `/deploy`; did you mean `ref=`?"));
        assert!(error("/deploy staging forse")
            .contains("unexpected argument `forse` for `/deploy`; did you mean `force`?"));
        assert!(error("/rollback").contains("`/rollback` needs an environment"));
        assert!(error("/lock prod ttl=soon").contains("ttl: expected a duration"));
        assert!(error("/deploy prod ref=").contains("`ref=` needs a value"));
    }

    #[test]
    fn suggestions_need_a_close_match() {
        assert_eq!(did_you_mean("prod", ["production", "staging"]), None);
        assert_eq!(
            did_you_mean("productoin", ["production", "staging"]),
            Some("production")
        );
        assert_eq!(
            did_you_mean("stagin", ["production", "staging"]),
            Some("staging")
        );
    }
}
