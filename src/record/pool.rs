//! Batch buffers that are their own anonymous memory mappings, reused through a pool and
//! handed back to the operating system once a burst is over.
//!
//! Why not the heap: a producer's batch buffers are the bulk of its memory, and they come and
//! go with the load. Freed into glibc's malloc, they stay in the process (glibc hands memory
//! back only from the top of a heap, and after the first large free it stops giving large
//! buffers their own mappings), so a producer kept its peak RSS for good after a burst. A
//! mapping is returned to the kernel when it is dropped, whatever the allocator does.
//!
//! Why a pool: a fresh mapping costs two system calls and a page fault for every 4 KiB
//! written into it. Buffers go back to the pool when their batch is done (its last `Bytes`
//! dropped) and are taken again by the next batches, so under a steady load no mapping is
//! made and no page faults. [`BufferPool::trim`], called by the producer's sender task,
//! unmaps the buffers that sat unused in the pool for a whole [`TRIM_INTERVAL`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use memmap2::MmapMut;

/// A buffer left in the pool for this long without being needed is unmapped.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// Page size the mappings are rounded to (mappings are page-granular anyway).
const PAGE: usize = 4096;

/// A pool of equally sized, page-aligned batch buffers (see the module docs). Cloning shares
/// the pool.
#[derive(Debug, Clone)]
pub struct BufferPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Bytes each buffer holds.
    size: usize,
    /// Most mappings (free and in use) at once; past it [`BufferPool::take`] says `None`
    /// and the caller uses the heap (keeps a producer with very many small batches away
    /// from the kernel's limit on mappings per process).
    max_mapped: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Buffers ready for reuse; the most recently returned last (taken first: its pages
    /// are the likeliest to be in the caches).
    free: Vec<MmapMut>,
    /// The fewest buffers `free` held since the last trim: that many were not needed.
    low_water: usize,
    last_trim: Option<Instant>,
    /// Mappings alive: in `free` or in use.
    mapped: usize,
}

impl BufferPool {
    /// A pool of buffers of at least `size` bytes (rounded up to whole pages), at most
    /// `max_mapped` of them mapped at once.
    pub fn new(size: usize, max_mapped: usize) -> Self {
        BufferPool {
            inner: Arc::new(Inner {
                size: size.max(1).div_ceil(PAGE) * PAGE,
                max_mapped,
                state: Mutex::new(State {
                    free: Vec::new(),
                    low_water: 0,
                    last_trim: None,
                    mapped: 0,
                }),
            }),
        }
    }

    /// Bytes each buffer holds.
    pub fn buffer_size(&self) -> usize {
        self.inner.size
    }

    /// A buffer (empty, its contents undefined until written), reused or newly mapped;
    /// `None` when `max_mapped` mappings are alive or the system refuses a new one.
    pub fn take(&self) -> Option<MappedBuf> {
        let mut st = self.inner.lock();
        if let Some(map) = st.free.pop() {
            st.low_water = st.low_water.min(st.free.len());
            drop(st);
            return Some(MappedBuf::new(map, self.inner.clone()));
        }
        if st.mapped >= self.inner.max_mapped {
            return None;
        }
        st.mapped += 1;
        drop(st);
        match MmapMut::map_anon(self.inner.size) {
            Ok(map) => Some(MappedBuf::new(map, self.inner.clone())),
            Err(e) => {
                tracing::debug!(error = %e, "no mapping for a batch buffer; using the heap");
                self.inner.lock().mapped -= 1;
                None
            }
        }
    }

    /// Unmaps the buffers that were not needed since the last trim, at most once per
    /// [`TRIM_INTERVAL`]. Returns when to call again (`None`: the pool is empty, nothing
    /// to trim until buffers come back; calling earlier is harmless).
    pub fn trim(&self, now: Instant) -> Option<Instant> {
        let released: Vec<MmapMut>;
        let next;
        {
            let mut st = self.inner.lock();
            let due = st.last_trim.map(|t| t + TRIM_INTERVAL);
            if let Some(at) = due.filter(|&at| now < at) {
                return (!st.free.is_empty()).then_some(at);
            }
            let n = st.low_water.min(st.free.len());
            // The least recently used ones (the front).
            released = st.free.drain(..n).collect();
            st.mapped -= n;
            st.low_water = st.free.len();
            st.last_trim = Some(now);
            next = (!st.free.is_empty()).then_some(now + TRIM_INTERVAL);
        }
        // The unmapping system calls outside the lock.
        drop(released);
        next
    }

    /// Mappings alive (free and in use).
    pub fn mapped(&self) -> usize {
        self.inner.lock().mapped
    }

