//! Health, metrics, the OpenAPI document, the web shell, and odd requests.

#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;

/// The routes the API promises (method, path as in the document).
const PROMISED: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/rooms"),
    ("get", "/api/v1/rooms/{id}"),
    ("patch", "/api/v1/rooms/{id}"),
    ("delete", "/api/v1/rooms/{id}"),
    ("put", "/api/v1/rooms/{id}/members/{username}"),
    ("delete", "/api/v1/rooms/{id}/members/{username}"),
    ("post", "/api/v1/rooms/{id}/invitations"),
    ("get", "/api/v1/invitations"),
    ("post", "/api/v1/invitations/{id}/accept"),
    ("post", "/api/v1/invitations/{id}/decline"),
    ("delete", "/api/v1/invitations/{id}"),
    ("post", "/api/v1/rooms/{id}/invite-links"),
    ("post", "/api/v1/invite-links/{token}/accept"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/rooms/{id}/ws"),
    ("put", "/api/v1/rooms/{id}/video-lock"),
    ("get", "/api/v1/ice-servers"),
    ("put", "/api/v1/rooms/{id}/broadcast"),
    ("post", "/api/v1/rooms/{id}/whep"),
    ("delete", "/api/v1/rooms/{id}/whep/{session}"),
    ("post", "/api/v1/rooms/{id}/ingest-keys"),
    ("get", "/api/v1/rooms/{id}/ingest-keys"),
    ("delete", "/api/v1/rooms/{id}/ingest-keys/{key}"),
    ("post", "/api/v1/rooms/{id}/whip"),
    ("delete", "/api/v1/rooms/{id}/whip/{session}"),
    ("post", "/api/v1/nodes/programs/{room}"),
    ("delete", "/api/v1/nodes/programs/{room}/{broadcast}"),
    ("get", "/api/v1/nodes/programs/{room}/{broadcast}/problems"),
    ("get", "/api/v1/nodes/rooms/{id}/recordings"),
    ("delete", "/api/v1/nodes/recordings/{id}"),
    ("get", "/api/v1/live"),
    ("get", "/api/v1/live/events"),
    ("get", "/api/v1/rooms/{id}/recordings"),
    ("get", "/api/v1/recordings"),
    ("get", "/api/v1/recordings/{id}"),
    ("delete", "/api/v1/recordings/{id}"),
    ("get", "/recordings/{broadcast}/{name}"),
    ("get", "/hls/{room}/index.m3u8"),
    ("get", "/hls/{room}/{broadcast}/{name}"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/api/v1/operator/overview"),
];

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_the_server_answers() {
    let app = test_app().await;
    let reply = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys().filter(|k| !matches!(k.as_str(), "parameters" | "summary")) {
            documented.push((method.clone(), path.clone()));
        }
    }
    let mut promised: Vec<_> = PROMISED.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    documented.sort();
    promised.sort();
    assert_eq!(documented, promised, "the document and the promised list differ");

    // Every documented operation reaches a handler (not the "no such route"
    // fallback, not 405).
    for (method, path) in documented {
        let concrete = path.replace("{id}", "x").replace("{username}", "x").replace("{token}", "x").replace("{room}", "x").replace("{name}", "x").replace("{broadcast}", "x");
        let method: Method = method.to_uppercase().parse().unwrap();
        if concrete.ends_with("/events") {
            // An event stream never ends: look at the status only.
            let request = Request::builder().method(method.clone()).uri(&concrete).body(Body::empty()).unwrap();
            let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
            assert!(response.status() == StatusCode::OK || response.status() == StatusCode::UNAUTHORIZED, "{method} {path}");
            continue;
        }
        let reply = app.call(method.clone(), &concrete, None, None).await;
        assert_ne!(reply.code(), "no_such_route", "{method} {path}");
        assert_ne!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
    // The handlers are registered only through the OpenAPI router, so a route
    // added any other way under /api/v1 would miss the document: keep it so.
    let source = include_str!("../src/routes.rs");
    assert_eq!(source.matches(".route(\"/api").count(), 1, "only the /api/v1 fallback is a plain route");
}

#[tokio::test]
async fn health_and_metrics() {
    let app = test_app().await;
    let health = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    app.register("alice").await;
    let metrics = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    assert!(metrics.text.contains("http_requests_total"), "{}", metrics.text);
    assert!(metrics.text.contains("route=\"/api/v1/auth/register\""));
    // Ids and tokens never become label values.
    assert!(!metrics.text.contains("confcast_session"));
}

#[tokio::test]
async fn the_web_shell_is_served_for_page_routes_with_a_strict_policy() {
    let app = test_app().await;
    for path in ["/", "/login", "/register", "/rooms/abc", "/join/xyz"] {
        let page = app.call(Method::GET, path, None, None).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"));
        assert!(page.text.contains("<script type=\"module\""), "{path}");
    }
    let module = app.call(Method::GET, "/static/app.js", None, None).await;
    assert_eq!(module.status, StatusCode::OK);
    assert!(module.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    let etag = module.headers[header::ETAG].clone();
    let request = Request::get("/static/app.js").header(header::IF_NONE_MATCH, etag).body(Body::empty()).unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn path_traversal_and_odd_paths_find_nothing() {
    let app = test_app().await;
    for path in [
        "/static/../Cargo.toml",
        "/static/..%2F..%2FCargo.toml",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static//etc/passwd",
        "/static/.hidden",
        "/static/nope.js",
        "/api/v1/rooms/..%2f..%2f",
        "/nothing",
    ] {
        let reply = app.call(Method::GET, path, None, None).await;
        assert!(
            reply.status == StatusCode::NOT_FOUND || reply.status == StatusCode::UNAUTHORIZED,
            "{path}: {} {}",
            reply.status,
            reply.text
        );
        assert!(!reply.text.contains("[package]") && !reply.text.contains("root:"), "{path}");
    }
    let wrong_method = app.call(Method::DELETE, "/api/v1/me", None, None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.code(), "method_not_allowed");
    assert_eq!(wrong_method.body["error"]["message"].as_str().map(str::is_empty), Some(false));
}
