//! The conference signalling messages (docs/protocol.md), parsed strictly:
//! every malformed, oversized or unknown message becomes a typed error for
//! that client, never a panic and never a change of state.

use serde::Serialize;
use serde_json::Value;

/// The protocol version this server speaks.
pub const VERSION: u64 = 1;
/// Largest text frame accepted on the socket.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest SDP offer accepted.
pub const MAX_SDP_BYTES: usize = 32 * 1024;

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Join { sdp: String },
    /// `None` = automatic (active speaker, else the host).
    Watch { username: Option<String> },
    Lock { designated: String },
    Designate { username: String },
    Unlock,
    Media { audio: bool, video: bool },
    /// Host/admin: go on air (with a title) or off air.
    Broadcast { on: bool, title: Option<String>, description: Option<String> },
    Leave,
    Ping,
}

impl ClientMessage {
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Join { .. } => "join",
            ClientMessage::Watch { .. } => "watch",
            ClientMessage::Lock { .. } => "lock",
            ClientMessage::Designate { .. } => "designate",
            ClientMessage::Unlock => "unlock",
            ClientMessage::Media { .. } => "media",
            ClientMessage::Broadcast { .. } => "broadcast",
            ClientMessage::Leave => "leave",
            ClientMessage::Ping => "ping",
        }
    }
}

/// Why a client message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: &'static str,
    pub message: String,
    /// The `type` of the offending message, when it could be read.
    pub request: Option<String>,
}

impl ProtocolError {
    pub fn new(code: &'static str, message: impl Into<String>, request: Option<&str>) -> ProtocolError {
        ProtocolError { code, message: message.into(), request: request.map(str::to_owned) }
    }
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::new("too_large", format!("messages are limited to {MAX_MESSAGE_BYTES} bytes"), None));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ProtocolError::new("invalid_message", format!("not valid JSON: {e}"), None))?;
    let Value::Object(fields) = value else {
        return Err(ProtocolError::new("invalid_message", "a message must be a JSON object", None));
    };
    let kind = match fields.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        _ => return Err(ProtocolError::new("invalid_message", "a message needs a string \"type\"", None)),
    };
    let field = |name: &str| fields.get(name);
    let string = |name: &str| -> Result<String, ProtocolError> {
        match field(name) {
            Some(Value::String(s)) if s.len() <= 64 => Ok(s.clone()),
            Some(Value::String(_)) => Err(ProtocolError::new("invalid_message", format!("\"{name}\" is too long"), Some(kind))),
            _ => Err(ProtocolError::new("invalid_message", format!("\"{name}\" must be a string"), Some(kind))),
        }
    };
    let boolean = |name: &str| -> Result<bool, ProtocolError> {
        match field(name) {
            Some(Value::Bool(b)) => Ok(*b),
            _ => Err(ProtocolError::new("invalid_message", format!("\"{name}\" must be true or false"), Some(kind))),
        }
    };
    match kind {
        "join" => {
            match field("version") {
                Some(Value::Number(n)) if n.as_u64() == Some(VERSION) => {}
                _ => {
                    return Err(ProtocolError::new(
                        "unsupported_version",
                        format!("this server speaks protocol version {VERSION}"),
                        Some(kind),
                    ));
                }
            }
            let sdp = match field("sdp") {
                Some(Value::String(s)) if s.len() <= MAX_SDP_BYTES && !s.is_empty() => s.clone(),
                Some(Value::String(s)) if s.len() > MAX_SDP_BYTES => {
                    return Err(ProtocolError::new("too_large", format!("SDP offers are limited to {MAX_SDP_BYTES} bytes"), Some(kind)));
                }
                _ => return Err(ProtocolError::new("invalid_message", "\"sdp\" must be the offer's text", Some(kind))),
            };
            Ok(ClientMessage::Join { sdp })
        }
        "watch" => match field("username") {
            None | Some(Value::Null) => Ok(ClientMessage::Watch { username: None }),
            Some(_) => Ok(ClientMessage::Watch { username: Some(string("username")?) }),
        },
        "lock" => Ok(ClientMessage::Lock { designated: string("designated")? }),
        "designate" => Ok(ClientMessage::Designate { username: string("username")? }),
        "unlock" => Ok(ClientMessage::Unlock),
        "media" => Ok(ClientMessage::Media { audio: boolean("audio")?, video: boolean("video")? }),
        "broadcast" => {
            let text = |name: &str, max: usize| -> Result<Option<String>, ProtocolError> {
                match field(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
                    _ => Err(ProtocolError::new("invalid_message", format!("\"{name}\" must be a string of at most {max} bytes"), Some(kind))),
                }
            };
            Ok(ClientMessage::Broadcast { on: boolean("on")?, title: text("title", 400)?, description: text("description", 2000)? })
        }
        "leave" => Ok(ClientMessage::Leave),
        "ping" => Ok(ClientMessage::Ping),
        other => Err(ProtocolError::new("unknown_type", format!("unknown message type {other:?}"), Some(other))),
    }
}

/// One participant in a roster message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterEntry {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub audio: bool,
    pub video: bool,
    pub talking: bool,
}

