//! Wall-clock time as an input, so tests can move it forward.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the server gets "now" (Unix seconds) from.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    fixed: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The real system clock.
    pub fn system() -> Clock {
        Clock { fixed: None }
    }

    /// A clock that stays at `now` until [`Clock::advance`] moves it.
    pub fn manual(now: i64) -> Clock {
        Clock { fixed: Some(Arc::new(AtomicI64::new(now))) }
    }

    pub fn now(&self) -> i64 {
        match &self.fixed {
            Some(t) => t.load(Ordering::Relaxed),
            None => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, secs: i64) {
        if let Some(t) = &self.fixed {
            t.fetch_add(secs, Ordering::Relaxed);
        }
    }
}

/// Formats Unix seconds as RFC 3339 UTC, the API's time format.
pub fn rfc3339(unix_secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
    }

    #[test]
    fn manual_clock_advances() {
        let clock = Clock::manual(10);
        clock.advance(5);
        assert_eq!(clock.now(), 15);
    }
}
