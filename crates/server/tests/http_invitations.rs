//! Inviting users ("dialling"), live ringing over SSE, and invite links.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use futures_util::StreamExt as _;
use serde_json::{json, Value};
use tower::ServiceExt as _;

/// Reads an SSE body until an event named `name` arrives; returns its data.
async fn next_event(stream: &mut axum::body::BodyDataStream, buffer: &mut String, name: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let event = frame.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("");
            let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            if event == name {
                return serde_json::from_str(data).unwrap();
            }
        }
        let chunk = tokio::time::timeout_at(deadline, stream.next()).await.expect("event in time").expect("stream open");
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
}

async fn open_events(app: &TestApp, token: &str) -> axum::body::BodyDataStream {
    let request = Request::get("/api/v1/events").header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    response.into_body().into_data_stream()
}

#[tokio::test]
async fn an_invitation_rings_live_and_accepting_makes_a_member() {
    let app = test_app().await;
    let (alice, room) = app.register("alice").await;
    let (bob, _) = app.register("bob").await;
    let mut bob_events = open_events(&app, &bob).await;
    let mut alice_events = open_events(&app, &alice).await;
    let (mut bob_buf, mut alice_buf) = (String::new(), String::new());
    next_event(&mut bob_events, &mut bob_buf, "ready").await;
    next_event(&mut alice_events, &mut alice_buf, "ready").await;

    let invited = app.post(&format!("/api/v1/rooms/{room}/invitations"), &alice, json!({"username": "BOB"})).await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.text);
    assert_eq!(invited.body["status"], "pending");
    assert_eq!(invited.body["inviter"]["username"], "alice");
    assert_eq!(invited.body["invitee"]["username"], "bob");

    let ring = next_event(&mut bob_events, &mut bob_buf, "invitation").await;
    assert_eq!(ring["id"], invited.body["id"]);
    assert_eq!(ring["room"]["id"], room.as_str());

    let pending = app.get("/api/v1/invitations", &bob).await;
    assert_eq!(pending.body["invitations"].as_array().unwrap().len(), 1);

    let id = invited.body["id"].as_str().unwrap();
    // Nobody but the invitee can answer, and trying reveals nothing.
    assert_eq!(app.post(&format!("/api/v1/invitations/{id}/accept"), &alice, Value::Null).await.status, StatusCode::NOT_FOUND);

    let accepted = app.post(&format!("/api/v1/invitations/{id}/accept"), &bob, Value::Null).await;
    assert_eq!(accepted.status, StatusCode::OK);
    assert_eq!(accepted.body["invitation"]["status"], "accepted");
    assert_eq!(accepted.body["room"]["role"], "member");
    let update = next_event(&mut alice_events, &mut alice_buf, "invitation_updated").await;
    assert_eq!(update["status"], "accepted");
    next_event(&mut bob_events, &mut bob_buf, "rooms_changed").await;

    let me = app.get("/api/v1/me", &bob).await;
    assert!(me.body["rooms"].as_array().unwrap().iter().any(|r| r["id"] == room.as_str()));
    assert!(app.get("/api/v1/invitations", &bob).await.body["invitations"].as_array().unwrap().is_empty());

    let again = app.post(&format!("/api/v1/invitations/{id}/accept"), &bob, Value::Null).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "not_pending");
    let member_again = app.post(&format!("/api/v1/rooms/{room}/invitations"), &alice, json!({"username": "bob"})).await;
    assert_eq!(member_again.status, StatusCode::CONFLICT);
    assert_eq!(member_again.code(), "already_member");
}

