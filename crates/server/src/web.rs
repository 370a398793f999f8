//! The browser client: files from `web/`, embedded at compile time so the
//! binary is all there is to deploy.

use std::hash::{DefaultHasher, Hash, Hasher};

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir};

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web");

/// Pages are scripts from this server only; no inline script can run, so a
/// name that slipped past escaping still could not execute.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Serves one embedded file, revalidated by ETag so a new binary's files are
/// picked up at once while unchanged ones cost a 304.
fn serve(path: &str, request_headers: &HeaderMap) -> Response {
    let Some(file) = WEB.get_file(path) else {
        return crate::error::ApiError::not_found("file").into_response();
    };
    let body = file.contents();
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if path.ends_with(".html") {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    }
    let fresh = request_headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str());
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, body).into_response()
}

/// `/static/{path}`: the client's modules, styles and images.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    // include_dir has no "..": only embedded paths exist, so nothing outside
    // `web/` can be named. Hidden files are not served.
    if path.split('/').any(|part| part.is_empty() || part.starts_with('.')) {
        return crate::error::ApiError::not_found("file").into_response();
    }
    serve(&path, &headers)
}

/// `/sw.js`: the service worker, served from the root so its scope is the
/// whole site.
pub async fn service_worker(headers: HeaderMap) -> Response {
    serve("sw.js", &headers)
}

/// Every page route answers with the client shell; the client's router
/// shows the right page.
pub async fn page(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_is_embedded() {
        assert!(WEB.get_file("index.html").is_some());
        assert_eq!(content_type("a/b.js"), "text/javascript; charset=utf-8");
    }
}
