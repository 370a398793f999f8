//! A seeded network emulator for deterministic tests.
//!
//! Forwarding logic has to survive loss, delay, jitter, reordering and
//! duplication. Real sockets make such tests slow and flaky; this emulator
//! is a queue with time as an input and a seeded random generator, so the
//! same seed always produces the same packet fate.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// SplitMix64: tiny, fast, and good enough for test traffic (not for crypto).
#[derive(Debug, Clone)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }

    /// Uniform in `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform duration in `[0, max)`.
    pub fn duration_below(&mut self, max: Duration) -> Duration {
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.below(nanos))
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next_u64() & 0xff) as u8).collect()
    }
}

/// How badly the emulated network behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetemConfig {
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that the packet after a lost one is lost too (bursts).
    pub burst_loss: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Extra uniform random delay in `[0, jitter)` (reorders packets too).
    pub jitter: Duration,
    /// Probability that a packet is held back by `reorder_delay`.
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
}

/// Counters of what the emulator did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetemStats {
    pub sent: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub delivered: u64,
}

/// One direction of an emulated link carrying items of type `T`.
#[derive(Debug, Clone)]
pub struct Netem<T> {
    config: NetemConfig,
    rng: SeededRng,
    queue: BTreeMap<(Instant, u64), T>,
    counter: u64,
    last_lost: bool,
    stats: NetemStats,
}

impl<T: Clone> Netem<T> {
    pub fn new(config: NetemConfig, seed: u64) -> Self {
        Self {
            config,
            rng: SeededRng::new(seed),
            queue: BTreeMap::new(),
            counter: 0,
            last_lost: false,
            stats: NetemStats::default(),
        }
    }

    pub fn stats(&self) -> NetemStats {
        self.stats
    }

    /// Hands an item to the link at `now`.
    pub fn send(&mut self, now: Instant, item: T) {
        self.stats.sent += 1;
        let p_loss = if self.last_lost {
            self.config.burst_loss.max(self.config.loss)
        } else {
            self.config.loss
        };
        self.last_lost = self.rng.chance(p_loss);
        if self.last_lost {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.rng.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = now + self.config.delay + self.rng.duration_below(self.config.jitter);
            if self.rng.chance(self.config.reorder) {
                at += self.config.reorder_delay;
            }
            self.counter += 1;
            self.queue.insert((at, self.counter), item.clone());
        }
    }

    /// Takes the next item due at `now`, if any.
    pub fn poll(&mut self, now: Instant) -> Option<T> {
        let (&key, _) = self.queue.first_key_value()?;
        if key.0 > now {
            return None;
        }
        self.stats.delivered += 1;
        self.queue.remove(&key)
    }

    /// When the next item becomes due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|(k, _)| k.0)
    }

    /// Items still in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64) -> (Vec<u32>, NetemStats) {
        let t0 = Instant::now();
        let config = NetemConfig {
            loss: 0.1,
            burst_loss: 0.3,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(5),
            reorder: 0.05,
            reorder_delay: Duration::from_millis(30),
            duplicate: 0.02,
        };
        let mut n = Netem::new(config, seed);
        let mut out = Vec::new();
        for i in 0..1000u32 {
            let now = t0 + Duration::from_millis(u64::from(i));
            n.send(now, i);
            while let Some(x) = n.poll(now) {
                out.push(x);
            }
        }
        while let Some(t) = n.poll_timeout() {
            while let Some(x) = n.poll(t) {
                out.push(x);
            }
        }
        (out, n.stats())
    }

    #[test]
    fn deterministic_per_seed() {
        let (a, sa) = run(1);
        let (b, sb) = run(1);
        let (c, _) = run(2);
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        assert_ne!(a, c);
    }

    #[test]
    fn impairs_as_configured() {
        let (out, stats) = run(7);
        assert!(stats.lost > 50 && stats.lost < 250, "{stats:?}");
        assert!(stats.duplicated > 0);
        assert_eq!(stats.delivered as usize, out.len());
        assert_eq!(out.len() as u64, stats.sent - stats.lost + stats.duplicated);
        assert!(
            out.windows(2).any(|w| w[0] > w[1]),
            "some reordering expected"
        );
    }

    #[test]
    fn perfect_link_is_fifo() {
        let t0 = Instant::now();
        let mut n = Netem::new(
            NetemConfig {
                delay: Duration::from_millis(10),
                ..Default::default()
            },
            0,
        );
        for i in 0..10 {
            n.send(t0, i);
        }
        assert_eq!(n.poll(t0), None);
        let got: Vec<_> = std::iter::from_fn(|| n.poll(t0 + Duration::from_millis(10))).collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }
}
