//! Conference load: N synthetic participants join one room of the real
//! `confcast` binary over the WebSocket, complete ICE/DTLS against its one
//! UDP port, P of them publish real H.264 (~1 Mbps, 30 fps) and everyone
//! receives the one video they watch, plus the audio mix.
//!
//! Phases: register and invite (HTTP), join (WebSocket + ICE/DTLS), an
//! audio-only window (everyone connected, Opus silence only), then a video
//! window. Each window measures server CPU (from /proc), what every client
//! received, and the forwarding latency of every video packet (see `peer`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _, TryStreamExt as _};
use serde_json::{json, Value};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::{Candidate, Rtc};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::h264_clip::Clip;
use crate::peer::{received, Command, Engine, Peer, PeerCounters, Snapshot};
use crate::process::{load_average, record_profile, own_cpu_time, request, Server};

#[derive(clap::Args)]
pub struct Args {
    /// The confcast binary to measure.
    #[arg(long, default_value = "target/release/confcast")]
    binary: PathBuf,
    /// Participants in the room (all receive video).
    #[arg(long, default_value_t = 10)]
    participants: usize,
    /// How many of them publish H.264.
    #[arg(long, default_value_t = 2)]
    publishers: usize,
    /// Length of the measured video window, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Length of the measured audio-only window before video starts.
    #[arg(long, default_value_t = 5)]
    audio_seconds: u64,
    /// Everyone sends Opus digital silence every 20 ms (RFC 6464 level:
    /// silent), as a muted browser microphone does; `false`: no audio.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    audio: bool,
    /// Video bitrate of the clip, kbit/s.
    #[arg(long, default_value_t = 1000)]
    kbps: u32,
    /// Joins in flight at once.
    #[arg(long, default_value_t = 4)]
    join_concurrency: usize,
    /// Record a CPU profile of the server during the video window with
    /// `perf record` into this file.
    #[arg(long)]
    perf_output: Option<PathBuf>,
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What the signalling side of each participant saw.
#[derive(Default)]
pub(crate) struct Signalling {
    /// Latest `selection.source` per participant.
    pub(crate) selection: Mutex<Vec<Option<String>>>,
    /// Error codes received, per participant.
    pub(crate) errors: Mutex<Vec<Vec<String>>>,
    pub(crate) messages: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

pub(crate) struct Plan {
    pub(crate) names: Vec<String>,
    pub(crate) publishers: usize,
    /// Everyone is alone in their own room (and publishes).
    pub(crate) solo: bool,
}

impl Plan {
    fn is_publisher(&self, i: usize) -> bool {
        i < self.publishers
    }

