//! The logged-in user and their rooms.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::views::{RoomSummaryView, UserView};
use crate::auth::session::CurrentUser;
use crate::error::{ApiError, ErrorBody, Json};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    pub user: UserView,
    /// Every room the user belongs to, personal room first.
    pub rooms: Vec<RoomSummaryView>,
    /// Whether the user may open the operator overview.
    pub operator: bool,
}

/// Who am I, and which rooms am I in?
#[utoipa::path(get, path = "/me", tag = "users",
    responses(
        (status = 200, description = "The current user", body = MeResponse),
        (status = 401, description = "Not logged in", body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, me: CurrentUser) -> Result<Json<MeResponse>, ApiError> {
    let rooms = state.store.rooms_of(me.user.id).await?;
    let operator = state.store.is_operator(me.user.id).await?;
    Ok(Json(MeResponse { user: (&me.user).into(), rooms: rooms.into_iter().map(Into::into).collect(), operator }))
}
