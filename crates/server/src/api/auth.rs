//! Register, log in, log out.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use confcast_store::validate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::invalid;
use super::views::{RoomSummaryView, UserView};
use crate::auth::cookie;
use crate::auth::password;
use crate::auth::session::token_of_headers;
use crate::error::{ApiError, ErrorBody, Json};
use crate::forwarded::ClientInfo;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3-32 characters of a-z 0-9 _ . - (upper case is folded to lower case).
    pub username: String,
    /// At least 8 characters.
    pub password: String,
    /// Shown to other users; any Unicode, 1-64 characters.
    pub display_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    pub user: UserView,
    /// The personal room made for the new user.
    pub room: RoomSummaryView,
    /// A session token for `Authorization: Bearer` (the cookie carries the same).
    pub token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub user: UserView,
    pub token: String,
}

fn with_cookie(status: StatusCode, body: impl Serialize, cookie: String) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Create an account (and its personal room) and log in.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and logged in", body = RegisterResponse),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 409, description = "Username taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody)))]
pub async fn register(State(state): State<AppState>, client: ClientInfo, Json(req): Json<RegisterRequest>) -> Result<Response, ApiError> {
    let username = validate::username(&req.username).map_err(invalid)?;
    let display_name = validate::display_name(&req.display_name).map_err(invalid)?;
    validate::password(&req.password).map_err(invalid)?;
    let hash = password::hash_async(req.password).await.map_err(ApiError::internal)?;
    let now = state.clock.now();
    let (user, room) = state.store.register(&username, &display_name, &hash, now).await?;
    let session = state.store.create_session(user.id, now, state.settings.session_ttl_secs).await?;
    metrics::counter!("accounts_registered_total").increment(1);
    tracing::info!(username = %user.username, "registered");
    let cookie = cookie::set_session(&session.token, state.settings.session_ttl_secs, client.https);
    let body = RegisterResponse { user: (&user).into(), room: room.into(), token: session.token };
    Ok(with_cookie(StatusCode::CREATED, body, cookie))
}

/// Log in with username and password.
///
/// Failed attempts are limited per username and per client address; past the
/// limit the answer is 429 with `Retry-After`, before any password is checked.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    if req.username.len() > 64 || req.password.len() > 1024 {
        return Err(ApiError::bad_request("username or password is too long"));
    }
    let username = req.username.trim().to_ascii_lowercase();
    let now = state.clock.now();
    let addr = client.addr;
    let limited = state.login_limiter.lock().unwrap_or_else(|p| p.into_inner()).check(&username, addr, now);
    if let Err(retry_after) = limited {
        metrics::counter!("logins_rate_limited_total").increment(1);
        return Err(ApiError::rate_limited(retry_after));
    }
    let credentials = state.store.credentials(&username).await?;
    // Unknown users cost the same hash as known ones, so timing reveals nothing.
    let stored = credentials.as_ref().map_or_else(|| password::decoy_hash().to_owned(), |c| c.password_hash.clone());
    let matches = password::verify_async(req.password, stored).await;
    let Some(credentials) = credentials.filter(|_| matches) else {
        state.login_limiter.lock().unwrap_or_else(|p| p.into_inner()).record_failure(&username, addr, now);
        metrics::counter!("logins_failed_total").increment(1);
        tracing::info!(%username, %addr, "failed login");
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong username or password"));
    };
    state.login_limiter.lock().unwrap_or_else(|p| p.into_inner()).record_success(&username);
    let session = state.store.create_session(credentials.user.id, now, state.settings.session_ttl_secs).await?;
    metrics::counter!("logins_total").increment(1);
    let cookie = cookie::set_session(&session.token, state.settings.session_ttl_secs, client.https);
    Ok(with_cookie(StatusCode::OK, LoginResponse { user: (&credentials.user).into(), token: session.token }, cookie))
}

/// End the current session (cookie or bearer token). Idempotent.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204, description = "Logged out; the cookie is cleared")))]
pub async fn logout(State(state): State<AppState>, client: ClientInfo, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = token_of_headers(&headers) {
        state.store.delete_session(&token).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie::clear_session(client.https)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}
