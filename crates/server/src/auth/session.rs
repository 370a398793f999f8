//! Extractors that turn a cookie or bearer token into the logged-in user.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use confcast_store::User;

use super::cookie::{read, SESSION_COOKIE};
use crate::error::ApiError;
use crate::forwarded::ClientInfo;
use crate::state::AppState;

/// The session token sent with a request: `Authorization: Bearer` wins over
/// the cookie, so scripts can act as another user than the browser's.
pub fn token_of_headers(headers: &HeaderMap) -> Option<String> {
    bearer_token(headers).map(str::to_owned).or_else(|| read(headers, SESSION_COOKIE)).filter(|t| !t.is_empty())
}

/// The token of an `Authorization: Bearer <token>` header, trimmed; none
/// when it is missing or empty.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The logged-in user; requests without a valid session get 401.
pub struct CurrentUser {
    pub user: User,
    pub token: String,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<CurrentUser, ApiError> {
        let token = token_of_headers(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
        // A token is 43 characters; anything much longer is not one of ours and
        // is not worth hashing.
        if token.len() > 128 {
            return Err(ApiError::unauthenticated());
        }
        let user = state.store.session_user(&token, state.clock.now()).await?.ok_or_else(ApiError::unauthenticated)?;
        Ok(CurrentUser { user, token })
    }
}

/// The client's IP address, for rate limits: the TCP peer, or the client a
/// trusted reverse proxy names (see `forwarded`).
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<ClientAddr, Self::Rejection> {
        if let Some(client) = parts.extensions.get::<ClientInfo>() {
            return Ok(ClientAddr(client.addr));
        }
        // The listener always records the peer address; only an app driven
        // without a socket (unit tests) lacks it, and those share one bucket.
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(a)| a.ip());
        Ok(ClientAddr(addr))
    }
}
