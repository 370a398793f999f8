//! The logged-in user's live event stream (Server-Sent Events): ringing
//! invitations and changes to their rooms.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use crate::auth::session::CurrentUser;
use crate::error::ErrorBody;
use crate::state::AppState;

/// Live events for the caller: `ready` once connected; `invitation` (someone
/// invites you: ring); `invitation_updated`; `rooms_changed` (re-fetch
/// `/me`). A tab that falls too far behind receives `rooms_changed` and
/// should re-fetch everything.
#[utoipa::path(get, path = "/events", tag = "users",
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream"),
        (status = 401, description = "Not logged in", body = ErrorBody)))]
pub async fn events(State(state): State<AppState>, me: CurrentUser) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.hub.subscribe(me.user.id);
    let ready = stream::once(async { Ok(Event::default().event("ready").data("{}")) });
    let live = BroadcastStream::new(receiver).map(|item| {
        Ok(match item {
            Ok(n) => Event::default().event(n.event).data(n.data),
            Err(BroadcastStreamRecvError::Lagged(_)) => Event::default().event("rooms_changed").data("{}"),
        })
    });
    Sse::new(ready.chain(live)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
