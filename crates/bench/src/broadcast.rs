//! Broadcast cost: N rooms, each with one synthetic WebRTC participant that
//! publishes real H.264 (and Opus silence), all on air at once. The server's
//! CPU is measured in a window with the N conferences only and again with
//! all N on air; the difference per room is what one live broadcast costs
//! (Program, depacketising, CMAF muxing, playlists), nobody watching.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::json;

use crate::conference::{join, machine_busy, median, mib, register, Joined, Plan, Signalling};
use crate::h264_clip::Clip;
use crate::peer::{Command, Engine};
use crate::process::{load_average, own_cpu_time, request, Server};

#[derive(clap::Args)]
pub struct Args {
    /// The confcast binary to measure.
    #[arg(long, default_value = "target/release/confcast")]
    binary: PathBuf,
    /// Rooms on air at once, one publisher each.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Length of each measured window, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Video bitrate of the clip, kbit/s.
    #[arg(long, default_value_t = 1000)]
    kbps: u32,
}

struct Window {
    secs: f64,
    server_cpu: f64,
    own_cpu: f64,
    machine_busy: f64,
    load_average: String,
}

async fn measure(server: &Server, length: Duration) -> anyhow::Result<Window> {
    let cpu0 = server.cpu_time()?;
    let own0 = own_cpu_time()?;
    let busy0 = machine_busy();
    let t0 = Instant::now();
    tokio::time::sleep(length).await;
    let secs = t0.elapsed().as_secs_f64();
    Ok(Window {
        secs,
        server_cpu: server.cpu_time()?.saturating_sub(cpu0).as_secs_f64() / secs,
        own_cpu: own_cpu_time()?.saturating_sub(own0).as_secs_f64() / secs,
        machine_busy: machine_busy().saturating_sub(busy0).as_secs_f64() / secs,
        load_average: load_average(),
    })
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let n = args.count;
    if n == 0 {
        bail!("--count must be positive");
    }
    let clip_dir = tempfile::tempdir()?;
    let dir = clip_dir.path().to_owned();
    let kbps = args.kbps;
    let clip = Arc::new(tokio::task::spawn_blocking(move || Clip::encode(&dir, 10, kbps)).await??);
    println!(
        "broadcast         {n} rooms, one publisher each (H.264 {:.0} kbit/s 640x360 30 fps + Opus silence), windows of {} s",
        clip.bits_per_second() / 1000.0,
        args.seconds
    );

    let mut server = Server::start_with(&args.binary, &["--media-port", "0"]).await?;
    let rooms = Rooms::join(&mut server, n, clip.clone()).await?;
    let rss_start = rooms.rss_start;
    rooms.engine.commands.send(Command::StartVideo).map_err(|_| anyhow::anyhow!("the peer thread stopped"))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_conference = server.rss_bytes()?;
    let before = measure(&server, Duration::from_secs(args.seconds)).await?;

    let addr = server.addr;
    let on_air_started = Instant::now();
    let media: Vec<String> = rooms.go_on_air(addr).await?.into_iter().map(|m| m.split('?').next().unwrap_or(&m).to_owned()).collect();
    println!("on air            {n} channels with a first segment {:.1} s after the first PUT", on_air_started.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let segments_before = completed_segments(addr, &media).await?;
    let during = measure(&server, Duration::from_secs(args.seconds)).await?;
    let segments_after = completed_segments(addr, &media).await?;
    let rss_on_air = server.rss_bytes()?;

    // Are the channels healthy? Segments completed in the window, their lengths.
    let rates: Vec<f64> = segments_before.iter().zip(&segments_after).map(|(a, b)| b.saturating_sub(*a) as f64 / during.secs).collect();
    let mut durations = Vec::new();
    for m in &media {
        let (_, text) = get_text(addr, m).await?;
        durations.extend(text.lines().filter_map(|l| l.strip_prefix("#EXTINF:")).filter_map(|v| v.trim_end_matches(',').parse::<f64>().ok()));
    }
    let (dmin, dmax) = durations.iter().fold((f64::INFINITY, 0f64), |(lo, hi), &d| (lo.min(d), hi.max(d)));

    for (label, w) in [("conferences only", &before), ("all on air", &during)] {
        println!("--- {label}: {:.1} s", w.secs);
        println!("server CPU        {:.1} % of one core", w.server_cpu * 100.0);
        println!(
            "machine           {:.2} of 2 cores busy (generator {:.1} %, others {:.1} % of a core); load average {}",
            w.machine_busy,
            w.own_cpu * 100.0,
            (w.machine_busy - w.server_cpu - w.own_cpu).max(0.0) * 100.0,
            w.load_average
        );
    }
    let per = (during.server_cpu - before.server_cpu) / n as f64;
    println!("--- per broadcast");
    println!(
        "CPU               {:.2} % of a core per live broadcast (on air minus conferences only, / {n}) -> {:.0} broadcasts per core",
        per * 100.0,
        if per > 0.0 { 1.0 / per } else { f64::INFINITY }
    );
    println!(
        "everything        {:.2} % of a core per room with its conference (the whole server / {n})",
        during.server_cpu * 100.0 / n as f64
    );
    println!(
        "channels          seconds of media per segment completed in the window: median {:.2}, worst {:.2}; segments in the playlists {:.2} to {:.2} s ({} listed)",
        1.0 / median(rates.clone()),
        1.0 / rates.iter().copied().fold(f64::INFINITY, f64::min),
        dmin,
        dmax,
        durations.len()
    );
    println!(
        "server RSS        {:.1} MiB start, {:.1} MiB conferences, {:.1} MiB on air -> {:.2} MiB per broadcast",
        mib(rss_start),
        mib(rss_conference),
        mib(rss_on_air),
        mib(rss_on_air.saturating_sub(rss_conference)) / n as f64
    );
    println!("signalling        {} errors", rooms.signalling_errors());
    rooms.stop().await;
    drop(server);
    Ok(())
}

/// N rooms with one connected publisher each (video not started yet).
pub(crate) struct Rooms {
    /// (host token, room id) per room.
    pub(crate) accounts: Vec<(String, String)>,
    pub(crate) engine: Engine,
    joins: Vec<Joined>,
    signalling: Arc<Signalling>,
    stop: tokio::sync::watch::Sender<bool>,
    /// Server RSS after registering and restarting, before the joins.
    pub(crate) rss_start: u64,
}

impl Rooms {
    /// Registers N hosts, restarts the server (so the memory password
    /// hashing left behind is not counted) and joins each host's personal
    /// room with a synthetic publisher.
    pub(crate) async fn join(server: &mut Server, n: usize, clip: Arc<Clip>) -> anyhow::Result<Rooms> {
        let addr = server.addr;
        let names: Vec<String> = (0..n).map(|i| format!("host{i:04}")).collect();
        let accounts: Vec<(String, String)> =
            futures_util::stream::iter(names.iter().cloned()).map(|name| async move { register(addr, &name).await }).buffered(4).try_collect().await?;
        server.restart().await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_start = server.rss_bytes()?;
        println!("server            pid {}, RSS {:.1} MiB after registering {n} hosts and restarting", server.pid(), mib(rss_start));
        let engine = Engine::start(clip, n)?;
        let plan = Arc::new(Plan { names, publishers: n, solo: true });
        let signalling = Arc::new(Signalling {
            selection: Mutex::new(vec![None; n]),
            errors: Mutex::new(vec![Vec::new(); n]),
            ..Signalling::default()
        });
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let (_ready_tx, ready_rx) = tokio::sync::watch::channel(true);
        let joins: Vec<Joined> = futures_util::stream::iter(0..n)
            .map(|i| {
                let (token, room) = accounts[i].clone();
                let (commands, plan, signalling, stop, ready) =
                    (engine.commands.clone(), plan.clone(), signalling.clone(), stop_rx.clone(), ready_rx.clone());
                async move {
                    join(addr, &room, &token, i, &plan, commands, signalling, ready, stop, true).await.with_context(|| format!("room {i}"))
                }
            })
            .buffer_unordered(4)
            .try_collect()
            .await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while engine.connected.load(Ordering::Relaxed) < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let connected = engine.connected.load(Ordering::Relaxed);
        println!("joined            {connected}/{n} connected; answers choosing H.264: {}/{n}", joins.iter().filter(|j| j.h264).count());
        if connected < n {
            bail!("not every publisher connected");
        }
        Ok(Rooms { accounts, engine, joins, signalling, stop, rss_start })
    }

    /// Puts every room on air and returns each one's media playlist path
    /// (with the viewer session the multivariant playlist named), once each
    /// channel has its first segment.
    pub(crate) async fn go_on_air(&self, addr: std::net::SocketAddr) -> anyhow::Result<Vec<String>> {
        for (token, room) in &self.accounts {
            let body = json!({"on": true, "title": format!("Benchmark {room}")});
            let (status, reply) = request(addr, "PUT", &format!("/api/v1/rooms/{room}/broadcast"), Some(token), Some(body)).await?;
            if status != 200 {
                bail!("going on air answered {status}: {reply}");
            }
        }
        let mut media = Vec::new();
        for (_, room) in &self.accounts {
            let (status, text) = get_text(addr, &format!("/hls/{room}/index.m3u8")).await?;
            if status != 200 {
                bail!("the multivariant playlist of {room} answered {status}");
            }
            let uri = text.lines().find(|l| !l.starts_with('#') && !l.is_empty()).context("no media playlist URI")?;
            media.push(format!("/hls/{room}/{uri}"));
        }
        Ok(media)
    }

    pub(crate) fn signalling_errors(&self) -> usize {
        self.signalling.errors.lock().map_or(0, |e| e.iter().map(Vec::len).sum())
    }

    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        for j in self.joins {
            let _ = tokio::time::timeout(Duration::from_secs(2), j.reader).await;
        }
        drop(self.engine);
    }
}

/// Segments each channel has completed so far (MEDIA-SEQUENCE plus the
/// segments its media playlist lists).
async fn completed_segments(addr: std::net::SocketAddr, media: &[String]) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    for m in media {
        let (status, text) = get_text(addr, m).await?;
        if status != 200 {
            bail!("{m} answered {status}");
        }
        let sequence: u64 =
            text.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        out.push(sequence + text.lines().filter(|l| l.starts_with("#EXTINF:")).count() as u64);
    }
    Ok(out)
}

/// GET returning status and body text.
pub(crate) async fn get_text(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use http_body_util::{BodyExt as _, Empty};
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::get(path).header("host", addr.to_string()).body(Empty::<hyper::body::Bytes>::new())?;
    let response = sender.send_request(req).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
