//! Fuzz harness shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and the
//! stable-Rust robustness tests (`tests/decode_robustness.rs`, which includes this file with
//! `#[path]`). It depends only on `kafka_sdk`, `kafka_protocol` and `bytes`, so it compiles
//! in both places.
//!
//! Every `fuzz_*` function takes arbitrary bytes and panics only when a property is violated:
//! a decoder panicked, returned something inconsistent, or allocated more than its input
//! can justify. Decoding errors are the expected outcome for garbage and are ignored.
//!
//! Allocation sizes are watched by [`GuardAlloc`], which binaries install as their global
//! allocator. It records, per thread, the largest single allocation made, and serves
//! allocations of [`HUGE_ALLOCATION`] bytes or more from reserved-but-untouched address
//! space (`mmap` with `MAP_NORESERVE`) so that a decoder pre-allocating a multi-gigabyte
//! `Vec` from a length field is *reported* instead of aborting the whole process.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use kafka_protocol::messages::{self as m, ApiKey};
use kafka_sdk::consumer::assignor::{Assignment, Subscription};
use kafka_sdk::protocol::{client_versions, decode_response};
use kafka_sdk::record::{
    compress, control_record_type, decode_batches, decompress, BatchBuilder, BatchParams,
    Compression, DecodeOptions, RecordBatch, TimestampType,
};

/// Decompression cap used by the targets (the brief's `max_decompressed`).
pub const MAX_DECOMPRESSED: usize = 1 << 20;

/// A single allocation at least this large is "huge": no decoder of ours may make one for
/// inputs of fuzzing size (a few KiB to 1 MiB).
pub const HUGE_ALLOCATION: usize = 64 << 20;

/// The codecs, indexed by the first input byte of the `decompress` target.
pub const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// The responses this client decodes, indexed by the first input byte of the `responses`
/// target.
pub const RESPONSE_APIS: [ApiKey; 19] = [
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::Metadata,
    ApiKey::ApiVersions,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListOffsets,
    ApiKey::InitProducerId,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::TxnOffsetCommit,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
];

/// Whether huge allocations made *inside kafka-protocol's response decoders* fail the
/// `responses` target. kafka-protocol 0.18.0 reserved `Vec::with_capacity(count)` with the
/// array count read off the wire, so a response of a few bytes could request gigabytes and
/// abort the process; the patched copy in `vendor/kafka-protocol` bounds it (PATCHED.md), so
/// this is strict. `kafka_protocol_array_count_does_not_preallocate` in
/// `tests/decode_robustness.rs` is the regression test.
pub const STRICT_RESPONSE_ALLOCATIONS: bool = true;

// ---------------------------------------------------------------------------------------
// Allocation guard
// ---------------------------------------------------------------------------------------

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static HUGE_COUNT: Cell<usize> = const { Cell::new(0) };
}

/// The global allocator of the fuzz targets and of the robustness tests: `System`, plus
/// per-thread accounting of the largest allocation and a rescue path for huge ones.
pub struct GuardAlloc;

