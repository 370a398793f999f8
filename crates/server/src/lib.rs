//! The confcast server: the HTTP API, the web client, and (as they arrive)
//! the I/O shell around the sans-IO media cores.

pub mod api;
pub mod auth;
pub mod clock;
pub mod conference;
pub mod config;
pub mod config_file;
pub mod drain;
pub mod error;
pub mod ice;
pub mod forwarded;
pub mod metrics;
pub mod nodes;
pub mod notify;
pub mod operator;
pub mod recording;
pub mod routes;
pub mod sdp_http;
pub mod serve;
pub mod state;
pub mod streaming;
pub mod tls;
pub mod web;

pub use routes::{app, openapi};
pub use state::{AppState, Settings};
