//! `confcast serve`, `confcast config check`, `confcast operator`: see
//! `confcast --help`.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};
use confcast_server::config::{Cli, Command, ConfigCommand, LogFormat, ServeArgs};
use confcast_server::config_file;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let cli = parse(&argv);
    match cli.command {
        Command::Config(ConfigCommand::Check { file }) => match config_file::read(&file) {
            Ok(settings) => {
                println!("{}: {} settings, all valid", file.display(), settings.len());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for error in &errors {
                    eprintln!("{}: {error}", file.display());
                }
                eprintln!("{}: {} problem(s)", file.display(), errors.len());
                ExitCode::FAILURE
            }
        },
        Command::Operator(command) => confcast_server::operator::run(command),
        Command::Serve(serve) => {
            let args = match &serve.config {
                None => serve.settings,
                Some(file) => match with_file(&argv, file) {
                    Ok(args) => args,
                    Err(code) => return code,
                },
            };
            match run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("Error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn parse(argv: &[OsString]) -> Cli {
    let matches = Cli::command().get_matches_from(argv);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The settings with the file's added where flags and variables left
/// defaults; every problem in the file is reported before anything starts.
fn with_file(argv: &[OsString], file: &std::path::Path) -> Result<ServeArgs, ExitCode> {
    let settings = config_file::read(file).map_err(|errors| {
        for error in &errors {
            eprintln!("{}: {error}", file.display());
        }
        eprintln!("{}: {} problem(s); nothing started", file.display(), errors.len());
        ExitCode::FAILURE
    })?;
    let matches = Cli::command().get_matches_from(argv);
    let Some(("serve", serve)) = matches.subcommand() else {
        return Err(ExitCode::FAILURE);
    };
    let merged = config_file::merge(argv, serve, &settings);
    match parse(&merged).command {
        Command::Serve(serve) => Ok(serve.settings),
        Command::Config(_) | Command::Operator(_) => Err(ExitCode::FAILURE),
    }
}

fn run(args: ServeArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&args.log).map_err(|e| anyhow::anyhow!("invalid --log filter: {e}"))?;
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(confcast_server::serve::serve(args))
}