    /// Buffers waiting in the pool.
    pub fn free(&self) -> usize {
        self.inner.lock().free.len()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn give_back(&self, map: MmapMut) {
        self.lock().free.push(map);
    }
}

/// One buffer of a [`BufferPool`], filled from the start; goes back to the pool when
/// dropped (directly, or as the owner of the [`Bytes`] made by [`MappedBuf::freeze`]).
#[derive(Debug)]
pub struct MappedBuf {
    /// Always `Some` until dropped.
    map: Option<MmapMut>,
    len: usize,
    pool: Arc<Inner>,
}

impl MappedBuf {
    fn new(map: MmapMut, pool: Arc<Inner>) -> Self {
        MappedBuf {
            map: Some(map),
            len: 0,
            pool,
        }
    }

    fn map(&self) -> &MmapMut {
        self.map.as_ref().expect("mapping present until dropped")
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the buffer holds.
    pub fn capacity(&self) -> usize {
        self.map().len()
    }

    /// Extends the written part by `n` bytes and returns them to be written, all of them:
    /// their contents are whatever an earlier batch left there. `None` (nothing changed)
    /// when they do not fit.
    pub fn extend(&mut self, n: usize) -> Option<&mut [u8]> {
        let start = self.len;
        let end = start.checked_add(n).filter(|&e| e <= self.capacity())?;
        self.len = end;
        let map = self.map.as_mut().expect("mapping present until dropped");
        Some(&mut map[start..end])
    }

    /// The written bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.map()[..self.len]
    }

    /// The written bytes, to change in place.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.map.as_mut().expect("mapping present until dropped")[..len]
    }

    /// A heap copy of the written bytes with room for `extra` more.
    pub fn to_heap(&self, extra: usize) -> BytesMut {
        let mut b = BytesMut::with_capacity(self.len + extra);
        b.extend_from_slice(self.as_slice());
        b
    }

    /// The written bytes as [`Bytes`], without a copy: the buffer returns to its pool when
    /// the last clone is dropped.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for MappedBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Drop for MappedBuf {
    fn drop(&mut self) {
        if let Some(map) = self.map.take() {
            self.pool.give_back(map);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_rounded_to_pages() {
        let pool = BufferPool::new(5000, 8);
        assert_eq!(pool.buffer_size(), 8192);
        let mut b = pool.take().expect("mapped");
        assert_eq!(b.capacity(), 8192);
        b.extend(3).unwrap().copy_from_slice(b"abc");
        let frozen = b.freeze();
        assert_eq!(&frozen[..], b"abc");
        let clone = frozen.clone();
        drop(frozen);
        assert_eq!(pool.free(), 0, "back only when the last clone is gone");
        drop(clone);
        assert_eq!((pool.free(), pool.mapped()), (1, 1));
        let again = pool.take().expect("reused");
        assert!(again.is_empty());
        assert_eq!((pool.free(), pool.mapped()), (0, 1), "no new mapping");
    }

    #[test]
    fn extend_past_the_end_changes_nothing() {
        let pool = BufferPool::new(4096, 1);
        let mut b = pool.take().unwrap();
        assert!(b.extend(4000).is_some());
        assert!(b.extend(97).is_none());
        assert_eq!(b.len(), 4000);
        assert!(b.extend(96).is_some());
        assert_eq!(b.len(), 4096);
    }

    #[test]
    fn at_max_mapped_take_says_none() {
        let pool = BufferPool::new(4096, 2);
        let (a, b) = (pool.take().unwrap(), pool.take().unwrap());
        assert!(pool.take().is_none());
        drop(a);
        assert!(pool.take().is_some(), "a free one is reused");
        drop(b);
    }

    #[test]
    fn trim_unmaps_what_sat_unused_for_an_interval() {
        let pool = BufferPool::new(4096, 16);
        let t0 = Instant::now();
        // A burst: four buffers in use at once, then all back.
        let bufs: Vec<_> = (0..4).map(|_| pool.take().unwrap()).collect();
        assert_eq!(pool.trim(t0), None, "nothing free yet");
        drop(bufs);
        assert_eq!(pool.mapped(), 4);
        // Within the interval nothing is unmapped.
        assert_eq!(pool.trim(t0 + TRIM_INTERVAL / 2), Some(t0 + TRIM_INTERVAL));
        assert_eq!(pool.mapped(), 4);
        // A light load goes on: one buffer at a time.
        let t1 = t0 + TRIM_INTERVAL;
        pool.trim(t1);
        assert_eq!(pool.mapped(), 4, "were in use during the last interval");
        drop(pool.take().unwrap());
        let t2 = t1 + TRIM_INTERVAL;
        assert_eq!(pool.trim(t2), Some(t2 + TRIM_INTERVAL));
        assert_eq!(
            (pool.mapped(), pool.free()),
            (1, 1),
            "the three not needed are unmapped, the one in use kept"
        );
        // Idle: the last one goes too.
        assert_eq!(pool.trim(t2 + TRIM_INTERVAL), None);
        assert_eq!(pool.mapped(), 0);
    }
}
