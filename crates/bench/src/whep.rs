//! WebRTC (WHEP) viewing: one room on air (one synthetic publisher: the real
//! H.264 clip and Opus silence), then N receive-only WebRTC viewers, each a
//! str0m peer that POSTs its offer to `/api/v1/rooms/{id}/whep` (a few at a
//! time), connects to the media port (ICE-lite, DTLS) and receives the
//! Program. The server's CPU is measured in a window without viewers and in
//! one with all N; the difference per viewer is what a WHEP viewer costs.
//! Every viewer's received video bitrate and audio packets are checked.
//!
//! The viewers run in their own peer thread (the `peer` engine), apart from
//! the publisher's, so the publisher keeps its schedule however busy the
//! viewers' thread gets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{StreamExt as _, TryStreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};

use crate::broadcast::Rooms;
use crate::conference::{candidate_port, machine_busy, median, mib, negotiated_pt, udp_drops};
use crate::h264_clip::Clip;
use crate::peer::{received, Command, Engine, Peer, PeerCounters, Snapshot};
use crate::process::{load_average, record_profile, own_cpu_time, request, Server};

#[derive(clap::Args)]
pub struct Args {
    /// The confcast binary to measure.
    #[arg(long, default_value = "target/release/confcast")]
    binary: PathBuf,
    /// WebRTC viewers of the one broadcast.
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Length of each measured window, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Video bitrate of the clip, kbit/s.
    #[arg(long, default_value_t = 1000)]
    kbps: u32,
    /// WHEP offers in flight at once.
    #[arg(long, default_value_t = 4)]
    join_concurrency: usize,
    /// Record a CPU profile of the server during the window with viewers
    /// with `perf record` into this file.
    #[arg(long)]
    perf_output: Option<PathBuf>,
}

/// One viewer's WHEP exchange.
struct ViewerJoin {
    index: usize,
    sent: Instant,
    answered: Instant,
    location: String,
    media_port: u16,
}

struct Window {
    secs: f64,
    server_cpu: f64,
    own_cpu: f64,
    publisher_thread: f64,
    viewer_thread: f64,
    machine_busy: f64,
    load_average: String,
    server_drops: u64,
    client_drops: u64,
    start: Option<Snapshot>,
    end: Option<Snapshot>,
}

