//! `confcast serve`: see `confcast --help`.

use clap::Parser as _;
use confcast_server::config::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let filter = EnvFilter::try_new(&args.log).map_err(|e| anyhow::anyhow!("invalid --log filter: {e}"))?;
            let logs = tracing_subscriber::fmt().with_env_filter(filter);
            match args.log_format {
                LogFormat::Text => logs.init(),
                LogFormat::Json => logs.json().init(),
            }
            confcast_server::serve::serve(args).await
        }
    }
}
