//! Decompression output buffers, reused across batches and handed back after a burst.
//!
//! Why: a consumer decompresses every compressed batch into a buffer of about the batch's
//! decoded size (~1 MB for producers that fill `batch.size=1000000`). Allocated and freed
//! per batch, buffers of that size make glibc's malloc alternate between two regimes from
//! one run to the next: served from the heap (fast), or each one a fresh memory mapping or
//! heap top that is trimmed on free and faulted in (and zeroed by the kernel) anew on the
//! next batch. A C-zstd / 1 KiB consumer ran at 2.0-2.6M msgs/s in the first regime and
//! 0.8M in the second, with 20x the page faults (BENCHMARKS.md, "Consumer, compressed
//! batches: output buffers from a pool"). Reusing the buffers takes the allocator out of
//! the per-batch path.
//!
//! A buffer leaves the pool for one batch and comes back when the batch's last `Bytes`
//! (the messages sliced from it) is dropped. Only buffers of at least [`MIN_POOLED`] bytes
//! are pooled (smaller ones the allocator serves well), at most [`MAX_FREE`] wait in the
//! pool, none larger than [`MAX_KEPT`], and [`trim`] (called by the consumer's fetch loop,
//! and on the way in and out of the pool) frees the ones not needed for a whole
//! [`TRIM_INTERVAL`], so a consumer that goes idle gives the memory back.
//!
//! The pool is process-wide: decoding is a pure function of the record layer and runs on
//! whichever thread the consumer's tasks are on, and every consumer of the process gains
//! from buffers another has returned.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Buffers needing less than this come from the allocator as before and are not pooled.
pub const MIN_POOLED: usize = 64 * 1024;
/// Buffers with more capacity than this are freed rather than pooled.
pub const MAX_KEPT: usize = 16 << 20;
/// Most buffers waiting in the pool (a buffer returned to a full pool replaces the least
/// recently returned one).
pub const MAX_FREE: usize = 16;
/// A buffer left in the pool this long without being needed is freed.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(1);

struct State {
    /// Buffers ready for reuse, the most recently returned last. Their contents are old
    /// output: `len()` is how much of each is initialized, not data anyone reads.
    free: Vec<Vec<u8>>,
    /// The fewest buffers `free` held since the last trim: that many were not needed.
    low_water: usize,
    last_trim: Option<Instant>,
}

static POOL: Mutex<State> = Mutex::new(State {
    free: Vec::new(),
    low_water: 0,
    last_trim: None,
});

fn lock() -> MutexGuard<'static, State> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer for about `need` bytes of output: from the pool when one there has between
/// `need` and four times `need` bytes of capacity (the smallest such), else a new one with
/// `need` bytes of capacity. The buffer's `len()` is how much of it is initialized (old
/// output of an earlier batch for a pooled one, 0 for a new one): callers that write into
/// initialized memory only (lz4) keep it, callers that write into spare capacity (zstd)
/// clear it first.
pub fn take(need: usize) -> Vec<u8> {
    if need >= MIN_POOLED {
        let mut st = lock();
        let fits = |v: &Vec<u8>| v.capacity() >= need && v.capacity() / 4 <= need;
        let best = st
            .free
            .iter()
            .enumerate()
            .filter(|(_, v)| fits(v))
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        if let Some(i) = best {
            let v = st.free.swap_remove(i);
            st.low_water = st.low_water.min(st.free.len());
            return v;
        }
    }
    Vec::with_capacity(need)
}

/// The first `len` bytes of `buf` as `Bytes`; `buf` goes back to the pool when the last of
/// them is dropped (when it is large enough to be pooled).
pub fn freeze(buf: Vec<u8>, len: usize) -> Bytes {
    debug_assert!(len <= buf.len());
    if buf.capacity() < MIN_POOLED || buf.capacity() > MAX_KEPT {
        let mut buf = buf;
        buf.truncate(len);
        return Bytes::from(buf);
    }
    Bytes::from_owner(Pooled(buf)).slice(..len)
}

/// Frees the buffers that were not needed since the last trim, at most once per
/// [`TRIM_INTERVAL`].
pub fn trim(now: Instant) {
    let released: Vec<Vec<u8>>;
    {
        let mut st = lock();
        if st.last_trim.is_some_and(|t| now < t + TRIM_INTERVAL) {
            return;
        }
        let n = st.low_water.min(st.free.len());
        // The least recently returned ones (the front).
        released = st.free.drain(..n).collect();
        st.low_water = st.free.len();
        st.last_trim = Some(now);
    }
    // Freed outside the lock.
    drop(released);
}

/// Owner of a pooled buffer inside `Bytes`: gives it back when dropped.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        let mut st = lock();
        // Full: the least recently returned one makes room (freed outside the lock).
        let evicted = (st.free.len() >= MAX_FREE).then(|| st.free.remove(0));
        st.low_water = st.low_water.min(st.free.len());
        st.free.push(buf);
        drop(st);
        drop(evicted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The pool is process-wide and the crate's tests run in parallel, so these tests look
    // only at buffers they can recognise (their own capacities), never at counts.

    #[test]
    fn a_frozen_buffer_comes_back_when_its_last_bytes_is_dropped() {
        let need = 40 * MIN_POOLED + 4321;
        let mut buf = take(need);
        buf.resize(need, 7);
        let ptr = buf.as_ptr();
        let b = freeze(buf, 100);
        assert_eq!(b.len(), 100);
        assert!(b.iter().all(|&x| x == 7));
        let part = b.slice(10..20);
        drop(b);
        // Still in use through `part`: not handed out again.
        let other = take(need);
        assert_ne!(other.as_ptr(), ptr);
        drop(other);
        drop(part);
        // Returned: the next take of that size reuses it, its old output still initialized.
        let again = take(need);
        assert_eq!(again.as_ptr(), ptr);
        assert_eq!(again.len(), need);
    }

    #[test]
    fn small_or_oversized_buffers_are_not_pooled() {
        let small = take(MIN_POOLED / 2);
        assert_eq!(small.len(), 0);
        let b = freeze(small, 0);
        assert!(b.is_empty());
        let mut big = Vec::with_capacity(MAX_KEPT + 1);
        big.push(1u8);
        let ptr = big.as_ptr();
        drop(freeze(big, 1));
        let again = take(MAX_KEPT / 2 + 1);
        assert_ne!(again.as_ptr(), ptr);
    }

    #[test]
    fn a_buffer_much_larger_than_needed_is_left_in_the_pool() {
        let mut buf = take(8 * MIN_POOLED + 99);
        buf.push(1);
        let ptr = buf.as_ptr();
        drop(freeze(buf, 1));
        // Needing a quarter of its capacity or less: a new buffer, not this one.
        let small = take(MIN_POOLED + 1);
        assert_ne!(small.as_ptr(), ptr);
    }
}
