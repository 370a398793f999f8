//! Audio mixing under load: one room of N participants, 3 of them talking,
//! everyone sending 20 ms Opus packets with the RFC 6464 audio level (the
//! talkers a tone, or with `--talk speech` synthesised speech; the others
//! encoded silence at level -127), against the
//! real `confcast` binary and, for comparison, Janus AudioBridge. Silent
//! participants behave as Chrome does with each server: with Opus DTX when
//! that server's SDP answer asks for it (`usedtx=1`), else a packet every
//! 20 ms (`--dtx off`: never DTX).
//!
//! Per run it reports, over the same steady-state window: the server's CPU
//! (from /proc, all threads), memory, packets per second each way, distinct
//! audio payloads the listeners received per 20 ms (= encodes per tick: a
//! shared encode reaches many listeners with the same bytes), and the
//! server-added latency measured at a listener from the talkers' periodic
//! silence marker (see `sound`; tones only), and the server's own view from
//! its `/metrics` (confcast only).

mod confcast;
mod dtx;
mod engine;
mod janus;
mod server_view;
mod sound;
mod speech;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::StreamExt as _;
use tokio::sync::watch;

use engine::{Engine, Snapshot};
use server_view::ServerView;
use sound::Sound;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    Confcast,
    Janus,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Dtx {
    /// As a browser: DTX when the server's answer has `usedtx=1`.
    Answer,
    /// Never: every participant sends every 20 ms.
    Off,
}

#[derive(clap::Args)]
pub struct Args {
    /// When silent participants use Opus DTX.
    #[arg(long, value_enum, default_value = "answer")]
    dtx: Dtx,
    /// What to measure.
    #[arg(long, value_enum, default_value = "both")]
    target: Target,
    /// Room sizes to run confcast at.
    #[arg(long, value_delimiter = ',', default_value = "10,100")]
    sizes: Vec<usize>,
    /// Room size of the Janus comparison (confcast also runs at this size).
    #[arg(long, default_value_t = 100)]
    compare_size: usize,
    /// Participants talking; the others send silence.
    #[arg(long, default_value_t = 3)]
    talkers: usize,
    /// What the talkers send: a tone each, or synthesised speech each.
    #[arg(long, value_enum, default_value = "tones")]
    talk: sound::Talk,
    /// Length of the measured window, seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Steady state before the window, seconds (after everyone connected).
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Participants joining at the same time.
    #[arg(long, default_value_t = 10)]
    join_concurrency: usize,
    /// The confcast binary to measure.
    #[arg(long, default_value = "target/release/confcast")]
    binary: PathBuf,
    /// The Janus binary.
    #[arg(long, default_value = "janus")]
    janus_binary: PathBuf,
    /// Janus's plugin/transport folders (default: Debian's).
    #[arg(long)]
    janus_lib: Option<PathBuf>,
    /// Janus's test address (must exist only in this network namespace).
    #[arg(long, default_value = "10.77.0.1")]
    janus_ip: IpAddr,
    /// The client peers' address for the Janus run.
    #[arg(long, default_value = "10.77.0.2")]
    client_ip: IpAddr,
    /// AudioBridge mixing rate (confcast mixes at 48 kHz).
    #[arg(long, default_value_t = 48_000)]
    janus_sampling_rate: u32,
    /// AudioBridge encoder complexity, 1-10 (confcast's default is 8).
    #[arg(long, default_value_t = 8)]
    janus_quality: u32,
}

/// A process under test, by pid.
#[derive(Clone, Copy)]
pub struct Proc(pub u32);

impl Proc {
    fn stat(path: &str) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(path)?;
        let rest = stat.rsplit_once(')').map(|(_, r)| r).context("odd /proc stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields.get(11).context("short stat")?.parse::<u64>()? + fields.get(12).context("short stat")?.parse::<u64>()?;
        // Clock ticks of 1/100 s on every mainstream Linux build.
        Ok(Duration::from_millis(ticks * 10))
    }

