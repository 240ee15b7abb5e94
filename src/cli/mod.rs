//! The command line. Exit codes: 0 success, 1 a check or command failed
//! (or its output could not be written), 2 bad usage or configuration, 141
//! stdout or stderr is a closed pipe (`shipgate check | head -1`; see
//! [`crate::stdio`]).

pub mod admin;
pub mod webhook_send;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::repo::{RepoConfig, CONFIG_PATH};
use crate::config::settings::{self, LogFormat, ServerSettings};
use crate::store::DeliveryState;

#[derive(Parser)]
#[command(name = "shipgate", version, about = "Deployment gatekeeper for GitHub")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the GitHub App webhook server.
    Serve,
    /// Run gate checks (the same gates the GitHub Action runs).
    Check(crate::action::request::CheckArgs),
    /// Work with the repository config (.github/shipgate.yml).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Developer tools for webhooks.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Apply database migrations to DATABASE_URL (serve also applies them at start).
    Migrate,
    /// Stored webhook deliveries in DATABASE_URL: list, show, retry failed ones.
    Deliveries {
        #[command(subcommand)]
        command: DeliveriesCommand,
    },
    /// Environment locks in DATABASE_URL: list, release.
    Locks {
        #[command(subcommand)]
        command: LocksCommand,
    },
    /// Deployment protection rule requests in DATABASE_URL.
    Requests {
        #[command(subcommand)]
        command: RequestsCommand,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum StateArg {
    Received,
    Processing,
    Done,
    Failed,
}

#[derive(clap::Args)]
struct FormatArg {
    /// Print JSON (for scripts) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum DeliveriesCommand {
    /// List stored deliveries, newest first.
    List {
        #[arg(long, value_enum)]
        status: Option<StateArg>,
        /// OWNER/NAME
        #[arg(long)]
        repo: Option<String>,
        #[arg(long, default_value_t = crate::cli::admin::DEFAULT_LIST_LIMIT,
              value_parser = clap::value_parser!(i64).range(1..=crate::cli::admin::MAX_LIST_LIMIT))]
        limit: i64,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show one delivery, with its last error (and payload).
    Show {
        id: String,
        /// Also print the stored payload.
        #[arg(long)]
        payload: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Put a failed delivery back in the queue (attempts reset).
    Retry {
        id: String,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Subcommand)]
enum LocksCommand {
    /// List the live locks of every repository.
    List {
        #[command(flatten)]
        format: FormatArg,
    },
    /// Release a lock; its deploy queue and waiting protection rule requests start.
    Release {
        /// OWNER/NAME
        repo: String,
        environment: String,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Subcommand)]
enum RequestsCommand {
    /// List pending protection rule requests.
    List {
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a config file; prints errors with line and column.
    Validate {
        #[arg(default_value = CONFIG_PATH)]
        path: PathBuf,
    },
    /// Print the JSON Schema of the config file.
    Schema,
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Sign a payload file and POST it exactly as GitHub does.
    Send {
        #[arg(long)]
        url: String,
        /// Signing secret; with a comma-separated rotation list, the first is used.
        #[arg(long, env = "SHIPGATE_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
        #[arg(long)]
        event: String,
        /// X-GitHub-Delivery (default: a random UUID).
        #[arg(long)]
        delivery: Option<String>,
        file: PathBuf,
    },
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version go to stdout: `shipgate --help | head -1`.
            let stream = if e.use_stderr() {
                crate::stdio::Stream::Stderr
            } else {
                crate::stdio::Stream::Stdout
            };
            crate::stdio::check(stream, e.print());
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Serve => {
            let settings = match ServerSettings::from_env() {
                Ok(s) => s,
                Err(e) => return usage_error(e),
            };
            crate::telemetry::init(settings.log_format);
            runtime(async move { crate::serve::serve(settings).await })
        }
        Command::Check(args) => check(args),
        Command::Config { command } => config(command),
        Command::Webhook { command } => webhook(command),
        Command::Deliveries { command } => deliveries(command),
        Command::Locks { command } => match command {
            LocksCommand::List { format } => admin(crate::cli::admin::Request::ListLocks, format),
            LocksCommand::Release {
                repo,
                environment,
                format,
            } => admin(
                crate::cli::admin::Request::ReleaseLock {
                    repository: repo,
                    environment,
                },
                format,
            ),
        },
        Command::Requests {
            command: RequestsCommand::List { format },
        } => admin(crate::cli::admin::Request::ListRequests, format),
        Command::Migrate => migrate(),
    }
}

/// `shipgate check`: the Action's gates, run here.
fn check(args: crate::action::request::CheckArgs) -> ExitCode {
    let runner = crate::action::Runner::from_env();
    if runner.in_actions() {
        // A panic's message can quote anything: one escaped line.
        std::panic::set_hook(Box::new(|info| {
            crate::errln!(
                "shipgate: internal error: {}",
                crate::action::escape_log(&info.to_string())
            );
        }));
    }
    let req = match crate::action::check::request(&runner, args) {
        Ok(r) => r,
        Err(e) => return check_error(&runner, e),
    };
    if req.gates.is_empty() {
        // Still check the config, so a broken file is caught.
        if let Err(e) = crate::action::check::load_config(&runner.workspace(), &req.config) {
            return check_error(&runner, e);
        }
        crate::outln!("{}", crate::render::cli::NO_GATES);
        return ExitCode::SUCCESS;
    }
    if runner.in_actions() {
        // The notify URL is a secret: masked before anything else is printed.
        for m in crate::action::notify::masks(&req) {
            crate::outln!("{}", crate::action::mask(&m));
        }
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return usage_error(e),
    };
    match rt.block_on(crate::action::check::run(&runner, &req)) {
        Ok((gate_config, results)) => {
            let code = crate::action::check::report(&runner, &req, &gate_config, &results);
            let (label, _) = crate::action::check::verdict(&results, req.fail_on);
            let environment = crate::action::request::environment_name(&req, &gate_config.config);
            let sent =
                crate::action::notify::send(&runner, &req, environment.as_deref(), label, &results);
            // A notification that fails only warns; the exit status stands.
            if let Some(warning) = rt.block_on(sent) {
                if runner.in_actions() {
                    crate::outln!("{}", warning.command());
                } else {
                    crate::errln!("shipgate: {}", warning.message);
                }
            }
            if runner.bool_input("comment").ok().flatten() == Some(true) {
                if let Err(e) =
                    rt.block_on(crate::action::check::post_comment(&runner, &req, &results))
                {
                    // The gates ran; a comment that cannot be posted only warns.
                    let a = crate::action::Annotation {
                        level: crate::action::Level::Warning,
                        file: None,
                        line: None,
                        column: None,
                        title: "shipgate".into(),
                        message: e.to_string(),
                    };
                    crate::outln!("{}", a.command());
                }
            }
            ExitCode::from(code)
        }
        Err(e) => check_error(&runner, e),
    }
}

/// `shipgate config validate|schema`.
fn config(command: ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::Validate { path } => match std::fs::read_to_string(&path) {
            Ok(text) => match RepoConfig::parse(&text) {
                Ok(c) => {
                    let line = crate::render::cli::config_valid(
                        &path.display().to_string(),
                        c.environments.len(),
                    );
                    crate::outln!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    crate::errln!("{}: {e}", path.display());
                    ExitCode::from(1)
                }
            },
            Err(e) => {
                crate::errln!("{}: cannot read: {e}", path.display());
                ExitCode::from(2)
            }
        },
        ConfigCommand::Schema => {
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&RepoConfig::json_schema())
                    .expect("schema serializes")
            );
            ExitCode::SUCCESS
        }
    }
}

