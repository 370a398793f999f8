//! What every request handler shares.

use std::sync::{Arc, Mutex};

use confcast_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::rate_limit::{LoginLimiter, LoginLimits};
use crate::clock::Clock;
use crate::conference::Conference;
use crate::forwarded::TrustedProxies;
use crate::notify::Hub;
use crate::recording::Recordings;
use crate::streaming::Streaming;

/// Settings that shape request handling (from the command line or tests).
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a login lasts.
    pub session_ttl_secs: i64,
    /// Request bodies above this size are refused with 413.
    pub max_body_bytes: usize,
    /// Whether cookies get the `Secure` attribute (set when served over TLS).
    pub secure_cookies: bool,
    /// Reverse proxies whose X-Forwarded-For/-Proto are believed.
    pub trusted_proxies: TrustedProxies,
    pub login_limits: LoginLimits,
    /// The longest an invite link may live.
    pub max_invite_link_secs: i64,
    /// TURN relays handed to logged-in clients (`GET /ice-servers`).
    pub turn: Option<crate::ice::TurnConfig>,
    /// The data folder (for the operator's disk figures); none in tests.
    pub data_dir: Option<std::path::PathBuf>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            session_ttl_secs: 30 * 24 * 3600,
            max_body_bytes: 64 * 1024,
            secure_cookies: false,
            trusted_proxies: TrustedProxies::default(),
            login_limits: LoginLimits::default(),
            max_invite_link_secs: 30 * 24 * 3600,
            turn: None,
            data_dir: None,
        }
    }
}

/// Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Clock,
    pub hub: Arc<Hub>,
    pub login_limiter: Arc<Mutex<LoginLimiter>>,
    pub settings: Arc<Settings>,
    pub metrics: PrometheusHandle,
    /// The OpenAPI document, serialised once when the router is built.
    pub openapi_json: Arc<str>,
    /// The media side; absent in tests that need no media.
    pub conference: Option<Conference>,
    /// Live channels and the public directory.
    pub streaming: Arc<Streaming>,
    /// Recording and replay; absent in tests that record nothing.
    pub recordings: Option<Arc<Recordings>>,
    /// What this process runs (`--role`): everything, or one side of split nodes.
    pub node: crate::nodes::Node,
}

impl AppState {
    pub fn new(store: Store, clock: Clock, settings: Settings) -> AppState {
        AppState {
            store,
            clock,
            hub: Arc::new(Hub::default()),
            login_limiter: Arc::new(Mutex::new(LoginLimiter::new(settings.login_limits))),
            settings: Arc::new(settings),
            metrics: crate::metrics::handle(),
            openapi_json: Arc::from("{}"),
            conference: None,
            streaming: Streaming::new(),
            recordings: None,
            node: crate::nodes::Node::All,
        }
    }

    pub fn with_recordings(mut self, recordings: Arc<Recordings>) -> AppState {
        self.recordings = Some(recordings);
        self
    }

    pub fn with_node(mut self, node: crate::nodes::Node) -> AppState {
        self.node = node;
        self
    }

    pub fn with_conference(mut self, conference: Conference) -> AppState {
        self.conference = Some(conference);
        self
    }
}