    /// User + system CPU time of all its threads so far.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        Proc::stat(&format!("/proc/{}/stat", self.0))
    }

    pub fn rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .context("no VmRSS")?
            .parse()?;
        Ok(kib / 1024.0)
    }

    fn own_cpu() -> anyhow::Result<Duration> {
        Proc::stat("/proc/self/stat")
    }
}

/// What one run measured.
struct Outcome {
    name: String,
    n: usize,
    connected: usize,
    join: Duration,
    /// Server CPU time spent while the participants joined.
    join_cpu: Duration,
    window: Duration,
    server_cpu: f64,
    server_rss: f64,
    server_rss_start: f64,
    generator_cpu: f64,
    sent_pps: f64,
    received_pps: f64,
    encodes_per_tick: f64,
    e2e: Vec<Duration>,
    added: Vec<Duration>,
    lost_peers: usize,
    totals: Snapshot,
    /// What the server itself reported over the window (confcast only).
    server_view: Option<String>,
    /// Whether the latency marker was timed (not with speech).
    marker: bool,
}

fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0))
}

impl Outcome {
    fn print(&self) {
        println!(
            "{:<24} N={:<5} connected {:>5}  joined in {:>5.1} s (server CPU {:.1} s)  window {:>4.1} s",
            self.name,
            self.n,
            self.connected,
            self.join.as_secs_f64(),
            self.join_cpu.as_secs_f64(),
            self.window.as_secs_f64()
        );
        println!(
            "    server CPU {:6.1} % of a core   RSS {:7.1} -> {:7.1} MiB over the window   load generator CPU {:6.1} % of a core",
            self.server_cpu * 100.0,
            self.server_rss_start,
            self.server_rss,
            self.generator_cpu * 100.0
        );
        println!(
            "    DTX: {} of {} peers (their answer asked for it)   packets/s sent {:8.0}  received {:8.0}  ({:.1} per listener)   distinct payloads per 20 ms {:6.2}",
            self.totals.dtx_peers,
            self.totals.peers,
            self.sent_pps,
            self.received_pps,
            self.received_pps / self.n.max(1) as f64,
            self.encodes_per_tick
        );
        if self.marker {
            println!(
                "    latency marker: {} detections; end-to-end p50 {} ms p95 {} ms; server-added (minus one codec pass) p50 {} ms p95 {} ms",
                self.e2e.len(),
                ms(quantile(&self.e2e, 0.5)),
                ms(quantile(&self.e2e, 0.95)),
                ms(quantile(&self.added, 0.5)),
                ms(quantile(&self.added, 0.95)),
            );
        } else {
            println!("    latency marker: not used with speech (its own pauses would pass for the marker's silence)");
        }
        let t = &self.totals;
        println!(
            "    load generator send timing: slots late p99 {:.1} ms, max {:.1} ms (longest loop step {:.1} ms); talker packets sent late by up to {:.1} ms",
            t.slot_late_p99.as_secs_f64() * 1000.0,
            t.slot_late_max.as_secs_f64() * 1000.0,
            t.longest_step.as_secs_f64() * 1000.0,
            t.talker_send_late_max.as_secs_f64() * 1000.0
        );
        println!(
            "    since start: datagrams in {} (not accepted {}), send errors {}, write errors {}, refused destinations {}, disconnects {}",
            t.datagrams, t.not_accepted, t.send_errors, t.write_errors, t.refused_destinations, t.disconnected
        );
        if let Some(view) = &self.server_view {
            println!("    {view}");
        }
        if self.lost_peers > 0 {
            println!("    WARNING: {} peers not connected at the end of the run", self.lost_peers);
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.talkers == 0 || args.seconds == 0 {
        bail!("talkers and seconds must be positive");
    }
    str0m::crypto::from_feature_flags().install_process_default();
    let sound = Arc::new(Sound::new(args.talkers, args.talk)?);
    let dtx_rule = match args.dtx {
        Dtx::Answer => format!(
            "with Opus DTX where the server's answer asks for it (then {} packets per {} ms while silent, as Chrome), \
             else a packet every 20 ms",
            sound.dtx_silence.iter().flatten().count(),
            sound.dtx_silence.len() * 20
        ),
        Dtx::Off => "a packet every 20 ms (DTX off)".to_owned(),
    };
    println!(
        "audio-mix: {} talking ({} at level {} dBov with 60 ms of silence every second), the rest encoded \
         silence at level {} dBov, {dtx_rule}; {} s warm-up, {} s window",
        args.talkers,
        match args.talk {
            sound::Talk::Tones => "a tone each",
            sound::Talk::Speech => "synthesised speech each",
        },
        sound::TALK_LEVEL,
        sound::SILENT_LEVEL,
        args.warmup,
        args.seconds
    );
    if sound.marker() {
        println!(
            "one Opus encode+decode (subtracted from the end-to-end marker delay): {:.1} ms",
            sound.codec_delay.as_secs_f64() * 1000.0
        );
    }
    let mut outcomes: Vec<Outcome> = Vec::new();
    if args.target != Target::Janus {
        let mut sizes = args.sizes.clone();
        if args.target == Target::Both && !sizes.contains(&args.compare_size) {
            sizes.push(args.compare_size);
        }
        for &n in &sizes {
            match run_confcast(&args, &sound, n).await {
                Ok(o) => {
                    o.print();
                    outcomes.push(o);
                }
                Err(e) => println!("confcast N={n}: FAILED: {e:#}"),
            }
            // Let the machine settle between runs.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    if args.target != Target::Confcast {
        match run_janus(&args, &sound, args.compare_size).await {
            Ok(o) => {
                o.print();
                outcomes.push(o);
            }
            Err(e) => println!("Janus AudioBridge N={}: FAILED: {e:#}", args.compare_size),
        }
    }
    let ours = outcomes.iter().find(|o| o.name == "confcast" && o.n == args.compare_size);
    let theirs = outcomes.iter().find(|o| o.name.starts_with("Janus") && o.n == args.compare_size);
    if let (Some(a), Some(b)) = (ours, theirs) {
        println!(
            "CPU ratio at N={}: Janus AudioBridge {:.1} % / confcast {:.1} % = {:.1}x",
            args.compare_size,
            b.server_cpu * 100.0,
            a.server_cpu * 100.0,
            b.server_cpu / a.server_cpu.max(1e-9)
        );
    }
    Ok(())
}

/// Roles: the first `talkers` participants talk; the first silent one is
/// the latency probe (it hears the shared full mix).
fn role(args: &Args, i: usize) -> (Option<usize>, bool) {
    if i < args.talkers { (Some(i), false) } else { (None, i == args.talkers) }
}

async fn run_confcast(args: &Args, sound: &Arc<Sound>, n: usize) -> anyhow::Result<Outcome> {
    if n <= args.talkers {
        bail!("N must be larger than the number of talkers");
    }
    let server = confcast::Confcast::start(&args.binary).await?;
    let (users, room) = confcast::members(server.addr, n).await?;
    let engine = Engine::start(sound.clone(), server.addr.ip());
    let (stop_tx, stop) = watch::channel(false);
    let started = Instant::now();
    let cpu_before_joins = server.process().cpu()?;
    let joins = futures_util::stream::iter(users.iter().enumerate())
        .map(|(i, user)| {
            let (talker, probe) = role(args, i);
            let (engine, stop, room) = (&engine, stop.clone(), room.as_str());
            async move {
                let done = confcast::join(server.addr, room, user, engine, talker, probe, args.dtx == Dtx::Answer, stop).await?;
                tokio::time::timeout(Duration::from_secs(30), done).await.context("ICE/DTLS did not complete")??;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.join_concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let failed: Vec<String> = joins.iter().filter_map(|r| r.as_ref().err().map(|e| format!("{e:#}"))).collect();
    if !failed.is_empty() {
        println!("    {} of {n} joins failed, first: {}", failed.len(), failed[0]);
    }
    let join = (started.elapsed(), server.process().cpu()?.saturating_sub(cpu_before_joins));
    let outcome = measure(args, sound, &engine, server.process(), Some(server.addr), "confcast".to_owned(), n, join).await;
    let _ = stop_tx.send(true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(engine);
    drop(server);
    outcome
}

async fn run_janus(args: &Args, sound: &Arc<Sound>, n: usize) -> anyhow::Result<Outcome> {
    janus::check_isolated(args.janus_ip)?;
    janus::check_isolated(args.client_ip)?;
    let settings = janus::Settings {
        sampling_rate: args.janus_sampling_rate,
        quality: args.janus_quality,
        bitrate: 32_000,
        expected_loss: 5,
    };
    let lib = args.janus_lib.clone().unwrap_or_else(janus::default_lib_dir);
    let server = janus::Janus::start(&args.janus_binary, &lib, args.janus_ip, settings).await?;
    let engine = Engine::start(sound.clone(), args.janus_ip);
    let started = Instant::now();
    let cpu_before_joins = server.process().cpu()?;
    let joins = futures_util::stream::iter(0..n)
        .map(|i| {
            let (talker, probe) = role(args, i);
            let (engine, server) = (&engine, &server);
            async move {
                let done = server.join(args.client_ip, &format!("p{i:04}"), engine, talker, probe, args.dtx == Dtx::Answer).await?;
                tokio::time::timeout(Duration::from_secs(30), done).await.context("ICE/DTLS did not complete")??;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.join_concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let failed: Vec<String> = joins.iter().filter_map(|r| r.as_ref().err().map(|e| format!("{e:#}"))).collect();
    if !failed.is_empty() {
        println!("    {} of {n} joins failed, first: {}", failed.len(), failed[0]);
    }
    let join = (started.elapsed(), server.process().cpu()?.saturating_sub(cpu_before_joins));
    let name = format!("Janus AudioBridge {} kHz", settings.sampling_rate / 1000);
    let outcome = measure(args, sound, &engine, server.process(), None, name, n, join).await;
    if server.hangups() > 0 {
        println!("    Janus hung up {} peers", server.hangups());
    }
    drop(engine);
    drop(server);
    outcome
}

/// Warm-up, then the window: CPU of the server and of this process,
/// packets, payloads and latency markers over the same span; `metrics`:
/// where confcast's `/metrics` can be read for its own view.
#[allow(clippy::too_many_arguments)]
async fn measure(
    args: &Args,
    sound: &Sound,
    engine: &Engine,
    server: Proc,
    metrics: Option<SocketAddr>,
    name: String,
    n: usize,
    join: (Duration, Duration),
) -> anyhow::Result<Outcome> {
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    engine.open_window()?;
    let before: Snapshot = engine.snapshot().await?;
    let (cpu0, own0) = (server.cpu()?, Proc::own_cpu()?);
    let rss0 = server.rss_mib()?;
    let view0 = match metrics {
        Some(addr) => ServerView::scrape(addr).await.ok(),
        None => None,
    };
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let mut after: Snapshot = engine.snapshot().await?;
    let (cpu1, own1) = (server.cpu()?, Proc::own_cpu()?);
    let server_view = match (metrics, view0) {
        (Some(addr), Some(view0)) => ServerView::scrape(addr).await.ok().map(|view1| view0.until(&view1).describe()),
        _ => None,
    };
    let rss = server.rss_mib()?;
    let window = after.at.zip(before.at).map_or(Duration::from_secs(args.seconds), |(a, b)| a - b);
    let secs = window.as_secs_f64();
    let mut e2e = std::mem::take(&mut after.e2e);
    e2e.sort();
    let codec = sound.codec_delay;
    let added: Vec<Duration> = e2e.iter().map(|d| d.saturating_sub(codec)).collect();
    Ok(Outcome {
        name,
        n,
        connected: after.connected,
        join: join.0,
        join_cpu: join.1,
        window,
        server_cpu: (cpu1 - cpu0).as_secs_f64() / secs,
        server_rss: rss,
        server_rss_start: rss0,
        generator_cpu: (own1.saturating_sub(own0)).as_secs_f64() / secs,
        sent_pps: (after.sent - before.sent) as f64 / secs,
        received_pps: (after.received - before.received) as f64 / secs,
        encodes_per_tick: after.distinct_payloads as f64 / (secs * 50.0),
        e2e,
        added,
        lost_peers: after.peers.saturating_sub(after.connected),
        totals: after,
        server_view,
        marker: sound.marker(),
    })
}
