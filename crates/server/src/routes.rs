//! The whole HTTP surface in one place: `app(state)` builds it, so tests can
//! drive it with `oneshot` and no socket.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::web;

#[derive(OpenApi)]
#[openapi(
    info(title = "confcast API", description = "Accounts, rooms and invitations of a confcast server."),
    components(schemas(ErrorBody)),
    tags(
        (name = "auth", description = "Registration and sessions"),
        (name = "users", description = "The caller and other users"),
        (name = "rooms", description = "Rooms and their members"),
        (name = "invitations", description = "Inviting users into rooms"),
        (name = "conference", description = "Meeting in a room: signalling and the video lock"),
        (name = "live", description = "Broadcasting: going on air, the public directory, LL-HLS"),
        (name = "recordings", description = "Past broadcasts: lists, replay media, deleting"),
        (name = "operations", description = "Health, metrics and this document")))]
struct ApiDoc;

/// The `/api/v1` routes. Only `routes!` is used here, which puts each
/// handler's path into the OpenAPI document as it registers it.
fn api_v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::auth::register))
        .routes(routes!(api::auth::login))
        .routes(routes!(api::auth::logout))
        .routes(routes!(api::me::me))
        .routes(routes!(api::events::events))
        .routes(routes!(api::users::search))
        .routes(routes!(api::rooms::create))
        .routes(routes!(api::rooms::get, api::rooms::rename, api::rooms::delete))
        .routes(routes!(api::rooms::set_role, api::rooms::remove_member))
        .routes(routes!(api::invitations::invite))
        .routes(routes!(api::invitations::list))
        .routes(routes!(api::invitations::accept))
        .routes(routes!(api::invitations::decline))
        .routes(routes!(api::invitations::cancel))
        .routes(routes!(api::invite_links::create))
        .routes(routes!(api::invite_links::accept))
        .routes(routes!(crate::conference::signalling::socket))
        .routes(routes!(crate::conference::signalling::video_lock))
        .routes(routes!(api::ice_servers::ice_servers))
        .routes(routes!(crate::streaming::on_air::put))
        .routes(routes!(crate::streaming::whep::offer))
        .routes(routes!(crate::streaming::whep::end))
        .routes(routes!(api::ingest_keys::create, api::ingest_keys::list))
        .routes(routes!(api::operator::overview))
        .routes(routes!(api::ingest_keys::delete))
        .routes(routes!(crate::conference::whip::publish))
        .routes(routes!(crate::conference::whip::end))
        .routes(routes!(crate::nodes::intake::publish))
        .routes(routes!(crate::nodes::intake::end))
        .routes(routes!(crate::nodes::intake::problems))
        .routes(routes!(crate::nodes::recordings::room_recordings))
        .routes(routes!(crate::nodes::recordings::delete_recording))
        .routes(routes!(crate::streaming::directory::list))
        .routes(routes!(crate::streaming::directory::events))
        .routes(routes!(crate::recording::api::room_list))
        .routes(routes!(crate::recording::api::recent))
        .routes(routes!(crate::recording::api::get_one, crate::recording::api::delete))
        .routes(routes!(openapi_json))
}

/// The routes outside `/api/v1` that are still part of the API.
fn operations() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .routes(routes!(crate::streaming::hls::multivariant))
        .routes(routes!(crate::streaming::hls::resource))
        .routes(routes!(crate::recording::api::media))
}

/// The OpenAPI document of every API route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api_v1())
        .merge(operations())
        .into_openapi()
}

/// Builds the application.
pub fn app(mut state: AppState) -> Router {
    let (api_router, doc) =
        OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", api_v1()).merge(operations()).split_for_parts();
    state.openapi_json = doc.to_json().unwrap_or_else(|_| "{}".to_owned()).into();
    let max_body = state.settings.max_body_bytes;
    let client_info = axum::middleware::from_fn_with_state(state.clone(), crate::forwarded::layer);
    api_router
        .route("/api/v1/{*rest}", axum::routing::any(no_such_route))
        .route("/static/{*path}", get(web::asset))
        .route("/sw.js", get(web::service_worker))
        // Pages of the client; its router decides what to show.
        .route("/", get(web::page))
        .route("/login", get(web::page))
        .route("/register", get(web::page))
        .route("/rooms/{id}", get(web::page))
        .route("/join/{token}", get(web::page))
        .route("/live", get(web::page))
        .route("/watch/{room}", get(web::page))
        .route("/replay/{broadcast}", get(web::page))
        .route("/operator", get(web::page))
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::nodes::gate::layer))
        .layer(client_info)
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

async fn no_such_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_such_route", "there is nothing at this address")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this address does not accept that method")
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: String,
}

/// Liveness and readiness: answers 200 when the database answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The database does not answer", body = ErrorBody)))]
async fn healthz(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    state.store.ping().await.map_err(|error| {
        tracing::error!(%error, "health check failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unhealthy", "the database does not answer")
    })?;
    Ok(axum::Json(Health { status: "ok".to_owned() }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    metrics::gauge!("users_online").set(state.hub.online_users() as f64);
    crate::metrics::on_scrape(&state);
    let body = state.metrics.render();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], body).into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], state.openapi_json.to_string()).into_response()
}
