//! Exponential backoff with jitter, and deadlines. Used by every retry loop.

use std::time::Duration;

use tokio::time::Instant;

/// Exponential backoff: `base * 2^attempt`, capped at `max`, with ±20% jitter (as the Java
/// client does), so that many clients retrying together do not synchronise.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `base` and never exceeding `max` (before jitter).
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base: base.max(Duration::from_millis(1)),
            max: max.max(base),
            attempt: 0,
        }
    }

    /// The next delay; each call doubles the un-jittered delay up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.delay_for(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        d
    }

    /// The (jittered) delay of attempt `attempt` (0: the first), without counting it.
    pub fn delay_for(&self, attempt: u32) -> Duration {
        jitter(self.base.saturating_mul(1u32 << attempt.min(30)).min(self.max))
    }

    /// Number of delays handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Scales `d` by a random factor in [0.8, 1.2].
pub fn jitter(d: Duration) -> Duration {
    let factor = 0.8 + 0.4 * random_unit();
    d.mul_f64(factor)
}

/// A cheap pseudo-random number in [0, 1) (xorshift on a per-thread state seeded from the
/// clock and the thread); good enough for jitter, not for anything else.
pub(crate) fn random_unit() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9E37_79B9_7F4A_7C15);
            let addr = &t as *const u64 as u64;
            (t ^ addr.rotate_left(32)) | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// A point in time after which an operation gives up.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// `d` from now.
    pub fn after(d: Duration) -> Self {
        Deadline(Instant::now() + d)
    }

    /// The instant.
    pub fn instant(&self) -> Instant {
        self.0
    }

    /// Time left (zero when passed).
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.0
    }

    /// Sleeps for `d` or until the deadline, whichever is first. Returns `false` when the
    /// deadline was reached (the caller should give up).
    pub async fn sleep(&self, d: Duration) -> bool {
        let until = (Instant::now() + d).min(self.0);
        tokio::time::sleep_until(until).await;
        !self.expired()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let d: Vec<_> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert!((80..=120).contains(&d[0]), "{d:?}");
        assert!((160..=240).contains(&d[1]), "{d:?}");
        for x in &d[4..] {
            assert!((800..=1200).contains(x), "{d:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }

    #[test]
    fn random_unit_in_range() {
        for _ in 0..10_000 {
            let x = random_unit();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
