//! Passwords and tokens never reach the logs, even at the most verbose level.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_is_logged() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = test_app().await;
    let (alice, room) = app.register("alice").await;
    let wrong = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "alice", "password": "hunter2hunter2"}))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let login = app.call(Method::POST, "/api/v1/auth/login", None, Some(json!({"username": "alice", "password": PASSWORD}))).await;
    let login_token = login.body["token"].as_str().unwrap().to_owned();
    let link = app.post(&format!("/api/v1/rooms/{room}/invite-links"), &alice, json!({})).await;
    let link_token = link.body["token"].as_str().unwrap().to_owned();
    let (bob, _) = app.register("bob").await;
    app.post(&format!("/api/v1/invite-links/{link_token}/accept"), &bob, Value::Null).await;
    app.call(Method::POST, "/api/v1/auth/logout", Some(&login_token), None).await;
    app.get("/api/v1/me", "forged-token-value").await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("registered") && logs.contains("failed login"), "the logs were captured:\n{logs}");
    for secret in [PASSWORD, "hunter2hunter2", &alice, &bob, &login_token, &link_token, "forged-token-value"] {
        assert!(!logs.contains(secret), "a secret appears in the logs: {secret}");
    }
}
