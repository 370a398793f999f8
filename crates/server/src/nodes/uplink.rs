//! The conference node's side of the push: for each broadcast, the media
//! loop makes a WebRTC offer (H.264 + Opus, send only), this POSTs it to the
//! stream node as WHIP with the node secret, and hands the answer back. A
//! DELETE on the session's URL ends it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use tokio::sync::oneshot;

use crate::conference::Conference;

/// How long the stream node may take to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest answer accepted from the stream node.
const MAX_ANSWER: usize = 64 * 1024;

/// What the stream node is told about a broadcast.
#[derive(Clone, Debug)]
pub struct PushInfo {
    pub room_id: String,
    pub room_title: String,
    pub title: String,
    pub description: String,
    pub host_username: String,
    pub host_display_name: String,
}

/// The way to the stream node, and the pushes open on it.
#[derive(Clone, Debug)]
pub struct StreamLink {
    pub(super) client: reqwest::Client,
    pub(super) base: String,
    public: String,
    pub(super) secret: String,
    /// Session URLs by room id, for the DELETE that ends each.
    sessions: Arc<Mutex<HashMap<String, String>>>,
}

impl StreamLink {
    pub fn new(base: String, public: String, secret: String) -> Result<StreamLink, String> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(StreamLink { client, base, public, secret, sessions: Arc::default() })
    }

    /// Where viewers find the stream node.
    pub fn public_url(&self) -> &str {
        &self.public
    }

    /// Pushes the on-air room's Program to the stream node. The returned
    /// receiver fires if the connection later fails.
    pub async fn start(&self, conference: &Conference, info: &PushInfo) -> Result<oneshot::Receiver<()>, String> {
        let (gone, failed) = oneshot::channel();
        let offer = conference.uplink_offer(&info.room_id, gone).await?;
        let mut url = reqwest::Url::parse(&format!("{}/api/v1/nodes/programs/", self.base)).map_err(|e| e.to_string())?;
        url.path_segments_mut().map_err(|()| "the stream node URL cannot take a path".to_owned())?.pop_if_empty().push(&info.room_id);
        url.query_pairs_mut()
            .append_pair("title", &info.title)
            .append_pair("description", &info.description)
            .append_pair("room_title", &info.room_title)
            .append_pair("host", &info.host_username)
            .append_pair("host_name", &info.host_display_name);
        let response = self
            .client
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {}", self.secret))
            .header(CONTENT_TYPE, "application/sdp")
            .body(offer)
            .send()
            .await
            .map_err(|e| format!("cannot reach the stream node: {e}"))?;
        let status = response.status();
        let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.bytes().await.map_err(|e| format!("the stream node's answer was cut off: {e}"))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
            return Err(format!("the stream node refused the broadcast ({status}): {text}"));
        }
        let location = location.filter(|l| l.starts_with('/')).ok_or("the stream node sent no session Location")?;
        if body.len() > MAX_ANSWER {
            return Err("the stream node's answer is too large".to_owned());
        }
        let answer = String::from_utf8(body.to_vec()).map_err(|_| "the stream node's answer is not text".to_owned())?;
        self.lock().insert(info.room_id.clone(), format!("{}{location}", self.base));
        conference.uplink_answer(&info.room_id, answer).await?;
        Ok(failed)
    }

    /// Ends the room's push on the stream node (its broadcast ends there and
    /// its recording is finished). Failures are logged: the stream node also
    /// ends a broadcast whose Program stops arriving.
    pub async fn stop(&self, room: &str) {
        let Some(url) = self.lock().remove(room) else { return };
        let result = self.client.delete(&url).header(AUTHORIZATION, format!("Bearer {}", self.secret)).send().await;
        match result {
            Ok(response) if response.status().is_success() || response.status() == reqwest::StatusCode::NOT_FOUND => {}
            Ok(response) => tracing::warn!(%room, status = %response.status(), "the stream node did not end the broadcast"),
            Err(error) => tracing::warn!(%room, %error, "cannot reach the stream node to end the broadcast"),
        }
    }

    /// The recording problems the stream node has met with the room's
    /// pushed broadcast so far.
    pub async fn problems(&self, room: &str) -> Result<Vec<String>, String> {
        #[derive(serde::Deserialize)]
        struct Problems {
            problems: Vec<String>,
        }
        let url = self.lock().get(room).cloned().ok_or("the room is not pushed")?;
        let response = self
            .client
            .get(format!("{url}/problems"))
            .header(AUTHORIZATION, format!("Bearer {}", self.secret))
            .send()
            .await
            .map_err(|e| format!("cannot reach the stream node: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("the stream node answered {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_ANSWER {
            return Err("the stream node's answer is too large".to_owned());
        }
        let problems: Problems = serde_json::from_slice(&body).map_err(|e| format!("the stream node's answer is not understood: {e}"))?;
        Ok(problems.problems.into_iter().map(|m| m.chars().take(500).collect()).collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
