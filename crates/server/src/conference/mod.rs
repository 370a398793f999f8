//! The conference: signalling over WebSocket and the media loop around the
//! sans-IO room cores.

pub mod protocol;
