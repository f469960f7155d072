//! The `limitry` binary: parse the command line, set up logging, run.

use std::sync::Arc;

use clap::Parser;
use limitry::clock::SystemClock;
use limitry::config::{Cli, Command, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Keys { command, database }) => limitry::cli::keys(command, &database).await,
        Some(Command::Projects { command, database }) => limitry::cli::projects(command, &database).await,
        Some(Command::Admin { command, database }) => limitry::cli::admin(command, &database).await,
        Some(Command::Serve(args)) => limitry::server::run(Config::from_args(&args)?, Arc::new(SystemClock)).await,
        None => limitry::server::run(Config::from_args(&cli.serve)?, Arc::new(SystemClock)).await,
    }
}
