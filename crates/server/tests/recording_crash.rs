//! Crash safety of recordings on a real `confcast` process: a WebRTC camera
//! goes on air, the process is killed with SIGKILL mid-broadcast, and after
//! a restart on the same data folder the recording is finished, listed, and
//! its replay (read back over HTTP) passes ffprobe end to end.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::live::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A free loopback port (a tiny race with other tests is acceptable here).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(data: &Path, port: u16, run: u32) -> Child {
    let log = std::fs::File::create(data.join(format!("run{run}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_confcast"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--media-port", "0", "--log", "info,confcast_server=debug"])
        .arg("--data")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// One HTTP/1.1 request (Connection: close); the status and the body.
async fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut payload = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &payload[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        payload = out;
    }
    (status, payload)
}

async fn json_of(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let (status, bytes) = http(addr, method, path, token, body).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn wait_healthy(addr: SocketAddr) {
    let wait = async {
        loop {
            if TcpStream::connect(addr).await.is_ok() && http(addr, "GET", "/healthz", None, None).await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait).await.expect("the server starts");
}

/// Stored segment objects of a recording.
fn stored(folder: &Path, prefix: &str) -> usize {
    std::fs::read_dir(folder).map(|d| d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().starts_with(prefix)).count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_mid_broadcast_the_recording_is_finished_on_restart_and_plays() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = start(data.path(), port, 1);
    wait_healthy(addr).await;

    let (status, registered) = json_of(
        addr,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(json!({"username": "hana", "password": "correct horse battery", "display_name": "Hana"})),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    let token = registered["token"].as_str().unwrap().to_owned();
    let room = registered["room"]["id"].as_str().unwrap().to_owned();

    let clip = h264_clip(data.path(), "blue");
    let mut socket = connect(addr, &room, Some(&token)).await.unwrap();
    let (mut peer, _) = join(&mut socket).await;
    let (status, on) =
        json_of(addr, "PUT", &format!("/api/v1/rooms/{room}/broadcast"), Some(&token), Some(json!({"on": true, "title": "Crash test"}))).await;
    assert_eq!(status, 200, "{on}");
    let id = on["broadcast_id"].as_str().unwrap().to_owned();
    expect(&mut socket, "on_air").await;
    peer.camera(&clip, Duration::from_secs(6)).await;

    // Segments and the parts of the one being made are in storage.
    let folder = data.path().join("recordings").join(&id);
    let written = async {
        while stored(&folder, "seg") < 2 || stored(&folder, "init") < 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), written).await.expect("segments are stored while on air");
    let (_, listed) = json_of(addr, "GET", &format!("/api/v1/rooms/{room}/recordings"), Some(&token), None).await;
    assert_eq!(listed["recordings"][0]["state"], "recording", "{listed}");

    // SIGKILL, mid-broadcast: no stop, no finishing.
    server.kill().unwrap();
    server.wait().unwrap();
    drop(socket);
    assert!(!folder.join("index.m3u8").exists());

    let mut server = start(data.path(), port, 2);
    wait_healthy(addr).await;
    let finished = async {
        loop {
            let (_, recording) = json_of(addr, "GET", &format!("/api/v1/recordings/{id}"), None, None).await;
            if recording["state"] != "recording" {
                return recording;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let recording = tokio::time::timeout(Duration::from_secs(20), finished).await.expect("finished on restart");
    assert_eq!(recording["state"], "ready", "{recording}");
    let seconds = recording["duration_seconds"].as_f64().unwrap();
    assert!(seconds >= 3.0, "everything up to the last stored part is kept: {recording}");
    let (_, recent) = json_of(addr, "GET", "/api/v1/recordings", None, None).await;
    assert_eq!(recent["recordings"][0]["id"], id.as_str(), "{recent}");
    assert_eq!(stored(&folder, "part"), 0, "parts are folded into segments");

    // The replay, as a player reads it over HTTP.
    let (status, playlist) = http(addr, "GET", &format!("/recordings/{id}/index.m3u8"), None, None).await;
    assert_eq!(status, 200);
    let playlist = String::from_utf8(playlist).unwrap();
    for tag in ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST", "#EXT-X-MAP:URI=\"init0.mp4\""] {
        assert!(playlist.contains(tag), "{tag} missing:\n{playlist}");
    }
    let listed: f64 = playlist.lines().filter_map(|l| l.strip_prefix("#EXTINF:")).map(|d| d.trim_end_matches(',').parse::<f64>().unwrap()).sum();
    assert!((listed - seconds).abs() < 0.01, "{listed} vs {seconds}");
    let (status, mut file) = http(addr, "GET", &format!("/recordings/{id}/init0.mp4"), None, None).await;
    assert_eq!(status, 200);
    for segment in playlist.lines().filter(|l| l.starts_with("seg")) {
        let (status, bytes) = http(addr, "GET", &format!("/recordings/{id}/{segment}"), None, None).await;
        assert_eq!(status, 200, "{segment}");
        file.extend_from_slice(&bytes);
    }
    let path = data.path().join("replay.mp4");
    std::fs::write(&path, &file).unwrap();
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height:format=duration", "-of", "json"])
        .arg(&path)
        .output()
        .expect("ffprobe is required for this test (scripts/setup.sh installs it)");
    assert!(probe.status.success(), "{}", String::from_utf8_lossy(&probe.stderr));
    let report: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let streams = report["streams"].as_array().unwrap();
    let codecs: Vec<&str> = streams.iter().map(|s| s["codec_name"].as_str().unwrap()).collect();
    assert!(codecs.contains(&"h264") && codecs.contains(&"opus"), "{codecs:?}");
    let video = streams.iter().find(|s| s["codec_name"] == "h264").unwrap();
    assert_eq!((video["width"].as_u64(), video["height"].as_u64()), (Some(320), Some(240)));
    let duration: f64 = report["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - seconds).abs() < 0.5, "ffprobe says {duration} s, the playlist {seconds} s");
    // Decoding it all finds no error.
    let decode = Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(&path).args(["-f", "null", "-"]).output().unwrap();
    assert!(decode.status.success(), "{}", String::from_utf8_lossy(&decode.stderr));

    server.kill().unwrap();
    server.wait().unwrap();
}