    /// The publisher slot participant `i` is meant to receive, and whether
    /// that takes a `watch` (a lone publisher gets its own video).
    fn watching(&self, i: usize) -> (usize, bool) {
        let p = self.publishers;
        if self.solo {
            (i, false)
        } else if i < p {
            if p == 1 { (0, false) } else { ((i + 1) % p, true) }
        } else {
            (i % p, true)
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let n = args.participants;
    let p = args.publishers;
    if n == 0 || p == 0 || p > n {
        bail!("need 1 <= publishers <= participants");
    }
    println!(
        "conference        {n} participants, {p} publishing H.264, audio: {}, video window {} s",
        if args.audio { "Opus silence from everyone" } else { "none sent" },
        args.seconds
    );
    let clip_dir = tempfile::tempdir()?;
    let dir = clip_dir.path().to_owned();
    let kbps = args.kbps;
    let clip = Arc::new(tokio::task::spawn_blocking(move || Clip::encode(&dir, 10, kbps)).await??);
    let packets: usize = clip.frames.iter().map(|f| f.packets.len()).sum();
    println!(
        "clip              {} frames, {} keyframes, {:.0} kbit/s, {} RTP packets (H.264 constrained baseline 640x360 30 fps)",
        clip.frames.len(),
        clip.frames.iter().filter(|f| f.keyframe).count(),
        clip.bits_per_second() / 1000.0,
        packets
    );

    let mut server = Server::start_with(&args.binary, &["--media-port", "0"]).await?;
    let addr = server.addr;
    println!("server            pid {}, http {addr}, RSS at start {:.1} MiB", server.pid(), mib(server.rss_bytes()?));

    // Accounts and membership.
    let started = Instant::now();
    let names: Vec<String> = (0..n).map(|i| format!("peer{i:04}")).collect();
    let (host_token, room) = register(addr, &names[0]).await?;
    let mut tokens = vec![host_token.clone()];
    let rest: Vec<String> = futures_util::stream::iter(names[1..].iter().cloned())
        .map(|name| async move { register(addr, &name).await.map(|(token, _)| token) })
        .buffered(4)
        .try_collect()
        .await?;
    tokens.extend(rest);
    let (status, link) = request(addr, "POST", &format!("/api/v1/rooms/{room}/invite-links"), Some(&host_token), Some(json!({}))).await?;
    if status != 201 {
        bail!("creating the invite link answered {status}: {link}");
    }
    let link = link["token"].as_str().context("no link token")?.to_owned();
    futures_util::stream::iter(tokens[1..].iter().cloned())
        .map(|token| {
            let path = format!("/api/v1/invite-links/{link}/accept");
            async move {
                let (status, body) = request(addr, "POST", &path, Some(&token), None).await?;
                if status != 200 {
                    bail!("accepting the invite answered {status}: {body}");
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    println!(
        "accounts          {n} registered and members of room {room} in {:.1} s; server RSS now {:.1} MiB",
        started.elapsed().as_secs_f64(),
        mib(server.rss_bytes()?)
    );
    // Password hashing leaves the allocator holding memory the media side
    // would then reuse unseen; a fresh process (same database, same
    // sessions) makes the RSS per participant honest.
    server.restart().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before_join = server.rss_bytes()?;
    println!("server            restarted (pid {}), RSS {:.1} MiB before the joins", server.pid(), mib(rss_before_join));
    let engine = Engine::start(clip.clone(), p)?;
    let plan = Arc::new(Plan { names: names.clone(), publishers: p, solo: false });
    let signalling = Arc::new(Signalling {
        selection: Mutex::new(vec![None; n]),
        errors: Mutex::new(vec![Vec::new(); n]),
        ..Signalling::default()
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // `watch` names a publisher, who must have joined: sent once all publishers are in.
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);

    // Joins: the publishers first (in order, so the others can watch them), then everyone else.
    let join_started = Instant::now();
    let cpu_before_join = server.cpu_time()?;
    let join_one = |i: usize| {
        let token = tokens[i].clone();
        let room = room.clone();
        let commands = engine.commands.clone();
        let plan = plan.clone();
        let signalling = signalling.clone();
        let stop = stop_rx.clone();
        let ready = ready_rx.clone();
        let audio = args.audio;
        async move {
            join(addr, &room, &token, i, &plan, commands, signalling, ready, stop, audio).await.with_context(|| format!("participant {i}"))
        }
    };
    let mut joins = Vec::new();
    for i in 0..p {
        joins.push(join_one(i).await?);
    }
    let _ = ready_tx.send(true);
    let others: Vec<Joined> = futures_util::stream::iter(p..n).map(join_one).buffer_unordered(args.join_concurrency.max(1)).try_collect().await?;
    joins.extend(others);
    let answered = join_started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.connected.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connected = engine.connected.load(Ordering::Relaxed);
    let join_time = join_started.elapsed();
    let join_cpu = server.cpu_time()?.saturating_sub(cpu_before_join);
    let h264 = joins.iter().filter(|j| j.h264).count();
    let media_port = joins.first().map_or(0, |j| j.media_port);
    println!(
        "joined            {n} joins answered in {:.1} s, {connected}/{n} ICE+DTLS connected after {:.1} s; server CPU during joins {:.1} s; answers choosing H.264: {h264}/{n}; media port {media_port}",
        answered.as_secs_f64(),
        join_time.as_secs_f64(),
        join_cpu.as_secs_f64()
    );
    println!(
        "signalling        {} messages, {:.1} MiB received by the clients during the joins",
        signalling.messages.load(Ordering::Relaxed),
        mib(signalling.bytes.load(Ordering::Relaxed))
    );
    join_statistics(&joins, &engine.snapshot()?);
    println!("udp drops         server socket {} during the joins (since it opened)", udp_drops(media_port).0);
    let rss_joined = server.rss_bytes()?;

    // Before video: audio only (or nothing sent, with --audio false).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let audio_window = measure(&server, &engine, media_port, Duration::from_secs(args.audio_seconds), None).await?;

    // Video.
    engine.commands.send(Command::StartVideo).map_err(|_| anyhow::anyhow!("the peer thread stopped"))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let video_window = measure(&server, &engine, media_port, Duration::from_secs(args.seconds), args.perf_output.as_ref()).await?;
    let rss_end = server.rss_bytes()?;

    // Did everyone get the video they asked for?
    let selections = signalling.selection.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let as_planned = (0..n).filter(|&i| selections[i].as_deref() == Some(plan.names[plan.watching(i).0].as_str())).count();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for code in signalling.errors.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.iter().flatten() {
        *counts.entry(code.clone()).or_default() += 1;
    }
    let error_codes: Vec<String> = counts.iter().map(|(code, count)| format!("{code} x{count}")).collect();

    report(&args, &clip, &audio_window, &video_window, rss_before_join, rss_joined, rss_end);
    println!("selection         {as_planned}/{n} participants' last `selection` names the publisher they watch; signalling errors: {}", if error_codes.is_empty() { "none".to_owned() } else { error_codes.join(", ") });

    let _ = stop_tx.send(true);
    for j in joins {
        let _ = tokio::time::timeout(Duration::from_secs(2), j.reader).await;
    }
    drop(engine);
    drop(server);
    Ok(())
}

/// How long joins took, early and late in the join phase (the server's
/// work per join grows with the room).
fn join_statistics(joins: &[Joined], snapshot: &Snapshot) {
    let mut by_answer: Vec<&Joined> = joins.iter().collect();
    by_answer.sort_by_key(|j| j.answered);
    let connected_at: std::collections::HashMap<usize, Instant> =
        snapshot.peers.iter().filter_map(|c| c.connected_at.map(|t| (c.participant, t))).collect();
    let tenth = (by_answer.len() / 10).max(1);
    for (label, part) in [("first 10 %", &by_answer[..tenth]), ("last 10 % ", &by_answer[by_answer.len() - tenth..])] {
        let answer = median(part.iter().map(|j| (j.answered - j.sent).as_secs_f64() * 1000.0).collect());
        let connect: Vec<f64> = part
            .iter()
            .filter_map(|j| connected_at.get(&j.participant).map(|t| t.saturating_duration_since(j.answered).as_secs_f64() * 1000.0))
            .collect();
        println!(
            "joins {label}     answer after median {answer:.0} ms; ICE+DTLS connected {} of {}, median {:.0} ms after the answer",
            connect.len(),
            part.len(),
            median(connect.clone())
        );
    }
}

pub(crate) struct Joined {
    participant: usize,
    /// When `join` was sent and when `joined` came back.
    sent: Instant,
    answered: Instant,
    pub(crate) h264: bool,
    pub(crate) media_port: u16,
    pub(crate) reader: tokio::task::JoinHandle<()>,
}

/// One participant: WebSocket, offer, answer, then the peer goes to the
/// engine and the socket stays open (read and counted) until `stop`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn join(
    addr: std::net::SocketAddr,
    room: &str,
    token: &str,
    i: usize,
    plan: &Plan,
    commands: std::sync::mpsc::Sender<Command>,
    signalling: Arc<Signalling>,
    mut ready: tokio::sync::watch::Receiver<bool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    audio: bool,
) -> anyhow::Result<Joined> {
    let mut request = format!("ws://{addr}/api/v1/rooms/{room}/ws").into_client_request()?;
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;

    let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let local = udp.local_addr()?;
    let mut rtc = Rtc::builder().set_rtp_mode(true).build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let mut change = rtc.sdp_api();
    let audio_mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let video_mid = change.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().context("no offer")?;
    let offer = offer.to_sdp_string();
    if !offer.contains("packetization-mode=1") {
        bail!("the offer has no H.264 packetization-mode 1");
    }
    let sent = Instant::now();
    socket.send(Message::Text(json!({"type": "join", "version": 1, "sdp": offer}).to_string().into())).await?;
    let joined = loop {
        let value = next_message(&mut socket, i, &signalling, Some(Duration::from_secs(60))).await?;
        match value["type"].as_str() {
            Some("joined") => break value,
            Some("error") => bail!("join refused: {value}"),
            _ => {}
        }
    };
    let answered = Instant::now();
    let answer_sdp = joined["sdp"].as_str().context("no sdp in joined")?;
    let h264 = first_video_codec(answer_sdp).is_some_and(|c| c.eq_ignore_ascii_case("H264"));
    let media_port = candidate_port(answer_sdp).unwrap_or(0);
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(answer_sdp)?)?;
    let video_pt = negotiated_pt(&rtc, video_mid, Codec::H264).context("H.264 (packetization-mode 1) was not negotiated")?;
    let audio_pt = negotiated_pt(&rtc, audio_mid, Codec::Opus).context("Opus was not negotiated")?;
    let (slot, needs_watch) = plan.watching(i);
    let publisher = plan.is_publisher(i).then_some(i);
    let peer = Peer::new(i, rtc, udp, video_mid, audio_mid, video_pt, audio_pt, Some(slot), publisher, audio)?;
    commands.send(Command::Add(Box::new(peer))).map_err(|_| anyhow::anyhow!("the peer thread stopped"))?;
    let watch = needs_watch.then(|| json!({"type": "watch", "username": plan.names[slot]}).to_string());
    let reader = tokio::spawn(async move {
        let mut watch = watch;
        loop {
            if *ready.borrow()
                && let Some(w) = watch.take()
                && socket.send(Message::Text(w.into())).await.is_err()
            {
                break;
            }
            tokio::select! {
                _ = ready.changed(), if watch.is_some() => {}
                message = next_message(&mut socket, i, &signalling, None) => if message.is_err() { break },
                _ = stop.changed() => {
                    let _ = socket.send(Message::Text(r#"{"type":"leave"}"#.into())).await;
                    let _ = socket.close(None).await;
                    break;
                }
            }
        }
    });
    Ok(Joined { participant: i, sent, answered, h264, media_port, reader })
}

/// Reads the next text message; records selections and errors.
async fn next_message(socket: &mut Socket, i: usize, signalling: &Signalling, patience: Option<Duration>) -> anyhow::Result<Value> {
    loop {
        let frame = match patience {
            Some(limit) => tokio::time::timeout(limit, socket.next()).await.context("signalling timed out")?,
            None => socket.next().await,
        };
        match frame {
            Some(Ok(Message::Text(text))) => {
                signalling.messages.fetch_add(1, Ordering::Relaxed);
                signalling.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
                // Rosters are most of the traffic (every join sends the whole
                // roster to everyone); only a few small kinds are parsed.
                if text.starts_with(r#"{"type":"roster""#) {
                    continue;
                }
                let head = &text.as_bytes()[..text.len().min(24)];
                let interesting = [&b"joined"[..], b"selection", b"error"].iter().any(|k| head.windows(k.len()).any(|w| w == *k));
                if !interesting {
                    continue;
                }
                let value: Value = serde_json::from_str(&text)?;
                match value["type"].as_str() {
                    Some("selection") => {
                        if let Ok(mut s) = signalling.selection.lock() {
                            s[i] = value["source"].as_str().map(str::to_owned);
                        }
                    }
                    Some("error") => {
                        if let Ok(mut e) = signalling.errors.lock() {
                            e[i].push(value["code"].as_str().unwrap_or("?").to_owned());
                        }
                    }
                    _ => {}
                }
                return Ok(value);
            }
            Some(Ok(Message::Close(_))) | None => bail!("the signalling socket closed"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// The payload type of `codec` that the answer accepted on `mid`
/// (H.264: packetization-mode 1, constrained baseline preferred).
pub(crate) fn negotiated_pt(rtc: &Rtc, mid: Mid, codec: Codec) -> Option<Pt> {
    let remote = rtc.media(mid)?.remote_pts().to_vec();
    let params = rtc.codec_config().params();
    let fits = |p: &&str0m::format::PayloadParams| {
        remote.contains(&p.pt())
            && p.spec().codec == codec
            && (codec != Codec::H264 || p.spec().format.packetization_mode == Some(1))
    };
    let baseline = params.iter().filter(fits).find(|p| {
        p.spec().format.profile_level_id.is_some_and(|id| (id >> 16) == 0x42)
    });
    baseline.or_else(|| params.iter().find(fits)).map(|p| p.pt())
}

/// The codec name of the first payload type of the answer's video m-line.
fn first_video_codec(sdp: &str) -> Option<String> {
    let m = sdp.lines().find(|l| l.starts_with("m=video"))?;
    let pt = m.split_whitespace().nth(3)?;
    let prefix = format!("a=rtpmap:{pt} ");
    let rtpmap = sdp.lines().find(|l| l.starts_with(&prefix))?;
    Some(rtpmap[prefix.len()..].split('/').next()?.to_owned())
}

/// The port of the answer's (one) host candidate.
pub(crate) fn candidate_port(sdp: &str) -> Option<u16> {
    let line = sdp.lines().find(|l| l.starts_with("a=candidate:"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    fields.get(5)?.parse().ok()
}

pub(crate) async fn register(addr: std::net::SocketAddr, name: &str) -> anyhow::Result<(String, String)> {
    let body = json!({"username": name, "password": "benchmark password", "display_name": name});
    let (status, reply) = request(addr, "POST", "/api/v1/auth/register", None, Some(body)).await?;
    if status != 201 {
        bail!("register answered {status}: {reply}");
    }
    let token = reply["token"].as_str().context("no token")?.to_owned();
    let room = reply["room"]["id"].as_str().context("no room id")?.to_owned();
    Ok((token, room))
}

/// One measured window.
struct Window {
    elapsed: Duration,
    server_cpu: Duration,
    own_cpu: Duration,
    thread_cpu: Duration,
    start: Snapshot,
    end: Snapshot,
    server_udp_drops: u64,
    client_udp_drops: u64,
    /// CPU time the whole machine was busy (every process), and its load average at the end.
    machine_busy: Duration,
    load_average: String,
}

/// Busy (non-idle) CPU time of the whole machine, from /proc/stat.
pub(crate) fn machine_busy() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return Duration::ZERO };
    let Some(line) = stat.lines().next() else { return Duration::ZERO };
    let ticks: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    Duration::from_millis(busy * 10)
}

async fn measure(
    server: &Server,
    engine: &Engine,
    media_port: u16,
    length: Duration,
    perf_output: Option<&PathBuf>,
) -> anyhow::Result<Window> {
    let drops_before = udp_drops(media_port);
    let busy0 = machine_busy();
    let start = engine.snapshot()?;
    let cpu0 = server.cpu_time()?;
    let own0 = own_cpu_time()?;
    let t0 = Instant::now();
    let perf = perf_output.map(|file| record_profile(server, file, length)).transpose()?;
    tokio::time::sleep(length).await;
    let elapsed = t0.elapsed();
    let server_cpu = server.cpu_time()?.saturating_sub(cpu0);
    let own_cpu = own_cpu_time()?.saturating_sub(own0);
    let end = engine.snapshot()?;
    let busy = machine_busy().saturating_sub(busy0);
    let drops_after = udp_drops(media_port);
    if let Some(mut perf) = perf {
        perf.wait().await?;
    }
    Ok(Window {
        elapsed,
        server_cpu,
        own_cpu,
        thread_cpu: end.thread_cpu.saturating_sub(start.thread_cpu),
        start,
        end,
        server_udp_drops: drops_after.0.saturating_sub(drops_before.0),
        client_udp_drops: drops_after.1.saturating_sub(drops_before.1),
        machine_busy: busy,
        load_average: load_average(),
    })
}

/// Datagrams the kernel dropped for full receive buffers, from /proc/net/udp:
/// (the server's media socket, every other socket).
pub(crate) fn udp_drops(media_port: u16) -> (u64, u64) {
    let Ok(table) = std::fs::read_to_string("/proc/net/udp") else { return (0, 0) };
    let mut server = 0;
    let mut others = 0;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(drops)) = (fields.get(1), fields.get(12)) else { continue };
        let port = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
        let drops: u64 = drops.parse().unwrap_or(0);
        if port == Some(media_port) {
            server += drops;
        } else {
            others += drops;
        }
    }
    (server, others)
}


fn sum<F: Fn(&PeerCounters) -> u64>(w: &Window, f: F) -> u64 {
    let a: u64 = w.start.peers.iter().map(&f).sum();
    let b: u64 = w.end.peers.iter().map(&f).sum();
    b.saturating_sub(a)
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn report(args: &Args, clip: &Clip, audio: &Window, video: &Window, rss_before_join: u64, rss_joined: u64, rss_end: u64) {
    let n = args.participants;
    let clip_kbps = clip.bits_per_second() / 1000.0;
    let before = if args.audio { "audio only" } else { "no media sent" };
    for (name, w) in [(before, audio), ("video", video)] {
        let secs = w.elapsed.as_secs_f64();
        let rx = received(&w.start.peers, &w.end.peers, secs);
        let down_tracks = rx.iter().filter(|r| r.video_kbps >= clip_kbps * 0.5).count();
        let video_mbps: f64 = rx.iter().map(|r| r.video_kbps).sum::<f64>() / 1000.0;
        let lost: u64 = rx.iter().map(|r| r.lost).sum();
        let expected: u64 = rx.iter().map(|r| r.expected).sum();
        let cpu = w.server_cpu.as_secs_f64() / secs;
        let audio_pps = median(rx.iter().map(|r| r.audio_pps).collect());
        let kbps_med = median(rx.iter().map(|r| r.video_kbps).collect());
        let kbps_min = rx.iter().map(|r| r.video_kbps).fold(f64::INFINITY, f64::min);
        println!("--- {name} window: {secs:.1} s, {n} participants, {} publishing", if name == "video" { args.publishers } else { 0 });
        println!("server CPU        {:.1} % of one core", cpu * 100.0);
        println!(
            "generator CPU     {:.1} % of one core (peer thread {:.1} %)",
            w.own_cpu.as_secs_f64() / secs * 100.0,
            w.thread_cpu.as_secs_f64() / secs * 100.0
        );
        let others = w.machine_busy.saturating_sub(w.server_cpu + w.own_cpu);
        println!(
            "machine           {:.2} of 2 cores busy; other processes {:.1} % of a core; load average {}",
            w.machine_busy.as_secs_f64() / secs,
            others.as_secs_f64() / secs * 100.0,
            w.load_average
        );
        println!("audio received    median {audio_pps:.1} packets/s per participant (the mix, one 20 ms packet each)");
        println!(
            "udp drops         server socket {}, client sockets {}; generator send would-block {}, errors {}",
            w.server_udp_drops,
            w.client_udp_drops,
            w.end.send_would_block - w.start.send_would_block,
            w.end.send_errors - w.start.send_errors
        );
        if name != "video" {
            continue;
        }
        println!(
            "video down-tracks {down_tracks}/{n} receiving >= {:.0} kbit/s; per receiver median {kbps_med:.0} kbit/s, min {kbps_min:.0} kbit/s; total {video_mbps:.1} Mbit/s forwarded (RTP payload)",
            clip_kbps * 0.5
        );
        println!(
            "video loss        {lost} of {expected} packets ({:.3} %) missing at the receivers",
            if expected > 0 { lost as f64 * 100.0 / expected as f64 } else { 0.0 }
        );
        let frames = sum(w, |c| c.frames_sent);
        println!(
            "publishers        {frames} frames sent ({:.1}/s each), {} skipped late, {} keyframes, {} keyframe requests received",
            frames as f64 / secs / args.publishers as f64,
            sum(w, |c| c.frames_skipped),
            sum(w, |c| c.keyframes_sent),
            sum(w, |c| c.keyframe_requests)
        );
        let marginal = (w.server_cpu.as_secs_f64() - audio.server_cpu.as_secs_f64() * secs / audio.elapsed.as_secs_f64()) / secs;
        if down_tracks > 0 && video_mbps > 0.0 {
            println!(
                "per down-track    {:.3} % of a core per forwarded 1 Mbit/s down-track (all server work) -> {:.0} down-tracks per core",
                cpu * 100.0 / video_mbps,
                video_mbps / cpu
            );
            println!(
                "video only        {:.1} % of a core above the window before video -> {:.3} % per Mbit/s down-track -> {:.0} down-tracks per core",
                marginal * 100.0,
                marginal * 100.0 / video_mbps,
                if marginal > 0.0 { video_mbps / marginal } else { f64::INFINITY }
            );
        }
        let h = &w.end.latency;
        let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e6;
        println!(
            "latency           min {:.3} ms, p10 {:.3} ms, p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms ({} packets in order; {} of all packets not recognised)",
            h.min() as f64 / 1e6,
            ms(h, 0.1),
            ms(h, 0.5),
            ms(h, 0.9),
            ms(h, 0.99),
            ms(h, 0.999),
            h.max() as f64 / 1e6,
            h.len(),
            sum(w, |c| c.latency_unmatched)
        );
        let late = &w.end.latency_late;
        if !late.is_empty() {
            println!(
                "late packets      {} arrived after a higher sequence number (repairs, reordering): p50 {:.1} ms, p99 {:.1} ms after the original send",
                late.len(),
                ms(late, 0.5),
                ms(late, 0.99)
            );
        }
    }
    println!(
        "server RSS        {:.1} MiB before the joins, {:.1} MiB joined, {:.1} MiB after video -> {:.2} MiB per participant",
        mib(rss_before_join),
        mib(rss_joined),
        mib(rss_end),
        mib(rss_end.saturating_sub(rss_before_join)) / n as f64
    );
    let broken = video.end.peers.iter().filter(|c| c.broken).count();
    let disconnects: u64 = video.end.peers.iter().map(|c| c.ice_disconnects).sum();
    println!("clients           {broken} broken, {disconnects} ICE disconnects; {} peer-loop iterations/s", (video.end.loop_iterations - video.start.loop_iterations) as f64 as u64 / video.elapsed.as_secs().max(1));
}

pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
