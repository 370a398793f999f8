//! Inviting ("dialling") users into rooms, and answering invitations.

use axum::extract::State;
use axum::http::StatusCode;
use confcast_policy::Action;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::authorize;
use super::rooms::announce_room_change;
use super::views::{InvitationView, RoomSummaryView};
use crate::auth::session::CurrentUser;
use crate::error::{ApiError, ErrorBody, Json, Path};
use crate::notify::Notification;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// The user to invite.
    pub username: String,
}

#[derive(Serialize, ToSchema)]
pub struct InvitationList {
    pub invitations: Vec<InvitationView>,
}

#[derive(Serialize, ToSchema)]
pub struct AnswerResponse {
    pub invitation: InvitationView,
    /// The room joined, when the invitation was accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomSummaryView>,
}

/// Invite a user into a room (host or admin). The invitee's open pages ring.
#[utoipa::path(post, path = "/rooms/{id}/invitations", tag = "invitations", request_body = InviteRequest,
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 201, description = "Invited", body = InvitationView),
        (status = 403, description = "Not host or admin", body = ErrorBody),
        (status = 404, description = "No such room or user", body = ErrorBody),
        (status = 409, description = "Already a member or already invited", body = ErrorBody)))]
pub async fn invite(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(room_id): Path<String>,
    Json(req): Json<InviteRequest>,
) -> Result<(StatusCode, Json<InvitationView>), ApiError> {
    authorize(&state, &room_id, me.user.id, Action::Invite).await?;
    if req.username.len() > 64 {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "user_not_found", "user not found"));
    }
    let invitee = state.store.user_by_username(&req.username).await?;
    let invitation = state.store.invite(&room_id, me.user.id, invitee.id, state.clock.now()).await?;
    let view = InvitationView::from(invitation);
    state.hub.publish(invitee.id, Notification::new("invitation", &view));
    metrics::counter!("invitations_sent_total").increment(1);
    Ok((StatusCode::CREATED, Json(view)))
}

/// My pending invitations, newest first.
#[utoipa::path(get, path = "/invitations", tag = "invitations",
    responses(
        (status = 200, description = "Pending invitations for the caller", body = InvitationList),
        (status = 401, description = "Not logged in", body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, me: CurrentUser) -> Result<Json<InvitationList>, ApiError> {
    let invitations = state.store.pending_invitations(me.user.id).await?;
    Ok(Json(InvitationList { invitations: invitations.into_iter().map(Into::into).collect() }))
}

async fn answer(state: &AppState, me: &CurrentUser, id: &str, accept: bool) -> Result<Json<AnswerResponse>, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::not_found("invitation"));
    }
    let (invitation, room) = state.store.answer_invitation(id, me.user.id, accept, state.clock.now()).await?;
    let inviter = invitation.inviter_id;
    let room_id = invitation.room_id.clone();
    let view = InvitationView::from(invitation);
    state.hub.publish(inviter, Notification::new("invitation_updated", &view));
    state.hub.publish(me.user.id, Notification::new("invitation_updated", &view));
    if accept {
        announce_room_change(state, &room_id).await;
    }
    Ok(Json(AnswerResponse { invitation: view, room: room.map(Into::into) }))
}

/// Accept an invitation: the caller becomes a member of the room.
#[utoipa::path(post, path = "/invitations/{id}/accept", tag = "invitations",
    params(("id" = String, Path, description = "Invitation id")),
    responses(
        (status = 200, description = "Accepted", body = AnswerResponse),
        (status = 404, description = "No such invitation for the caller", body = ErrorBody),
        (status = 409, description = "Already answered or cancelled", body = ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<AnswerResponse>, ApiError> {
    answer(&state, &me, &id, true).await
}

/// Decline an invitation.
#[utoipa::path(post, path = "/invitations/{id}/decline", tag = "invitations",
    params(("id" = String, Path, description = "Invitation id")),
    responses(
        (status = 200, description = "Declined", body = AnswerResponse),
        (status = 404, description = "No such invitation for the caller", body = ErrorBody),
        (status = 409, description = "Already answered or cancelled", body = ErrorBody)))]
pub async fn decline(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<AnswerResponse>, ApiError> {
    answer(&state, &me, &id, false).await
}

/// Withdraw a pending invitation (its inviter, or the room's host or admin).
#[utoipa::path(delete, path = "/invitations/{id}", tag = "invitations",
    params(("id" = String, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such invitation", body = ErrorBody),
        (status = 409, description = "Already answered", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::not_found("invitation"));
    }
    let invitation = state.store.invitation(&id).await?;
    if !state.store.may_see_invitation(&invitation, me.user.id).await? {
        return Err(ApiError::not_found("invitation"));
    }
    let is_manager = authorize(&state, &invitation.room_id, me.user.id, Action::Invite).await.is_ok();
    if invitation.inviter_id != me.user.id && !is_manager {
        return Err(ApiError::forbidden("only the inviter or the room's host or admin may cancel an invitation"));
    }
    let cancelled = state.store.cancel_invitation(&id, state.clock.now()).await?;
    let invitee = cancelled.invitee_id;
    state.hub.publish(invitee, Notification::new("invitation_updated", &InvitationView::from(cancelled)));
    Ok(StatusCode::NO_CONTENT)
}