/// A message to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Joined { version: u64, you: String, role: String, sdp: String },
    Roster { participants: Vec<RosterEntry> },
    Selection { source: Option<String>, mode: &'static str },
    Lock { locked: bool, designated: Option<String> },
    Talking { username: String, talking: bool },
    Dominant { username: Option<String> },
    Notice { code: &'static str, message: String },
    /// The room went on air (with its title) or off air.
    OnAir { on: bool, title: Option<String> },
    Error { code: &'static str, message: String, request: Option<String> },
    Pong,
}

impl From<ProtocolError> for ServerMessage {
    fn from(e: ProtocolError) -> ServerMessage {
        ServerMessage::Error { code: e.code, message: e.message, request: e.request }
    }
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{\"type\":\"error\",\"code\":\"internal\"}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_message() {
        assert_eq!(parse(r#"{"type":"join","version":1,"sdp":"v=0"}"#), Ok(ClientMessage::Join { sdp: "v=0".into() }));
        assert_eq!(parse(r#"{"type":"watch","username":"bob"}"#), Ok(ClientMessage::Watch { username: Some("bob".into()) }));
        assert_eq!(parse(r#"{"type":"watch","username":null}"#), Ok(ClientMessage::Watch { username: None }));
        assert_eq!(parse(r#"{"type":"watch"}"#), Ok(ClientMessage::Watch { username: None }));
        assert_eq!(parse(r#"{"type":"lock","designated":"bob"}"#), Ok(ClientMessage::Lock { designated: "bob".into() }));
        assert_eq!(parse(r#"{"type":"designate","username":"c"}"#), Ok(ClientMessage::Designate { username: "c".into() }));
        assert_eq!(parse(r#"{"type":"unlock"}"#), Ok(ClientMessage::Unlock));
        assert_eq!(parse(r#"{"type":"media","audio":false,"video":true}"#), Ok(ClientMessage::Media { audio: false, video: true }));
        assert_eq!(parse(r#"{"type":"leave","extra":1}"#), Ok(ClientMessage::Leave));
        assert_eq!(parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(
            parse(r#"{"type":"broadcast","on":true,"title":"Show"}"#),
            Ok(ClientMessage::Broadcast { on: true, title: Some("Show".into()), description: None })
        );
    }

    #[test]
    fn refuses_bad_messages_with_a_code() {
        let code = |text: &str| parse(text).map(|_| ()).unwrap_err().code;
        assert_eq!(code("not json"), "invalid_message");
        assert_eq!(code("[1,2]"), "invalid_message");
        assert_eq!(code(r#"{"kind":"join"}"#), "invalid_message");
        assert_eq!(code(r#"{"type":7}"#), "invalid_message");
        assert_eq!(code(r#"{"type":"dance"}"#), "unknown_type");
        assert_eq!(code(r#"{"type":"join","sdp":"v=0"}"#), "unsupported_version");
        assert_eq!(code(r#"{"type":"join","version":2,"sdp":"v=0"}"#), "unsupported_version");
        assert_eq!(code(r#"{"type":"join","version":1}"#), "invalid_message");
        assert_eq!(code(r#"{"type":"join","version":1,"sdp":""}"#), "invalid_message");
        assert_eq!(code(r#"{"type":"watch","username":5}"#), "invalid_message");
        assert_eq!(code(r#"{"type":"media","audio":"yes","video":true}"#), "invalid_message");
        assert_eq!(code(r#"{"type":"lock"}"#), "invalid_message");
        assert_eq!(code(r#"{"type":"broadcast","title":"x"}"#), "invalid_message");
        assert_eq!(code(r#"{"type":"broadcast","on":true,"title":5}"#), "invalid_message");
        let long = format!(r#"{{"type":"watch","username":"{}"}}"#, "x".repeat(65));
        assert_eq!(code(&long), "invalid_message");
        let huge_sdp = format!(r#"{{"type":"join","version":1,"sdp":"{}"}}"#, "x".repeat(MAX_SDP_BYTES + 1));
        assert_eq!(code(&huge_sdp), "too_large");
        assert_eq!(code(&"x".repeat(MAX_MESSAGE_BYTES + 1)), "too_large");
        assert_eq!(parse(r#"{"type":"dance"}"#).unwrap_err().request.as_deref(), Some("dance"));
    }

    #[test]
    fn never_panics_on_arbitrary_text() {
        // A seeded walk over mutations of valid messages.
        let seeds = [r#"{"type":"join","version":1,"sdp":"v=0"}"#, r#"{"type":"media","audio":true,"video":false}"#];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..20_000 {
            let mut bytes = seeds[round % seeds.len()].as_bytes().to_vec();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state as usize) % bytes.len().max(1);
                match state % 3 {
                    0 if !bytes.is_empty() => bytes[at] = (state >> 24) as u8,
                    1 => bytes.truncate(at),
                    _ => bytes.insert(at, (state >> 32) as u8),
                }
            }
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn server_messages_serialise_with_their_type() {
        let m = ServerMessage::Selection { source: Some("bob".into()), mode: "chosen" };
        assert_eq!(m.to_json(), r#"{"type":"selection","source":"bob","mode":"chosen"}"#);
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
    }
}
