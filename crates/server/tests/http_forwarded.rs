//! Behind a reverse proxy: login rate limits count the client a trusted
//! proxy names, not the proxy; the same headers from anyone else are
//! ignored; and the proxy's word that the client came over HTTPS makes the
//! session cookie Secure and adds HSTS.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use common::{test_app_with, Reply, TestApp, PASSWORD};
use confcast_server::auth::rate_limit::LoginLimits;
use confcast_server::forwarded::{parse_network, TrustedProxies};
use confcast_server::Settings;
use serde_json::json;

const PROXY: [u8; 4] = [10, 0, 0, 2];
const STRANGER: [u8; 4] = [203, 0, 113, 50];

async fn app() -> TestApp {
    let settings = Settings {
        trusted_proxies: TrustedProxies::new(vec![parse_network("10.0.0.0/24").unwrap()]),
        login_limits: LoginLimits { per_username: 100, per_address: 3, window_secs: 600 },
        ..Settings::default()
    };
    test_app_with(settings).await
}

async fn login(app: &TestApp, peer: [u8; 4], headers: &[(&str, &str)], username: &str, password: &str) -> Reply {
    let mut request = Request::builder().method(Method::POST).uri("/api/v1/auth/login").header(header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::from(json!({"username": username, "password": password}).to_string())).unwrap();
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from((peer, 40000))));
    app.send(request).await
}

#[tokio::test]
async fn rate_limits_count_the_client_behind_a_trusted_proxy() {
    let app = app().await;
    app.register("alice").await;
    // Two clients behind the proxy each fail three times: each is
    // blocked on its own, the proxy's other clients are not.
    for client in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..3 {
            let reply = login(&app, PROXY, &[("x-forwarded-for", client)], "alice", "wrong password").await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
        }
        let reply = login(&app, PROXY, &[("x-forwarded-for", client)], "alice", "wrong password").await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{client} is blocked");
    }
    let reply = login(&app, PROXY, &[("x-forwarded-for", "198.51.100.3")], "alice", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "another client of the proxy is not: {}", reply.text);

    // A client forging X-Forwarded-For from outside the trusted network is
    // counted by its own address, whatever it claims.
    for forged in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        let reply = login(&app, STRANGER, &[("x-forwarded-for", forged)], "alice", "wrong password").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let reply = login(&app, STRANGER, &[("x-forwarded-for", "192.0.2.4")], "alice", "wrong password").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "a new forged address does not escape the limit");
}

#[tokio::test]
async fn the_proxy_says_whether_the_client_came_over_https() {
    let app = app().await;
    app.register("bob").await;
    let https = [("x-forwarded-for", "198.51.100.9"), ("x-forwarded-proto", "https")];
    let reply = login(&app, PROXY, &https, "bob", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers[header::SET_COOKIE].to_str().unwrap().ends_with("; Secure"));
    assert_eq!(reply.headers[header::STRICT_TRANSPORT_SECURITY], "max-age=31536000");

    let reply = login(&app, STRANGER, &https, "bob", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.headers[header::SET_COOKIE].to_str().unwrap().contains("Secure"), "not from a stranger");
    assert!(reply.headers.get(header::STRICT_TRANSPORT_SECURITY).is_none());

    let plain = [("x-forwarded-proto", "http")];
    let reply = login(&app, PROXY, &plain, "bob", PASSWORD).await;
    assert!(!reply.headers[header::SET_COOKIE].to_str().unwrap().contains("Secure"));
}
