//! Wrap-around arithmetic for RTP sequence numbers (u16) and timestamps (u32).
//!
//! Both counters wrap: after 65535 comes 0. Forwarding decisions ("is this
//! packet older than the switch point?") need a monotonic 64-bit view, which
//! an unwrapper builds by choosing, for every new value, the extended value
//! closest to the previous one.

/// `true` if `a` comes after `b` in u16 serial-number arithmetic (RFC 1982).
pub fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// `true` if `a` comes after `b` in u32 serial-number arithmetic.
pub fn ts_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// Extends a wrapping counter of `BITS` bits to a monotonic `u64`.
///
/// Values are started at `1 << BITS` (one full cycle in) so that packets
/// reordered from just before the first one still get a non-negative value.
#[derive(Debug, Clone, Default)]
pub struct Unwrapper<const BITS: u32> {
    last: Option<u64>,
}

/// Unwrapper for RTP sequence numbers.
pub type SeqUnwrapper = Unwrapper<16>;
/// Unwrapper for RTP timestamps.
pub type TsUnwrapper = Unwrapper<32>;

impl<const BITS: u32> Unwrapper<BITS> {
    const MODULUS: u64 = 1 << BITS;
    const HALF: u64 = 1 << (BITS - 1);

    pub fn new() -> Self {
        Self { last: None }
    }

    /// Extends `value` without remembering it (for look-ups of old packets).
    pub fn peek(&self, value: u64) -> u64 {
        let value = value & (Self::MODULUS - 1);
        let Some(last) = self.last else {
            return Self::MODULUS + value;
        };
        let last_low = last & (Self::MODULUS - 1);
        let forward = value.wrapping_sub(last_low) & (Self::MODULUS - 1);
        if forward < Self::HALF {
            last + forward
        } else {
            let backward = Self::MODULUS - forward;
            // Never go below zero: a stream cannot be older than its start.
            last.saturating_sub(backward)
        }
    }

    /// Extends `value` and advances the reference point if it is newer.
    pub fn unwrap(&mut self, value: u64) -> u64 {
        let ext = self.peek(value);
        match self.last {
            Some(last) if ext <= last => {}
            _ => self.last = Some(ext),
        }
        ext
    }

    /// The newest extended value seen so far.
    pub fn last(&self) -> Option<u64> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_serial_compare() {
        assert!(seq_newer(1, 0));
        assert!(seq_newer(0, 65535));
        assert!(!seq_newer(65535, 0));
        assert!(!seq_newer(5, 5));
        assert!(ts_newer(0, u32::MAX));
    }

    #[test]
    fn unwraps_forward_and_backward() {
        let mut u = SeqUnwrapper::new();
        let a = u.unwrap(65534);
        assert_eq!(u.unwrap(65535), a + 1);
        assert_eq!(u.unwrap(0), a + 2);
        assert_eq!(u.unwrap(3), a + 5);
        // reordered packet from before the wrap
        assert_eq!(u.unwrap(65535), a + 1);
        assert_eq!(u.last(), Some(a + 5));
    }

    #[test]
    fn timestamps_wrap() {
        let mut u = TsUnwrapper::new();
        let a = u.unwrap(u64::from(u32::MAX - 10));
        assert_eq!(u.unwrap(20), a + 31);
    }
}
