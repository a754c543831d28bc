//! Decompression output buffers: anonymous memory mappings, reused across batches and
//! handed back to the operating system after a burst.
//!
//! Why a pool: a consumer decompresses every compressed batch into a buffer of about the
//! batch's decoded size (~1 MB for producers that fill `batch.size=1000000`). Allocated and
//! freed per batch, buffers of that size make glibc's malloc alternate between two regimes
//! from one run to the next: served from the heap (fast), or each one a fresh memory mapping
//! or heap top that is trimmed on free and faulted in (and zeroed by the kernel) anew on the
//! next batch. A C-zstd / 1 KiB consumer ran at 2.0-2.6M msgs/s in the first regime and
//! 0.8M in the second, with 20x the page faults (BENCHMARKS.md, "Consumer, compressed
//! batches: output buffers from a pool"). Reusing the buffers takes the allocator out of
//! the per-batch path.
//!
//! Why mappings, not the heap: after a burst the decoded batches a consumer read ahead
//! (up to `queued.max.messages.kbytes`) come back all at once; freed into glibc's heap they
//! stayed in the process (a C-zstd / 1 KiB consumer kept 52 of its 67 MB peak; with
//! `MALLOC_MMAP_THRESHOLD_` fixed, so that glibc maps such buffers itself, it went down to
//! 8 MB). A mapping is returned to the kernel when it is dropped, whatever the allocator
//! does: with these mappings the same consumer went from a 78 MB peak to 11 MB when idle.
//! The producer's batch buffers are mappings for the same reason ([`super::pool`]). Alone,
//! the mappings cost lz4 / 100 B consumers 6-12 % (the ~1 MB message vectors then met
//! glibc's grow-and-trim on their own); with those vectors reused too
//! (`consumer::vec_pool`) the compressed consumer cells ran 1.007-1.024x the heap pool's
//! speed (BENCHMARKS.md, "Consumer, compressed burst handed back").
//!
//! A buffer leaves the pool for one batch and comes back when the batch's last `Bytes`
//! (the messages sliced from it) is dropped. Only buffers of at least [`MIN_POOLED`] bytes
//! are mappings and pooled (smaller ones come from the heap, which serves them well, and so
//! does every buffer while [`MAX_MAPPED`] mappings are alive), at most [`MAX_FREE`] wait in
//! the pool, none larger than [`MAX_KEPT`], and [`trim`] (called by the consumer's fetch
//! manager and the share consumer's fetch loop, which both wake when idle) unmaps the ones
//! not needed for a whole [`TRIM_INTERVAL`], so a consumer that goes idle gives the memory
//! back.
//!
//! The pool is process-wide: decoding is a pure function of the record layer and runs on
//! whichever thread the consumer's tasks are on, and every consumer of the process gains
//! from buffers another has returned.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use memmap2::MmapMut;

use super::pool::{FitPool, Room};
#[cfg(test)]
use super::pool::TRIM_INTERVAL;

/// Buffers needing less than this come from the heap and are not pooled.
pub const MIN_POOLED: usize = 64 * 1024;
/// Buffers larger than this are unmapped rather than pooled.
pub const MAX_KEPT: usize = 16 << 20;
/// Most buffers waiting in the pool (a buffer returned to a full pool replaces the least
/// recently returned one).
pub const MAX_FREE: usize = 64;
/// Most mappings of the process-wide pool alive at once (in use or waiting); past it
/// buffers come from the heap. Keeps a process with many consumers of small batches well
/// away from the kernel's limit on mappings per process (`vm.max_map_count`, 65,530 by
/// default), as the producer's pool is kept (`MAX_MAPPED_BATCHES`).
pub const MAX_MAPPED: usize = 4096;
/// Mappings are whole pages.
const PAGE: usize = 4096;

/// A mapping of a pool, counted in that pool's live mappings until it is unmapped.
pub struct Mapping {
    map: MmapMut,
    pool: &'static OutPool,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping").field("len", &self.map.len()).finish()
    }
}

impl Deref for Mapping {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl DerefMut for Mapping {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }
}

