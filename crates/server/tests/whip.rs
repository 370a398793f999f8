//! WHIP ingest over real sockets: the host makes an ingest key, an encoder
//! (a str0m peer sending the real H.264 clip) publishes with it, the host in
//! the conference sees it in the roster, watches it and receives its
//! picture; DELETE takes it out of the room. Bad keys and bad offers change
//! nothing.

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

fn whip_request(room: &str, token: Option<&str>, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::builder().method(Method::POST).uri(format!("/api/v1/rooms/{room}/whip")).header(header::CONTENT_TYPE, content_type);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(body.into()).unwrap()
}

/// An encoder's offer: sends audio and video.
async fn encoder_offer() -> (Peer, String, str0m::change::SdpPendingOffer) {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = udp.local_addr().unwrap();
    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let video = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    (Peer { rtc, udp, local, video }, offer.to_sdp_string(), pending)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoder_publishes_into_the_room_with_an_ingest_key() {
    let (app, addr) = live_app().await;
    let (host, room) = app.register("hana").await;
    let (guest, _) = app.register("gus").await;
    app.join_by_link(&host, &room, &guest).await;
    let dir = tempfile::tempdir().unwrap();
    let clip = h264_clip(dir.path(), "blue");

    // Keys: only the host (or an admin) makes and lists them.
    let refused = app.post(&format!("/api/v1/rooms/{room}/ingest-keys"), &guest, json!({"name": "Studio"})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let bad_name = app.post(&format!("/api/v1/rooms/{room}/ingest-keys"), &host, json!({"name": ""})).await;
    assert_eq!(bad_name.status, StatusCode::BAD_REQUEST);
    let created = app.post(&format!("/api/v1/rooms/{room}/ingest-keys"), &host, json!({"name": "Studio camera"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let token = created.body["token"].as_str().unwrap().to_owned();
    let key_id = created.body["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["whip_url"], format!("/api/v1/rooms/{room}/whip"));
    let listed = app.get(&format!("/api/v1/rooms/{room}/ingest-keys"), &host).await;
    assert_eq!(listed.body["keys"][0]["name"], "Studio camera");
    assert!(!listed.text.contains(&token), "the secret is never shown again");

    // The host is in the conference.
    let mut socket = connect(addr, &room, Some(&host)).await.unwrap();
    let (mut viewer, _) = join(&mut socket).await;

    // Bad requests: no key, someone else's, not SDP, broken SDP.
    let (_, offer, _) = encoder_offer().await;
    for (request, status) in [
        (whip_request(&room, None, "application/sdp", offer.clone()), StatusCode::UNAUTHORIZED),
        (whip_request(&room, Some("not-a-key"), "application/sdp", offer.clone()), StatusCode::UNAUTHORIZED),
        (whip_request(&room, Some(&token), "text/plain", offer.clone()), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (whip_request(&room, Some(&token), "application/sdp", "v=0\r\nnonsense"), StatusCode::BAD_REQUEST),
    ] {
        let reply = app.send(request).await;
        assert_eq!(reply.status, status, "{}", reply.text);
    }
    let (_, other_room) = app.register("otto").await;
    let elsewhere = app.send(whip_request(&other_room, Some(&token), "application/sdp", offer)).await;
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED, "a key works only for its own room");

    // The encoder publishes.
    let (mut encoder, offer, pending) = encoder_offer().await;
    let published = app.send(whip_request(&room, Some(&token), "application/sdp", offer)).await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.text);
    assert_eq!(published.headers[header::CONTENT_TYPE], "application/sdp");
    let location = published.headers[header::LOCATION].to_str().unwrap().to_owned();
    encoder.rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&published.text).unwrap()).unwrap();
    assert!(encoder.connect(Duration::from_secs(10)).await, "the encoder's ICE and DTLS complete");
    let username = format!("ingest:{key_id}");
    let roster = loop {
        let roster = expect(&mut socket, "roster").await;
        if roster["participants"].as_array().unwrap().iter().any(|p| p["username"] == username.as_str()) {
            break roster;
        }
    };
    let entry = roster["participants"].as_array().unwrap().iter().find(|p| p["username"] == username.as_str()).unwrap().clone();
    assert_eq!(entry["display_name"], "Studio camera");

    // The host watches it and receives its picture.
    let camera = tokio::spawn(async move {
        encoder.camera(&clip, Duration::from_secs(4)).await;
        encoder
    });
    send(&mut socket, json!({"type": "watch", "username": username})).await;
    let mut frames = 0;
    let end = Instant::now() + Duration::from_secs(3);
    let mut buffer = vec![0u8; 2048];
    while Instant::now() < end {
        let timeout = loop {
            match viewer.rtc.poll_output().unwrap() {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    viewer.udp.send_to(&t.contents, t.destination).await.unwrap();
                }
                Output::Event(Event::MediaData(data)) if data.mid == viewer.video => frames += 1,
                Output::Event(_) => {}
            }
        };
        let wait = timeout.saturating_duration_since(Instant::now()).min(Duration::from_millis(20));
        match tokio::time::timeout(wait, viewer.udp.recv_from(&mut buffer)).await {
            Ok(Ok((n, from))) => {
                let contents = buffer[..n].try_into().unwrap();
                let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source: from, destination: viewer.local, contents });
                viewer.rtc.handle_input(input).unwrap();
            }
            _ => viewer.rtc.handle_input(Input::Timeout(Instant::now())).unwrap(),
        }
    }
    assert!(frames > 30, "the host received {frames} frames of the encoder's camera in 3 s");
    camera.await.unwrap();

    // DELETE: the encoder leaves the room; a second DELETE finds nothing.
    let ended = app.call(Method::DELETE, &location, None, None).await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.text);
    loop {
        let roster = expect(&mut socket, "roster").await;
        if !roster["participants"].as_array().unwrap().iter().any(|p| p["username"] == username.as_str()) {
            break;
        }
    }
    assert_eq!(app.call(Method::DELETE, &location, None, None).await.status, StatusCode::NOT_FOUND);

    // A deleted key no longer publishes.
    let deleted = app.call(Method::DELETE, &format!("/api/v1/rooms/{room}/ingest-keys/{key_id}"), Some(&host), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let (_, offer, _) = encoder_offer().await;
    assert_eq!(app.send(whip_request(&room, Some(&token), "application/sdp", offer)).await.status, StatusCode::UNAUTHORIZED);
}
