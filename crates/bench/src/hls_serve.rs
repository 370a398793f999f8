//! LL-HLS serving: one room on air (a synthetic H.264 publisher), then
//!
//! 1. `wrk` against one part (immutable, answered from memory),
//! 2. `wrk` against the media playlist without directives (answered at once),
//! 3. held blocking playlist requests: `--held` connections, each a player
//!    that asks for the next part with `_HLS_msn`/`_HLS_part` as soon as it
//!    has the previous answer, so nearly all of them are held by the server
//!    at any moment and every new part wakes all of them.
//!
//! Requests per core are the answered requests divided by the server's CPU
//! time (`/proc`), so they do not depend on how busy the rest of the
//! machine is; the load generators run on the same two cores.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::broadcast::{get_text, Rooms};
use crate::conference::{machine_busy, mib};
use crate::h264_clip::Clip;
use crate::peer::Command;
use crate::process::{own_cpu_time, Server};

#[derive(clap::Args)]
pub struct Args {
    /// The confcast binary to measure.
    #[arg(long, default_value = "target/release/confcast")]
    binary: PathBuf,
    /// Length of each `wrk` run and of the held window, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Connections `wrk` keeps busy.
    #[arg(long, default_value_t = 64)]
    wrk_connections: u32,
    /// Threads `wrk` uses.
    #[arg(long, default_value_t = 1)]
    wrk_threads: u32,
    /// Blocking playlist requests held at once (one connection each).
    #[arg(long, default_value_t = 10_000)]
    held: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let clip_dir = tempfile::tempdir()?;
    let dir = clip_dir.path().to_owned();
    let clip = Arc::new(tokio::task::spawn_blocking(move || Clip::encode(&dir, 10, 1000)).await??);
    let mut server = Server::start_with(&args.binary, &["--media-port", "0"]).await?;
    let rooms = Rooms::join(&mut server, 1, clip).await?;
    rooms.engine.commands.send(Command::StartVideo).map_err(|_| anyhow::anyhow!("the peer thread stopped"))?;
    let addr = server.addr;
    let media = rooms.go_on_air(addr).await?.remove(0);
    // A few segments, so the playlist has its usual length.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (_, playlist) = get_text(addr, &media).await?;
    let base = media.rsplit_once('/').context("odd media path")?.0.to_owned();
    let media_path = media.split('?').next().unwrap_or(&media).to_owned();
    println!(
        "channel           {media_path}: playlist {} bytes, {} parts listed",
        playlist.len(),
        playlist.lines().filter(|l| l.starts_with("#EXT-X-PART:")).count()
    );
    let rss_on_air = server.rss_bytes()?;
    println!("server RSS        {:.1} MiB on air, nobody watching", mib(rss_on_air));

    // 1. A part of the newest complete segment (stays served for longer than a run).
    let part = newest_complete_segment_part(&playlist).context("no part of a complete segment in the playlist")?;
    let part_url = format!("http://{addr}{base}/{part}");
    let (status, bytes) = get_text(addr, &format!("{base}/{part}")).await?;
    if status != 200 {
        bail!("{part} answered {status}");
    }
    println!("--- parts: wrk -t{} -c{} -d{}s {part_url} ({} bytes each)", args.wrk_threads, args.wrk_connections, args.seconds, bytes.len());
    wrk(&server, &args, &part_url).await?;

    // 2. The media playlist, no directives.
    let playlist_url = format!("http://{addr}{media_path}");
    println!("--- playlists, no directives: wrk -t{} -c{} -d{}s {playlist_url}", args.wrk_threads, args.wrk_connections, args.seconds);
    wrk(&server, &args, &playlist_url).await?;

    // 3. Held blocking playlist requests.
    held(&server, &args, &media_path).await?;

    rooms.stop().await;
    drop(server);
    Ok(())
}

/// The last `EXT-X-PART` URI that belongs to a segment already complete
/// (followed by its `EXTINF`).
fn newest_complete_segment_part(playlist: &str) -> Option<String> {
    let mut candidate = None;
    let mut found = None;
    for line in playlist.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-PART:") {
            candidate = rest.split(',').find_map(|kv| kv.strip_prefix("URI=")).map(|u| u.trim_matches('"').to_owned());
        } else if line.starts_with("#EXTINF:") && candidate.is_some() {
            found = candidate.take();
        }
    }
    found
}

