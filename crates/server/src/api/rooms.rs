//! Rooms: create, read, rename, delete, and manage members.

use axum::extract::State;
use axum::http::StatusCode;
use confcast_policy::{may_remove, Action, Role};
use confcast_store::validate;
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::{RoomSummaryView, RoomView};
use super::{authorize, invalid};
use crate::auth::session::CurrentUser;
use crate::error::{ApiError, ErrorBody, Json, Path};
use crate::notify::Notification;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomTitle {
    /// 1-100 characters.
    pub title: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRole {
    /// `admin` or `member`.
    pub role: String,
}

/// Tells every member's open pages that the room changed.
pub async fn announce_room_change(state: &AppState, room_id: &str) {
    match state.store.member_ids(room_id).await {
        Ok(ids) => {
            for id in ids {
                state.hub.publish(id, Notification::new("rooms_changed", &serde_json::json!({ "room_id": room_id })));
            }
        }
        Err(error) => tracing::warn!(%error, "could not list members to notify"),
    }
}

/// Create a room hosted by the caller.
#[utoipa::path(post, path = "/rooms", tag = "rooms", request_body = RoomTitle,
    responses(
        (status = 201, description = "Created", body = RoomView),
        (status = 400, description = "Invalid title", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    me: CurrentUser,
    Json(req): Json<RoomTitle>,
) -> Result<(StatusCode, Json<RoomView>), ApiError> {
    let title = validate::room_title(&req.title).map_err(invalid)?;
    let summary = state.store.create_room(me.user.id, &title, state.clock.now()).await?;
    let room = state.store.room(&summary.id).await?;
    state.hub.publish(me.user.id, Notification::new("rooms_changed", &serde_json::json!({ "room_id": summary.id })));
    Ok((StatusCode::CREATED, Json(RoomView::new(room, Role::Host))))
}

/// A room with its members (members only).
#[utoipa::path(get, path = "/rooms/{id}", tag = "rooms", params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The room", body = RoomView),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "Not a member", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<RoomView>, ApiError> {
    let role = authorize(&state, &id, me.user.id, Action::ViewRoom).await?;
    Ok(Json(RoomView::new(state.store.room(&id).await?, role)))
}

/// Rename a room (host only).
#[utoipa::path(patch, path = "/rooms/{id}", tag = "rooms", request_body = RoomTitle,
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "Renamed", body = RoomView),
        (status = 400, description = "Invalid title", body = ErrorBody),
        (status = 403, description = "Not the host", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody)))]
pub async fn rename(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    Json(req): Json<RoomTitle>,
) -> Result<Json<RoomView>, ApiError> {
    let role = authorize(&state, &id, me.user.id, Action::Rename).await?;
    let title = validate::room_title(&req.title).map_err(invalid)?;
    state.store.rename_room(&id, &title).await?;
    announce_room_change(&state, &id).await;
    Ok(Json(RoomView::new(state.store.room(&id).await?, role)))
}

/// Delete a room (host only; the personal room cannot be deleted).
#[utoipa::path(delete, path = "/rooms/{id}", tag = "rooms", params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not the host", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 409, description = "A personal room", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &id, me.user.id, Action::DeleteRoom).await?;
    let members = state.store.member_ids(&id).await?;
    let room = state.store.room(&id).await?;
    state.store.delete_room(&id).await?;
    if let Some(conference) = &state.conference {
        for member in &room.members {
            conference.remove(&id, &member.user.username).await;
        }
    }
    if state.streaming.get(&id).is_some() {
        state.streaming.stop(&id);
        if let Some(conference) = &state.conference {
            conference.program(&id, None).await;
        }
    }
    for member in members {
        state.hub.publish(member, Notification::new("rooms_changed", &serde_json::json!({ "room_id": id })));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Make a member an admin (co-host) or an admin a plain member (host only).
#[utoipa::path(put, path = "/rooms/{id}/members/{username}", tag = "rooms", request_body = MemberRole,
    params(("id" = String, Path, description = "Room id"), ("username" = String, Path, description = "A member")),
    responses(
        (status = 200, description = "Role changed", body = RoomView),
        (status = 400, description = "Invalid role", body = ErrorBody),
        (status = 403, description = "Not the host", body = ErrorBody),
        (status = 404, description = "No such room or member", body = ErrorBody),
        (status = 409, description = "The host's role is fixed", body = ErrorBody)))]
pub async fn set_role(
    State(state): State<AppState>,
    me: CurrentUser,
    Path((id, username)): Path<(String, String)>,
    Json(req): Json<MemberRole>,
) -> Result<Json<RoomView>, ApiError> {
    let my_role = authorize(&state, &id, me.user.id, Action::NameAdmins).await?;
    let role = match req.role.as_str() {
        "admin" => Role::Admin,
        "member" => Role::Member,
        _ => return Err(ApiError::bad_request("role must be \"admin\" or \"member\"")),
    };
    let target = state.store.user_by_username(&username).await?;
    state.store.set_member_role(&id, target.id, role).await?;
    announce_room_change(&state, &id).await;
    Ok(Json(RoomView::new(state.store.room(&id).await?, my_role)))
}

/// Remove a member (host, or admin for plain members), or leave the room
/// yourself by naming your own username.
#[utoipa::path(delete, path = "/rooms/{id}/members/{username}", tag = "rooms",
    params(("id" = String, Path, description = "Room id"), ("username" = String, Path, description = "A member")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such room or member", body = ErrorBody),
        (status = 409, description = "The host cannot be removed", body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    me: CurrentUser,
    Path((id, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let my_role = state.store.role_in_room(&id, me.user.id).await?;
    if !my_role.is_member() {
        return Err(ApiError::forbidden("you are not a member of this room"));
    }
    let target = state.store.user_by_username(&username).await?;
    if target.id == me.user.id {
        if !confcast_policy::allows(my_role, Action::Leave) {
            return Err(ApiError::new(StatusCode::CONFLICT, "host_is_permanent", "the host cannot leave their own room"));
        }
    } else {
        let target_role = state.store.role_in_room(&id, target.id).await?;
        if !target_role.is_member() {
            return Err(ApiError::not_found("member"));
        }
        if !may_remove(my_role, target_role) {
            return Err(ApiError::forbidden(format!("a {my_role} may not remove a {target_role}")));
        }
    }
    state.store.remove_member(&id, target.id).await?;
    if let Some(conference) = &state.conference {
        conference.remove(&id, &target.username).await;
    }
    announce_room_change(&state, &id).await;
    // The removed user is no longer a member, so tell their pages directly.
    state.hub.publish(target.id, Notification::new("rooms_changed", &serde_json::json!({ "room_id": id })));
    Ok(StatusCode::NO_CONTENT)
}

/// The summary of a room as seen by `user` (for lists).
pub async fn summary(state: &AppState, room_id: &str, user: confcast_store::UserId) -> Result<RoomSummaryView, ApiError> {
    Ok(state.store.room_summary(room_id, user).await?.into())
}
