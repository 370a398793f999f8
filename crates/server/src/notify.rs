//! Live notifications to logged-in users ("ringing" invitations and the like),
//! delivered over each user's Server-Sent Events streams.

use std::collections::HashMap;
use std::sync::Mutex;

use confcast_store::UserId;
use serde::Serialize;
use tokio::sync::broadcast;

/// One event for a user's browser tabs.
#[derive(Clone, Debug)]
pub struct Notification {
    /// The SSE event name, e.g. `invitation`.
    pub event: &'static str,
    /// The JSON payload.
    pub data: String,
}

impl Notification {
    pub fn new(event: &'static str, data: &impl Serialize) -> Notification {
        Notification { event, data: serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned()) }
    }
}

/// How many undelivered notifications a slow tab may fall behind by before
/// it is told to re-fetch instead.
const BACKLOG: usize = 64;

/// Per-user fan-out. A user with no open stream costs nothing: their channel
/// is dropped when the last subscriber goes.
#[derive(Debug, Default)]
pub struct Hub {
    channels: Mutex<HashMap<UserId, broadcast::Sender<Notification>>>,
}

impl Hub {
    pub fn subscribe(&self, user: UserId) -> broadcast::Receiver<Notification> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.entry(user).or_insert_with(|| broadcast::channel(BACKLOG).0).subscribe()
    }

    /// Sends to every open stream of `user`; nothing happens if they have none.
    pub fn publish(&self, user: UserId, notification: Notification) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = channels.get(&user) {
            if sender.send(notification).is_err() {
                channels.remove(&user);
            }
        }
    }

    /// Number of users with at least one open stream (for metrics).
    pub fn online_users(&self) -> usize {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.values().filter(|s| s.receiver_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_to_every_stream_of_the_user_only() {
        let hub = Hub::default();
        let mut a1 = hub.subscribe(UserId(1));
        let mut a2 = hub.subscribe(UserId(1));
        let mut b = hub.subscribe(UserId(2));
        hub.publish(UserId(1), Notification::new("ping", &1));
        assert_eq!(a1.recv().await.expect("a1").event, "ping");
        assert_eq!(a2.recv().await.expect("a2").data, "1");
        assert!(b.try_recv().is_err());
    }

    #[test]
    fn forgets_users_whose_streams_closed() {
        let hub = Hub::default();
        drop(hub.subscribe(UserId(1)));
        hub.publish(UserId(1), Notification::new("ping", &1));
        assert_eq!(hub.online_users(), 0);
        assert!(hub.channels.lock().expect("lock").is_empty());
    }
}
