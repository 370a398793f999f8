//! Which finished recordings retention deletes: pure, so it is tested alone.

use std::time::Duration;

use confcast_store::{Recording, Timestamp};

/// Ids of the recordings to delete: every one finished more than `max_age`
/// ago, then the oldest until the rest fit in `max_bytes`. `finished` is
/// oldest first.
pub fn expired(finished: &[Recording], now: Timestamp, max_age: Option<Duration>, max_bytes: Option<u64>) -> Vec<String> {
    let mut doomed = Vec::new();
    let mut kept: Vec<&Recording> = Vec::new();
    for recording in finished {
        let at = recording.finished_at.or(recording.broadcast.ended_at).unwrap_or(recording.broadcast.started_at);
        let too_old = max_age.is_some_and(|age| now.saturating_sub(at) > i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
        if too_old {
            doomed.push(recording.broadcast.id.clone());
        } else {
            kept.push(recording);
        }
    }
    if let Some(limit) = max_bytes {
        let mut total: u64 = kept.iter().map(|r| u64::try_from(r.bytes).unwrap_or(0)).sum();
        for recording in kept {
            if total <= limit {
                break;
            }
            total = total.saturating_sub(u64::try_from(recording.bytes).unwrap_or(0));
            doomed.push(recording.broadcast.id.clone());
        }
    }
    doomed
}

/// Whether a top-level folder in storage is named like a recording (a
/// broadcast id: 16 characters of lower-case base32); nothing else there is
/// ever touched.
pub fn looks_like_key(name: &str) -> bool {
    name.len() == 16 && name.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use confcast_store::{Broadcast, RecordingState, UserRef};

    fn recording(id: &str, finished_at: i64, bytes: i64) -> Recording {
        Recording {
            broadcast: Broadcast {
                id: id.into(),
                room_id: "room".into(),
                title: "t".into(),
                description: String::new(),
                host: UserRef { username: "h".into(), display_name: "H".into() },
                started_at: finished_at - 100,
                ended_at: Some(finished_at),
            },
            storage_key: id.into(),
            state: RecordingState::Ready,
            duration_ms: 100_000,
            bytes,
            error: None,
            finished_at: Some(finished_at),
        }
    }

    #[test]
    fn age_then_size_oldest_first() {
        let day = 86_400;
        let list = [recording("a", 0, 500), recording("b", 5 * day, 300), recording("c", 9 * day, 300), recording("d", 10 * day, 300)];
        let now = 10 * day;
        assert!(expired(&list, now, None, None).is_empty());
        assert_eq!(expired(&list, now, Some(Duration::from_secs(7 * 86_400)), None), ["a"]);
        assert_eq!(expired(&list, now, Some(Duration::from_secs(4 * 86_400)), None), ["a", "b"]);
        assert_eq!(expired(&list, now, None, Some(700)), ["a", "b"]);
        assert_eq!(expired(&list, now, None, Some(1300)), ["a"]);
        assert_eq!(expired(&list, now, Some(Duration::from_secs(9 * 86_400 + 1)), Some(300)), ["a", "b", "c"]);
        assert!(expired(&list, now, Some(Duration::from_secs(100 * 86_400)), Some(10_000)).is_empty());
    }

    #[test]
    fn only_broadcast_ids_are_keys() {
        assert!(looks_like_key("abcdefgh234567xy"));
        for other in ["", "abc", "ABCDEFGH234567XY", "abcdefgh23456789", "../../etc/passwd", "abcdefgh234567x/"] {
            assert!(!looks_like_key(other), "{other}");
        }
    }
}
