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
//! pool, none larger than [`MAX_KEPT`], and [`trim`] (called by the consumer's fetch manager
//! and the share consumer's fetch loop, which both wake when idle) frees the ones not needed
//! for a whole [`TRIM_INTERVAL`](super::pool::TRIM_INTERVAL) (the rule of the producer's
//! pool: [`FreeList`]), so a consumer that goes idle gives the memory back to the allocator.
//! glibc's heap may keep it from the operating system. Buffers of their own mappings, as the
//! producer's are, gave it back (a C-zstd / 1 KiB consumer went from 53 to 12 MB after a
//! burst) but cost lz4 / 100 B consumers 6-12 % of their throughput in A/B runs, with twice
//! the page faults: BENCHMARKS.md, "Burst-then-idle memory, consumers".
//!
//! The pool is process-wide: decoding is a pure function of the record layer and runs on
//! whichever thread the consumer's tasks are on, and every consumer of the process gains
//! from buffers another has returned.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;

use super::pool::FreeList;

/// Buffers needing less than this come from the allocator as before and are not pooled.
pub const MIN_POOLED: usize = 64 * 1024;
/// Buffers with more capacity than this are freed rather than pooled.
pub const MAX_KEPT: usize = 16 << 20;
/// Most buffers waiting in the pool (a buffer returned to a full pool replaces the least
/// recently returned one).
pub const MAX_FREE: usize = 16;
#[cfg(test)]
use super::pool::TRIM_INTERVAL;

/// A pool of output buffers (see the module docs). The decoders use the process-wide one
/// through [`take`], [`freeze`] and [`trim`]; tests make their own.
pub struct OutPool {
    /// Buffers ready for reuse. Their contents are old output: `len()` is how much of each
    /// is initialized, not data anyone reads.
    free: Mutex<FreeList<Vec<u8>>>,
}

/// The process-wide pool.
static POOL: OutPool = OutPool::new();

/// [`OutPool::take`] of the process-wide pool.
pub fn take(need: usize) -> Vec<u8> {
    POOL.take(need)
}

/// [`OutPool::freeze`] into the process-wide pool.
pub fn freeze(buf: Vec<u8>, len: usize) -> Bytes {
    POOL.freeze(buf, len)
}

/// [`OutPool::trim`] of the process-wide pool.
pub fn trim(now: Instant) {
    POOL.trim(now)
}