async fn measure(
    server: &Server,
    publisher: &Engine,
    viewers: Option<&Engine>,
    media_port: u16,
    length: Duration,
    perf_output: Option<&PathBuf>,
) -> anyhow::Result<Window> {
    let drops0 = udp_drops(media_port);
    let busy0 = machine_busy();
    let start = viewers.map(Engine::snapshot).transpose()?;
    let pub0 = publisher.snapshot()?.thread_cpu;
    let cpu0 = server.cpu_time()?;
    let own0 = own_cpu_time()?;
    let t0 = Instant::now();
    let perf = perf_output.map(|file| record_profile(server, file, length)).transpose()?;
    tokio::time::sleep(length).await;
    let secs = t0.elapsed().as_secs_f64();
    let server_cpu = server.cpu_time()?.saturating_sub(cpu0).as_secs_f64() / secs;
    let own_cpu = own_cpu_time()?.saturating_sub(own0).as_secs_f64() / secs;
    let publisher_thread = publisher.snapshot()?.thread_cpu.saturating_sub(pub0).as_secs_f64() / secs;
    let end = viewers.map(Engine::snapshot).transpose()?;
    let machine = machine_busy().saturating_sub(busy0).as_secs_f64() / secs;
    let drops1 = udp_drops(media_port);
    if let Some(mut perf) = perf {
        perf.wait().await?;
    }
    let viewer_thread = match (&start, &end) {
        (Some(a), Some(b)) => b.thread_cpu.saturating_sub(a.thread_cpu).as_secs_f64() / secs,
        _ => 0.0,
    };
    Ok(Window {
        secs,
        server_cpu,
        own_cpu,
        publisher_thread,
        viewer_thread,
        machine_busy: machine,
        load_average: load_average(),
        server_drops: drops1.0.saturating_sub(drops0.0),
        client_drops: drops1.1.saturating_sub(drops0.1),
        start,
        end,
    })
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let n = args.viewers;
    if n == 0 {
        bail!("--viewers must be positive");
    }
    let clip_dir = tempfile::tempdir()?;
    let dir = clip_dir.path().to_owned();
    let kbps = args.kbps;
    let clip = Arc::new(tokio::task::spawn_blocking(move || Clip::encode(&dir, 10, kbps)).await??);
    let clip_kbps = clip.bits_per_second() / 1000.0;
    println!(
        "whep              1 room on air (H.264 {clip_kbps:.0} kbit/s 640x360 30 fps + Opus silence), {n} WebRTC viewers, {} offers at a time, windows of {} s",
        args.join_concurrency, args.seconds
    );

    let mut server = Server::start_with(&args.binary, &["--media-port", "0"]).await?;
    let addr = server.addr;
    let rooms = Rooms::join(&mut server, 1, clip.clone()).await?;
    let room = rooms.accounts[0].1.clone();
    rooms.engine.commands.send(Command::StartVideo).map_err(|_| anyhow::anyhow!("the peer thread stopped"))?;
    let on_air = Instant::now();
    rooms.go_on_air(addr).await?;
    println!("on air            room {room}, first segment {:.1} s after the PUT", on_air.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Baseline: the broadcast, nobody watching over WebRTC. The media port
    // is learnt from the first WHEP answer; drops of this window are not reported.
    let rss_before = server.rss_bytes()?;
    let baseline = measure(&server, &rooms.engine, None, 0, Duration::from_secs(args.seconds), None).await?;

    // Viewers join.
    let engine = Engine::start(clip.clone(), 0)?;
    let join_started = Instant::now();
    let cpu_before_join = server.cpu_time()?;
    let joins: Vec<ViewerJoin> = futures_util::stream::iter(0..n)
        .map(|i| {
            let commands = engine.commands.clone();
            let room = room.clone();
            async move { join_viewer(addr, &room, i, commands).await.with_context(|| format!("viewer {i}")) }
        })
        .buffer_unordered(args.join_concurrency.max(1))
        .try_collect()
        .await?;
    let answered = join_started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.connected.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connected = engine.connected.load(Ordering::Relaxed);
    let connect_time = join_started.elapsed();
    // Every viewer starts at a keyframe (the publisher is asked for one).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let join_cpu = server.cpu_time()?.saturating_sub(cpu_before_join);
    let media_port = joins.first().map_or(0, |j| j.media_port);
    println!(
        "joined            {n} offers answered (201) in {:.1} s, {connected}/{n} ICE+DTLS connected after {:.1} s; server CPU {:.2} s for the joins (and 3 s of settling)",
        answered.as_secs_f64(),
        connect_time.as_secs_f64(),
        join_cpu.as_secs_f64()
    );
    join_statistics(&joins, &engine.snapshot()?);

    let watched = measure(&server, &rooms.engine, Some(&engine), media_port, Duration::from_secs(args.seconds), args.perf_output.as_ref())
        .await?;
    let rss_after = server.rss_bytes()?;

    // Did every viewer get the broadcast?
    let (Some(start), Some(end)) = (&watched.start, &watched.end) else { bail!("no snapshots") };
    let rx = received(&start.peers, &end.peers, watched.secs);
    let video_short = rx.iter().filter(|r| r.video_kbps < clip_kbps * 0.9).count();
    let audio_short = rx.iter().filter(|r| r.audio_pps < 45.0).count();
    let short = rx.iter().filter(|r| r.video_kbps < clip_kbps * 0.9 || r.audio_pps < 45.0).count();
    let lost: u64 = rx.iter().map(|r| r.lost).sum();
    let expected: u64 = rx.iter().map(|r| r.expected).sum();
    let total_mbps: f64 = rx.iter().map(|r| r.video_kbps).sum::<f64>() / 1000.0;
    let late: u64 = end.peers.iter().zip(&start.peers).map(|(e, s)| e.video_late - s.video_late).sum();

    for (label, w) in [("without viewers", &baseline), ("with viewers", &watched)] {
        println!("--- {label}: {:.1} s", w.secs);
        println!("server CPU        {:.1} % of one core", w.server_cpu * 100.0);
        println!(
            "generator CPU     {:.1} % of one core (publisher thread {:.1} %, viewers' thread {:.1} %)",
            w.own_cpu * 100.0,
            w.publisher_thread * 100.0,
            w.viewer_thread * 100.0
        );
        println!(
            "machine           {:.2} of 2 cores busy; others {:.1} % of a core; load average {}",
            w.machine_busy,
            (w.machine_busy - w.server_cpu - w.own_cpu).max(0.0) * 100.0,
            w.load_average
        );
    }
    println!("udp drops         server socket {}, client sockets {} in the window with viewers", watched.server_drops, watched.client_drops);
    println!(
        "viewers video     per viewer median {:.0} kbit/s, min {:.0} kbit/s (clip {clip_kbps:.0}); {} of {n} below 90 % of the clip; total {total_mbps:.1} Mbit/s",
        median(rx.iter().map(|r| r.video_kbps).collect()),
        rx.iter().map(|r| r.video_kbps).fold(f64::INFINITY, f64::min),
        video_short
    );
    println!(
        "viewers audio     per viewer median {:.1} packets/s, min {:.1} (the mix: 50/s); {audio_short} of {n} below 45/s",
        median(rx.iter().map(|r| r.audio_pps).collect()),
        rx.iter().map(|r| r.audio_pps).fold(f64::INFINITY, f64::min)
    );
    println!(
        "video loss        {lost} of {expected} packets ({:.3} %) missing at the viewers; {late} arrived late (repairs or reordering)",
        if expected > 0 { lost as f64 * 100.0 / expected as f64 } else { 0.0 }
    );
    println!("short             {short} of {n} viewers fell short (video < 90 % of the clip's bitrate or audio < 45 packets/s)");
    let broken = end.peers.iter().filter(|c| c.broken).count();
    let disconnects: u64 = end.peers.iter().map(|c| c.ice_disconnects).sum();
    println!("viewer peers      {broken} broken, {disconnects} ICE disconnects");
    let per = (watched.server_cpu - baseline.server_cpu) / n as f64;
    println!("--- per viewer");
    println!(
        "CPU               {:.3} % of a core per WHEP viewer ((with - without) / {n}) -> {:.0} viewers per core",
        per * 100.0,
        if per > 0.0 { 1.0 / per } else { f64::INFINITY }
    );
    println!(
        "                  {:.3} % of a core per forwarded Mbit/s of video (with - without, / {total_mbps:.1})",
        (watched.server_cpu - baseline.server_cpu) * 100.0 / total_mbps.max(1e-9)
    );
    println!(
        "server RSS        {:.1} MiB without viewers, {:.1} MiB with {n} -> {:.1} KiB per viewer",
        mib(rss_before),
        mib(rss_after),
        rss_after.saturating_sub(rss_before) as f64 / 1024.0 / n as f64
    );

    // End every session.
    let ended: Vec<u16> = futures_util::stream::iter(joins.iter().map(|j| j.location.clone()))
        .map(|location| async move { request(addr, "DELETE", &location, None, None).await.map(|(status, _)| status) })
        .buffer_unordered(8)
        .try_collect()
        .await?;
    let deleted = ended.iter().filter(|&&s| s == 204).count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("ended             {deleted}/{n} DELETEs answered 204; server RSS {:.1} MiB after", mib(server.rss_bytes()?));
    println!("signalling        {} errors (the publisher's WebSocket)", rooms.signalling_errors());
    drop(engine);
    rooms.stop().await;
    drop(server);
    Ok(())
}

/// A receive-only viewer, as the watch page makes it (video, then audio):
/// offer, POST, answer; the peer then goes to the engine.
async fn join_viewer(addr: SocketAddr, room: &str, i: usize, commands: std::sync::mpsc::Sender<Command>) -> anyhow::Result<ViewerJoin> {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let local = udp.local_addr()?;
    let mut rtc = Rtc::builder().set_rtp_mode(true).build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let mut change = rtc.sdp_api();
    let video_mid = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let audio_mid = change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change.apply().context("no offer")?;
    let sent = Instant::now();
    let (status, location, answer) = post_sdp(addr, &format!("/api/v1/rooms/{room}/whep"), offer.to_sdp_string()).await?;
    let answered = Instant::now();
    if status != 201 {
        bail!("the WHEP offer answered {status}: {answer}");
    }
    let location = location.context("no Location")?;
    let media_port = candidate_port(&answer).unwrap_or(0);
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer)?)?;
    let video_pt = negotiated_pt(&rtc, video_mid, Codec::H264).context("H.264 was not negotiated")?;
    let audio_pt = negotiated_pt(&rtc, audio_mid, Codec::Opus).context("Opus was not negotiated")?;
    let peer = Peer::new(i, rtc, udp, video_mid, audio_mid, video_pt, audio_pt, None, None, false)?;
    commands.send(Command::Add(Box::new(peer))).map_err(|_| anyhow::anyhow!("the peer thread stopped"))?;
    Ok(ViewerJoin { index: i, sent, answered, location, media_port })
}

