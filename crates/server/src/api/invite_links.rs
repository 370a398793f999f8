//! Shareable invite links: an expiring URL that makes whoever opens it (once
//! logged in) a member.

use axum::extract::State;
use axum::http::StatusCode;
use confcast_policy::Action;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::authorize;
use super::rooms::announce_room_change;
use super::views::RoomSummaryView;
use crate::auth::session::CurrentUser;
use crate::clock::rfc3339;
use crate::error::{ApiError, ErrorBody, Json, Path};
use crate::state::AppState;

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateLinkRequest {
    /// Lifetime in seconds: 60 to the server's maximum (default one day).
    pub expires_in_seconds: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedLink {
    /// The secret; only its hash is stored, so it is shown this once.
    pub token: String,
    /// The page to share, relative to the server (`/join/{token}`).
    pub url: String,
    pub expires_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct JoinedRoom {
    pub room: RoomSummaryView,
}

/// Create an invite link for a room (host or admin).
#[utoipa::path(post, path = "/rooms/{id}/invite-links", tag = "invitations", request_body = CreateLinkRequest,
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 201, description = "Created", body = CreatedLink),
        (status = 400, description = "Invalid lifetime", body = ErrorBody),
        (status = 403, description = "Not host or admin", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(room_id): Path<String>,
    Json(req): Json<CreateLinkRequest>,
) -> Result<(StatusCode, Json<CreatedLink>), ApiError> {
    authorize(&state, &room_id, me.user.id, Action::CreateInviteLink).await?;
    let max = state.settings.max_invite_link_secs;
    let lifetime = req.expires_in_seconds.unwrap_or(24 * 3600);
    if !(60..=max).contains(&lifetime) {
        return Err(ApiError::bad_request(format!("expires_in_seconds must be between 60 and {max}")));
    }
    let link = state.store.create_invite_link(&room_id, me.user.id, state.clock.now(), lifetime).await?;
    let url = format!("/join/{}", link.token);
    Ok((StatusCode::CREATED, Json(CreatedLink { token: link.token, url, expires_at: rfc3339(link.expires_at) })))
}

/// Join the room an invite link points to.
#[utoipa::path(post, path = "/invite-links/{token}/accept", tag = "invitations",
    params(("token" = String, Path, description = "The link's token")),
    responses(
        (status = 200, description = "The caller is a member", body = JoinedRoom),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 404, description = "No such link", body = ErrorBody),
        (status = 410, description = "The link expired", body = ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(token): Path<String>,
) -> Result<Json<JoinedRoom>, ApiError> {
    if token.len() > 128 {
        return Err(ApiError::not_found("invite link"));
    }
    let (room, added) = state.store.accept_invite_link(&token, me.user.id, state.clock.now()).await?;
    if added {
        announce_room_change(&state, &room.id).await;
    }
    Ok(Json(JoinedRoom { room: room.into() }))
}
