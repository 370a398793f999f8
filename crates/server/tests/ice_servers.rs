//! `GET /api/v1/ice-servers`: TURN relays with time-limited credentials
//! (coturn's shared-secret scheme) for logged-in users only.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{header, Method, StatusCode};
use common::*;
use confcast_server::ice::{credential, TurnConfig};
use confcast_server::state::Settings;

#[tokio::test]
async fn logged_in_users_get_turn_credentials_that_expire() {
    let turn = TurnConfig::new(vec!["turn:turn.example.org:3478?transport=udp".into(), "turns:turn.example.org:5349".into()], "north-wind", 3600);
    let app = test_app_with(Settings { turn: Some(turn), ..Settings::default() }).await;
    let anonymous = app.call(Method::GET, "/api/v1/ice-servers", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let (token, _) = app.register("alice").await;
    let reply = app.get("/api/v1/ice-servers", &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    let server = &reply.body["ice_servers"][0];
    assert_eq!(server["urls"], serde_json::json!(["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]));
    let username = server["username"].as_str().unwrap();
    let expiry = app.clock.now() + 3600;
    assert_eq!(username, format!("{expiry}:alice"));
    assert_eq!(server["credential"].as_str().unwrap(), credential("north-wind", username));
    assert_eq!(reply.body["expires_at"].as_str().unwrap(), confcast_server::clock::rfc3339(expiry));

    // Later calls get later expiries: credentials are made per call.
    app.clock.advance(60);
    let later = app.get("/api/v1/ice-servers", &token).await;
    assert_eq!(later.body["ice_servers"][0]["username"].as_str().unwrap(), format!("{}:alice", expiry + 60));
}

#[tokio::test]
async fn without_turn_the_list_is_empty() {
    let app = test_app().await;
    let (token, _) = app.register("bob").await;
    let reply = app.get("/api/v1/ice-servers", &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body, serde_json::json!({"ice_servers": []}));
}
