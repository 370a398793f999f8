//! The conference over real sockets on loopback: WebSocket signalling and a
//! str0m client peer whose media goes through the server's UDP port.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::live::*;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn only_members_get_a_socket() {
    let (app, addr) = live_app().await;
    let (host, room) = app.register("hana").await;
    let (stranger, _) = app.register("sven").await;
    let anonymous = connect(addr, &room, None).await.unwrap_err().to_string();
    assert!(anonymous.contains("401"), "{anonymous}");
    let refused = connect(addr, &room, Some(&stranger)).await.unwrap_err().to_string();
    assert!(refused.contains("403"), "{refused}");
    let missing = connect(addr, "nosuchroom", Some(&stranger)).await.unwrap_err().to_string();
    assert!(missing.contains("404"), "{missing}");
    // A plain GET (no upgrade) by a member is told what the address is for.
    let plain = app.get(&format!("/api/v1/rooms/{room}/ws"), &host).await;
    assert_eq!(plain.status, StatusCode::BAD_REQUEST);
    assert!(plain.body["error"]["message"].as_str().unwrap().contains("WebSocket"));
}

#[tokio::test]
async fn bad_messages_get_clear_errors_and_change_nothing() {
    let (app, addr) = live_app().await;
    let (host, room) = app.register("hana").await;
    let mut socket = connect(addr, &room, Some(&host)).await.unwrap();
    send(&mut socket, json!({"type": "watch", "username": "bob"})).await;
    assert_eq!(expect(&mut socket, "error").await["code"], "not_joined");
    socket.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(expect(&mut socket, "error").await["code"], "invalid_message");
    send(&mut socket, json!({"type": "teleport"})).await;
    let unknown = expect(&mut socket, "error").await;
    assert_eq!(unknown["code"], "unknown_type");
    assert_eq!(unknown["request"], "teleport");
    socket.send(Message::Binary(vec![0, 1, 2].into())).await.unwrap();
    assert_eq!(expect(&mut socket, "error").await["code"], "invalid_message");
    send(&mut socket, json!({"type": "join", "version": 1, "sdp": "v=0\r\nthis is not sdp"})).await;
    assert_eq!(expect(&mut socket, "error").await["code"], "invalid_sdp");
    send(&mut socket, json!({"type": "ping"})).await;
    expect(&mut socket, "pong").await;
    // After all that, a real join still works.
    let (_peer, joined) = join(&mut socket).await;
    assert_eq!(joined["you"], "hana");
    assert_eq!(joined["role"], "host");
    send(&mut socket, json!({"type": "join", "version": 1, "sdp": "v=0"})).await;
    assert_eq!(expect(&mut socket, "error").await["code"], "already_joined");
}