fn note_size(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    if size >= HUGE_ALLOCATION {
        let _ = HUGE_COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

/// Runs `f` and returns its result with the largest single allocation it made on this
/// thread.
pub fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = LARGEST.with(|l| l.replace(0));
    let r = f();
    let largest = LARGEST.with(|l| l.replace(before.max(l.get())));
    (r, largest)
}

/// Number of huge allocations made on this thread so far.
pub fn huge_allocations() -> usize {
    HUGE_COUNT.with(|c| c.get())
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod reserve {
    use std::ffi::c_void;

    extern "C" {
        fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: i32,
            flags: i32,
            fd: i32,
            off: i64,
        ) -> *mut c_void;
        fn munmap(addr: *mut c_void, len: usize) -> i32;
    }
    const PROT_READ: i32 = 1;
    const PROT_WRITE: i32 = 2;
    const MAP_PRIVATE: i32 = 0x02;
    const MAP_ANONYMOUS: i32 = 0x20;
    const MAP_NORESERVE: i32 = 0x4000;
    const PAGE: usize = 4096;

    /// Reserves `size` bytes of zeroed address space without committing memory; only the
    /// pages actually written become resident.
    pub unsafe fn alloc(size: usize, align: usize) -> *mut u8 {
        if align > PAGE {
            return std::ptr::null_mut();
        }
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
        let p = unsafe {
            mmap(
                std::ptr::null_mut(),
                size,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p as isize == -1 {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }

    pub unsafe fn free(p: *mut u8, size: usize) {
        // SAFETY: `p`/`size` come from a successful `alloc` above.
        unsafe { munmap(p.cast(), size) };
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
mod reserve {
    use std::alloc::{GlobalAlloc, Layout, System};

    pub unsafe fn alloc(size: usize, align: usize) -> *mut u8 {
        // SAFETY: forwarded to the system allocator with a valid layout.
        unsafe { System.alloc_zeroed(Layout::from_size_align_unchecked(size, align)) }
    }

    pub unsafe fn free(p: *mut u8, size: usize) {
        // SAFETY: allocated by `alloc` above with this size (alignment is not used by the
        // system allocator's free).
        unsafe { System.dealloc(p, Layout::from_size_align_unchecked(size, 1)) }
    }
}

// SAFETY: every pointer handed out comes from `System` (sizes below `HUGE_ALLOCATION`) or
// from `reserve::alloc` (sizes at or above it), and is released by the same one, chosen by
// the size of the layout, which the caller passes back unchanged.
unsafe impl GlobalAlloc for GuardAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_size(layout.size());
        if layout.size() >= HUGE_ALLOCATION {
            // SAFETY: size and alignment of a valid layout.
            unsafe { reserve::alloc(layout.size(), layout.align()) }
        } else {
            // SAFETY: forwarded.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_size(layout.size());
        if layout.size() >= HUGE_ALLOCATION {
            // SAFETY: as in `alloc`; fresh mappings are zeroed.
            unsafe { reserve::alloc(layout.size(), layout.align()) }
        } else {
            // SAFETY: forwarded.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= HUGE_ALLOCATION {
            // SAFETY: allocated by `reserve::alloc` with this size.
            unsafe { reserve::free(ptr, layout.size()) }
        } else {
            // SAFETY: forwarded.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() < HUGE_ALLOCATION && new_size < HUGE_ALLOCATION {
            note_size(new_size);
            // SAFETY: forwarded; both sizes are served by `System`.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: `new_size` with the old alignment is a valid layout (`realloc` contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: valid layout.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and at least `min(old, new)` bytes long.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

// ---------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------

/// Runs `f` and fails if it made a huge allocation.
fn bounded<R>(what: &str, input_len: usize, f: impl FnOnce() -> R) -> R {
    let (r, largest) = largest_allocation(f);
    assert!(
        largest < HUGE_ALLOCATION,
        "{what}: a single allocation of {largest} bytes for an input of {input_len} bytes"
    );
    r
}

/// `record_batches` target: iterates `decode_batches` over `data` with and without CRC
/// checks.
pub fn fuzz_record_batches(data: &[u8]) {
    bounded("decode_batches", data.len(), || {
        check_batches(Bytes::copy_from_slice(data))
    });
}

/// Decodes every batch of `data` with and without CRC checks and checks the results'
/// invariants; returns the batches decoded without CRC checks.
pub fn check_batches(data: Bytes) -> Vec<RecordBatch> {
    let mut runs: Vec<Vec<RecordBatch>> = Vec::new();
    for check_crc in [false, true] {
        let opts = DecodeOptions {
            check_crc,
            max_decompressed: MAX_DECOMPRESSED,
        };
        let mut it = decode_batches(data.clone(), &opts);
        let mut ok = Vec::new();
        let mut steps = 0usize;
        let mut consumed = 0;
        for item in it.by_ref() {
            steps += 1;
            // Every batch takes at least a 61-byte header: the iteration must end.
            assert!(
                steps <= data.len() / 61 + 1,
                "decode_batches does not advance"
            );
            match item {
                Ok(batch) => {
                    check_batch(&batch);
                    consumed += batch.size_bytes;
                    ok.push(batch);
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
        assert!(it.consumed() <= data.len());
        // A batch that failed to decode still counts as consumed.
        assert!(
            it.consumed() >= consumed,
            "consumed() is less than the batches returned"
        );
        runs.push(ok);
    }
    // Checking CRCs only rejects batches: what passes is what decodes without the check.
    let (without, with) = (&runs[0], &runs[1]);
    assert!(with.len() <= without.len());
    assert_eq!(
        &without[..with.len()],
        &with[..],
        "CRC check changed a decoded batch"
    );
    runs.swap_remove(0)
}

fn check_batch(b: &RecordBatch) {
    assert!(b.size_bytes >= 61);
    let _ = (b.compression(), b.timestamp_type(), b.has_delete_horizon());
    let _ = (b.next_offset(), b.last_offset(), b.is_transactional());
    // A record takes at least 7 bytes of the (at most MAX_DECOMPRESSED) records section.
    assert!(b.records.len() <= MAX_DECOMPRESSED.max(b.size_bytes) / 7 + 1);
    for r in &b.records {
        if b.is_control() {
            if let Some(k) = &r.key {
                let _ = control_record_type(k);
            }
        }
        for h in &r.headers {
            let _ = h.key_str();
        }
    }
    reencode(b);
}

/// Our encoder round trip: a decoded batch whose records `BatchBuilder` can express
/// (CreateTime, contiguous offsets, UTF-8 header keys) re-encodes to the same records.
fn reencode(b: &RecordBatch) {
    if b.records.is_empty() || b.timestamp_type() != TimestampType::CreateTime {
        return;
    }
    let contiguous = b
        .records
        .iter()
        .enumerate()
        .all(|(i, r)| r.offset == b.base_offset.wrapping_add(i as i64));
    let utf8_keys = b
        .records
        .iter()
        .all(|r| r.headers.iter().all(|h| h.key_str().is_ok()));
    if !contiguous || !utf8_keys {
        return;
    }
    let mut builder = BatchBuilder::new(b.base_timestamp, 0);
    for r in &b.records {
        let headers: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|h| (h.key_str().unwrap(), h.value.as_deref()))
            .collect();
        builder.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &headers);
    }
    let encoded = builder
        .seal(&BatchParams::default())
        .expect("re-encoding decoded records");
    let again: Vec<_> = decode_batches(encoded, &DecodeOptions::default())
        .collect::<Result<_, _>>()
        .expect("decoding a freshly sealed batch");
    assert_eq!(again.len(), 1);
    let again = &again[0];
    assert_eq!(again.records.len(), b.records.len());
    for (x, y) in again.records.iter().zip(&b.records) {
        assert_eq!(x.offset, y.offset - b.base_offset);
        assert_eq!(
            (x.timestamp, &x.key, &x.value),
            (y.timestamp, &y.key, &y.value)
        );
        assert_eq!(x.headers, y.headers);
    }
}

/// `decompress` target: the first byte picks the codec (and a second, smaller cap), the
/// rest is the compressed input.
pub fn fuzz_decompress(data: &[u8]) {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let codec = CODECS[sel as usize % CODECS.len()];
    let small_cap = (sel as usize >> 3) * 61;
    bounded("decompress", data.len(), || {
        let big = decompress(codec, input, MAX_DECOMPRESSED);
        if let Ok(out) = &big {
            assert!(
                out.len() <= MAX_DECOMPRESSED,
                "{codec}: output over the cap"
            );
        }
        let small = decompress(codec, input, small_cap);
        match (&small, &big) {
            (Ok(s), Ok(b)) => assert_eq!(s, b, "{codec}: result depends on the cap"),
            // A smaller cap may stop reading before a corrupt trailer is seen (zstd checks
            // the declared content size only when asked for more output): both fine.
            (Ok(_), Err(_)) => {}
            (Err(_), Ok(b)) => assert!(b.len() > small_cap || codec == Compression::Gzip),
            (Err(_), Err(_)) => {}
        }
        if let Ok(s) = &small {
            assert!(s.len() <= small_cap, "{codec}: output over the cap");
        }
        // Our encoder round trip on the same bytes.
        let mut packed = bytes::BytesMut::new();
        compress(codec, None, input, &mut packed).expect("compressing");
        let unpacked =
            decompress(codec, &packed, input.len().max(1)).expect("decompressing our output");
        assert_eq!(&unpacked[..], input, "{codec}: round trip");
    });
}

/// Picks an API and a version from the first two input bytes; the rest is a response body
/// (response header included, size prefix excluded).
pub fn select_response(data: &[u8]) -> Option<(ApiKey, i16, &[u8])> {
    let (&a, rest) = data.split_first()?;
    let (&v, body) = rest.split_first()?;
    let key = RESPONSE_APIS[a as usize % RESPONSE_APIS.len()];
    let (min, max) = client_versions(key)?;
    let version = min + (v as i16 % (max - min + 1));
    Some((key, version, body))
}

/// The two selector bytes [`select_response`] maps to `key` at `version`.
pub fn response_selector(key: ApiKey, version: i16) -> [u8; 2] {
    let a = RESPONSE_APIS.iter().position(|k| *k == key).expect("api") as u8;
    let (min, _) = client_versions(key).expect("versions");
    [a, (version - min) as u8]
}

/// Decodes a response of `key` at `version` as the client would, discarding it; for Fetch,
/// also decodes the records of every partition. Returns whether the response decoded.
pub fn decode_any_response(key: ApiKey, version: i16, body: Bytes) -> bool {
    macro_rules! dec {
        ($t:ty) => {
            decode_response::<$t>(key, version, body).is_ok()
        };
    }
    match key {
        ApiKey::Produce => dec!(m::ProduceResponse),
        ApiKey::Fetch => match decode_response::<m::FetchResponse>(key, version, body) {
            Ok(resp) => {
                for t in &resp.responses {
                    for p in &t.partitions {
                        if let Some(records) = &p.records {
                            check_batches(records.clone());
                        }
                    }
                }
                true
            }
            Err(_) => false,
        },
        ApiKey::Metadata => dec!(m::MetadataResponse),
        ApiKey::ApiVersions => dec!(m::ApiVersionsResponse),
        ApiKey::FindCoordinator => dec!(m::FindCoordinatorResponse),
        ApiKey::JoinGroup => match decode_response::<m::JoinGroupResponse>(key, version, body) {
            Ok(resp) => {
                for member in &resp.members {
                    let _ = Subscription::decode(&member.metadata);
                }
                true
            }
            Err(_) => false,
        },
        ApiKey::SyncGroup => match decode_response::<m::SyncGroupResponse>(key, version, body) {
            Ok(resp) => {
                let _ = Assignment::decode(&resp.assignment);
                true
            }
            Err(_) => false,
        },
        ApiKey::Heartbeat => dec!(m::HeartbeatResponse),
        ApiKey::LeaveGroup => dec!(m::LeaveGroupResponse),
        ApiKey::OffsetCommit => dec!(m::OffsetCommitResponse),
        ApiKey::OffsetFetch => dec!(m::OffsetFetchResponse),
        ApiKey::ListOffsets => dec!(m::ListOffsetsResponse),
        ApiKey::InitProducerId => dec!(m::InitProducerIdResponse),
        ApiKey::AddPartitionsToTxn => dec!(m::AddPartitionsToTxnResponse),
        ApiKey::AddOffsetsToTxn => dec!(m::AddOffsetsToTxnResponse),
        ApiKey::EndTxn => dec!(m::EndTxnResponse),
        ApiKey::TxnOffsetCommit => dec!(m::TxnOffsetCommitResponse),
        ApiKey::CreateTopics => dec!(m::CreateTopicsResponse),
        ApiKey::DeleteTopics => dec!(m::DeleteTopicsResponse),
        other => panic!("no decoder for {other:?}"),
    }
}

/// `responses` target.
pub fn fuzz_responses(data: &[u8]) {
    let Some((key, version, body)) = select_response(data) else {
        return;
    };
    let body = Bytes::copy_from_slice(body);
    if STRICT_RESPONSE_ALLOCATIONS {
        bounded("decode_response", data.len(), || {
            decode_any_response(key, version, body)
        });
    } else {
        decode_any_response(key, version, body);
    }
}

/// `consumer_protocol` target: the whole input as a subscription and as an assignment;
/// whatever decodes must survive an encode/decode round trip.
pub fn fuzz_consumer_protocol(data: &[u8]) {
    bounded("consumer protocol", data.len(), || {
        if let Ok(s) = Subscription::decode(data) {
            let again = Subscription::decode(&s.encode(3)).expect("re-decoding a subscription");
            let mut a = s.clone();
            let mut b = again;
            a.topics.sort();
            b.topics.sort();
            a.owned_partitions.sort();
            b.owned_partitions.sort();
            assert_eq!(a.topics, b.topics);
            assert_eq!(a.user_data, b.user_data);
            assert_eq!(a.generation_id, b.generation_id);
            assert_eq!(a.rack_id, b.rack_id);
            // Encoding groups owned partitions by topic; duplicates stay duplicates.
            assert_eq!(a.owned_partitions.len(), b.owned_partitions.len());
        }
        if let Ok(a) = Assignment::decode(data) {
            let again = Assignment::decode(&a.encode(3)).expect("re-decoding an assignment");
            let (mut x, mut y) = (a.partitions.clone(), again.partitions);
            x.sort();
            y.sort();
            assert_eq!(x, y);
            assert_eq!(a.user_data, again.user_data);
        }
    });
}
