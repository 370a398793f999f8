//! The operator role: granted on the command line, required by the
//! operator overview (401 anonymous, 403 others).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use axum::http::{Method, StatusCode};
use common::test_app;
use confcast_store::Store;

#[tokio::test]
async fn the_overview_is_for_operators_only() {
    let app = test_app().await;
    let (ada, _) = app.register("ada").await;
    let (bob, _) = app.register("bob").await;
    let anonymous = app.call(Method::GET, "/api/v1/operator/overview", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{}", anonymous.text);
    let refused = app.get("/api/v1/operator/overview", &bob).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.code(), "not_operator");

    assert_eq!(app.get("/api/v1/me", &ada).await.body["operator"], false);
    assert!(app.state.store.set_operator("ada", true).await.unwrap());
    assert_eq!(app.get("/api/v1/me", &ada).await.body["operator"], true, "the client shows operators the way to the page");
    assert_eq!(app.get("/api/v1/me", &bob).await.body["operator"], false);
    let overview = app.get("/api/v1/operator/overview", &ada).await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.text);
    let body = &overview.body;
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["role"], "all");
    assert!(body["uptime_seconds"].is_u64());
    assert_eq!(body["rooms"], serde_json::json!([]));
    assert_eq!(body["broadcasts"], serde_json::json!([]));
    assert_eq!(body["disk"]["recordings"], 0);
    // Still refused to the other user, and refused again once revoked.
    assert_eq!(app.get("/api/v1/operator/overview", &bob).await.status, StatusCode::FORBIDDEN);
    app.state.store.set_operator("ada", false).await.unwrap();
    assert_eq!(app.get("/api/v1/operator/overview", &ada).await.status, StatusCode::FORBIDDEN);
}

fn confcast(args: &[&str], data: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_confcast")).args(args).arg("--data").arg(data).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn operators_are_granted_revoked_and_listed_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("confcast.sqlite")).await.unwrap();
    let (ada, _) = store.register("ada", "Ada", "x", 0).await.unwrap();
    store.close().await;

    assert_eq!(confcast(&["operator", "list"], dir.path()), (true, "no operators (grant the role with: confcast operator grant USERNAME)\n".to_owned()));
    assert_eq!(confcast(&["operator", "grant", "ada"], dir.path()), (true, "ada is now an operator\n".to_owned()));
    assert_eq!(confcast(&["operator", "grant", "Ada"], dir.path()), (true, "Ada was already an operator\n".to_owned()));
    assert_eq!(confcast(&["operator", "list"], dir.path()), (true, "ada\tAda\n".to_owned()));
    let (ok, text) = confcast(&["operator", "grant", "nobody"], dir.path());
    assert!(!ok && text.contains("there is no user named nobody"), "{text}");
    let store = Store::open(&dir.path().join("confcast.sqlite")).await.unwrap();
    assert!(store.is_operator(ada.id).await.unwrap());
    store.close().await;
    assert_eq!(confcast(&["operator", "revoke", "ada"], dir.path()), (true, "ada is no longer an operator\n".to_owned()));

    // A wrong data folder is an error, and no database is made there.
    let elsewhere = dir.path().join("typo");
    let (ok, text) = confcast(&["operator", "grant", "ada"], &elsewhere);
    assert!(!ok && text.contains("no database at"), "{text}");
    assert!(!elsewhere.exists());
}
