//! Getting media through firewalls: the ICE-TCP and TURN settings, and the
//! time-limited TURN credentials handed to clients.
//!
//! TURN credentials use the shared-secret scheme coturn implements
//! (`use-auth-secret` / `static-auth-secret`, the "TURN REST API"): the
//! username is `<expiry as Unix seconds>:<confcast username>` and the
//! password is base64(HMAC-SHA1(secret, username)). The TURN server checks
//! both with the same secret and refuses the credentials once expired, so
//! nothing has to be shared but the secret.

use std::str::FromStr;

use base64::Engine as _;
use clap::Args;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::Serialize;
use utoipa::ToSchema;

/// Settings for clients that cannot reach the UDP media port.
#[derive(Args, Debug, Clone)]
pub struct IceArgs {
    /// TCP port for ICE-TCP, media over TCP for clients whose UDP is
    /// blocked: a port number, 0 for any free port, or `off`. Default: the
    /// same number as --media-port (any free port when that is 0).
    #[arg(long, env = "CONFCAST_ICE_TCP_PORT")]
    pub ice_tcp_port: Option<IceTcpPort>,

    /// A TURN server for clients to relay media through, such as
    /// `turn:turn.example.org:3478?transport=udp` (repeat the flag, or
    /// separate URLs with commas). Needs --turn-secret.
    #[arg(long = "turn-url", env = "CONFCAST_TURN_URL", value_delimiter = ',', value_parser = parse_turn_url)]
    pub turn_url: Vec<String>,

    /// The TURN server's shared secret (coturn's `static-auth-secret`),
    /// used to sign each client's time-limited credentials.
    #[arg(long, env = "CONFCAST_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// How long the TURN credentials handed to a client stay valid, in
    /// seconds. A relayed connection needs them for as long as it lasts.
    #[arg(long, env = "CONFCAST_TURN_TTL", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    pub turn_ttl: u64,
}

/// `--ice-tcp-port`: a port, or no ICE-TCP at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceTcpPort {
    Off,
    Port(u16),
}

impl FromStr for IceTcpPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(IceTcpPort::Off),
            _ => s.parse().map(IceTcpPort::Port).map_err(|_| "a TCP port number (0-65535) or `off`".to_owned()),
        }
    }
}

impl IceArgs {
    /// The TCP port to listen on for ICE-TCP, if any.
    pub fn ice_tcp_port(&self, media_port: u16) -> Option<u16> {
        match self.ice_tcp_port {
            None => Some(media_port),
            Some(IceTcpPort::Port(port)) => Some(port),
            Some(IceTcpPort::Off) => None,
        }
    }

    /// The TURN settings; an error when only half of them are given.
    pub fn turn(&self) -> Result<Option<TurnConfig>, String> {
        match (self.turn_url.is_empty(), &self.turn_secret) {
            (true, None) => Ok(None),
            (false, Some(secret)) if !secret.is_empty() => {
                Ok(Some(TurnConfig { urls: self.turn_url.clone(), secret: secret.clone(), ttl_secs: self.turn_ttl }))
            }
            (false, _) => Err("--turn-url needs --turn-secret (the TURN server's static-auth-secret)".to_owned()),
            (true, Some(_)) => Err("--turn-secret needs at least one --turn-url".to_owned()),
        }
    }
}

fn parse_turn_url(s: &str) -> Result<String, String> {
    let scheme_ok = s.starts_with("turn:") || s.starts_with("turns:");
    let host = s.split_once(':').map_or("", |(_, rest)| rest);
    if !scheme_ok || host.is_empty() || s.len() > 256 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a TURN URL such as turn:turn.example.org:3478?transport=udp (turn: or turns:)".to_owned());
    }
    Ok(s.to_owned())
}

/// Where clients may relay media, and the secret their credentials are signed with.
#[derive(Clone)]
pub struct TurnConfig {
    pub urls: Vec<String>,
    secret: String,
    pub ttl_secs: u64,
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig").field("urls", &self.urls).field("ttl_secs", &self.ttl_secs).finish_non_exhaustive()
    }
}

/// One entry of a client's `RTCPeerConnection` `iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct IceServer {
    /// `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    /// `<expiry unix seconds>:<username>`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub credential: String,
}

impl TurnConfig {
    pub fn new(urls: Vec<String>, secret: impl Into<String>, ttl_secs: u64) -> TurnConfig {
        TurnConfig { urls, secret: secret.into(), ttl_secs }
    }

    /// Credentials for `user`, valid from `now` (Unix seconds) for the TTL;
    /// with the moment they expire.
    pub fn credentials(&self, user: &str, now: i64) -> (IceServer, i64) {
        let expires_at = now.saturating_add(i64::try_from(self.ttl_secs).unwrap_or(i64::MAX));
        let username = format!("{expires_at}:{user}");
        let credential = credential(&self.secret, &username);
        (IceServer { urls: self.urls.clone(), username, credential }, expires_at)
    }
}

/// The TURN REST API password for `username`: base64(HMAC-SHA1(secret, username)).
pub fn credential(secret: &str, username: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_match_coturns_scheme() {
        // Reference: printf '1700000000:alice' | openssl dgst -sha1 -hmac 'north-wind' -binary | base64
        assert_eq!(credential("north-wind", "1700000000:alice"), "Oko4dt8u/EbTRjRUJWQDFm/zTCc=");
        let turn = TurnConfig::new(vec!["turn:turn.example.org:3478?transport=udp".into()], "north-wind", 86_400);
        let (server, expires_at) = turn.credentials("alice", 1_699_913_600);
        assert_eq!(expires_at, 1_700_000_000);
        assert_eq!(server.username, "1700000000:alice");
        assert_eq!(server.credential, credential("north-wind", "1700000000:alice"));
        assert_eq!(server.urls, vec!["turn:turn.example.org:3478?transport=udp".to_owned()]);
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!("off".parse(), Ok(IceTcpPort::Off));
        assert_eq!("3478".parse(), Ok(IceTcpPort::Port(3478)));
        assert!("70000".parse::<IceTcpPort>().is_err());
        assert!(parse_turn_url("turn:turn.example.org:3478?transport=tcp").is_ok());
        assert!(parse_turn_url("turns:turn.example.org:5349").is_ok());
        for bad in ["stun:stun.example.org", "turn:", "http://turn.example.org", "turn:a b"] {
            assert!(parse_turn_url(bad).is_err(), "{bad}");
        }
        let args = |urls: &[&str], secret: Option<&str>| IceArgs {
            ice_tcp_port: None,
            turn_url: urls.iter().map(|s| (*s).to_owned()).collect(),
            turn_secret: secret.map(str::to_owned),
            turn_ttl: 60,
        };
        assert!(args(&[], None).turn().expect("valid").is_none());
        assert!(args(&["turn:t.example:3478"], None).turn().is_err());
        assert!(args(&[], Some("s")).turn().is_err());
        assert_eq!(args(&["turn:t.example:3478"], Some("s")).turn().expect("valid").expect("on").ttl_secs, 60);
        assert_eq!(args(&[], None).ice_tcp_port(40000), Some(40000));
    }
}
