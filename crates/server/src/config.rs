//! Command-line settings; each can also come from a `CONFCAST_*` variable
//! or from the configuration file (`--config`, see `config_file`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "confcast", version, about = "Video meetings that go live as internet TV channels.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve(ServeWithFile),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Grant, revoke or list the site operator role (the /operator overview).
    #[command(subcommand)]
    Operator(OperatorCommand),
}

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Make a registered user an operator.
    Grant {
        username: String,
        #[command(flatten)]
        data: DataFolder,
    },
    /// Take the operator role away from a user.
    Revoke {
        username: String,
        #[command(flatten)]
        data: DataFolder,
    },
    /// List the operators.
    List {
        #[command(flatten)]
        data: DataFolder,
    },
}

/// The data folder of a server, for commands that change its database.
#[derive(Args, Debug, Clone)]
pub struct DataFolder {
    /// The server's data folder (the one `serve --data` uses).
    #[arg(long, env = "CONFCAST_DATA", default_value = "./data")]
    pub data: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check a configuration file: every problem is listed with its line;
    /// the exit status is non-zero when there is any.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

/// `serve`'s settings and the file more of them may come from.
#[derive(Args, Debug, Clone)]
pub struct ServeWithFile {
    /// A TOML file with settings named like these flags (`media_port = 40000`);
    /// flags and CONFCAST_* variables take precedence over it.
    #[arg(long, env = "CONFCAST_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub settings: ServeArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address and port for HTTP.
    #[arg(long, env = "CONFCAST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Folder for the database (and, unless --recordings says otherwise,
    /// recordings in `recordings/`). Created if missing.
    #[arg(long, env = "CONFCAST_DATA", default_value = "./data")]
    pub data: PathBuf,

    /// Log filter: a level (error, warn, info, debug, trace) or a
    /// tracing directive such as `info,confcast_server=debug`.
    #[arg(long, env = "CONFCAST_LOG", default_value = "info")]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "CONFCAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// How long a login lasts, in seconds.
    #[arg(long, env = "CONFCAST_SESSION_TTL", default_value_t = 30 * 24 * 3600)]
    pub session_ttl: i64,

    /// UDP port for all WebRTC media (0 picks a free port).
    #[arg(long, env = "CONFCAST_MEDIA_PORT", default_value_t = 40000)]
    pub media_port: u16,

    /// Address put in the server's ICE candidate when it differs from the
    /// listening address (behind 1:1 NAT). Defaults to the --listen address.
    #[arg(long, env = "CONFCAST_PUBLIC_IP")]
    pub public_ip: Option<std::net::IpAddr>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "CONFCAST_MAX_BODY", default_value_t = 64 * 1024)]
    pub max_body: usize,

    /// Where broadcasts are recorded: a folder, `file:///folder`, or
    /// `s3://bucket/prefix` (S3-compatible; credentials, region and endpoint
    /// from the AWS_* variables). Default: `recordings` in the data folder.
    #[arg(long, env = "CONFCAST_RECORDINGS")]
    pub recordings: Option<String>,

    /// Finished recordings older than this many seconds are deleted (0:
    /// kept until deleted by hand).
    #[arg(long, env = "CONFCAST_RECORDING_MAX_AGE", default_value_t = 0)]
    pub recording_max_age: u64,

    /// When all finished recordings together take more bytes than this, the
    /// oldest are deleted (0: no limit).
    #[arg(long, env = "CONFCAST_RECORDING_MAX_BYTES", default_value_t = 0)]
    pub recording_max_bytes: u64,

    /// On SIGTERM/SIGINT, how many seconds to spend telling participants,
    /// ending broadcasts and finishing their recordings before exiting.
    #[arg(long, env = "CONFCAST_DRAIN_TIMEOUT", default_value_t = 10)]
    pub drain_timeout: u64,

    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,

    /// ICE-TCP and TURN, for clients whose UDP is blocked.
    #[command(flatten)]
    pub ice: crate::ice::IceArgs,

    #[command(flatten)]
    pub proxy: crate::forwarded::ProxyArgs,

    /// Split conference and stream nodes.
    #[command(flatten)]
    pub nodes: crate::nodes::NodeArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_flags() {
        let serve = |argv: &[&str]| match Cli::try_parse_from(argv).expect("parse").command {
            Command::Serve(args) => args.settings,
            _ => panic!("not serve"),
        };
        let args = serve(&["confcast", "serve"]);
        assert_eq!(args.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(args.data, PathBuf::from("./data"));
        let args = serve(&["confcast", "serve", "--listen", "0.0.0.0:9000", "--data", "/srv/cc"]);
        assert_eq!(args.listen.port(), 9000);
        assert!(Cli::try_parse_from(["confcast", "serve", "--listen", "nonsense"]).is_err());
        let args = serve(&["confcast", "serve", "--recordings", "s3://media/cc", "--recording-max-age", "86400"]);
        assert_eq!((args.recordings.as_deref(), args.recording_max_age, args.recording_max_bytes), (Some("s3://media/cc"), 86400, 0));
        assert!(Cli::try_parse_from(["confcast", "serve", "--recording-max-bytes", "-1"]).is_err());
    }
}
