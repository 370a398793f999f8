//! The recording problems of recent broadcasts, kept in memory so that a
//! conference node whose broadcast a stream node records can fetch them and
//! tell its host (the host's pages are connected to the conference node, not
//! to the stream node that hit the storage error).

use std::collections::VecDeque;
use std::sync::Mutex;

/// Broadcasts whose problems are kept; the oldest are forgotten first.
const BROADCASTS: usize = 256;
/// Problems kept per broadcast (the same storage error repeats at most a
/// few times; a broadcast's writer reports each kind once).
const PER_BROADCAST: usize = 16;

#[derive(Default)]
pub struct ProblemLog {
    entries: Mutex<VecDeque<(String, Vec<String>)>>,
}

impl ProblemLog {
    pub fn record(&self, broadcast_id: &str, message: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, messages)) = entries.iter_mut().find(|(id, _)| id == broadcast_id) {
            if messages.len() < PER_BROADCAST {
                messages.push(message.to_owned());
            }
            return;
        }
        if entries.len() == BROADCASTS {
            entries.pop_front();
        }
        entries.push_back((broadcast_id.to_owned(), vec![message.to_owned()]));
    }

    /// The broadcast's problems so far, oldest first.
    pub fn of(&self, broadcast_id: &str) -> Vec<String> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.iter().find(|(id, _)| id == broadcast_id).map(|(_, messages)| messages.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_kept_per_broadcast_and_bounded() {
        let log = ProblemLog::default();
        assert!(log.of("b1").is_empty());
        log.record("b1", "cannot be written");
        log.record("b2", "other");
        log.record("b1", "still cannot");
        assert_eq!(log.of("b1"), ["cannot be written", "still cannot"]);
        for _ in 0..100 {
            log.record("b2", "again");
        }
        assert_eq!(log.of("b2").len(), PER_BROADCAST);
        for n in 0..BROADCASTS {
            log.record(&format!("x{n}"), "m");
        }
        assert!(log.of("b1").is_empty(), "the oldest broadcasts are forgotten");
        assert_eq!(log.of(&format!("x{}", BROADCASTS - 1)), ["m"]);
    }
}
