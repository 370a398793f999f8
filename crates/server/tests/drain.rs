//! Operations on a real `confcast` process: the media metrics during a
//! conference on air, and the graceful drain on SIGTERM (participants told,
//! the broadcast ended, its recording finished and playable, exit 0).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::live::*;
use common::process::*;
use serde_json::{json, Value};
use str0m::change::SdpAnswer;
use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::{Input, Output};

/// Registers `username`; their token and personal room.
async fn register(addr: SocketAddr, username: &str) -> (String, String) {
    let (status, registered) = json_of(
        addr,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(json!({"username": username, "password": "correct horse battery", "display_name": username})),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    (registered["token"].as_str().unwrap().to_owned(), registered["room"]["id"].as_str().unwrap().to_owned())
}

/// Joins with a peer that will send both camera and microphone; the peer
/// and its audio mid.
async fn join_with_audio(socket: &mut Socket) -> (Peer, Mid) {
    let (mut peer, offer, pending) = Peer::offer().await;
    let audio = offer.lines().find_map(|l| l.strip_prefix("a=mid:")).unwrap().trim().to_owned();
    send(socket, json!({"type": "join", "version": 1, "sdp": offer})).await;
    let joined = expect(socket, "joined").await;
    let answer = SdpAnswer::from_sdp_string(joined["sdp"].as_str().unwrap()).unwrap();
    peer.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    assert!(peer.connect(Duration::from_secs(10)).await, "ICE and DTLS complete");
    (peer, Mid::from(audio.as_str()))
}

/// Sends the camera clip (30 fps) and Opus silence (50 packets a second)
/// for `duration`, while serving the network.
async fn publish(peer: &mut Peer, audio: Mid, clip: &[Vec<u8>], duration: Duration) {
    let opus = peer
        .rtc
        .codec_config()
        .params()
        .iter()
        .find(|p| p.spec().codec == str0m::format::Codec::Opus)
        .map(|p| p.pt())
        .expect("Opus negotiated");
    let start = Instant::now();
    let mut next_audio = 0u64;
    let mut buffer = vec![0u8; 2048];
    // The camera in slices, the microphone between them.
    while start.elapsed() < duration {
        peer.camera(clip, Duration::from_millis(20)).await;
        while start + Duration::from_millis(next_audio * 20) <= Instant::now() {
            if let Some(writer) = peer.rtc.writer(audio) {
                // An Opus frame of 20 ms silence (CELT, fullband).
                let frame = vec![0xf8, 0xff, 0xfe];
                writer.write(opus, Instant::now(), str0m::media::MediaTime::new(next_audio * 960, str0m::media::Frequency::FORTY_EIGHT_KHZ), frame).unwrap();
            }
            next_audio += 1;
        }
        loop {
            match peer.rtc.poll_output().unwrap() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    peer.udp.send_to(&t.contents, t.destination).await.unwrap();
                }
                Output::Event(_) => {}
            }
        }
        if let Ok(Ok((n, from))) = tokio::time::timeout(Duration::from_millis(1), peer.udp.recv_from(&mut buffer)).await {
            let input = Input::Receive(
                Instant::now(),
                Receive { proto: Protocol::Udp, source: from, destination: peer.local, contents: buffer[..n].try_into().unwrap() },
            );
            peer.rtc.handle_input(input).unwrap();
        }
    }
}

