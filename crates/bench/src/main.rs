//! `confcast-bench`: measurements behind docs/BENCHMARKS.md.
//!
//! Each subcommand starts what it measures (the real `confcast` binary, on
//! loopback, with a fresh data folder), applies a bounded load, prints the
//! figures, and stops everything it started.

mod audio_mix;
mod broadcast;
mod conference;
mod h264_clip;
mod hls_serve;
mod http_me;
mod password;
mod peer;
mod process;
mod whep;

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
    /// Conference forwarding: N participants join one room over WebSocket
    /// and WebRTC, P publish real H.264; server CPU and memory per
    /// participant and per forwarded down-track, forwarding latency.
    Conference(conference::Args),
    /// Audio mixing: one room of N participants, 3 talking, against the
    /// real server and Janus AudioBridge; server CPU, encodes per tick,
    /// server-added audio latency.
    AudioMix(audio_mix::Args),
    /// Broadcasting: N rooms, one H.264 publisher each, all on air; server
    /// CPU per live broadcast.
    Broadcast(broadcast::Args),
    /// LL-HLS serving: parts and playlists with wrk, and thousands of held
    /// blocking playlist requests; requests per core and memory.
    HlsServe(hls_serve::Args),
    /// WebRTC (WHEP) viewing: one room on air, N receive-only WebRTC
    /// viewers; server CPU and memory per viewer, what each one receives,
    /// how long joins take.
    Whep(whep::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::HttpMe(args) => http_me::run(args).await,
            Command::Password(args) => password::run(args).await,
            Command::Conference(args) => conference::run(args).await,
            Command::AudioMix(args) => audio_mix::run(args).await,
            Command::Broadcast(args) => broadcast::run(args).await,
            Command::HlsServe(args) => hls_serve::run(args).await,
            Command::Whep(args) => whep::run(args).await,
        }
    })
}
