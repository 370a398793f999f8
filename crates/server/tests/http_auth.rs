//! Registration, login, logout, sessions and their bad inputs.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use confcast_server::Settings;
use serde_json::json;

fn register_body(username: &str, password: &str, display: &str) -> serde_json::Value {
    json!({"username": username, "password": password, "display_name": display})
}

#[tokio::test]
async fn register_sets_a_session_cookie_and_makes_a_personal_room() {
    let app = test_app().await;
    let reply = app.call(Method::POST, "/api/v1/auth/register", None, Some(register_body("Alice", PASSWORD, "Alice A."))).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["user"], json!({"username": "alice", "display_name": "Alice A."}));
    assert_eq!(reply.body["room"]["personal"], true);
    assert_eq!(reply.body["room"]["role"], "host");
    let cookie = reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(cookie.starts_with("confcast_session="));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));

    // The cookie alone authenticates.
    let token = reply.body["token"].as_str().unwrap();
    let request = Request::get("/api/v1/me")
        .header(header::COOKIE, format!("other=1; confcast_session={token}"))
        .body(Body::empty())
        .unwrap();
    let me = app.send(request).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["username"], "alice");
    assert_eq!(me.body["rooms"][0]["id"], reply.body["room"]["id"]);
}

#[tokio::test]
async fn usernames_are_unique_regardless_of_case() {
    let app = test_app().await;
    app.register("alice").await;
    let reply = app.call(Method::POST, "/api/v1/auth/register", None, Some(register_body("ALICE", PASSWORD, "x"))).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "username_taken");
}

#[tokio::test]
async fn invalid_registrations_are_refused_with_a_message_and_store_nothing() {
    let app = test_app().await;
    let cases = [
        register_body("ab", PASSWORD, "x"),
        register_body(&"a".repeat(33), PASSWORD, "x"),
        register_body("has space", PASSWORD, "x"),
        register_body("zoë", PASSWORD, "x"),
        register_body("bob", "short", "x"),
        register_body("bob", PASSWORD, "   "),
        register_body("bob", PASSWORD, &"x".repeat(65)),
        json!({"username": "bob", "password": PASSWORD}),
        json!({"username": 42, "password": PASSWORD, "display_name": "x"}),
        json!({"username": "bob", "password": PASSWORD, "display_name": "x", "admin": true}),
        json!(["bob"]),
    ];
    for body in cases {
        let reply = app.call(Method::POST, "/api/v1/auth/register", None, Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.text);
        assert!(!reply.body["error"]["message"].as_str().unwrap().is_empty());
    }
    // Not JSON at all.
    let request = Request::post("/api/v1/auth/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"username\": "))
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::BAD_REQUEST);
    // No content type.
    let request = Request::post("/api/v1/auth/register").body(Body::from("{}")).unwrap();
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.code(), "unsupported_media_type");
    // None of it created an account: "bob" is still free.
    app.register("bob").await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = test_app_with(Settings { max_body_bytes: 1024, ..Settings::default() }).await;
    let body = register_body("carol", PASSWORD, &"x".repeat(2000));
    let reply = app.call(Method::POST, "/api/v1/auth/register", None, Some(body)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.code(), "payload_too_large");
}

#[tokio::test]
async fn odd_unicode_and_sql_are_stored_verbatim() {
    let app = test_app().await;
    let display = "Robert'); DROP TABLE users;-- <script>alert(1)</script> 🎥 Zoë \u{202e}";
    let reply = app.call(Method::POST, "/api/v1/auth/register", None, Some(register_body("bobby", PASSWORD, display))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let token = reply.body["token"].as_str().unwrap();
    let me = app.get("/api/v1/me", token).await;
    assert_eq!(me.body["user"]["display_name"], display.trim());
    let found = app.get("/api/v1/users?q=Robert%27)%3B", token).await;
    assert_eq!(found.body["users"][0]["username"], "bobby");
}

#[tokio::test]
async fn login_gives_a_token_and_wrong_passwords_get_the_same_401_as_unknown_users() {
    let app = test_app().await;
    app.register("alice").await;
    let ok = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "Alice", "password": PASSWORD}))).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.headers.get(header::SET_COOKIE).is_some());
    let token = ok.body["token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", token).await.status, StatusCode::OK);

    let wrong = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "alice", "password": "nope nope"}))).await;
    let unknown = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "zed", "password": "nope nope"}))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.code(), "invalid_credentials");
}