/// The value of one series in Prometheus text (`name{labels}`), 0 if absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_metrics_count_a_conference_on_air() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = start(data.path(), port, 1, &["--drain-timeout", "10"]);
    wait_healthy(addr).await;
    let (token, room) = register(addr, "mira").await;
    let clip = h264_clip(data.path(), "green");
    let mut socket = connect(addr, &room, Some(&token)).await.unwrap();
    let (mut peer, audio) = join_with_audio(&mut socket).await;
    let (status, on) =
        json_of(addr, "PUT", &format!("/api/v1/rooms/{room}/broadcast"), Some(&token), Some(json!({"on": true, "title": "Metrics"}))).await;
    assert_eq!(status, 200, "{on}");
    publish(&mut peer, audio, &clip, Duration::from_secs(3)).await;
    // An HLS viewer: the stable playlist names its session's media playlist.
    let (status, index) = http(addr, "GET", &format!("/hls/{room}/index.m3u8"), None, None).await;
    assert_eq!(status, 200);
    let index = String::from_utf8(index).unwrap();
    let media = index.lines().find(|l| l.contains("session=")).unwrap().to_owned();
    let (status, _) = http(addr, "GET", &format!("/hls/{room}/{media}"), None, None).await;
    assert_eq!(status, 200);
    publish(&mut peer, audio, &clip, Duration::from_millis(1500)).await;

    let (status, text) = http(addr, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(text).unwrap();
    let m = |series: &str| metric(&text, series);
    assert_eq!(m("conference_rooms"), 1.0, "{text}");
    assert_eq!(m("conference_participants"), 1.0);
    assert_eq!(m("conference_published_tracks{kind=\"video\"}"), 1.0, "{text}");
    assert_eq!(m("conference_published_tracks{kind=\"audio\"}"), 1.0, "{text}");
    assert_eq!(m("live_broadcasts"), 1.0);
    assert_eq!(m("hls_viewers"), 1.0, "{text}");
    assert_eq!(m("whep_viewers"), 0.0);
    // About 4 s of 30 fps video and 50 audio packets a second came in.
    let packets_in = m("media_packets_total{direction=\"in\",transport=\"udp\"}");
    let bytes_in = m("media_bytes_total{direction=\"in\",transport=\"udp\"}");
    assert!(packets_in > 200.0, "{text}");
    assert!(bytes_in > packets_in * 20.0, "{text}");
    assert!(m("media_bytes_total{direction=\"out\",transport=\"udp\"}") > 1000.0, "{text}");
    assert!(m("media_packets_total{direction=\"out\",transport=\"udp\"}") > 10.0, "{text}");
    assert_eq!(m("media_bytes_total{direction=\"in\",transport=\"tcp\"}"), 0.0);
    let audio_in = m("conference_audio_packets_received_total");
    assert!((100.0..=260.0).contains(&audio_in), "about 50 a second: {text}");
    assert!(m("conference_audio_packets_lost_total") < 5.0, "loopback loses nothing: {text}");
    let ticks = m("mixer_ticks_total");
    assert!(ticks > 100.0, "a tick every 20 ms: {text}");
    let encodes = m("mixer_encodes_total");
    assert!(encodes >= 1.0 && encodes <= ticks * 3.0, "{encodes} encodes in {ticks} ticks: {text}");
    for series in ["mixer_added_latency_seconds_bucket", "mixer_jitter_frames_skipped_total", "mixer_jitter_frames_held_total"] {
        assert!(text.contains(series), "{series} missing: {text}");
    }
    assert!(m("recording_bytes_written_total") > 1000.0, "{text}");
    assert!(m("process_start_time_seconds") > 1.7e9, "{text}");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_on_sigterm_finalises_a_recording() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = start(data.path(), port, 1, &["--drain-timeout", "10"]);
    wait_healthy(addr).await;
    let (token, room) = register(addr, "tove").await;
    let clip = h264_clip(data.path(), "blue");
    let mut socket = connect(addr, &room, Some(&token)).await.unwrap();
    let (mut peer, audio) = join_with_audio(&mut socket).await;
    let (status, on) =
        json_of(addr, "PUT", &format!("/api/v1/rooms/{room}/broadcast"), Some(&token), Some(json!({"on": true, "title": "Drain"}))).await;
    assert_eq!(status, 200, "{on}");
    let id = on["broadcast_id"].as_str().unwrap().to_owned();
    expect(&mut socket, "on_air").await;
    publish(&mut peer, audio, &clip, Duration::from_secs(5)).await;
    let folder = data.path().join("recordings").join(&id);
    let written = async {
        while stored(&folder, "seg") < 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), written).await.expect("segments are stored while on air");
    assert!(!folder.join("index.m3u8").exists());

    // SIGTERM, mid-broadcast.
    let stopping = Instant::now();
    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let notice = expect(&mut socket, "notice").await;
    assert_eq!(notice["code"], "server_stopping", "{notice}");
    let exited = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(stopping.elapsed() < Duration::from_secs(15), "the drain is bounded by --drain-timeout");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "exit status {exited:?}");
    drop(socket);
    let log = std::fs::read_to_string(data.path().join("run1.log")).unwrap();
    assert!(log.contains("drained"), "{log}");

    // Finished by the drain itself: the VOD playlist is there before any restart.
    let playlist = std::fs::read_to_string(folder.join("index.m3u8")).expect("the recording's playlist was written");
    for tag in ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST"] {
        assert!(playlist.contains(tag), "{tag} missing:\n{playlist}");
    }
    assert_eq!(stored(&folder, "part"), 0, "parts are folded into segments");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json"])
        .arg(folder.join("index.m3u8"))
        .output()
        .expect("ffprobe is required for this test (scripts/setup.sh installs it)");
    assert!(probe.status.success(), "{}", String::from_utf8_lossy(&probe.stderr));
    let report: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let codecs: Vec<&str> = report["streams"].as_array().unwrap().iter().map(|s| s["codec_name"].as_str().unwrap()).collect();
    assert!(codecs.contains(&"h264") && codecs.contains(&"opus"), "{codecs:?}");
    let duration: f64 = report["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!(duration >= 3.0, "{duration} s");

    // After a restart: the broadcast is over and the recording ready.
    let mut server = start(data.path(), port, 2, &["--drain-timeout", "10"]);
    wait_healthy(addr).await;
    let (_, recording) = json_of(addr, "GET", &format!("/api/v1/recordings/{id}"), None, None).await;
    assert_eq!(recording["state"], "ready", "{recording}");
    let (_, live) = json_of(addr, "GET", "/api/v1/live", None, None).await;
    assert_eq!(live["broadcasts"].as_array().map(Vec::len), Some(0), "{live}");
    let log = std::fs::read_to_string(data.path().join("run2.log")).unwrap();
    assert!(!log.contains("ended broadcasts left over"), "the drain ended it: {log}");
    server.kill().unwrap();
    server.wait().unwrap();
}