#[tokio::test]
async fn declining_and_cancelling() {
    let app = test_app().await;
    let (alice, room) = app.register("alice").await;
    let (bob, _) = app.register("bob").await;
    let (carol, _) = app.register("carol").await;
    let first = app.post(&format!("/api/v1/rooms/{room}/invitations"), &alice, json!({"username": "bob"})).await;
    let twice = app.post(&format!("/api/v1/rooms/{room}/invitations"), &alice, json!({"username": "bob"})).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.code(), "already_invited");

    let id = first.body["id"].as_str().unwrap();
    let declined = app.post(&format!("/api/v1/invitations/{id}/decline"), &bob, Value::Null).await;
    assert_eq!(declined.status, StatusCode::OK);
    assert_eq!(declined.body["invitation"]["status"], "declined");
    assert!(declined.body.get("room").is_none());
    assert_eq!(app.get(&format!("/api/v1/rooms/{room}"), &bob).await.status, StatusCode::FORBIDDEN);

    // A declined invitation can be sent again, and the inviter may cancel it.
    let second = app.post(&format!("/api/v1/rooms/{room}/invitations"), &alice, json!({"username": "bob"})).await;
    assert_eq!(second.status, StatusCode::CREATED);
    let id = second.body["id"].as_str().unwrap();
    assert_eq!(app.call(Method::DELETE, &format!("/api/v1/invitations/{id}"), Some(&carol), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.call(Method::DELETE, &format!("/api/v1/invitations/{id}"), Some(&bob), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.call(Method::DELETE, &format!("/api/v1/invitations/{id}"), Some(&alice), None).await.status, StatusCode::NO_CONTENT);
    let late = app.post(&format!("/api/v1/invitations/{id}/accept"), &bob, Value::Null).await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert_eq!(app.get(&format!("/api/v1/rooms/{room}"), &bob).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn invite_links_admit_logged_in_users_until_they_expire() {
    let app = test_app().await;
    let (alice, room) = app.register("alice").await;
    let (bob, _) = app.register("bob").await;
    let (carol, _) = app.register("carol").await;
    let link = app.post(&format!("/api/v1/rooms/{room}/invite-links"), &alice, json!({"expires_in_seconds": 600})).await;
    assert_eq!(link.status, StatusCode::CREATED);
    let token = link.body["token"].as_str().unwrap();
    assert_eq!(link.body["url"], format!("/join/{token}"));
    assert_eq!(link.body["expires_at"], "2027-01-15T08:10:00Z");

    let path = format!("/api/v1/invite-links/{token}/accept");
    assert_eq!(app.call(Method::POST, &path, None, None).await.status, StatusCode::UNAUTHORIZED);
    let joined = app.post(&path, &bob, Value::Null).await;
    assert_eq!(joined.status, StatusCode::OK);
    assert_eq!(joined.body["room"]["id"], room.as_str());
    assert_eq!(app.post(&path, &bob, Value::Null).await.status, StatusCode::OK, "opening twice is harmless");

    // Members cannot make links; lifetimes are bounded.
    let by_member = app.post(&format!("/api/v1/rooms/{room}/invite-links"), &bob, json!({})).await;
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    for secs in [0, 59, 31 * 24 * 3600] {
        let bad = app.post(&format!("/api/v1/rooms/{room}/invite-links"), &alice, json!({"expires_in_seconds": secs})).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{secs}");
    }

    app.clock.advance(600);
    let expired = app.post(&path, &carol, Value::Null).await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert_eq!(expired.code(), "expired");
    assert_eq!(app.get(&format!("/api/v1/rooms/{room}"), &carol).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admins_can_invite_and_members_cannot() {
    let app = test_app().await;
    let (host, room) = app.register("hana").await;
    let (adam, _) = app.register("adam").await;
    let (mona, _) = app.register("mona").await;
    app.register("otto").await;
    app.join_by_link(&host, &room, &adam).await;
    app.join_by_link(&host, &room, &mona).await;
    app.call(Method::PUT, &format!("/api/v1/rooms/{room}/members/adam"), Some(&host), Some(json!({"role": "admin"}))).await;
    let by_member = app.post(&format!("/api/v1/rooms/{room}/invitations"), &mona, json!({"username": "otto"})).await;
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    let by_admin = app.post(&format!("/api/v1/rooms/{room}/invitations"), &adam, json!({"username": "otto"})).await;
    assert_eq!(by_admin.status, StatusCode::CREATED);
    // The host may withdraw the admin's invitation.
    let id = by_admin.body["id"].as_str().unwrap();
    assert_eq!(app.call(Method::DELETE, &format!("/api/v1/invitations/{id}"), Some(&host), None).await.status, StatusCode::NO_CONTENT);
}