/// Runs `wrk` against `url` and reports its figures with the server's CPU.
async fn wrk(server: &Server, args: &Args, url: &str) -> anyhow::Result<()> {
    let cpu0 = server.cpu_time()?;
    let busy0 = machine_busy();
    let t0 = Instant::now();
    let output = tokio::process::Command::new("wrk")
        .args(["-t", &args.wrk_threads.to_string(), "-c", &args.wrk_connections.to_string(), "-d", &format!("{}s", args.seconds), "--latency", url])
        .output()
        .await
        .context("cannot run wrk")?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = server.cpu_time()?.saturating_sub(cpu0).as_secs_f64() / secs;
    let busy = machine_busy().saturating_sub(busy0).as_secs_f64() / secs;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    }
    let rate: f64 = text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok()).context("no Requests/sec from wrk")?;
    let non_2xx = text.lines().find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:")).map_or("0".to_owned(), |v| v.trim().to_owned());
    let errors = text.lines().find(|l| l.contains("Socket errors")).map_or("none".to_owned(), |l| l.trim().to_owned());
    let latency: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            ["50%", "99%"].iter().find(|p| l.starts_with(*p)).map(|p| format!("p{} {}", &p[..2], l[p.len()..].trim()))
        })
        .collect();
    println!("achieved          {rate:.0} req/s; non-2xx {non_2xx}; socket errors: {errors}; latency {}", latency.join(", "));
    println!(
        "server CPU        {:.1} % of one core -> {:.0} requests/s per core ({:.1} µs per request); machine {:.2} of 2 cores busy",
        cpu * 100.0,
        rate / cpu,
        cpu * 1e6 / rate,
        busy
    );
    Ok(())
}

/// First answer, last answer and how many, per (msn, part) asked for.
type Wakes = HashMap<(u64, u64), (Instant, Instant, u64)>;

/// What the held players saw.
#[derive(Default)]
struct HeldStats {
    in_flight: AtomicU64,
    answered: AtomicU64,
    errors: AtomicU64,
    connect_errors: AtomicU64,
    wakes: Mutex<Wakes>,
}

