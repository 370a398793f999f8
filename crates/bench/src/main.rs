//! `confcast-bench`: measurements behind docs/BENCHMARKS.md.
//!
//! Each subcommand starts what it measures (the real `confcast` binary, on
//! loopback, with a fresh data folder), applies a bounded load, prints the
//! figures, and stops everything it started.

mod http_me;
mod password;
mod process;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "confcast-bench", about = "confcast benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Authenticated `GET /api/v1/me` at a fixed offered load: throughput,
    /// latency percentiles and server CPU.
    HttpMe(http_me::Args),
    /// Login cost: argon2id parameters, time per hash, and login latency
    /// over HTTP.
    Password(password::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::HttpMe(args) => http_me::run(args).await,
            Command::Password(args) => password::run(args).await,
        }
    })
}
