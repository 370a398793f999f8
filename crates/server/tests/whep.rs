//! WHEP over real sockets: a WebRTC camera goes on air, a receive-only
//! viewer POSTs its offer, connects to the media port and receives the
//! Program (from a keyframe on, with the mix), then DELETEs its session.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::live::*;
use serde_json::json;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;

fn whep_request(room: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/rooms/{room}/whep"))
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .unwrap()
}

/// A receive-only offer, as a WHEP player makes it.
fn viewer_offer(local: std::net::SocketAddr) -> (Rtc, String, str0m::change::SdpPendingOffer, str0m::media::Mid, str0m::media::Mid) {
    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut change = rtc.sdp_api();
    let audio = change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let video = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    (rtc, offer.to_sdp_string(), pending, audio, video)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whep_viewer_receives_the_program_and_ends_its_session() {
    let (app, addr) = live_app().await;
    let (host, room) = app.register("hana").await;
    let dir = tempfile::tempdir().unwrap();
    let clip = h264_clip(dir.path(), "red");

    // Not on air yet: nothing to watch.
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = udp.local_addr().unwrap();
    let (_, offer, _, _, _) = viewer_offer(local);
    let early = app.send(whep_request(&room, "application/sdp", offer.clone())).await;
    assert_eq!(early.status, StatusCode::NOT_FOUND, "{}", early.text);
    assert_eq!(early.code(), "not_on_air");

    let mut socket = connect(addr, &room, Some(&host)).await.unwrap();
    let (mut camera, _) = join(&mut socket).await;
    let on = app
        .call(Method::PUT, &format!("/api/v1/rooms/{room}/broadcast"), Some(&host), Some(json!({"on": true, "title": "Low latency"})))
        .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text);
    let camera_task = tokio::spawn(async move {
        camera.camera(&clip, Duration::from_secs(6)).await;
        camera
    });
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Bad requests change nothing.
    let wrong_type = app.send(whep_request(&room, "application/json", offer.clone())).await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", wrong_type.text);
    let garbage = app.send(whep_request(&room, "application/sdp", "v=0\r\nthis is not sdp")).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST, "{}", garbage.text);
    assert_eq!(garbage.code(), "invalid_sdp");
    let unknown = app.send(whep_request("nosuchroom00", "application/sdp", offer.clone())).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // The real viewer: 201, the answer, a Location to end it with.
    let (mut rtc, offer, pending, audio_mid, video_mid) = viewer_offer(local);
    let created = app.send(whep_request(&room, "application/sdp; charset=utf-8", offer)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.headers[header::CONTENT_TYPE], "application/sdp");
    let location = created.headers[header::LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("/api/v1/rooms/{room}/whep/")), "{location}");
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&created.text).unwrap()).unwrap();

    // Receive for 3 s.
    let (mut video_frames, mut audio_frames, mut first_has_sps, mut connected) = (0, 0, None, false);
    let end = Instant::now() + Duration::from_secs(3);
    let mut buffer = vec![0u8; 2048];
    while Instant::now() < end {
        let timeout = loop {
            match rtc.poll_output().unwrap() {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    udp.send_to(&t.contents, t.destination).await.unwrap();
                }
                Output::Event(Event::Connected) => connected = true,
                Output::Event(Event::MediaData(data)) if data.mid == video_mid => {
                    video_frames += 1;
                    first_has_sps.get_or_insert(data.data.windows(4).any(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 7));
                }
                Output::Event(Event::MediaData(data)) if data.mid == audio_mid => audio_frames += 1,
                Output::Event(_) => {}
            }
        };
        let wait = timeout.saturating_duration_since(Instant::now()).min(Duration::from_millis(20));
        match tokio::time::timeout(wait, udp.recv_from(&mut buffer)).await {
            Ok(Ok((n, from))) => {
                let contents = buffer[..n].try_into().unwrap();
                rtc.handle_input(Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source: from, destination: local, contents }))
                    .unwrap();
            }
            _ => rtc.handle_input(Input::Timeout(Instant::now())).unwrap(),
        }
    }
    assert!(connected, "ICE and DTLS with the media port");
    assert!(video_frames > 45, "{video_frames} video frames in 3 s");
    assert_eq!(first_has_sps, Some(true), "the first frame is a keyframe (with its SPS)");
    assert!(audio_frames > 100, "{audio_frames} mix frames in 3 s");

    // The directory counts the WebRTC viewer.
    let live = app.call(Method::GET, "/api/v1/live", None, None).await;
    assert_eq!(live.body["broadcasts"][0]["viewers"], 1, "{}", live.text);
    assert_eq!(live.body["broadcasts"][0]["playback"]["whep"], format!("/api/v1/rooms/{room}/whep"));

    // Someone else's guess at the session does nothing; the right one ends it.
    let guess = app.call(Method::DELETE, &format!("/api/v1/rooms/{room}/whep/0123456789abcdef0123456789abcdef"), None, None).await;
    assert_eq!(guess.status, StatusCode::NOT_FOUND);
    let ended = app.call(Method::DELETE, &location, None, None).await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.text);
    let again = app.call(Method::DELETE, &location, None, None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let mut count = serde_json::Value::Null;
    for _ in 0..50 {
        count = app.call(Method::GET, "/api/v1/live", None, None).await.body["broadcasts"][0]["viewers"].clone();
        if count == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count, 0, "the ended session is no longer counted");
    camera_task.await.unwrap();
}
