//! confcast's own view of a run, from its `/metrics`: the mixer's added
//! latency (jitter-buffer wait per mixed frame) and its jitter-buffer
//! nudges over the window. Beside the listener's marker it tells which part
//! of the end-to-end delay is the jitter buffer's.

use std::net::SocketAddr;

use anyhow::bail;

use crate::process::get_text;

const LATENCY: &str = "mixer_added_latency_seconds_bucket";
const SKIPPED: &str = "mixer_jitter_frames_skipped_total";
const HELD: &str = "mixer_jitter_frames_held_total";
const ENCODES: &str = "mixer_encodes_total";
const TICKS: &str = "mixer_ticks_total";

/// Cumulative counts at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerView {
    /// (upper bound in seconds, frames at or below it), ascending.
    buckets: Vec<(f64, f64)>,
    skipped: f64,
    held: f64,
    encodes: f64,
    ticks: f64,
}

impl ServerView {
    pub async fn scrape(addr: SocketAddr) -> anyhow::Result<ServerView> {
        let (status, text) = get_text(addr, "/metrics").await?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        Ok(ServerView::parse(&text))
    }

    pub fn parse(text: &str) -> ServerView {
        let mut view = ServerView::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else { continue };
            let Ok(value) = value.parse::<f64>() else { continue };
            if let Some(labels) = name.strip_prefix(LATENCY) {
                let bound = labels.split("le=\"").nth(1).and_then(|r| r.split('"').next());
                let bound = match bound {
                    Some("+Inf") => f64::INFINITY,
                    Some(b) => match b.parse() {
                        Ok(b) => b,
                        Err(_) => continue,
                    },
                    None => continue,
                };
                view.buckets.push((bound, value));
            } else if name == SKIPPED {
                view.skipped = value;
            } else if name == HELD {
                view.held = value;
            } else if name == ENCODES {
                view.encodes = value;
            } else if name == TICKS {
                view.ticks = value;
            }
        }
        view.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        view
    }

    /// What happened between `self` (earlier) and `later`.
    pub fn until(&self, later: &ServerView) -> ServerView {
        let before = |bound: f64| self.buckets.iter().find(|b| b.0 == bound).map_or(0.0, |b| b.1);
        ServerView {
            buckets: later.buckets.iter().map(|&(bound, n)| (bound, (n - before(bound)).max(0.0))).collect(),
            skipped: later.skipped - self.skipped,
            held: later.held - self.held,
            encodes: later.encodes - self.encodes,
            ticks: later.ticks - self.ticks,
        }
    }

    pub fn frames(&self) -> f64 {
        self.buckets.last().map_or(0.0, |b| b.1)
    }

    /// Quantile in milliseconds, linear within a bucket (`None` without
    /// frames or when it falls in the open-ended last bucket).
    pub fn latency_ms(&self, q: f64) -> Option<f64> {
        let total = self.frames();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(bound, n) in &self.buckets {
            if n >= rank {
                if !bound.is_finite() {
                    return None;
                }
                let share = if n > lower.1 { (rank - lower.1) / (n - lower.1) } else { 1.0 };
                return Some((lower.0 + share * (bound - lower.0)) * 1000.0);
            }
            lower = (bound, n);
        }
        None
    }

    pub fn describe(&self) -> String {
        let ms = |q| self.latency_ms(q).map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        format!(
            "server's own view (/metrics): Opus encodes per tick {:.2}; jitter-buffer wait of {} mixed frames p50 {} ms p95 {} ms (2 ms buckets); frames skipped {}, held {}",
            self.encodes / self.ticks.max(1.0),
            self.frames(),
            ms(0.5),
            ms(0.95),
            self.skipped,
            self.held
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EARLIER: &str = "# TYPE mixer_added_latency_seconds histogram\n\
        mixer_added_latency_seconds_bucket{le=\"0.01\"} 0\n\
        mixer_added_latency_seconds_bucket{le=\"0.02\"} 10\n\
        mixer_added_latency_seconds_bucket{le=\"+Inf\"} 10\n\
        mixer_jitter_frames_skipped_total 1\n\
        mixer_encodes_total 40\n\
        mixer_ticks_total 10\n";
    const LATER: &str = "mixer_added_latency_seconds_bucket{le=\"0.01\"} 0\n\
        mixer_added_latency_seconds_bucket{le=\"0.02\"} 110\n\
        mixer_added_latency_seconds_bucket{le=\"+Inf\"} 110\n\
        mixer_jitter_frames_skipped_total 3\n\
        mixer_jitter_frames_held_total 2\n\
        mixer_encodes_total 440\n\
        mixer_ticks_total 110\n";

    #[test]
    fn the_window_is_the_difference_and_quantiles_interpolate() {
        let window = ServerView::parse(EARLIER).until(&ServerView::parse(LATER));
        assert_eq!(window.frames(), 100.0);
        assert_eq!(window.skipped, 2.0);
        assert_eq!(window.held, 2.0);
        assert_eq!(window.encodes / window.ticks, 4.0);
        // All 100 frames between 10 and 20 ms: the median half-way.
        let p50 = window.latency_ms(0.5).unwrap();
        assert!((p50 - 15.0).abs() < 1e-9, "{p50}");
    }

    #[test]
    fn no_frames_no_quantile() {
        assert_eq!(ServerView::parse("garbage\nmore garbage 1 2\n").latency_ms(0.5), None);
    }
}