impl OutPool {
    /// An empty pool.
    pub const fn new() -> Self {
        OutPool {
            free: Mutex::new(FreeList::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FreeList<Vec<u8>>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A buffer for about `need` bytes of output: from the pool when one there has between
    /// `need` and four times `need` bytes of capacity (the smallest such, the most recently
    /// returned among equals), else a new one
    /// with `need` bytes of capacity. The buffer's `len()` is how much of it is initialized
    /// (old output of an earlier batch for a pooled one, 0 for a new one): callers that
    /// write into initialized memory only (lz4) keep it, callers that write into spare
    /// capacity (zstd) clear it first.
    pub fn take(&self, need: usize) -> Vec<u8> {
        if need >= MIN_POOLED {
            let mut free = self.lock();
            let fits = |v: &Vec<u8>| v.capacity() >= need && v.capacity() / 4 <= need;
            // Among equals the most recently returned (its pages likelier in the caches).
            if let Some(i) = free.best(fits, |v| v.capacity()) {
                return free.take(i);
            }
        }
        Vec::with_capacity(need)
    }

    /// The first `len` bytes of `buf` as `Bytes`; `buf` comes back to this pool when the
    /// last of them is dropped (when it is of a size the pool keeps).
    pub fn freeze(&'static self, buf: Vec<u8>, len: usize) -> Bytes {
        debug_assert!(len <= buf.len());
        if buf.capacity() < MIN_POOLED || buf.capacity() > MAX_KEPT {
            let mut buf = buf;
            buf.truncate(len);
            return Bytes::from(buf);
        }
        Bytes::from_owner(Pooled { buf, pool: self }).slice(..len)
    }

    /// Frees the buffers that were not needed since the last trim, at most once per
    /// [`TRIM_INTERVAL`](super::pool::TRIM_INTERVAL).
    pub fn trim(&self, now: Instant) {
        // The least recently returned ones go first (see `FreeList::trim`).
        let (released, _) = self.lock().trim(now);
        // Freed outside the lock.
        drop(released);
    }

    /// Buffers waiting in the pool.
    #[cfg(test)]
    fn free_buffers(&self) -> usize {
        self.lock().len()
    }

    fn give_back(&self, buf: Vec<u8>) {
        // Full: the least recently returned one makes room (freed outside the lock).
        let evicted = self.lock().put(buf, MAX_FREE);
        drop(evicted);
    }
}

/// Owner of a pooled buffer inside `Bytes`: gives it back when dropped.
struct Pooled {
    buf: Vec<u8>,
    pool: &'static OutPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of the test's own (the process-wide one is shared by tests running at once).
    fn pool() -> &'static OutPool {
        Box::leak(Box::new(OutPool::new()))
    }

    #[test]
    fn a_frozen_buffer_comes_back_when_its_last_bytes_is_dropped() {
        let pool = pool();
        let need = 3 * MIN_POOLED + 4321;
        let mut buf = pool.take(need);
        assert_eq!(buf.len(), 0, "a new buffer has nothing initialized");
        buf.resize(need, 7);
        let ptr = buf.as_ptr();
        let b = pool.freeze(buf, 100);
        assert_eq!(b.len(), 100);
        assert!(b.iter().all(|&x| x == 7));
        let part = b.slice(10..20);
        drop(b);
        // Still in use through `part`: not handed out again.
        assert_eq!(pool.free_buffers(), 0);
        let other = pool.take(need);
        assert_ne!(other.as_ptr(), ptr);
        drop(other);
        drop(part);
        assert_eq!(pool.free_buffers(), 1);
        // Returned: the next take of that size reuses it, its old output still initialized.
        let again = pool.take(need);
        assert_eq!(again.as_ptr(), ptr);
        assert_eq!(again.len(), need);
        assert_eq!(pool.free_buffers(), 0);
    }

    #[test]
    fn small_or_oversized_buffers_are_not_pooled() {
        let pool = pool();
        let small = pool.take(MIN_POOLED / 2);
        drop(pool.freeze(small, 0));
        let mut big = Vec::with_capacity(MAX_KEPT + 1);
        big.push(1u8);
        drop(pool.freeze(big, 1));
        assert_eq!(pool.free_buffers(), 0);
    }

    #[test]
    fn a_buffer_much_larger_than_needed_is_left_in_the_pool() {
        let pool = pool();
        let mut buf = pool.take(8 * MIN_POOLED + 99);
        buf.push(1);
        let ptr = buf.as_ptr();
        drop(pool.freeze(buf, 1));
        // Needing a quarter of its capacity or less: a new buffer, not this one.
        let small = pool.take(MIN_POOLED + 1);
        assert_ne!(small.as_ptr(), ptr);
        assert_eq!(pool.free_buffers(), 1);
    }

    #[test]
    fn a_full_pool_keeps_the_most_recently_returned() {
        let pool = pool();
        let bufs: Vec<Vec<u8>> = (0..MAX_FREE + 2).map(|_| pool.take(MIN_POOLED)).collect();
        let ptrs: Vec<*const u8> = bufs.iter().map(|b| b.as_ptr()).collect();
        for b in bufs {
            drop(pool.freeze(b, 0));
        }
        assert_eq!(pool.free_buffers(), MAX_FREE);
        // Taken back newest first; the first two returned were let go.
        let again: Vec<Vec<u8>> = (0..MAX_FREE).map(|_| pool.take(MIN_POOLED)).collect();
        let got: Vec<*const u8> = again.iter().map(|b| b.as_ptr()).collect();
        let want: Vec<*const u8> = ptrs[2..].iter().rev().copied().collect();
        assert_eq!(got, want);
        assert_eq!(pool.free_buffers(), 0);
    }

    #[test]
    fn trim_frees_what_was_not_needed_for_a_whole_interval() {
        let pool = pool();
        let t0 = Instant::now();
        for _ in 0..3 {
            let b = pool.take(MIN_POOLED);
            drop(pool.freeze(b, 0));
        }
        // Three returned one after the other: each time the same buffer came back.
        assert_eq!(pool.free_buffers(), 1);
        let held: Vec<Vec<u8>> = (0..3).map(|_| pool.take(MIN_POOLED)).collect();
        for b in held {
            drop(pool.freeze(b, 0));
        }
        assert_eq!(pool.free_buffers(), 3);
        // The first trim frees what has not been needed since the pool began (all three were
        // in use at once, so none), then measures anew.
        pool.trim(t0);
        assert_eq!(pool.free_buffers(), 3);
        // Within the interval: nothing happens.
        pool.trim(t0 + TRIM_INTERVAL / 2);
        assert_eq!(pool.free_buffers(), 3);
        // One buffer used during the interval: two were never needed and go.
        let one = pool.take(MIN_POOLED);
        drop(pool.freeze(one, 0));
        pool.trim(t0 + TRIM_INTERVAL);
        assert_eq!(pool.free_buffers(), 1);
        // Idle for another interval: the last one goes too.
        pool.trim(t0 + 2 * TRIM_INTERVAL);
        assert_eq!(pool.free_buffers(), 0);
    }
}
