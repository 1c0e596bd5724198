//! A token bucket on a worker's millisecond clock: how a worker polices what it sends on its
//! own account ("fragmentation needed") or hands to the control core, so that no input rate
//! makes it send or punt more than a configured rate.

use crate::table::Millis;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_sec: u32,
    burst: u32,
    /// Thousandths of a token, so that one elapsed millisecond adds `per_sec` of them exactly.
    tokens_milli: u64,
    last: Millis,
}

impl TokenBucket {
    /// `per_sec` tokens a second, at most `burst` saved up; starts full.
    pub fn new(per_sec: u32, burst: u32) -> Self {
        TokenBucket { per_sec, burst, tokens_milli: burst as u64 * 1000, last: 0 }
    }

    /// Take one token at `now`; `false` when none is left.
    #[inline]
    pub fn take(&mut self, now: Millis) -> bool {
        // A clock that jumped (or wrapped) refills at most a minute's worth.
        let dt = now.wrapping_sub(self.last).min(60_000) as u64;
        self.last = now;
        let cap = self.burst as u64 * 1000;
        self.tokens_milli = (self.tokens_milli + dt * self.per_sec as u64).min(cap);
        if self.tokens_milli >= 1000 {
            self.tokens_milli -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut b = TokenBucket::new(1000, 10);
        assert_eq!((0..20).filter(|_| b.take(0)).count(), 10, "the burst, then nothing");
        assert!(b.take(1), "one token per millisecond at 1000/s");
        assert!(!b.take(1));
        assert_eq!((0..20).filter(|_| b.take(100)).count(), 10, "refilled, capped at the burst");
        let mut slow = TokenBucket::new(10, 1);
        assert!(slow.take(0));
        assert!(!slow.take(50));
        assert!(slow.take(100), "10/s: a token every 100 ms");
    }
}
