//! The `limitry` binary: parse the command line, set up logging, run.

use std::sync::Arc;

use clap::Parser;
use limitry::clock::SystemClock;
use limitry::config::{Cli, Command, Config};

// mimalloc serves the allocations of the service and, overriding `malloc`, of SQLite too: the
// request and record paths allocate many small, short-lived blocks, which it serves from
// per-thread pages several times cheaper than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    limitry::telemetry::init_logging(cli.log_format);
    match cli.command {
        Some(Command::Keys { command, database }) => limitry::cli::keys(command, &database).await,
        Some(Command::Projects { command, database }) => limitry::cli::projects(command, &database).await,
        Some(Command::Admin { command, database }) => limitry::cli::admin(command, &database).await,
        Some(Command::Serve(args)) => limitry::server::run(Config::from_args(&args)?, Arc::new(SystemClock)).await,
        None => limitry::server::run(Config::from_args(&cli.serve)?, Arc::new(SystemClock)).await,
    }
}