fn login_from(addr: [u8; 4], username: &str, password: &str) -> Request<Body> {
    let mut request = Request::post("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"username": username, "password": password}).to_string()))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from((addr, 40000))));
    request
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_username_and_per_address() {
    let app = test_app().await;
    app.register("alice").await;
    for i in 0..5u8 {
        let reply = app.send(login_from([198, 51, 100, i], "alice", "wrong password")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password now waits: the username is locked.
    let limited = app.send(login_from([198, 51, 100, 99], "alice", PASSWORD)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.code(), "rate_limited");
    let retry: i64 = limited.headers.get(header::RETRY_AFTER).unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");

    app.clock.advance(retry);
    assert_eq!(app.send(login_from([198, 51, 100, 99], "alice", PASSWORD)).await.status, StatusCode::OK);

    // One address spraying many usernames is stopped too.
    for i in 0..20 {
        app.send(login_from([203, 0, 113, 7], &format!("user{i}"), "wrong password")).await;
    }
    let sprayer = app.send(login_from([203, 0, 113, 7], "alice", PASSWORD)).await;
    assert_eq!(sprayer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.send(login_from([203, 0, 113, 8], "alice", PASSWORD)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn logout_ends_the_session_for_real() {
    let app = test_app().await;
    let (token, _) = app.register("alice").await;
    let reply = app.call(Method::POST, "/api/v1/auth/logout", Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().contains("Max-Age=0"));
    let me = app.get("/api/v1/me", &token).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.code(), "unauthenticated");
}

#[tokio::test]
async fn sessions_expire() {
    let app = test_app_with(Settings { session_ttl_secs: 3600, ..Settings::default() }).await;
    let (token, _) = app.register("alice").await;
    app.clock.advance(3599);
    assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::OK);
    app.clock.advance(1);
    assert_eq!(app.get("/api/v1/me", &token).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn requests_without_a_valid_session_get_401() {
    let app = test_app().await;
    assert_eq!(app.call(Method::GET, "/api/v1/me", None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me", "forged").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me", &"x".repeat(10_000)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(Method::GET, "/api/v1/users?q=a", None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(Method::GET, "/api/v1/invitations", None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(Method::GET, "/api/v1/events", None, None).await.status, StatusCode::UNAUTHORIZED);
    let create = app.call(Method::POST, "/api/v1/rooms", None, Some(json!({"title": "x"}))).await;
    assert_eq!(create.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn restarting_keeps_users_rooms_sessions_and_invitations() {
    let app = test_app().await;
    let (alice, room) = app.register("alice").await;
    let (bob, _) = app.register("bob").await;
    let invite = app.post(&format!("/api/v1/rooms/{room}/invitations"), &alice, json!({"username": "bob"})).await;
    assert_eq!(invite.status, StatusCode::CREATED);
    let TestApp { dir, state, router, .. } = app;
    drop(router);
    state.store.close().await;
    drop(state);

    let app = open_app(dir, Settings::default()).await;
    let me = app.get("/api/v1/me", &alice).await;
    assert_eq!(me.status, StatusCode::OK, "the session survived");
    assert_eq!(me.body["rooms"][0]["id"], room.as_str());
    let pending = app.get("/api/v1/invitations", &bob).await;
    assert_eq!(pending.body["invitations"][0]["room"]["id"], room.as_str());
    let login = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "bob", "password": PASSWORD}))).await;
    assert_eq!(login.status, StatusCode::OK);
}