#[tokio::test]
async fn a_message_flood_is_refused_and_then_cut_off() {
    let (app, addr) = live_app().await;
    let (host, room) = app.register("hana").await;
    let mut socket = connect(addr, &room, Some(&host)).await.unwrap();
    for _ in 0..400 {
        if socket.send(Message::Text(r#"{"type":"ping"}"#.into())).await.is_err() {
            break;
        }
    }
    let mut limited = false;
    let mut closed = false;
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
        match frame {
            Ok(Message::Text(text)) if text.contains("rate_limited") => limited = true,
            Ok(Message::Close(_)) | Err(_) => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(limited, "the flood was told to slow down");
    assert!(closed, "and then disconnected");
}

#[tokio::test]
async fn joining_connects_media_and_the_roster_and_lock_follow() {
    let (app, addr) = live_app().await;
    let (host, room) = app.register("hana").await;
    let (guest, _) = app.register("gus").await;
    app.join_by_link(&host, &room, &guest).await;

    let mut host_socket = connect(addr, &room, Some(&host)).await.unwrap();
    let (_host_peer, _) = join(&mut host_socket).await;
    let mut guest_socket = connect(addr, &room, Some(&guest)).await.unwrap();
    let (_guest_peer, joined) = join(&mut guest_socket).await;
    assert_eq!(joined["role"], "member");

    let roster = loop {
        let roster = expect(&mut host_socket, "roster").await;
        if roster["participants"].as_array().unwrap().len() == 2 {
            break roster;
        }
    };
    let names: Vec<_> = roster["participants"].as_array().unwrap().iter().map(|p| p["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["hana", "gus"]);

    // A member may not lock; over the socket or over REST.
    send(&mut guest_socket, json!({"type": "lock", "designated": "hana"})).await;
    assert_eq!(expect(&mut guest_socket, "error").await["code"], "not_permitted");
    let rest = app.call(Method::PUT, &format!("/api/v1/rooms/{room}/video-lock"), Some(&guest), Some(json!({"locked": true, "designated": "hana"}))).await;
    assert_eq!(rest.status, StatusCode::FORBIDDEN);

    // The host locks over REST; everyone is told, and a watch is refused.
    let locked = app.call(Method::PUT, &format!("/api/v1/rooms/{room}/video-lock"), Some(&host), Some(json!({"locked": true, "designated": "gus"}))).await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.text);
    assert_eq!(locked.body, json!({"locked": true, "designated": "gus"}));
    let lock = loop {
        let lock = expect(&mut guest_socket, "lock").await;
        if lock["locked"] == true {
            break lock;
        }
    };
    assert_eq!(lock["designated"], "gus");
    send(&mut guest_socket, json!({"type": "watch", "username": "hana"})).await;
    let refused = expect(&mut guest_socket, "error").await;
    assert_eq!(refused["code"], "locked");
    let nobody = app.call(Method::PUT, &format!("/api/v1/rooms/{room}/video-lock"), Some(&host), Some(json!({"locked": true, "designated": "zed"}))).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    let unlocked = app.call(Method::PUT, &format!("/api/v1/rooms/{room}/video-lock"), Some(&host), Some(json!({"locked": false}))).await;
    assert_eq!(unlocked.body, json!({"locked": false, "designated": null}));

    // Leaving updates the roster.
    send(&mut guest_socket, json!({"type": "leave"})).await;
    loop {
        let roster = expect(&mut host_socket, "roster").await;
        if roster["participants"].as_array().unwrap().len() == 1 {
            break;
        }
    }
}

#[tokio::test]
async fn the_video_lock_needs_a_running_conference() {
    let (app, _addr) = live_app().await;
    let (host, room) = app.register("hana").await;
    let reply = app.call(Method::PUT, &format!("/api/v1/rooms/{room}/video-lock"), Some(&host), Some(json!({"locked": true, "designated": "hana"}))).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "no_conference");
    let bad = app.call(Method::PUT, &format!("/api/v1/rooms/{room}/video-lock"), Some(&host), Some(json!({"locked": true}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn joining_again_replaces_the_earlier_connection() {
    let (app, addr) = live_app().await;
    let (host, room) = app.register("hana").await;
    let mut first = connect(addr, &room, Some(&host)).await.unwrap();
    let (_peer1, _) = join(&mut first).await;
    let mut second = connect(addr, &room, Some(&host)).await.unwrap();
    let (_peer2, _) = join(&mut second).await;
    let notice = expect(&mut first, "notice").await;
    assert_eq!(notice["code"], "replaced");
    let roster = expect(&mut second, "roster").await;
    assert_eq!(roster["participants"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_peer_that_never_completes_ice_is_dropped() {
    let (app, addr) = live_app().await;
    let (host, room) = app.register("hana").await;
    let mut socket = connect(addr, &room, Some(&host)).await.unwrap();
    let (_peer, offer, _pending) = Peer::offer().await;
    send(&mut socket, json!({"type": "join", "version": 1, "sdp": offer})).await;
    expect(&mut socket, "joined").await;
    // The client never answers ICE checks; the server gives up (3 s here).
    let error = expect(&mut socket, "error").await;
    assert_eq!(error["code"], "ice_timeout");
}

#[tokio::test]
async fn a_member_removed_from_the_room_is_removed_from_the_conference() {
    let (app, addr) = live_app().await;
    let (host, room) = app.register("hana").await;
    let (guest, _) = app.register("gus").await;
    app.join_by_link(&host, &room, &guest).await;
    let mut host_socket = connect(addr, &room, Some(&host)).await.unwrap();
    let (_host_peer, _) = join(&mut host_socket).await;
    let mut guest_socket = connect(addr, &room, Some(&guest)).await.unwrap();
    let (_guest_peer, _) = join(&mut guest_socket).await;

    let removed = app.call(Method::DELETE, &format!("/api/v1/rooms/{room}/members/gus"), Some(&host), None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(expect(&mut guest_socket, "error").await["code"], "removed");
    loop {
        let roster = expect(&mut host_socket, "roster").await;
        if roster["participants"].as_array().unwrap().len() == 1 {
            break;
        }
    }
    // And the way back in is closed.
    let again = connect(addr, &room, Some(&guest)).await.unwrap_err().to_string();
    assert!(again.contains("403"), "{again}");
}
