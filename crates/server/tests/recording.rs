//! Recording and replay: a Program fed with synthetic H.264 RTP and Opus is
//! recorded as it airs, finished when it ends, listed, replayed (with
//! ranges) and deleted; storage errors never stop the live channel; and
//! retention removes what it should.

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
use confcast_server::recording::{storage, RecordingConfig, Recordings};
use confcast_server::streaming::channel::ChannelInfo;
use confcast_store::{Broadcast, RecordingState};
use serde_json::Value;
use tokio::sync::mpsc;

/// The app, recording into `recordings/` in its temporary folder.
async fn recorded_app(config: RecordingConfig) -> (TestApp, Arc<Recordings>) {
    let mut app = test_app().await;
    let folder = app.dir.path().join("recordings");
    let storage = storage::open(folder.to_str().unwrap()).unwrap();
    let recordings = Recordings::new(storage, app.state.store.clone(), app.state.hub.clone(), app.clock.clone(), config);
    app.state = app.state.clone().with_recordings(recordings.clone());
    app.router = confcast_server::app(app.state.clone());
    (app, recordings)
}

/// 30 fps synthetic H.264 (a keyframe every second) and 20 ms Opus frames.
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

    async fn run(&mut self, seconds: u64) {
        for _ in 0..seconds * 30 {
            if self.frames.is_multiple_of(30) {
                self.video.request_keyframe();
            }
            for packet in self.video.next_frame() {
                let media = ProgramMedia::Video { header: packet.header, codec: Codec::H264, payload: packet.payload };
                self.sink.send(media).await.unwrap();
            }
            self.frames += 1;
            if self.frames.is_multiple_of(3) {
                for _ in 0..5 {
                    let silence: Arc<[u8]> = Arc::from(&[0xf8u8, 0xff, 0xfe][..]);
                    self.sink.send(ProgramMedia::Audio { rtp_timestamp: self.audio_ts, payload: silence }).await.unwrap();
                    self.audio_ts = self.audio_ts.wrapping_add(960);
                }
            }
            // Room for the feeder and the writer (the queue holds ~4096 units).
            if self.frames.is_multiple_of(30) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Puts `room` on air as `username` would, with its recording.
async fn go_on_air(app: &TestApp, recordings: &Arc<Recordings>, room: &str, username: &str) -> (Broadcast, Source) {
    let user = app.state.store.user_by_username(username).await.unwrap();
    let broadcast = app.state.store.start_broadcast(room, "Morning show", "", user.id, app.clock.now()).await.unwrap();
    let sink = recordings.begin(&broadcast, user.id).await;
    assert!(sink.is_some());
    let info = ChannelInfo {
        broadcast_id: broadcast.id.clone(),
        room_id: room.to_owned(),
        title: broadcast.title.clone(),
        description: String::new(),
        host: broadcast.host.clone(),
        started_at: broadcast.started_at,
    };
    let program = app.state.streaming.start_recorded(info, || {}, sink).unwrap();
    (broadcast, Source::new(program))
}

async fn go_off_air(app: &TestApp, room: &str, source: Source) {
    app.state.store.end_broadcast(room, app.clock.now()).await.unwrap();
    app.state.streaming.stop(room);
    drop(source);
}

async fn get(app: &TestApp, path: &str) -> Reply {
    app.call(Method::GET, path, None, None).await
}

/// Waits until the recording has left the `recording` state.
async fn finished(app: &TestApp, id: &str) -> Value {
    let wait = async {
        loop {
            let reply = get(app, &format!("/api/v1/recordings/{id}")).await;
            if reply.body["state"] != "recording" {
                return reply.body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), wait).await.expect("the recording is finished")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_is_recorded_listed_replayed_and_deleted_by_the_host() {
    let (app, recordings) = recorded_app(RecordingConfig::default()).await;
    let (host, room) = app.register("hana").await;
    let (member, _) = app.register("mona").await;
    let (stranger, _) = app.register("sven").await;
    app.join_by_link(&host, &room, &member).await;

    let (broadcast, mut source) = go_on_air(&app, &recordings, &room, "hana").await;
    let id = broadcast.id.clone();
    source.run(5).await;

    // While on air: listed for members as being recorded, not replayable.
    let listed = app.get(&format!("/api/v1/rooms/{room}/recordings"), &member).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["recordings"][0]["id"], id.as_str());
    assert_eq!(listed.body["recordings"][0]["state"], "recording");
    assert_eq!(listed.body["recordings"][0]["replay"], Value::Null);
    let early = app.call(Method::DELETE, &format!("/api/v1/recordings/{id}"), Some(&host), None).await;
    assert_eq!((early.status, early.code()), (StatusCode::CONFLICT, "still_recording"));
    assert_eq!(get(&app, &format!("/recordings/{id}/index.m3u8")).await.status, StatusCode::NOT_FOUND);
    assert!(get(&app, "/api/v1/recordings").await.body["recordings"].as_array().unwrap().is_empty());

    go_off_air(&app, &room, source).await;
    let done = finished(&app, &id).await;
    assert_eq!(done["state"], "ready", "{done}");
    assert!(done["duration_seconds"].as_f64().unwrap() >= 4.0, "{done}");
    assert_eq!(done["replay"]["page"], format!("/replay/{id}"));
    assert!(done.get("problem").is_none(), "problems are for members only");

    // The public "recent" list.
    let recent = get(&app, "/api/v1/recordings?limit=5").await;
    assert_eq!(recent.body["recordings"][0]["id"], id.as_str());
    assert_eq!(recent.body["next_offset"], Value::Null);

    // The VOD playlist and everything it names.
    let hls = done["replay"]["hls"].as_str().unwrap();
    let playlist = get(&app, hls).await;
    assert_eq!(playlist.status, StatusCode::OK);
    assert_eq!(playlist.headers[header::CONTENT_TYPE], "application/vnd.apple.mpegurl");
    assert_eq!(playlist.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let text = playlist.text.clone();
    for tag in ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST", "#EXT-X-MAP:URI=\"init0.mp4\""] {
        assert!(text.contains(tag), "{tag} missing:\n{text}");
    }
    let segments: Vec<&str> = text.lines().filter(|l| l.starts_with("seg")).collect();
    assert!(segments.len() >= 2, "{text}");
    let init = get(&app, &format!("/recordings/{id}/init0.mp4")).await;
    assert_eq!(init.status, StatusCode::OK);
    assert_eq!(init.headers[header::CONTENT_TYPE], "video/mp4");
    for segment in &segments {
        let reply = get(&app, &format!("/recordings/{id}/{segment}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{segment}");
        assert!(reply.headers[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
        assert_eq!(reply.headers[header::ACCEPT_RANGES], "bytes");
    }
    // Ranges.
    let whole = get(&app, &format!("/recordings/{id}/{}", segments[0])).await.bytes;
    let request = Request::get(format!("/recordings/{id}/{}", segments[0])).header(header::RANGE, "bytes=10-109").body(Body::empty()).unwrap();
    let part = app.send(request).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes, whole[10..110]);
    assert_eq!(part.headers[header::CONTENT_RANGE], format!("bytes 10-109/{}", whole.len()).as_str());
    let request = Request::get(format!("/recordings/{id}/{}", segments[0])).header(header::RANGE, format!("bytes={}-", whole.len() + 10)).body(Body::empty()).unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::RANGE_NOT_SATISFIABLE);

    // Strict names: nothing else is served.
    for bad in [
        format!("/recordings/{id}/..%2F..%2Fconfcast.sqlite"),
        format!("/recordings/{id}/%2e%2e"),
        format!("/recordings/{id}/seg00-0-1-c.m4s"),
        format!("/recordings/{id}/part0.0-0-18000-c.m4s"),
        format!("/recordings/{id}/live.m3u8"),
        format!("/recordings/{id}/seg999-0-180000-c.m4s"),
        "/recordings/..%2F..%2F/index.m3u8".to_owned(),
        "/recordings/ABCDEFGHABCDEFGH/index.m3u8".to_owned(),
        "/recordings/aaaaaaaaaaaaaaaa/index.m3u8".to_owned(),
    ] {
        let reply = get(&app, &bad).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{bad}");
        assert!(!reply.text.contains("SQLite"));
    }

    // Bad input gets the one error shape.
    for (path, status) in [
        ("/api/v1/recordings?limit=0".to_owned(), StatusCode::BAD_REQUEST),
        ("/api/v1/recordings?limit=abc".to_owned(), StatusCode::BAD_REQUEST),
        ("/api/v1/recordings?offset=-1".to_owned(), StatusCode::BAD_REQUEST),
        ("/api/v1/recordings/nope".to_owned(), StatusCode::NOT_FOUND),
        (format!("/api/v1/rooms/{room}/recordings"), StatusCode::UNAUTHORIZED),
    ] {
        let reply = get(&app, &path).await;
        assert_eq!(reply.status, status, "{path}");
        assert!(!reply.code().is_empty() && reply.body["error"]["message"].is_string(), "{path}: {}", reply.text);
    }
    assert_eq!(app.get(&format!("/api/v1/rooms/{room}/recordings"), &stranger).await.status, StatusCode::FORBIDDEN);

    // Only the host deletes.
    let path = format!("/api/v1/recordings/{id}");
    for (token, status) in [(Some(&member), StatusCode::FORBIDDEN), (Some(&stranger), StatusCode::FORBIDDEN), (None, StatusCode::UNAUTHORIZED)] {
        let reply = app.call(Method::DELETE, &path, token.map(String::as_str), None).await;
        assert_eq!(reply.status, status);
        assert!(!reply.code().is_empty());
    }
    assert_eq!(app.call(Method::DELETE, &path, Some(&host), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(get(&app, &path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, hls).await.status, StatusCode::NOT_FOUND);
    assert!(!app.dir.path().join("recordings").join(&id).exists(), "its media is gone");
    assert_eq!(app.call(Method::DELETE, &path, Some(&host), None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_failure_keeps_the_broadcast_live_and_is_reported_to_the_host() {
    let (app, recordings) = recorded_app(RecordingConfig::default()).await;
    let (host, room) = app.register("hana").await;
    let host_id = app.state.store.user_by_username("hana").await.unwrap().id;
    let mut events = app.state.hub.subscribe(host_id);
    // The recordings folder becomes unusable: a file stands where it was.
    let folder = app.dir.path().join("recordings");
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::write(&folder, b"not a folder").unwrap();

    let (broadcast, mut source) = go_on_air(&app, &recordings, &room, "hana").await;
    source.run(4).await;
    // Live as ever.
    let live = get(&app, &format!("/hls/{room}/index.m3u8")).await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.text);
    let media = live.text.lines().find(|l| l.contains("live.m3u8")).unwrap().to_owned();
    assert!(get(&app, &format!("/hls/{room}/{media}")).await.text.contains("seg0.m4s"));
    // The host hears about it.
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
    assert_eq!(event.event, "recording_error");
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["broadcast_id"], broadcast.id.as_str());
    assert!(!data["message"].as_str().unwrap().contains(app.dir.path().to_str().unwrap()), "no server paths");
    let listed = app.get(&format!("/api/v1/rooms/{room}/recordings"), &host).await;
    assert!(listed.body["recordings"][0]["problem"].as_str().unwrap().contains("cannot be written"), "{}", listed.text);

    go_off_air(&app, &room, source).await;
    // Finishing cannot work either; the recording is never listed as ready.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let recording = app.state.store.recording(&broadcast.id).await.unwrap();
    assert_ne!(recording.state, RecordingState::Ready);
    assert!(get(&app, "/api/v1/recordings").await.body["recordings"].as_array().unwrap().is_empty());

    // Once storage is back, the next start finishes it from what is there
    // (nothing): failed, and the host may delete it.
    std::fs::remove_file(&folder).unwrap();
    std::fs::create_dir(&folder).unwrap();
    recordings.finish_unfinished().await;
    let recording = app.state.store.recording(&broadcast.id).await.unwrap();
    assert_eq!(recording.state, RecordingState::Failed);
    assert_eq!(app.call(Method::DELETE, &format!("/api/v1/recordings/{}", broadcast.id), Some(&host), None).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn retention_deletes_by_age_then_size_and_sweeps_left_overs() {
    let day: i64 = 86_400;
    let config = RecordingConfig { max_age: Some(Duration::from_secs(7 * 86_400)), max_bytes: Some(1200), ..RecordingConfig::default() };
    let (app, recordings) = recorded_app(config).await;
    let (_, room) = app.register("hana").await;
    let hana = app.state.store.user_by_username("hana").await.unwrap();
    let store = &app.state.store;
    let folder = app.dir.path().join("recordings");
    let mut ids = Vec::new();
    // Finished 10, 5, 3 and 1 days ago, 600 bytes each.
    for (n, age_days) in [10, 5, 3, 1].into_iter().enumerate() {
        let at = START - age_days * day;
        let b = store.start_broadcast(&room, &format!("Show {n}"), "", hana.id, at - 100).await.unwrap();
        store.start_recording(&b.id, at - 100).await.unwrap();
        store.end_broadcast(&room, at).await.unwrap();
        store.finish_recording(&b.id, RecordingState::Ready, 1000, 600, at).await.unwrap();
        std::fs::create_dir_all(folder.join(&b.id)).unwrap();
        std::fs::write(folder.join(&b.id).join("seg0-0-90000-c.m4s"), [0u8; 600]).unwrap();
        ids.push(b.id);
    }
    // Left by a deleted room: removed. Not a recording's: left alone.
    std::fs::create_dir_all(folder.join("abcdefghabcdefgh")).unwrap();
    std::fs::write(folder.join("abcdefghabcdefgh").join("init0.mp4"), b"x").unwrap();
    std::fs::create_dir_all(folder.join("notes")).unwrap();
    std::fs::write(folder.join("notes").join("todo.txt"), b"x").unwrap();

    recordings.sweep().await;
    let left: Vec<String> = store.finished_recordings().await.unwrap().into_iter().map(|r| r.broadcast.id).collect();
    // 10 days: too old; then 5 days: the rest would be 1800 > 1200 bytes.
    assert_eq!(left, ids[2..].to_vec());
    assert!(!folder.join(&ids[0]).exists() && !folder.join(&ids[1]).exists());
    assert!(folder.join(&ids[2]).join("seg0-0-90000-c.m4s").exists());
    assert!(!folder.join("abcdefghabcdefgh").exists());
    assert!(folder.join("notes").join("todo.txt").exists());
}
