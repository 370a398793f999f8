//! The streaming side: going on air, the public directory, and LL-HLS served
//! from a Program fed with synthetic H.264 RTP and Opus frames.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use confcast_media::room::ProgramMedia;
use confcast_media::synth::SyntheticVideo;
use confcast_media::Codec;
use confcast_server::streaming::channel::ChannelInfo;
use confcast_store::UserRef;
use futures_util::StreamExt as _;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tower::ServiceExt as _;

/// A Program source: 30 fps synthetic H.264 with a keyframe every second,
/// and 20 ms Opus frames of silence.
struct Source {
    video: SyntheticVideo,
    frames: u64,
    audio_ts: u32,
    sink: mpsc::Sender<ProgramMedia>,
}

impl Source {
    fn new(sink: mpsc::Sender<ProgramMedia>) -> Source {
        Source { video: SyntheticVideo::new(Codec::H264, 0x1234, 65_000, 4_000_000_000), frames: 0, audio_ts: 1000, sink }
    }

    /// Sends `seconds` of media (as fast as the queue takes it).
    async fn run(&mut self, seconds: u64) {
        for _ in 0..seconds * 30 {
            if self.frames % 30 == 0 {
                self.video.request_keyframe();
            }
            for packet in self.video.next_frame() {
                let media = ProgramMedia::Video { header: packet.header, codec: Codec::H264, payload: packet.payload };
                self.sink.send(media).await.unwrap();
            }
            self.frames += 1;
            // Three frames of video are 100 ms: five 20 ms audio frames.
            if self.frames % 3 == 0 {
                for _ in 0..5 {
                    let silence: Arc<[u8]> = Arc::from(&[0xf8u8, 0xff, 0xfe][..]);
                    self.sink.send(ProgramMedia::Audio { rtp_timestamp: self.audio_ts, payload: silence }).await.unwrap();
                    self.audio_ts = self.audio_ts.wrapping_add(960);
                }
            }
        }
        // Let the feeder catch up.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn info(room: &str) -> ChannelInfo {
    ChannelInfo {
        broadcast_id: "b0000000000000001".into(),
        room_id: room.into(),
        title: "Synthetic".into(),
        description: String::new(),
        host: UserRef { username: "hana".into(), display_name: "Hana".into() },
        started_at: START,
    }
}

async fn get(app: &TestApp, path: &str) -> Reply {
    app.call(Method::GET, path, None, None).await
}

#[tokio::test]
async fn a_program_becomes_an_ll_hls_stream() {
    let app = test_app().await;
    let sink = app.state.streaming.start(info("room1"), || {}).unwrap();
    let mut source = Source::new(sink);
    source.run(5).await;

    let multivariant = get(&app, "/hls/room1/index.m3u8").await;
    assert_eq!(multivariant.status, StatusCode::OK, "{}", multivariant.text);
    assert_eq!(multivariant.headers[header::CONTENT_TYPE], "application/vnd.apple.mpegurl");
    assert_eq!(multivariant.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert_eq!(multivariant.headers[header::CACHE_CONTROL], "no-cache");
    let media_uri = multivariant.text.lines().find(|l| l.starts_with("b0000000000000001/live.m3u8?session=")).expect("media playlist URI");
    assert!(multivariant.text.contains("avc1.") && multivariant.text.contains("opus"), "{}", multivariant.text);

    let media = get(&app, &format!("/hls/room1/{media_uri}")).await;
    assert_eq!(media.status, StatusCode::OK, "{}", media.text);
    let text = &media.text;
    for tag in ["#EXT-X-PART-INF:PART-TARGET=", "CAN-BLOCK-RELOAD=YES", "PART-HOLD-BACK=", "#EXT-X-PART:", "#EXT-X-PRELOAD-HINT:TYPE=PART", "#EXT-X-MAP:URI=\"init0.mp4\""] {
        assert!(text.contains(tag), "{tag} missing from\n{text}");
    }
    assert!(!text.contains("#EXT-X-ENDLIST"));

    // Parts, segments and the init segment are immutable and shareable.
    let part = text.lines().find_map(|l| l.split("URI=\"").nth(1)).map(|r| r.split('"').next().unwrap().to_owned()).unwrap();
    for name in ["init0.mp4".to_owned(), "seg0.m4s".to_owned(), part.clone()] {
        let reply = get(&app, &format!("/hls/room1/b0000000000000001/{name}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
        assert!(reply.headers[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"), "{name}");
        assert_eq!(reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }

    // The player counts as a viewer in the public directory.
    let directory = get(&app, "/api/v1/live").await;
    let entry = &directory.body["broadcasts"][0];
    assert_eq!(entry["room_id"], "room1");
    assert_eq!(entry["viewers"], 1);
    assert_eq!(entry["playback"]["hls"], "/hls/room1/index.m3u8");
    assert_eq!(entry["host"]["display_name"], "Hana");

    // Stopping ends the playlist.
    app.state.streaming.stop("room1");
    drop(source);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ended = get(&app, "/hls/room1/b0000000000000001/live.m3u8").await;
    assert!(ended.text.contains("#EXT-X-ENDLIST"), "{}", ended.text);
    assert!(get(&app, "/api/v1/live").await.body["broadcasts"].as_array().unwrap().is_empty());
    assert_eq!(get(&app, "/hls/room1/index.m3u8").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn blocking_playlist_requests_wait_for_the_part_they_ask_for() {
    let app = test_app().await;
    let sink = app.state.streaming.start(info("room1"), || {}).unwrap();
    let mut source = Source::new(sink);
    source.run(3).await;
    let playlist = get(&app, "/hls/room1/b0000000000000001/live.m3u8").await.text;
    let msn: u64 = playlist.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).unwrap().parse().unwrap();
    let segments = playlist.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    let next = msn + segments + 1;

    // Ask for a segment that does not exist yet: the answer waits for it.
    let router = app.router.clone();
    let waiting = tokio::spawn(async move {
        let request = Request::get(format!("/hls/room1/b0000000000000001/live.m3u8?_HLS_msn={next}&_HLS_part=0")).body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "held until the part exists");
    source.run(4).await;
    let (status, text) = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains(&format!("part{next}.0.m4s")), "{text}");
}

#[tokio::test]
async fn bad_hls_requests_are_refused() {
    let app = test_app().await;
    let sink = app.state.streaming.start(info("room1"), || {}).unwrap();
    let mut source = Source::new(sink);
    source.run(3).await;
    let base = "/hls/room1/b0000000000000001";
    for bad in [
        format!("{base}/live.m3u8?_HLS_part=1"),
        format!("{base}/live.m3u8?_HLS_msn=999999"),
        format!("{base}/live.m3u8?_HLS_msn=abc"),
        format!("{base}/live.m3u8?_HLS_msn=1&_HLS_msn=2"),
    ] {
        assert_eq!(get(&app, &bad).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    for missing in [
        "/hls/nosuchroom/index.m3u8".to_owned(),
        "/hls/room1/otherbroadcast/live.m3u8".to_owned(),
        format!("{base}/seg999.m4s"),
        format!("{base}/..%2F..%2FCargo.toml"),
        format!("{base}/seg01.m4s"),
        format!("{base}/index.m3u8"),
        format!("{base}/init0.mp4.bak"),
        "/hls/room1/b0000000000000001/%2e%2e".to_owned(),
    ] {
        let reply = get(&app, &missing).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{missing}");
        assert!(!reply.text.contains("[package]"));
    }
}

#[tokio::test]
async fn only_hosts_and_admins_go_on_air_and_the_directory_follows() {
    let app = test_app().await;
    let (host, room) = app.register("hana").await;
    let (member, _) = app.register("mona").await;
    let (stranger, _) = app.register("sven").await;
    app.join_by_link(&host, &room, &member).await;
    let path = format!("/api/v1/rooms/{room}/broadcast");

    // The directory's live stream starts with the empty list.
    let request = Request::get("/api/v1/live/events").body(Body::empty()).unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut events = response.into_body().into_data_stream();
    let mut buffer = String::new();
    let mut next_directory = async || -> Value {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) {
                    return serde_json::from_str(data).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), events.next()).await.unwrap().unwrap().unwrap();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    assert_eq!(next_directory().await, json!({"broadcasts": []}));

    for (token, expected) in [(Some(&member), StatusCode::FORBIDDEN), (Some(&stranger), StatusCode::FORBIDDEN), (None, StatusCode::UNAUTHORIZED)] {
        let reply = app.call(Method::PUT, &path, token.map(String::as_str), Some(json!({"on": true, "title": "Mine now"}))).await;
        assert_eq!(reply.status, expected);
    }
    assert!(get(&app, "/api/v1/live").await.body["broadcasts"].as_array().unwrap().is_empty(), "nothing changed");

    for bad in [json!({"on": true}), json!({"on": true, "title": ""}), json!({"on": true, "title": "x".repeat(101)}), json!({"on": "yes"})] {
        assert_eq!(app.call(Method::PUT, &path, Some(&host), Some(bad.clone())).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }

    let on = app.call(Method::PUT, &path, Some(&host), Some(json!({"on": true, "title": "Evening <b>news</b>"}))).await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text);
    assert_eq!(on.body["on"], true);
    assert_eq!(on.body["watch_page"], format!("/watch/{room}"));
    let listed = next_directory().await;
    assert_eq!(listed["broadcasts"][0]["title"], "Evening <b>news</b>");
    assert_eq!(listed["broadcasts"][0]["room_id"], room.as_str());

    let again = app.call(Method::PUT, &path, Some(&host), Some(json!({"on": true, "title": "Again"}))).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "already_live");
    let by_member = app.call(Method::PUT, &path, Some(&member), Some(json!({"on": false}))).await;
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);

    let off = app.call(Method::PUT, &path, Some(&host), Some(json!({"on": false}))).await;
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(next_directory().await, json!({"broadcasts": []}));
    let off_again = app.call(Method::PUT, &path, Some(&host), Some(json!({"on": false}))).await;
    assert_eq!(off_again.status, StatusCode::CONFLICT);
    assert_eq!(off_again.code(), "not_live");
}

/// Held requests share one rendering of the playlist per packager version;
/// each still gets a playlist with the part it asked for, and a later
/// request never gets an older rendering.
#[tokio::test]
async fn held_playlist_requests_get_the_part_they_asked_for_and_never_a_stale_playlist() {
    let app = test_app().await;
    let sink = app.state.streaming.start(info("room1"), || {}).unwrap();
    let mut source = Source::new(sink);
    source.run(3).await;
    let base = "/hls/room1/b0000000000000001/live.m3u8";
    let first = get(&app, base).await.text;
    let hint = first.lines().find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"")).unwrap();
    let name = hint.split('"').next().unwrap();
    let (msn, part) = name.strip_prefix("part").unwrap().strip_suffix(".m4s").unwrap().split_once('.').unwrap();
    let (msn, part): (u64, u64) = (msn.parse().unwrap(), part.parse().unwrap());
    let held: Vec<_> = (0..20)
        .map(|_| {
            let router = app.router.clone();
            tokio::spawn(async move {
                let request = Request::get(format!("{base}?_HLS_msn={msn}&_HLS_part={part}")).body(Body::empty()).unwrap();
                let response = router.oneshot(request).await.unwrap();
                let status = response.status();
                let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
                (status, String::from_utf8_lossy(&body).into_owned())
            })
        })
        .collect();
    source.run(1).await;
    let wanted = format!("URI=\"part{msn}.{part}.m4s\"");
    let mut newest = String::new();
    for request in held {
        let (status, text) = tokio::time::timeout(Duration::from_secs(5), request).await.unwrap().unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(text.lines().any(|l| l.starts_with("#EXT-X-PART:") && l.contains(&wanted)), "{wanted} missing from\n{text}");
        newest = text;
    }
    source.run(1).await;
    let later = get(&app, base).await.text;
    let parts = |t: &str| t.lines().rfind(|l| l.starts_with("#EXT-X-PART:")).map(str::to_owned);
    assert_ne!(parts(&later), parts(&newest), "a later request gets a newer playlist");
}
