//! The whole broadcast path over real sockets: a WebRTC publisher's H.264
//! goes through the room into the Program, the host goes on air, and the
//! LL-HLS output is read back and checked by ffprobe.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::live::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_camera_goes_on_air_as_ll_hls_that_ffprobe_reads() {
    let (app, addr) = live_app().await;
    let (host, room) = app.register("hana").await;
    let dir = tempfile::tempdir().unwrap();
    let clip = h264_clip(dir.path(), "red");

    let mut socket = connect(addr, &room, Some(&host)).await.unwrap();
    let (mut peer, _) = join(&mut socket).await;
    let on = app
        .call(Method::PUT, &format!("/api/v1/rooms/{room}/broadcast"), Some(&host), Some(json!({"on": true, "title": "Red alert"})))
        .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text);
    let on_air = expect(&mut socket, "on_air").await;
    assert_eq!(on_air["title"], "Red alert");

    // Publish for a few seconds: enough for two segments of ~2 s.
    peer.camera(&clip, Duration::from_secs(6)).await;

    let master = app.call(Method::GET, &format!("/hls/{room}/index.m3u8"), None, None).await;
    assert_eq!(master.status, StatusCode::OK, "{}", master.text);
    let media_uri = master.text.lines().find(|l| l.contains("live.m3u8?session=")).unwrap().to_owned();
    let playlist = app.call(Method::GET, &format!("/hls/{room}/{media_uri}"), None, None).await.text;
    let broadcast = media_uri.split('/').next().unwrap();
    let segments: Vec<&str> = playlist.lines().filter(|l| l.starts_with("seg")).collect();
    assert!(!segments.is_empty(), "at least one complete segment:\n{playlist}");

    // init + complete segments, as a player would append them.
    let mut file = app.call(Method::GET, &format!("/hls/{room}/{broadcast}/init0.mp4"), None, None).await.bytes;
    for segment in &segments {
        let reply = app.call(Method::GET, &format!("/hls/{room}/{broadcast}/{segment}"), None, None).await;
        assert_eq!(reply.status, StatusCode::OK);
        file.extend_from_slice(&reply.bytes);
    }
    let path = dir.path().join("program.mp4");
    std::fs::write(&path, &file).unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height:packet=stream_index,pts_time", "-of", "json"])
        .arg(&path)
        .output()
        .expect("ffprobe is required for this test (scripts/setup.sh installs it)");
    assert!(probe.status.success(), "{}", String::from_utf8_lossy(&probe.stderr));
    let report: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let codecs: Vec<&str> = report["streams"].as_array().unwrap().iter().map(|s| s["codec_name"].as_str().unwrap()).collect();
    assert!(codecs.contains(&"h264") && codecs.contains(&"opus"), "{codecs:?}");
    let video = report["streams"].as_array().unwrap().iter().find(|s| s["codec_name"] == "h264").unwrap();
    assert_eq!((video["width"].as_u64(), video["height"].as_u64()), (Some(320), Some(240)));
    // Timestamps of each stream only move forward, without big gaps.
    for index in 0..2 {
        let times: Vec<f64> = report["packets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["stream_index"] == index)
            .filter_map(|p| p["pts_time"].as_str()?.parse().ok())
            .collect();
        assert!(times.len() > 20, "stream {index}: {} packets", times.len());
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        assert!(sorted.windows(2).all(|w| w[1] - w[0] < 0.5), "stream {index} has a gap: {sorted:?}");
    }

    let off = app.call(Method::PUT, &format!("/api/v1/rooms/{room}/broadcast"), Some(&host), Some(json!({"on": false}))).await;
    assert_eq!(off.status, StatusCode::OK);
    let off_air = expect(&mut socket, "on_air").await;
    assert_eq!(off_air["on"], false);
    let ended = async {
        loop {
            let text = app.call(Method::GET, &format!("/hls/{room}/{broadcast}/live.m3u8"), None, None).await.text;
            if text.contains("#EXT-X-ENDLIST") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), ended).await.expect("the playlist ends");
}