async fn held(server: &Server, args: &Args, media_path: &str) -> anyhow::Result<()> {
    let addr = server.addr;
    let n = args.held;
    println!("--- held: {n} players, each asking for the next part with _HLS_msn/_HLS_part, one connection each, {} s", args.seconds);
    let stats = Arc::new(HeldStats::default());
    let rss0 = server.rss_bytes()?;
    let opening = Instant::now();
    let ramp_end = opening + Duration::from_secs(5) + Duration::from_millis(n as u64 / 2);
    let end = ramp_end + Duration::from_secs(args.seconds);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let stats = stats.clone();
        let path = media_path.to_owned();
        tasks.push(tokio::spawn(async move { player(addr, path, i as u64, end, stats).await }));
        // Open them at about 2,000 a second.
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let ramped = Instant::now();
    println!(
        "opened            {n} players in {:.1} s; {} connect errors; {} requests in flight; server RSS {:.1} MiB",
        (ramped - opening).as_secs_f64(),
        stats.connect_errors.load(Ordering::Relaxed),
        stats.in_flight.load(Ordering::Relaxed),
        mib(server.rss_bytes()?)
    );
    tokio::time::sleep_until(ramp_end.into()).await;
    // The measured window.
    let cpu0 = server.cpu_time()?;
    let own0 = own_cpu_time()?;
    let busy0 = machine_busy();
    let answered0 = stats.answered.load(Ordering::Relaxed);
    let errors0 = stats.errors.load(Ordering::Relaxed);
    if let Ok(mut w) = stats.wakes.lock() {
        w.clear();
    }
    let t0 = Instant::now();
    let mut in_flight_min = u64::MAX;
    let mut in_flight_samples = Vec::new();
    let mut rss_max = 0;
    while Instant::now() + Duration::from_millis(100) < end {
        tokio::time::sleep(Duration::from_millis(97)).await;
        let f = stats.in_flight.load(Ordering::Relaxed);
        in_flight_min = in_flight_min.min(f);
        in_flight_samples.push(f);
        rss_max = rss_max.max(server.rss_bytes()?);
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = server.cpu_time()?.saturating_sub(cpu0).as_secs_f64() / secs;
    let own = own_cpu_time()?.saturating_sub(own0).as_secs_f64() / secs;
    let busy = machine_busy().saturating_sub(busy0).as_secs_f64() / secs;
    let answered = stats.answered.load(Ordering::Relaxed) - answered0;
    let errors = stats.errors.load(Ordering::Relaxed) - errors0;
    let rate = answered as f64 / secs;
    in_flight_samples.sort_unstable();
    let median_in_flight = in_flight_samples.get(in_flight_samples.len() / 2).copied().unwrap_or(0);
    // How long the server took to answer everyone waiting for a part: from
    // the first answer for that part to the last.
    let mut spreads: Vec<f64> = Vec::new();
    let mut per_part: Vec<u64> = Vec::new();
    if let Ok(w) = stats.wakes.lock() {
        for (first, last, count) in w.values() {
            if *count as usize * 2 >= n {
                spreads.push((*last - *first).as_secs_f64() * 1000.0);
                per_part.push(*count);
            }
        }
    }
    spreads.sort_by(f64::total_cmp);
    let q = |v: &[f64], p: f64| v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    println!(
        "held              requests in flight (sampled every 0.1 s): median {median_in_flight}, min {in_flight_min} of {n} players"
    );
    println!(
        "answered          {rate:.0} playlists/s ({answered} in {secs:.1} s), {errors} errors or non-200; {} parts woke at least half the players",
        spreads.len()
    );
    println!(
        "answering a part  first to last answer of the players waiting for it: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        q(&spreads, 0.5),
        q(&spreads, 0.9),
        spreads.last().copied().unwrap_or(0.0)
    );
    println!(
        "server CPU        {:.1} % of one core -> {:.0} answered blocking requests/s per core ({:.1} µs each); generator {:.1} %; machine {:.2} of 2 cores busy",
        cpu * 100.0,
        rate / cpu,
        cpu * 1e6 / rate.max(1.0),
        own * 100.0,
        busy
    );
    println!(
        "server RSS        {:.1} MiB before the players, max {:.1} MiB while {median_in_flight} were held -> {:.1} KiB per held request (connection included)",
        mib(rss0),
        mib(rss_max),
        (rss_max.saturating_sub(rss0)) as f64 / 1024.0 / median_in_flight.max(1) as f64
    );
    for t in tasks {
        t.abort();
    }
    Ok(())
}

/// One player: a keep-alive connection asking for the next part again and
/// again until `end`.
async fn player(addr: std::net::SocketAddr, path: String, id: u64, end: Instant, stats: Arc<HeldStats>) {
    let connected = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        anyhow::Ok(sender)
    };
    let mut sender = match connected.await {
        Ok(s) => s,
        Err(_) => {
            stats.connect_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let session = 0x5eed_0000_0000_0000u64 | id;
    let mut next: Option<(u64, u64)> = None;
    while Instant::now() < end {
        let uri = match next {
            Some((msn, part)) => format!("{path}?session={session:x}&_HLS_msn={msn}&_HLS_part={part}"),
            None => format!("{path}?session={session:x}"),
        };
        let Ok(request) = hyper::Request::get(uri).header("host", "bench").body(Empty::<Bytes>::new()) else { return };
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let response = sender.send_request(request).await;
        let body = match response {
            Ok(r) if r.status() == 200 => r.into_body().collect().await.ok().map(|b| b.to_bytes()),
            Ok(r) => {
                let _ = r.into_body().collect().await;
                None
            }
            Err(_) => None,
        };
        stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        let now = Instant::now();
        let Some(body) = body else {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            if sender.ready().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        stats.answered.fetch_add(1, Ordering::Relaxed);
        if let Some(asked) = next
            && let Ok(mut w) = stats.wakes.lock()
        {
            let e = w.entry(asked).or_insert((now, now, 0));
            e.1 = now;
            e.2 += 1;
        }
        next = preload_hint(&body);
        if next.is_none() {
            // Between segments there is no hint for one part: ask again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// (msn, part) of the playlist's `EXT-X-PRELOAD-HINT` (`part{msn}.{i}.m4s`).
fn preload_hint(body: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().rev().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))?;
    let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
    let (msn, part) = uri.strip_prefix("part")?.strip_suffix(".m4s")?.split_once('.')?;
    Some((msn.parse().ok()?, part.parse().ok()?))
}