/// POST an SDP offer; status, Location and the body.
async fn post_sdp(addr: SocketAddr, path: &str, sdp: String) -> anyhow::Result<(u16, Option<String>, String)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::post(path)
        .header("host", addr.to_string())
        .header("content-type", "application/sdp")
        .body(Full::new(Bytes::from(sdp)))?;
    let response = sender.send_request(req).await?;
    let status = response.status().as_u16();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, location, String::from_utf8_lossy(&bytes).into_owned()))
}

/// Time from POST to 201, from 201 to ICE+DTLS connected, and from
/// connected to the first video packet, for the first and last tenth of the
/// viewers to be answered.
fn join_statistics(joins: &[ViewerJoin], snapshot: &Snapshot) {
    let counters: std::collections::HashMap<usize, &PeerCounters> = snapshot.peers.iter().map(|c| (c.participant, c)).collect();
    let mut by_answer: Vec<&ViewerJoin> = joins.iter().collect();
    by_answer.sort_by_key(|j| j.answered);
    let tenth = (by_answer.len() / 10).max(1);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (label, part) in [("all      ", &by_answer[..]), ("first 10 %", &by_answer[..tenth]), ("last 10 % ", &by_answer[by_answer.len() - tenth..])] {
        let answer: Vec<f64> = part.iter().map(|j| ms(j.answered - j.sent)).collect();
        let connect: Vec<f64> = part
            .iter()
            .filter_map(|j| counters.get(&j.index).and_then(|c| c.connected_at).map(|t| ms(t.saturating_duration_since(j.answered))))
            .collect();
        let video: Vec<f64> = part
            .iter()
            .filter_map(|j| {
                let c = counters.get(&j.index)?;
                Some(ms(c.first_video_at?.saturating_duration_since(c.connected_at?)))
            })
            .collect();
        let p90 = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() * 9 / 10).copied().unwrap_or(0.0)
        };
        println!(
            "joins {label} POST -> 201 median {:.1} ms (p90 {:.1}); 201 -> connected median {:.0} ms (p90 {:.0}, {} of {}); connected -> first video median {:.0} ms (p90 {:.0}, {} of {})",
            median(answer.clone()),
            p90(answer),
            median(connect.clone()),
            p90(connect.clone()),
            connect.len(),
            part.len(),
            median(video.clone()),
            p90(video.clone()),
            video.len(),
            part.len()
        );
    }
}