/// `shipgate webhook send`: one signed delivery to a server.
fn webhook(command: WebhookCommand) -> ExitCode {
    let WebhookCommand::Send {
        url,
        secret,
        event,
        delivery,
        file,
    } = command;
    runtime(async move {
        let secret = secret
            .split(',')
            .map(str::trim)
            .find(|s| !s.is_empty())
            .unwrap_or("");
        let (status, body) =
            crate::cli::webhook_send::send(crate::cli::webhook_send::SendRequest {
                url: &url,
                secret,
                event: &event,
                delivery: delivery.as_deref(),
                file: &file,
            })
            .await?;
        crate::outln!("{}", crate::render::cli::server_answer(status, &body));
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(anyhow::anyhow!("the server answered {status}"))
        }
    })
}

/// `shipgate deliveries list|show|retry`, through the toolbox.
fn deliveries(command: DeliveriesCommand) -> ExitCode {
    let (request, format) = match command {
        DeliveriesCommand::List {
            status,
            repo,
            limit,
            format,
        } => (
            crate::cli::admin::Request::ListDeliveries {
                state: status.map(|s| match s {
                    StateArg::Received => DeliveryState::Received,
                    StateArg::Processing => DeliveryState::Processing,
                    StateArg::Done => DeliveryState::Done,
                    StateArg::Failed => DeliveryState::Failed,
                }),
                repository: repo,
                limit,
            },
            format,
        ),
        DeliveriesCommand::Show {
            id,
            payload,
            format,
        } => (
            crate::cli::admin::Request::ShowDelivery { id, payload },
            format,
        ),
        DeliveriesCommand::Retry { id, format } => {
            (crate::cli::admin::Request::RetryDelivery { id }, format)
        }
    };
    admin(request, format)
}

