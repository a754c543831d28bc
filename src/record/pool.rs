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
    /// Buffers ready for reuse; the most recently returned taken first (its pages are the
    /// likeliest to be in the caches).
    free: FreeList<MmapMut>,
    /// Mappings alive: in `free` or in use.
    mapped: usize,
}

/// The free list of a buffer pool, and the trim rule both pools (this one and the consumer's
/// decompression buffers, `out_pool`) follow: a trim, at most once per [`TRIM_INTERVAL`],
/// lets go of as many buffers as the list never went below since the previous trim (they
/// were not needed), the least recently returned ones first.
#[derive(Debug)]
pub(crate) struct FreeList<T> {
    /// The most recently returned last.
    items: Vec<T>,
    /// The fewest items `items` held since the last trim.
    low_water: usize,
    last_trim: Option<Instant>,
}

impl<T> FreeList<T> {
    /// An empty list.
    pub(crate) const fn new() -> Self {
        FreeList {
            items: Vec::new(),
            low_water: 0,
            last_trim: None,
        }
    }

    /// Items waiting.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The item at `i` (see [`best`](Self::best)), taken out; the others keep their order.
    pub(crate) fn take(&mut self, i: usize) -> T {
        let item = self.items.remove(i);
        self.low_water = self.low_water.min(self.items.len());
        item
    }

    /// The most recently returned item, taken out.
    pub(crate) fn take_newest(&mut self) -> Option<T> {
        let i = self.items.len().checked_sub(1)?;
        Some(self.take(i))
    }

    /// Where the item with the smallest `key` among those that `fit` is, the most recently
    /// returned among equals.
    pub(crate) fn best(&self, fit: impl Fn(&T) -> bool, key: impl Fn(&T) -> usize) -> Option<usize> {
        self.items
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, t)| fit(t))
            .min_by_key(|(_, t)| key(t))
            .map(|(i, _)| i)
    }

    /// Returns `item` to the list; with `max` items there already, the least recently
    /// returned one makes room and is handed back to the caller (to free outside any lock).
    pub(crate) fn put(&mut self, item: T, max: usize) -> Option<T> {
        let evicted = (!self.items.is_empty() && self.items.len() >= max).then(|| self.take(0));
        self.items.push(item);
        evicted
    }

    /// The trim at `now`: the items to let go of (empty before the interval is over), and
    /// when to call again (`None`: nothing left to trim until items come back; calling
    /// earlier is harmless).
    pub(crate) fn trim(&mut self, now: Instant) -> (Vec<T>, Option<Instant>) {
        let due = self.last_trim.map(|t| t + TRIM_INTERVAL);
        if let Some(at) = due.filter(|&at| now < at) {
            return (Vec::new(), (!self.items.is_empty()).then_some(at));
        }
        let n = self.low_water.min(self.items.len());
        let released = self.items.drain(..n).collect();
        self.low_water = self.items.len();
        self.last_trim = Some(now);
        (released, (!self.items.is_empty()).then_some(now + TRIM_INTERVAL))
    }
}

/// What a [`FitPool`] needs to know of an item: how much it holds (bytes, elements).
pub(crate) trait Room {
    /// How much the item holds.
    fn room(&self) -> usize;
}

/// A [`FreeList`] behind a lock, of items of varied sizes, taken by best fit: the
/// consumer's decompression buffers (`out_pool`) and message vectors (`consumer::vec_pool`).
/// Items let go of (evicted from a full list, trimmed) are dropped outside the lock.
#[derive(Debug)]
pub(crate) struct FitPool<T> {
    free: Mutex<FreeList<T>>,
    /// Most items waiting.
    max_free: usize,
}

impl<T: Room> FitPool<T> {
    /// An empty pool keeping at most `max_free` items.
    pub(crate) const fn new(max_free: usize) -> Self {
        FitPool {
            free: Mutex::new(FreeList::new()),
            max_free,
        }
    }

    fn lock(&self) -> MutexGuard<'_, FreeList<T>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A waiting item with room for `need` to four times `need` (the smallest such, the
    /// most recently returned among equals), taken out; `None` when none fits.
    pub(crate) fn take(&self, need: usize) -> Option<T> {
        let mut free = self.lock();
        let fits = |t: &T| t.room() >= need && t.room() / 4 <= need;
        let i = free.best(fits, T::room)?;
        Some(free.take(i))
    }

    /// Keeps `item` for a later [`take`](Self::take); when full, the least recently returned
    /// one makes room.
    pub(crate) fn put(&self, item: T) {
        let evicted = self.lock().put(item, self.max_free);
        drop(evicted);
    }

    /// Lets go of the items not needed since the last trim (at most once per
    /// [`TRIM_INTERVAL`]).
    pub(crate) fn trim(&self, now: Instant) {
        let (released, _) = self.lock().trim(now);
        drop(released);
    }

    /// Items waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
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
                    free: FreeList::new(),
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
        if let Some(map) = st.free.take_newest() {
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
        let (released, next) = {
            let mut st = self.inner.lock();
            let (released, next) = st.free.trim(now);
            st.mapped -= released.len();
            (released, next)
        };
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
        // Never more free than mapped: nothing is evicted.
        let _ = self.lock().free.put(map, usize::MAX);
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
    fn free_list_keeps_return_order_when_one_is_taken_from_the_middle() {
        let mut l = FreeList::new();
        for i in 1..=4 {
            assert_eq!(l.put(i, 4), None);
        }
        assert_eq!(l.best(|&i| i % 2 == 0, |&i| i), Some(1), "2 is the smallest even");
        assert_eq!(l.take(1), 2);
        assert_eq!(l.put(5, 4), None);
        // Full: the least recently returned go first, 1 and then 3 (not 4, which came back
        // after it).
        assert_eq!(l.put(6, 4), Some(1));
        assert_eq!(l.put(7, 4), Some(3));
        assert_eq!(l.take_newest(), Some(7));
        assert_eq!(l.len(), 3);
    }

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
