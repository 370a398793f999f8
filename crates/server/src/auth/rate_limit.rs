//! Brakes on password guessing: failed logins are counted per username and
//! per client address over a sliding window. Sans-IO: time is an argument.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Failures allowed per username within the window.
    pub per_username: usize,
    /// Failures allowed per client address within the window.
    pub per_address: usize,
    /// The window, in seconds.
    pub window_secs: i64,
}

impl Default for LoginLimits {
    fn default() -> LoginLimits {
        LoginLimits { per_username: 5, per_address: 20, window_secs: 15 * 60 }
    }
}

/// Recent failures per key, bounded in count per key and in keys.
#[derive(Debug)]
struct Failures<K> {
    by_key: HashMap<K, VecDeque<i64>>,
    max_per_key: usize,
}

/// Above this many tracked keys, expired ones are swept on insert.
const SWEEP_ABOVE: usize = 10_000;

impl<K: Eq + Hash + Clone> Failures<K> {
    fn new(max_per_key: usize) -> Failures<K> {
        Failures { by_key: HashMap::new(), max_per_key: max_per_key.max(1) }
    }

    /// Seconds until `key` may try again, if it is blocked now.
    fn blocked_for(&mut self, key: &K, now: i64, window: i64) -> Option<u64> {
        let times = self.by_key.get_mut(key)?;
        while times.front().is_some_and(|t| t + window <= now) {
            times.pop_front();
        }
        if times.is_empty() {
            self.by_key.remove(key);
            return None;
        }
        if times.len() < self.max_per_key {
            return None;
        }
        let oldest = *times.front()?;
        Some(u64::try_from(oldest + window - now).unwrap_or(1).max(1))
    }

    fn record(&mut self, key: K, now: i64, window: i64) {
        if self.by_key.len() >= SWEEP_ABOVE {
            self.by_key.retain(|_, times| times.back().is_some_and(|t| t + window > now));
        }
        let times = self.by_key.entry(key).or_default();
        times.push_back(now);
        while times.len() > self.max_per_key {
            times.pop_front();
        }
    }
}

/// Decides whether a login attempt may proceed.
#[derive(Debug)]
pub struct LoginLimiter {
    limits: LoginLimits,
    usernames: Failures<String>,
    addresses: Failures<IpAddr>,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> LoginLimiter {
        LoginLimiter {
            limits,
            usernames: Failures::new(limits.per_username),
            addresses: Failures::new(limits.per_address),
        }
    }

    /// `Err(seconds)` when this username or address must wait before trying.
    pub fn check(&mut self, username: &str, addr: IpAddr, now: i64) -> Result<(), u64> {
        let w = self.limits.window_secs;
        let by_name = self.usernames.blocked_for(&username.to_owned(), now, w);
        let by_addr = self.addresses.blocked_for(&address_key(addr), now, w);
        match by_name.max(by_addr) {
            Some(secs) => Err(secs),
            None => Ok(()),
        }
    }

    pub fn record_failure(&mut self, username: &str, addr: IpAddr, now: i64) {
        let w = self.limits.window_secs;
        self.usernames.record(username.to_owned(), now, w);
        self.addresses.record(address_key(addr), now, w);
    }

    /// A successful login clears the username's failures (not the address's:
    /// one good account must not unlock guessing at others).
    pub fn record_success(&mut self, username: &str) {
        self.usernames.by_key.remove(username);
    }
}

/// IPv6 clients usually own a whole /64, so they are counted per /64.
fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(LoginLimits { per_username: 3, per_address: 5, window_secs: 60 })
    }

    #[test]
    fn blocks_a_username_after_its_failures_until_the_window_passes() {
        let mut l = limiter();
        for t in 0..3 {
            assert_eq!(l.check("alice", A, t), Ok(()));
            l.record_failure("alice", A, t);
        }
        assert_eq!(l.check("alice", B, 10), Err(50), "from any address");
        assert_eq!(l.check("bob", B, 10), Ok(()), "other users are unaffected");
        assert_eq!(l.check("alice", B, 60), Ok(()), "the oldest failure left the window");
    }

    #[test]
    fn blocks_an_address_that_tries_many_usernames() {
        let mut l = limiter();
        for (t, name) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            l.record_failure(name, A, t as i64);
        }
        assert_eq!(l.check("f", A, 5), Err(55));
        assert_eq!(l.check("f", B, 5), Ok(()));
    }

    #[test]
    fn success_clears_the_username_only() {
        let mut l = limiter();
        for t in 0..3 {
            l.record_failure("alice", A, t);
        }
        l.record_success("alice");
        assert_eq!(l.check("alice", B, 3), Ok(()));
    }

    #[test]
    fn ipv6_clients_count_per_slash_64() {
        let one: IpAddr = "2001:db8::1".parse().expect("ip");
        let two: IpAddr = "2001:db8::ffff:2".parse().expect("ip");
        assert_eq!(address_key(one), address_key(two));
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_usernames() {
        let mut l = limiter();
        for i in 0..50_000 {
            l.record_failure(&format!("user{i}"), B, i64::from(i) * 61 / 1000);
        }
        assert!(l.usernames.by_key.len() <= SWEEP_ABOVE + 61 * 1000 / 61 + 1_000);
    }
}