/// `shipgate migrate`: the migrations of `DATABASE_URL`'s backend.
fn migrate() -> ExitCode {
    crate::telemetry::init(log_format(LogFormat::Pretty));
    let url = match settings::database_url_from_env() {
        Ok(u) => u,
        Err(e) => return usage_error(e),
    };
    runtime(async move {
        let store = crate::store::connect(&url)
            .await
            .map_err(|e| settings::SettingsError {
                var: "DATABASE_URL",
                problem: format!("cannot open {}: {e}", url.redacted()),
            })?;
        store.migrate().await?;
        crate::outln!(
            "{}",
            crate::render::cli::migrations_applied(&url.redacted())
        );
        Ok(())
    })
}

fn admin(request: crate::cli::admin::Request, format: FormatArg) -> ExitCode {
    let url = match settings::database_url_from_env() {
        Ok(u) => u,
        Err(e) => return usage_error(e),
    };
    let format = if format.json {
        crate::cli::admin::Format::Json
    } else {
        crate::cli::admin::Format::Table
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return usage_error(e),
    };
    let result = rt.block_on(async {
        let store = crate::cli::admin::open(&url).await?;
        let out = crate::cli::admin::run(&store, &url, &request, format, crate::now_ms()).await;
        store.close().await;
        out
    });
    match result {
        Ok(text) => {
            // The text is whole lines; a failed write ends the process as
            // src/stdio.rs says (a closed pipe: 141, quietly).
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            crate::stdio::check(crate::stdio::Stream::Stdout, written);
            ExitCode::SUCCESS
        }
        Err(e) => {
            crate::errln!("shipgate: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn log_format(default: LogFormat) -> LogFormat {
    settings::log_format_from_env(default).unwrap_or(default)
}

/// A configuration error of `check`: one line, an annotation in Actions, exit 2.
/// The message can quote a repository's config or a response, and the
/// runner reads stderr for workflow commands too: it is escaped on both.
fn check_error(runner: &crate::action::Runner, e: crate::action::check::CheckError) -> ExitCode {
    let message = e.to_string();
    if runner.in_actions() {
        let a = crate::action::Annotation {
            level: crate::action::Level::Error,
            file: None,
            line: None,
            column: None,
            title: "shipgate".into(),
            message: message.clone(),
        };
        crate::outln!("{}", a.command());
        let _ = runner.set_output("result", "error");
    }
    crate::errln!("shipgate: {}", crate::action::escape_log(&message));
    ExitCode::from(2)
}

fn usage_error(e: impl std::fmt::Display) -> ExitCode {
    crate::errln!("shipgate: {e}");
    ExitCode::from(2)
}

fn runtime(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            crate::errln!("shipgate: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        // A setting that cannot be used (a database that will not open, a
        // port that is taken) is a configuration error: status 2.
        Err(e) if e.downcast_ref::<settings::SettingsError>().is_some() => usage_error(e),
        Err(e) => {
            crate::errln!("shipgate: {e:#}");
            ExitCode::from(1)
        }
    }
}
