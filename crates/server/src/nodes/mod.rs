//! Split nodes. One process runs everything by default (`--role all`). A
//! conference node (`--role conference`) runs meetings and pushes each
//! broadcast's Program over WHIP to a stream node (`--role stream`), which
//! runs the public directory, LL-HLS, WebRTC viewing and recording, so
//! viewer traffic never reaches the conference node. The two share a
//! secret that authenticates the push.

pub mod gate;
pub mod intake;
pub mod recordings;
pub mod uplink;

use clap::{Args, ValueEnum};

/// The shortest accepted node secret, in characters.
pub const MIN_SECRET_LEN: usize = 16;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeRole {
    /// Meetings and the streaming side in one process.
    #[default]
    All,
    /// Meetings; broadcasts go to --stream-node.
    Conference,
    /// The directory, LL-HLS, WebRTC viewing and recordings, fed by
    /// conference nodes.
    Stream,
}

#[derive(Args, Debug, Clone, Default)]
pub struct NodeArgs {
    /// What this process runs: `all`, `conference` (meetings; broadcasts
    /// are pushed to --stream-node) or `stream` (directory, LL-HLS, WHEP,
    /// recordings; fed by conference nodes).
    #[arg(long, env = "CONFCAST_ROLE", value_enum, default_value_t = NodeRole::All)]
    pub role: NodeRole,

    /// Conference node: the stream node's base URL as this node reaches it
    /// (e.g. `http://10.0.0.2:8080`).
    #[arg(long, env = "CONFCAST_STREAM_NODE")]
    pub stream_node: Option<String>,

    /// Conference node: the stream node's base URL for viewers (watch
    /// pages, the directory), when it differs from --stream-node.
    #[arg(long, env = "CONFCAST_STREAM_PUBLIC_URL")]
    pub stream_public_url: Option<String>,

    /// The secret conference and stream nodes share (at least 16
    /// characters); it authenticates the Program push.
    #[arg(long, env = "CONFCAST_NODE_SECRET", hide_env_values = true)]
    pub node_secret: Option<String>,
}

/// Checked node settings.
#[derive(Clone, Debug)]
pub enum Node {
    All,
    Conference(uplink::StreamLink),
    Stream { secret: String },
}

impl NodeArgs {
    /// Checks that the role has what it needs.
    pub fn check(&self) -> Result<Node, String> {
        let secret = || match &self.node_secret {
            Some(secret) if secret.chars().count() >= MIN_SECRET_LEN => Ok(secret.clone()),
            Some(_) => Err(format!("--node-secret must be at least {MIN_SECRET_LEN} characters")),
            None => Err(format!("--role {} needs --node-secret", self.role_name())),
        };
        match self.role {
            NodeRole::All => Ok(Node::All),
            NodeRole::Stream => Ok(Node::Stream { secret: secret()? }),
            NodeRole::Conference => {
                let base = self.stream_node.as_deref().ok_or("--role conference needs --stream-node (the stream node's URL)")?;
                let base = base_url(base, "--stream-node")?;
                let public = match &self.stream_public_url {
                    Some(public) => base_url(public, "--stream-public-url")?,
                    None => base.clone(),
                };
                Ok(Node::Conference(uplink::StreamLink::new(base, public, secret()?)?))
            }
        }
    }

    fn role_name(&self) -> &'static str {
        match self.role {
            NodeRole::All => "all",
            NodeRole::Conference => "conference",
            NodeRole::Stream => "stream",
        }
    }
}

/// An http(s) URL without a trailing slash.
fn base_url(text: &str, flag: &str) -> Result<String, String> {
    let trimmed = text.trim().trim_end_matches('/');
    let rest = trimmed.strip_prefix("http://").or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(trimmed.to_owned()),
        _ => Err(format!("{flag} must be an http:// or https:// URL, not {text:?}")),
    }
}

/// Compares a presented secret with the expected one in constant time.
pub fn secret_matches(presented: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(presented.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(role: NodeRole, stream: Option<&str>, secret: Option<&str>) -> NodeArgs {
        NodeArgs { role, stream_node: stream.map(str::to_owned), stream_public_url: None, node_secret: secret.map(str::to_owned) }
    }

    #[test]
    fn each_role_gets_what_it_needs() {
        assert!(matches!(args(NodeRole::All, None, None).check(), Ok(Node::All)));
        assert!(args(NodeRole::Stream, None, None).check().unwrap_err().contains("--node-secret"));
        assert!(args(NodeRole::Stream, None, Some("short")).check().unwrap_err().contains("16"));
        assert!(matches!(args(NodeRole::Stream, None, Some("a-long-enough-secret")).check(), Ok(Node::Stream { .. })));
        assert!(args(NodeRole::Conference, None, Some("a-long-enough-secret")).check().unwrap_err().contains("--stream-node"));
        assert!(args(NodeRole::Conference, Some("ftp://x"), Some("a-long-enough-secret")).check().unwrap_err().contains("http"));
        let Ok(Node::Conference(link)) = args(NodeRole::Conference, Some("http://10.0.0.2:8080/"), Some("a-long-enough-secret")).check()
        else {
            panic!("conference")
        };
        assert_eq!(link.public_url(), "http://10.0.0.2:8080");
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_matches("a-long-enough-secret", "a-long-enough-secret"));
        assert!(!secret_matches("a-long-enough-secreT", "a-long-enough-secret"));
        assert!(!secret_matches("", "a-long-enough-secret"));
    }
}
