//! Message vectors reused from one fetched chunk's decode to the next.
//!
//! Why: a chunk of 100 B records decodes into a vector of ~9,000 `Message`s (~1 MB). Freed
//! when the application has read them and allocated anew for the next chunk, vectors of
//! that size make glibc's malloc grow and trim its heap (or map and unmap) once per chunk,
//! with page faults each time. Kept here instead (at most [`MAX_FREE`], emptied), they are
//! taken by the next decodes; [`trim`] (called by the fetch manager, which wakes when idle)
//! frees the ones not needed for a whole [`TRIM_INTERVAL`](crate::record::pool::TRIM_INTERVAL),
//! so an idle consumer keeps none.
//!
//! Process-wide, as the decompression buffers' pool (`record::out_pool`) is.

use std::time::Instant;

use crate::record::pool::{FitPool, Room};

use super::Message;

/// Vectors for fewer messages than this come from the allocator and are not kept.
pub(crate) const MIN_POOLED: usize = 512;
/// Most vectors waiting.
pub(crate) const MAX_FREE: usize = 4;

/// A pool of message vectors; the consumer uses the process-wide one through [`take`],
/// [`give_back`] and [`trim`]; tests make their own.
pub(crate) struct VecPool {
    free: FitPool<Vec<Message>>,
}

impl Room for Vec<Message> {
    fn room(&self) -> usize {
        self.capacity()
    }
}

static POOL: VecPool = VecPool::new();

/// [`VecPool::take`] of the process-wide pool.
pub(crate) fn take(n: usize) -> Vec<Message> {
    POOL.take(n)
}

/// [`VecPool::give_back`] to the process-wide pool.
pub(crate) fn give_back(v: Vec<Message>) {
    POOL.give_back(v)
}

/// [`VecPool::trim`] of the process-wide pool.
pub(crate) fn trim(now: Instant) {
    POOL.trim(now)
}

impl VecPool {
    /// An empty pool.
    pub(crate) const fn new() -> Self {
        VecPool {
            free: FitPool::new(MAX_FREE),
        }
    }

    /// An empty vector with room for at least `n` messages: a waiting one with room for `n`
    /// to `4 n` (the smallest such, the most recently returned among equals), else a new one.
    pub(crate) fn take(&self, n: usize) -> Vec<Message> {
        if n >= MIN_POOLED {
            if let Some(v) = self.free.take(n) {
                return v;
            }
        }
        Vec::with_capacity(n)
    }

    /// `v` emptied (its messages dropped) and kept for a later [`take`](Self::take) when it
    /// has room for at least [`MIN_POOLED`] messages; with [`MAX_FREE`] waiting, the least
    /// recently returned one makes room.
    pub(crate) fn give_back(&self, mut v: Vec<Message>) {
        if v.capacity() < MIN_POOLED {
            return;
        }
        v.clear();
        self.free.put(v);
    }

    /// Frees the vectors not needed since the last trim (at most once per trim interval).
    pub(crate) fn trim(&self, now: Instant) {
        self.free.trim(now)
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::pool::TRIM_INTERVAL;

    #[test]
    fn a_vector_given_back_is_taken_again_empty_and_trimmed_when_idle() {
        let pool = VecPool::new();
        let n = MIN_POOLED * 8 + 17;
        let v = pool.take(n);
        assert!(v.capacity() >= n);
        let p = v.as_ptr();
        pool.give_back(v);
        assert_eq!(pool.waiting(), 1);
        let again = pool.take(n);
        assert_eq!(again.as_ptr(), p);
        assert!(again.is_empty());
        pool.give_back(again);
        // Needing a quarter of its room or less: a new vector, this one stays.
        let small = pool.take(n / 4 - 1);
        assert_ne!(small.as_ptr(), p);
        assert_eq!(pool.waiting(), 1);
        // Vectors for few messages are not kept.
        pool.give_back(Vec::with_capacity(MIN_POOLED - 1));
        assert_eq!(pool.waiting(), 1);
        // Idle: the first trim measures, the next one a whole interval later frees it.
        let t0 = Instant::now();
        pool.trim(t0);
        pool.trim(t0 + TRIM_INTERVAL);
        assert_eq!(pool.waiting(), 0);
    }

    #[test]
    fn at_most_max_free_wait() {
        let pool = VecPool::new();
        for _ in 0..MAX_FREE + 3 {
            pool.give_back(Vec::with_capacity(MIN_POOLED));
        }
        assert_eq!(pool.waiting(), MAX_FREE);
    }
}
