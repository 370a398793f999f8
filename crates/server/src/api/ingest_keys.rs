//! Ingest keys: what an encoder (OBS, a studio camera, a WHIP client)
//! publishes into a room with. The host or an admin makes one per encoder;
//! its secret is shown once.

use axum::extract::State;
use axum::http::StatusCode;
use confcast_policy::Action;
use confcast_store::{validate, IngestKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::authorize;
use crate::auth::session::CurrentUser;
use crate::clock::rfc3339;
use crate::error::{ApiError, ErrorBody, Json, Path};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIngestKey {
    /// What the encoder is called in the room, like a display name.
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct IngestKeyView {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedIngestKey {
    pub key: IngestKeyView,
    /// The bearer secret for WHIP; only its hash is stored, so it is shown this once.
    pub token: String,
    /// Where the encoder POSTs its offer (`Authorization: Bearer <token>`).
    pub whip_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct IngestKeyList {
    pub keys: Vec<IngestKeyView>,
}

fn view(key: IngestKey) -> IngestKeyView {
    IngestKeyView { id: key.id, name: key.name, created_at: rfc3339(key.created_at) }
}

/// Create an ingest key (host or admin).
#[utoipa::path(post, path = "/rooms/{id}/ingest-keys", tag = "ingest", request_body = CreateIngestKey,
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 201, description = "Created; the token is shown only now", body = CreatedIngestKey),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 403, description = "Not host or admin", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 409, description = "The room has as many keys as it may", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(room_id): Path<String>,
    Json(req): Json<CreateIngestKey>,
) -> Result<(StatusCode, Json<CreatedIngestKey>), ApiError> {
    authorize(&state, &room_id, me.user.id, Action::ManageIngest).await?;
    let name = validate::display_name(&req.name).map_err(|e| ApiError::bad_request(e.replace("display name", "name")))?;
    let (key, token) = state.store.create_ingest_key(&room_id, &name, me.user.id, state.clock.now()).await?;
    let whip_url = format!("/api/v1/rooms/{room_id}/whip");
    Ok((StatusCode::CREATED, Json(CreatedIngestKey { key: view(key), token, whip_url })))
}

/// List the room's ingest keys (host or admin; secrets are never shown again).
#[utoipa::path(get, path = "/rooms/{id}/ingest-keys", tag = "ingest",
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The keys", body = IngestKeyList),
        (status = 403, description = "Not host or admin", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, me: CurrentUser, Path(room_id): Path<String>) -> Result<Json<IngestKeyList>, ApiError> {
    authorize(&state, &room_id, me.user.id, Action::ManageIngest).await?;
    let keys = state.store.ingest_keys(&room_id).await?.into_iter().map(view).collect();
    Ok(Json(IngestKeyList { keys }))
}

/// Delete an ingest key (host or admin): the encoder can no longer publish
/// with it; one publishing now is disconnected.
#[utoipa::path(delete, path = "/rooms/{id}/ingest-keys/{key}", tag = "ingest",
    params(("id" = String, Path, description = "Room id"), ("key" = String, Path, description = "Key id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not host or admin", body = ErrorBody),
        (status = 404, description = "No such room or key", body = ErrorBody)))]
pub async fn delete(State(state): State<AppState>, me: CurrentUser, Path((room_id, key)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    authorize(&state, &room_id, me.user.id, Action::ManageIngest).await?;
    state.store.delete_ingest_key(&room_id, &key).await?;
    if let Some(conference) = &state.conference {
        conference.remove(&room_id, &crate::conference::whip::ingest_username(&key)).await;
    }
    Ok(StatusCode::NO_CONTENT)
}
