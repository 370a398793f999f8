//! Crash safety of recordings on a real `confcast` process: a WebRTC camera
//! goes on air, the process is killed with SIGKILL mid-broadcast, and after
//! a restart on the same data folder the recording is finished, listed, and
//! its replay (read back over HTTP) passes ffprobe end to end.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::live::*;
use common::process::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_mid_broadcast_the_recording_is_finished_on_restart_and_plays() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = start(data.path(), port, 1, &["--log", "info,confcast_server=debug"]);
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

    let mut server = start(data.path(), port, 2, &["--log", "info,confcast_server=debug"]);
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
