//! Finding other users to invite.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::views::UserView;
use crate::auth::session::CurrentUser;
use crate::error::{ApiError, ErrorBody, Json, Query};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
pub struct SearchParams {
    /// Prefix of a username or display name (1-64 characters).
    pub q: String,
    /// Page size, 1-100 (default 20).
    pub limit: Option<u32>,
    /// How many results to skip (default 0).
    pub offset: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResponse {
    pub users: Vec<UserView>,
    /// The `offset` for the next page, or null when this is the last one.
    pub next_offset: Option<u32>,
}

/// Search users by username or display-name prefix.
#[utoipa::path(get, path = "/users", tag = "users", params(SearchParams),
    responses(
        (status = 200, description = "Matching users, by username", body = SearchResponse),
        (status = 400, description = "Invalid parameters", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    _me: CurrentUser,
    Query(params): Query<SearchParams>,
) -> Result<Json<SearchResponse>, ApiError> {
    let q = params.q.trim();
    if q.is_empty() || q.chars().count() > 64 {
        return Err(ApiError::bad_request("q must be 1 to 64 characters long"));
    }
    let limit = params.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 100"));
    }
    let offset = params.offset.unwrap_or(0);
    if offset > 100_000 {
        return Err(ApiError::bad_request("offset must be at most 100000"));
    }
    // One extra row tells whether another page exists.
    let mut users = state.store.search_users(q, limit + 1, offset).await?;
    let next_offset = (users.len() > limit as usize).then(|| offset + limit);
    users.truncate(limit as usize);
    Ok(Json(SearchResponse { users: users.into_iter().map(Into::into).collect(), next_offset }))
}