impl Room for Mapping {
    fn room(&self) -> usize {
        self.map.len()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        self.pool.mapped.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An output buffer from [`OutPool::take`]: on the heap (small, or when the system refuses
/// a mapping) or a mapping of the pool.
#[derive(Debug)]
pub enum OutBuf {
    /// A heap buffer; its `len()` is how much of it is initialized, its spare capacity is
    /// room to write into (zstd).
    Heap(Vec<u8>),
    /// A mapping: all of it initialized (zeros, or old output of an earlier batch).
    Mapped(Mapping),
}

impl OutBuf {
    /// Bytes it can hold without growing.
    pub fn capacity(&self) -> usize {
        match self {
            OutBuf::Heap(v) => v.capacity(),
            OutBuf::Mapped(m) => m.len(),
        }
    }

    /// The first `end` bytes, to write into (their contents are zeros or old output), after
    /// growing the buffer when it is smaller; growing keeps the first `keep` bytes. A mapping
    /// too small is replaced by a larger one from its pool (at least twice the size), the old
    /// one returned to it.
    pub fn room(&mut self, end: usize, keep: usize) -> &mut [u8] {
        if let OutBuf::Mapped(m) = self {
            if m.len() < end {
                let mut bigger = m.pool.take(end.max(m.len().saturating_mul(2)));
                bigger.room(end, 0)[..keep].copy_from_slice(&m[..keep]);
                std::mem::replace(self, bigger).release();
            }
        }
        match self {
            OutBuf::Heap(v) => {
                if v.len() < end {
                    v.resize(end, 0);
                }
                &mut v[..end]
            }
            OutBuf::Mapped(m) => &mut m[..end],
        }
    }
}

impl OutBuf {
    /// The first `len` bytes as `Bytes`; a mapping comes back to its pool when the last of
    /// them is dropped (unmapped instead when larger than [`MAX_KEPT`]).
    pub fn freeze(self, len: usize) -> Bytes {
        match self {
            OutBuf::Heap(mut v) => {
                debug_assert!(len <= v.len());
                v.truncate(len);
                Bytes::from(v)
            }
            OutBuf::Mapped(map) => {
                debug_assert!(len <= map.len());
                Bytes::from_owner(Pooled(Some(map))).slice(..len)
            }
        }
    }

    /// A buffer not frozen after all (a decode redone in a larger one): a mapping goes back
    /// to its pool.
    pub fn release(self) {
        if let OutBuf::Mapped(m) = self {
            let owner = m.pool;
            owner.give_back(m);
        }
    }

    /// The initialized bytes (a heap buffer's `len()`, all of a mapping).
    pub fn as_slice(&self) -> &[u8] {
        match self {
            OutBuf::Heap(v) => v,
            OutBuf::Mapped(m) => m,
        }
    }
}

/// A pool of output buffers (see the module docs). The decoders use the process-wide one
/// through [`take`] and [`trim`] ([`OutBuf::freeze`] returns a buffer to its
/// pool); tests make their own.
pub struct OutPool {
    free: FitPool<Mapping>,
    /// Mappings alive (in use or in `free`).
    mapped: AtomicUsize,
    /// Most mappings alive at once; past it `take` gives heap buffers.
    max_mapped: usize,
}

/// The process-wide pool.
static POOL: OutPool = OutPool::new();

/// [`OutPool::take`] of the process-wide pool.
pub fn take(need: usize) -> OutBuf {
    POOL.take(need)
}

/// [`OutPool::trim`] of the process-wide pool.
pub fn trim(now: Instant) {
    POOL.trim(now)
}

impl OutPool {
    /// An empty pool with at most [`MAX_MAPPED`] mappings alive.
    pub const fn new() -> Self {
        Self::with_max_mapped(MAX_MAPPED)
    }

    /// An empty pool with at most `max_mapped` mappings alive.
    pub const fn with_max_mapped(max_mapped: usize) -> Self {
        OutPool {
            free: FitPool::new(MAX_FREE),
            mapped: AtomicUsize::new(0),
            max_mapped,
        }
    }

    /// A buffer for about `need` bytes of output. Under [`MIN_POOLED`]: an empty heap buffer
    /// with `need` bytes of capacity. Else a mapping: from the pool when one there has
    /// between `need` and four times `need` bytes (the smallest such, the most recently
    /// returned among equals), else a new one of `need` bytes rounded up to whole pages (the
    /// heap, as for small ones, when the pool's mappings are at its maximum or the system
    /// refuses one).
    pub fn take(&'static self, need: usize) -> OutBuf {
        if need < MIN_POOLED {
            return OutBuf::Heap(Vec::with_capacity(need));
        }
        if let Some(m) = self.free.take(need) {
            return OutBuf::Mapped(m);
        }
        if self.mapped.fetch_add(1, Ordering::Relaxed) >= self.max_mapped {
            self.mapped.fetch_sub(1, Ordering::Relaxed);
            return OutBuf::Heap(Vec::with_capacity(need));
        }
        match MmapMut::map_anon(need.div_ceil(PAGE) * PAGE) {
            Ok(map) => OutBuf::Mapped(Mapping { map, pool: self }),
            Err(e) => {
                self.mapped.fetch_sub(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "no mapping for a decompression buffer; using the heap");
                OutBuf::Heap(Vec::with_capacity(need))
            }
        }
    }

    /// Unmaps the buffers that were not needed since the last trim, at most once per
    /// [`TRIM_INTERVAL`](super::pool::TRIM_INTERVAL).
    pub fn trim(&self, now: Instant) {
        self.free.trim(now)
    }

    /// Buffers waiting in the pool.
    #[cfg(test)]
    fn free_buffers(&self) -> usize {
        self.free.len()
    }

    fn give_back(&self, map: Mapping) {
        if map.len() > MAX_KEPT {
            return;
        }
        // Full: the least recently returned one makes room (unmapped outside the lock).
        self.free.put(map);
    }
}

/// Owner of a pooled mapping inside `Bytes` (always `Some` until dropped): gives it back
/// to its pool when dropped.
struct Pooled(Option<Mapping>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(map) = self.0.take() {
            let owner = map.pool;
            owner.give_back(map);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of the test's own (the process-wide one is shared by tests running at once).
    fn pool() -> &'static OutPool {
        Box::leak(Box::new(OutPool::new()))
    }

    fn ptr(b: &OutBuf) -> *const u8 {
        b.as_slice().as_ptr()
    }

    #[test]
    fn a_frozen_buffer_comes_back_when_its_last_bytes_is_dropped() {
        let pool = pool();
        let need = 3 * MIN_POOLED + 4321;
        let mut buf = pool.take(need);
        assert!(matches!(buf, OutBuf::Mapped(_)));
        assert_eq!(buf.capacity(), need.div_ceil(PAGE) * PAGE, "whole pages");
        buf.room(need, 0).fill(7);
        let p = ptr(&buf);
        let b = buf.freeze(100);
        assert_eq!(b.len(), 100);
        assert!(b.iter().all(|&x| x == 7));
        let part = b.slice(10..20);
        drop(b);
        // Still in use through `part`: not handed out again.
        assert_eq!(pool.free_buffers(), 0);
        let other = pool.take(need);
        assert_ne!(ptr(&other), p);
        drop(other);
        drop(part);
        assert_eq!(pool.free_buffers(), 1);
        // Returned: the next take of that size reuses it, its old output still there.
        let again = pool.take(need);
        assert_eq!(ptr(&again), p);
        assert!(again.as_slice()[..need].iter().all(|&x| x == 7));
        assert_eq!(pool.free_buffers(), 0);
    }

    #[test]
    fn small_buffers_are_heap_and_oversized_ones_not_pooled() {
        let pool = pool();
        let mut small = pool.take(MIN_POOLED / 2);
        assert!(matches!(small, OutBuf::Heap(_)));
        small.room(10, 0).copy_from_slice(b"0123456789");
        let b = small.freeze(4);
        assert_eq!(&b[..], b"0123");
        drop(b);
        let big = pool.take(MAX_KEPT + 1);
        drop(big.freeze(1));
        assert_eq!(pool.free_buffers(), 0);
    }

    #[test]
    fn a_buffer_much_larger_than_needed_is_left_in_the_pool() {
        let pool = pool();
        let buf = pool.take(8 * MIN_POOLED + 99);
        let p = ptr(&buf);
        drop(buf.freeze(1));
        // Needing a quarter of its capacity or less: a new buffer, not this one.
        let small = pool.take(MIN_POOLED + 1);
        assert_ne!(ptr(&small), p);
        assert_eq!(pool.free_buffers(), 1);
    }

    #[test]
    fn past_the_most_mappings_buffers_come_from_the_heap() {
        let pool: &'static OutPool = Box::leak(Box::new(OutPool::with_max_mapped(2)));
        let a = pool.take(MIN_POOLED);
        let b = pool.take(MIN_POOLED);
        assert!(matches!(a, OutBuf::Mapped(_)) && matches!(b, OutBuf::Mapped(_)));
        let c = pool.take(MIN_POOLED);
        assert!(matches!(c, OutBuf::Heap(_)), "a third mapping past the maximum");
        // A mapping waiting in the pool still counts; one unmapped does not.
        drop(a.freeze(0));
        assert!(matches!(pool.take(2 * MIN_POOLED), OutBuf::Heap(_)));
        drop(b);
        assert!(matches!(pool.take(2 * MIN_POOLED), OutBuf::Mapped(_)));
        assert_eq!(pool.mapped.load(Ordering::Relaxed), 1, "the one taken is dropped again");
    }

    #[test]
    fn room_grows_a_mapping_keeping_what_was_written() {
        let pool = pool();
        let mut buf = pool.take(MIN_POOLED);
        buf.room(5, 0).copy_from_slice(b"hello");
        let small = ptr(&buf);
        // Past the end: a mapping at least twice the size, the first bytes copied over, the
        // old mapping back in the pool.
        let r = buf.room(MIN_POOLED + 1, 5);
        assert_eq!(r.len(), MIN_POOLED + 1);
        assert_eq!(&r[..5], b"hello");
        assert!(buf.capacity() >= 2 * MIN_POOLED);
        assert_ne!(ptr(&buf), small);
        assert_eq!(pool.free_buffers(), 1);
        let b = buf.freeze(5);
        assert_eq!(&b[..], b"hello");
    }

    #[test]
    fn a_full_pool_keeps_the_most_recently_returned() {
        let pool = pool();
        let bufs: Vec<OutBuf> = (0..MAX_FREE + 2).map(|_| pool.take(MIN_POOLED)).collect();
        let ptrs: Vec<*const u8> = bufs.iter().map(ptr).collect();
        for b in bufs {
            drop(b.freeze(0));
        }
        assert_eq!(pool.free_buffers(), MAX_FREE);
        // Taken back newest first; the first two returned were let go.
        let again: Vec<OutBuf> = (0..MAX_FREE).map(|_| pool.take(MIN_POOLED)).collect();
        let got: Vec<*const u8> = again.iter().map(ptr).collect();
        let want: Vec<*const u8> = ptrs[2..].iter().rev().copied().collect();
        assert_eq!(got, want);
        assert_eq!(pool.free_buffers(), 0);
    }

    #[test]
    fn taking_a_best_fit_keeps_the_others_in_return_order() {
        let pool = pool();
        let sizes = [4 * MIN_POOLED, MIN_POOLED, 2 * MIN_POOLED, MIN_POOLED];
        let bufs: Vec<OutBuf> = sizes.iter().map(|&n| pool.take(n)).collect();
        let ptrs: Vec<*const u8> = bufs.iter().map(ptr).collect();
        for b in bufs {
            drop(b.freeze(0));
        }
        // The smallest that fits: of the two equal ones, the later returned.
        assert_eq!(ptr(&pool.take(MIN_POOLED)), ptrs[3]);
        // Then the smallest of the rest each time: the 1x, 2x, 4x ones in that order.
        assert_eq!(ptr(&pool.take(MIN_POOLED)), ptrs[1]);
        assert_eq!(ptr(&pool.take(MIN_POOLED)), ptrs[2]);
        assert_eq!(ptr(&pool.take(MIN_POOLED)), ptrs[0]);
    }

    #[test]
    fn trim_unmaps_what_was_not_needed_for_a_whole_interval() {
        let pool = pool();
        let t0 = Instant::now();
        for _ in 0..3 {
            let b = pool.take(MIN_POOLED);
            drop(b.freeze(0));
        }
        // Three returned one after the other: each time the same buffer came back.
        assert_eq!(pool.free_buffers(), 1);
        let held: Vec<OutBuf> = (0..3).map(|_| pool.take(MIN_POOLED)).collect();
        for b in held {
            drop(b.freeze(0));
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
        drop(one.freeze(0));
        pool.trim(t0 + TRIM_INTERVAL);
        assert_eq!(pool.free_buffers(), 1);
        // Idle for another interval: the last one goes too.
        pool.trim(t0 + 2 * TRIM_INTERVAL);
        assert_eq!(pool.free_buffers(), 0);
    }
}
