//! A test kit: the whole app in memory, driven with `oneshot`, with a clock
//! the test moves.

#![allow(dead_code, clippy::unwrap_used)]

pub mod live;
pub mod process;

use std::net::SocketAddr;
use std::path::Path;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use confcast_server::clock::Clock;
use confcast_server::{app, AppState, Settings};
use confcast_store::Store;
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

pub const START: i64 = 1_800_000_000;
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub clock: Clock,
    pub dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
    pub bytes: Vec<u8>,
}

impl Reply {
    /// The error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub async fn test_app() -> TestApp {
    test_app_with(Settings::default()).await
}

pub async fn test_app_with(settings: Settings) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    open_app(dir, settings).await
}

/// Starts the app on the database in `dir`, as a restarted server would.
pub async fn open_app(dir: tempfile::TempDir, settings: Settings) -> TestApp {
    let store = Store::open(&dir.path().join("confcast.sqlite")).await.unwrap();
    let clock = Clock::manual(START);
    let state = AppState::new(store, clock.clone(), settings);
    TestApp { router: app(state.clone()), state, clock, dir }
}

pub fn db_path(app: &TestApp) -> &Path {
    app.dir.path()
}

impl TestApp {
    /// Sends a request; `body` is sent as JSON when given.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(json) => request.header(header::CONTENT_TYPE, "application/json").body(Body::from(json.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    pub async fn send(&self, mut request: Request<Body>) -> Reply {
        if request.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
            request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 50000))));
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, body, text, bytes: bytes.to_vec() }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Registers `username` (display name: capitalised) and returns the
    /// session token and personal room id.
    pub async fn register(&self, username: &str) -> (String, String) {
        let display = format!("{}{}", username[..1].to_uppercase(), &username[1..]);
        let reply = self
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(serde_json::json!({"username": username, "password": PASSWORD, "display_name": display})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "register {username}: {}", reply.text);
        (reply.body["token"].as_str().unwrap().to_owned(), reply.body["room"]["id"].as_str().unwrap().to_owned())
    }

    /// Makes `token`'s user a member of `room` through an invite link.
    pub async fn join_by_link(&self, host_token: &str, room: &str, token: &str) {
        let link = self.post(&format!("/api/v1/rooms/{room}/invite-links"), host_token, serde_json::json!({})).await;
        assert_eq!(link.status, StatusCode::CREATED, "{}", link.text);
        let accept = self
            .post(&format!("/api/v1/invite-links/{}/accept", link.body["token"].as_str().unwrap()), token, Value::Null)
            .await;
        assert_eq!(accept.status, StatusCode::OK, "{}", accept.text);
    }
}
