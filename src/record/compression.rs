//! Compression codecs of record batches, written the way the Java client writes them.
//!
//! - gzip: a gzip stream (`flate2`), default level 6 (zlib's default, which Java uses);
//!   concatenated gzip members are read as one stream, as Java's `GZIPInputStream` does.
//! - snappy: Java/xerial framing (`\x82SNAPPY\0`, version 1, compatible version 1, then
//!   blocks of `[BE u32 length][raw snappy block]` over 32 KiB input chunks); reading also
//!   accepts a bare raw snappy block, as xerial's reader does.
//! - lz4: the LZ4 *frame* format with independent 64 KiB blocks and no checksums, as Java
//!   writes it; reading accepts any valid frame (checksums, content size, linked blocks):
//!   frames of independent blocks are decompressed block by block straight into the output,
//!   others through `lz4_flex`'s frame decoder.
//!   `lz4_flex` has only the fast compressor, so an LZ4 level is validated and then ignored.
//! - zstd: a zstd frame, default level 3 (Java's default).
//!
//! Decompression never trusts sizes declared by the input beyond the caller's cap: output is
//! produced by streaming decoders, checked block by block (lz4, snappy), or written by zstd
//! into a buffer of at most the cap plus one byte, and stops with an error as soon as it
//! would exceed the cap, which bounds memory against decompression bombs. lz4 and zstd
//! output goes into buffers reused across batches (`out_pool`).
//!
//! Each codec is behind the crate feature of the same name (`gzip`, `snappy`, `lz4`, `zstd`;
//! all on by default). Compressing or decompressing with a codec whose feature is off is
//! [`Error::CodecDisabled`].

#[cfg(any(feature = "lz4", feature = "zstd"))]
use std::cell::RefCell;
#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
use std::io::Read;
#[cfg(feature = "gzip")]
use std::io::Write;

#[cfg(any(feature = "gzip", feature = "snappy", feature = "lz4"))]
use bytes::BufMut;
use bytes::{Bytes, BytesMut};

use crate::error::{Error, Result};

/// Compression codec of a record batch (attribute bits 0..=2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (0).
    #[default]
    None,
    /// gzip (1).
    Gzip,
    /// snappy, xerial-framed (2).
    Snappy,
    /// LZ4 frame format (3).
    Lz4,
    /// zstd (4).
    Zstd,
}

impl Compression {
    /// The codec named by the low three bits of batch `attributes`.
    ///
    /// Errors (protocol) on the unassigned values 5, 6 and 7.
    pub fn from_attributes(attributes: i16) -> Result<Compression> {
        match attributes & 0x07 {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(Error::Protocol(format!(
                "unknown compression codec {other} in record batch attributes"
            ))),
        }
    }

    /// The attribute bits of this codec (0..=4).
    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Whether this build can compress and decompress with the codec: `None` always, the
    /// others when the crate feature of the same name (`gzip`, `snappy`, `lz4`, `zstd`) is on.
    pub fn is_enabled(self) -> bool {
        match self {
            Compression::None => true,
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Snappy => cfg!(feature = "snappy"),
            Compression::Lz4 => cfg!(feature = "lz4"),
            Compression::Zstd => cfg!(feature = "zstd"),
        }
    }

    /// The codec's name as used by Kafka's `compression.type` (`none`, `gzip`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Default gzip level (zlib's default, used by Java's `Deflater.DEFAULT_COMPRESSION`).
pub const GZIP_DEFAULT_LEVEL: i32 = 6;
/// Default zstd level (Java's default).
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

/// Xerial snappy stream magic.
pub const SNAPPY_XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Length of the xerial header: magic, BE i32 version, BE i32 compatible version.
#[cfg(feature = "snappy")]
const SNAPPY_XERIAL_HEADER_LEN: usize = 16;
/// Input chunk size of xerial snappy blocks (the Java default).
#[cfg(feature = "snappy")]
const SNAPPY_XERIAL_BLOCK: usize = 32 * 1024;

/// The error for a codec whose crate feature is off (the feature has the codec's name).
fn disabled(codec: Compression) -> Error {
    Error::CodecDisabled {
        codec: codec.name(),
        feature: codec.name(),
    }
}

/// Refuses a codec whose crate feature is off.
fn ensure_enabled(codec: Compression) -> Result<()> {
    if codec.is_enabled() {
        Ok(())
    } else {
        Err(disabled(codec))
    }
}

/// Validates `level` for `codec`, returning the level to use.
fn resolve_level(codec: Compression, level: Option<i32>) -> Result<i32> {
    match codec {
        Compression::None | Compression::Snappy => Ok(0),
        Compression::Gzip => match level {
            None | Some(-1) => Ok(GZIP_DEFAULT_LEVEL),
            Some(l @ 1..=9) => Ok(l),
            Some(l) => Err(Error::InvalidArgument(format!(
                "gzip compression level {l} is out of range (1..=9, or -1 for the default)"
            ))),
        },
        Compression::Lz4 => match level {
            None => Ok(9),
            Some(l @ 1..=17) => Ok(l),
            Some(l) => Err(Error::InvalidArgument(format!(
                "lz4 compression level {l} is out of range (1..=17)"
            ))),
        },
        #[cfg(not(feature = "zstd"))]
        Compression::Zstd => Err(disabled(codec)),
        #[cfg(feature = "zstd")]
        Compression::Zstd => {
            let range = zstd::compression_level_range();
            match level {
                None => Ok(ZSTD_DEFAULT_LEVEL),
                Some(l) if range.contains(&l) => Ok(l),
                Some(l) => Err(Error::InvalidArgument(format!(
                    "zstd compression level {l} is out of range ({}..={})",
                    range.start(),
                    range.end()
                ))),
            }
        }
    }
}

/// Compresses `input` with `codec`, appending the result to `out`.
///
/// `level` of `None` means the codec's default; levels are validated per codec (gzip 1..=9 or
/// -1, lz4 1..=17 (accepted but ignored), zstd per the zstd library) and ignored for `None`
/// and snappy. `Compression::None` copies the input. A codec whose crate feature is off is
/// [`Error::CodecDisabled`].
pub fn compress(
    codec: Compression,
    level: Option<i32>,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<()> {
    ensure_enabled(codec)?;
    // Validated for every codec; only gzip and zstd use it.
    #[cfg_attr(not(any(feature = "gzip", feature = "zstd")), allow(unused_variables))]
    let level = resolve_level(codec, level)?;
    match codec {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        #[cfg(feature = "gzip")]
        Compression::Gzip => {
            out.reserve(input.len() / 2 + 64);
            let mut enc =
                flate2::write::GzEncoder::new(out.writer(), flate2::Compression::new(level as u32));
            enc.write_all(input)
                .and_then(|_| enc.finish().map(|_| ()))
                .map_err(|e| Error::Protocol(format!("gzip compression failed: {e}")))
        }
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy_xerial_compress(input, out),
        #[cfg(feature = "lz4")]
        Compression::Lz4 => lz4_compress(input, out),
        #[cfg(feature = "zstd")]
        Compression::Zstd => zstd_compress(level, input, out),
        // Codecs whose feature is off (already refused by `ensure_enabled`).
        #[allow(unreachable_patterns)]
        _ => Err(disabled(codec)),
    }
}

/// Largest block of an lz4 frame as Kafka writes them (`BD` = 64 KiB).
#[cfg(feature = "lz4")]
const LZ4_BLOCK_MAX: usize = 64 * 1024;

/// The lz4 frame header Kafka's clients write: magic, `FLG` = version 01 with independent
/// blocks and no checksums or content size, `BD` = 64 KiB blocks, and the header checksum
/// (second byte of the xxHash32 of `FLG` and `BD`; test `lz4_frames_match_lz4_flex`).
#[cfg(feature = "lz4")]
const LZ4_FRAME_HEADER: [u8; 7] = [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82];

#[cfg(feature = "lz4")]
thread_local! {
    /// Output space for one compressed lz4 block, zero-filled once per thread.
    static LZ4_BLOCK: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// An lz4 frame of `input` appended to `out`: the header, each 64 KiB block compressed (or
/// stored, when that is not smaller) behind its length, the end mark. Written here rather
/// than through `lz4_flex`'s frame encoder, which copies the input into its own buffer first
/// and allocates its buffers and hash table per frame (per batch): ~3 % of the client's CPU
/// at C-lz4 / 100 B.
#[cfg(feature = "lz4")]
fn lz4_compress(input: &[u8], out: &mut BytesMut) -> Result<()> {
    out.reserve(LZ4_FRAME_HEADER.len() + input.len() / 2 + 64);
    out.put_slice(&LZ4_FRAME_HEADER);
    LZ4_BLOCK.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.is_empty() {
            scratch.resize(lz4_flex::block::get_maximum_output_size(LZ4_BLOCK_MAX), 0);
        }
        for block in input.chunks(LZ4_BLOCK_MAX) {
            let n = lz4_flex::block::compress_into(block, &mut scratch)
                .map_err(|e| Error::Protocol(format!("lz4 compression failed: {e}")))?;
            if n < block.len() {
                out.put_u32_le(n as u32);
                out.put_slice(&scratch[..n]);
            } else {
                out.put_u32_le(block.len() as u32 | 0x8000_0000);
                out.put_slice(block);
            }
        }
        Ok::<(), Error>(())
    })?;
    out.put_u32_le(0); // end mark
    Ok(())
}

#[cfg(feature = "zstd")]
thread_local! {
    /// One zstd compression context per thread, reused across batches (creating one costs
    /// more than compressing a small batch).
    static ZSTD_CCTX: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
}

#[cfg(feature = "zstd")]
thread_local! {
    /// Where [`zstd_compress`] compresses to (kept per thread up to [`ZSTD_SCRATCH_KEEP`]).
    static ZSTD_OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Scratch space above this is freed after use.
#[cfg(feature = "zstd")]
const ZSTD_SCRATCH_KEEP: usize = 4 << 20;

#[cfg(feature = "zstd")]
fn zstd_compress(level: i32, input: &[u8], out: &mut BytesMut) -> Result<()> {
    let err = |e: std::io::Error| Error::Protocol(format!("zstd compression failed: {e}"));
    ZSTD_CCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressor = match &mut *slot {
            Some((l, c)) => {
                if *l != level {
                    c.set_compression_level(level).map_err(err)?;
                    *l = level;
                }
                c
            }
            None => {
                let c = zstd::bulk::Compressor::new(level).map_err(err)?;
                &mut slot.insert((level, c)).1
            }
        };
        // Compressed into this thread's scratch vector (written into its spare capacity: no
        // zero-filling of the worst-case size first, which cost ~2 % of the client's CPU at
        // C-zstd / 100 B), then copied after what `out` holds (a fraction of the input).
        ZSTD_OUT.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            let bound = zstd::zstd_safe::compress_bound(input.len());
            scratch.reserve(bound);
            let r = compressor.compress_to_buffer(input, &mut *scratch);
            let r = r.map(|n| out.extend_from_slice(&scratch[..n])).map_err(err);
            // A rare huge batch does not pin its scratch space to the thread.
            if scratch.capacity() > ZSTD_SCRATCH_KEEP {
                *scratch = Vec::new();
            }
            r
        })
    })
}

#[cfg(feature = "snappy")]
fn snappy_xerial_compress(input: &[u8], out: &mut BytesMut) -> Result<()> {
    out.reserve(SNAPPY_XERIAL_HEADER_LEN + input.len() / 2 + 64);
    out.put_slice(&SNAPPY_XERIAL_MAGIC);
    out.put_i32(1); // version
    out.put_i32(1); // minimum compatible version
    let mut enc = snap::raw::Encoder::new();
    for chunk in input.chunks(SNAPPY_XERIAL_BLOCK) {
        let len_at = out.len();
        let max = snap::raw::max_compress_len(chunk.len());
        out.resize(len_at + 4 + max, 0);
        let n = enc
            .compress(chunk, &mut out[len_at + 4..])
            .map_err(|e| Error::Protocol(format!("snappy compression failed: {e}")))?;
        out[len_at..len_at + 4].copy_from_slice(&(n as u32).to_be_bytes());
        out.truncate(len_at + 4 + n);
    }
    Ok(())
}

/// Decompresses `input` (a whole compressed records section) with `codec`.
///
/// Output larger than `max_output` bytes is an error naming the cap; decoding stops there,
/// so memory use stays bounded by the cap whatever sizes the input declares. Truncated or
/// corrupt input is a [`Error::Protocol`]. `Compression::None` returns a copy of the input
/// (subject to the cap). A codec whose crate feature is off is [`Error::CodecDisabled`].
pub fn decompress(codec: Compression, input: &[u8], max_output: usize) -> Result<Bytes> {
    ensure_enabled(codec)?;
    if codec != Compression::None && input.is_empty() {
        return Err(Error::Protocol(format!(
            "{codec}: compressed data is empty"
        )));
    }
    #[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
    let hint = input.len().saturating_mul(4);
    match codec {
        Compression::None => {
            if input.len() > max_output {
                return Err(too_large(codec, max_output));
            }
            Ok(Bytes::copy_from_slice(input))
        }
        #[cfg(feature = "gzip")]
        Compression::Gzip => read_capped(
            flate2::read::MultiGzDecoder::new(input),
            codec,
            max_output,
            hint,
        ),
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy_decompress(input, max_output),
        #[cfg(feature = "lz4")]
        Compression::Lz4 => {
            if let Some(out) = lz4_frames(input, Some((max_output, hint)))? {
                return Ok(out);
            }
            lz4_frames(input, None)?;
            read_capped(
                lz4_flex::frame::FrameDecoder::new(input),
                codec,
                max_output,
                hint,
            )
        }
        #[cfg(feature = "zstd")]
        Compression::Zstd => zstd_decompress(input, max_output, hint),
        // Codecs whose feature is off (already refused by `ensure_enabled`).
        #[allow(unreachable_patterns)]
        _ => Err(disabled(codec)),
    }
}

fn too_large(codec: Compression, max_output: usize) -> Error {
    Error::Protocol(format!(
        "{codec}: decompressed data exceeds the cap of {max_output} bytes"
    ))
}

/// Reads `reader` to its end, failing once more than `cap` bytes come out.
#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
fn read_capped<R: Read>(reader: R, codec: Compression, cap: usize, hint: usize) -> Result<Bytes> {
    let mut out = Vec::with_capacity(hint.min(cap).min(1 << 20));
    let mut limited = reader.take((cap as u64).saturating_add(1));
    limited
        .read_to_end(&mut out)
        .map_err(|e| Error::Protocol(format!("{codec}: corrupt compressed data: {e}")))?;
    if out.len() > cap {
        return Err(too_large(codec, cap));
    }
    Ok(Bytes::from(out))
}

/// The error for malformed lz4 `input`: `what` is wrong at byte `at`.
#[cfg(feature = "lz4")]
fn lz4_corrupt(input: &[u8], what: &str, at: usize) -> Error {
    Error::Protocol(format!("lz4: {what} at byte {at} of {}", input.len()))
}

/// Largest decompressed size of one block of a frame whose `BD` byte is `bd` (bits 4..=6:
/// 4 = 64 KiB, 5 = 256 KiB, 6 = 1 MiB, 7 = 4 MiB; other values are invalid).
#[cfg(feature = "lz4")]
fn lz4_block_max(bd: u8) -> Option<usize> {
    match (bd >> 4) & 0x07 {
        n @ 4..=7 => Some(1 << (8 + 2 * n as u32)),
        _ => None,
    }
}

/// One lz4 block decompressed into `out` (`lz4_flex`'s block decoder). Not inlined: inlined
/// into [`decompress`] the decoder's short copies became `memmove` calls (25-37 % slower in
/// the `codecs` benchmark than the frame decoder it replaces).
#[cfg(feature = "lz4")]
#[inline(never)]
fn lz4_block_into(
    block: &[u8],
    out: &mut [u8],
) -> std::result::Result<usize, lz4_flex::block::DecompressError> {
    lz4_flex::block::decompress_into(block, out)
}

/// The one walker of the lz4 frame layout (magic, descriptor, block lengths, checksums, end
/// marks; skippable frames), with every length checked against the input, so truncated
/// input is an error: `lz4_flex`'s frame decoder alone treats input ending between blocks
/// as a clean end.
///
/// With `decode = Some((cap, hint))` it also decompresses: each block straight into the
/// output (after the header checksum and, when the frame carries them, each block's
/// checksum are verified; the content checksum and a declared content size are checked at
/// the frame's end), and returns `Some(data)`. It returns `None` on meeting a frame it does
/// not read itself (linked blocks, a dictionary, reserved bits set, an invalid block size:
/// the Java client, librdkafka, franz-go and kafka-sdk write none of those); the caller then
/// walks again with `decode = None` (structure only, always `None`) and hands the input to
/// `lz4_flex`'s frame decoder.
///
/// The frame decoder decompressed each block into a buffer of its own (allocated per frame),
/// copied it out, and `read_to_end` zero-filled the output first: 9.4 % and 3.3 % of a
/// consumer's samples reading lz4 batches of 100 B records.
#[cfg(feature = "lz4")]
fn lz4_frames(input: &[u8], decode: Option<(usize, usize)>) -> Result<Option<Bytes>> {
    use std::hash::Hasher;
    use twox_hash::XxHash32;
    let corrupt = |what: &str, at: usize| lz4_corrupt(input, what, at);
    let u32_at = |pos: usize| -> Option<u32> {
        input
            .get(pos..pos.checked_add(4)?)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let decoding = decode.is_some();
    let (cap, hint) = decode.unwrap_or((0, 0));
    // `out[..filled]` is the output; `out` is zero-filled past it only as far as some block
    // needed room, so each byte is zero-filled at most once however many blocks there are.
    // A pooled buffer keeps what earlier output initialized (`out.len()`), so `room` below
    // zero-fills only past it.
    let mut out = if decoding {
        // Sized from the thread's last output/input ratio with a tenth to spare: a buffer
        // too small is replaced by a larger one and its output copied over (and the smaller
        // one, back in the pool, would be the best fit for the next batch's guess again).
        let ratio = LZ4_RATIO.with(|r| r.get());
        let guessed = (input.len() as f64 * ratio * 1.1) as usize + 16 * 1024;
        super::out_pool::take(guessed.max(hint.min(1 << 20)).min(cap.saturating_add(1)))
    } else {
        super::out_pool::OutBuf::Heap(Vec::new())
    };
    let mut filled = 0;
    let mut pos = 0;
    while pos < input.len() {
        let magic = u32_at(pos).ok_or_else(|| corrupt("truncated frame magic", pos))?;
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            // Skippable frame: u32 length + payload.
            let len = u32_at(pos + 4).ok_or_else(|| corrupt("truncated skippable frame", pos))?;
            pos = (pos + 8)
                .checked_add(len as usize)
                .filter(|&end| end <= input.len())
                .ok_or_else(|| corrupt("truncated skippable frame", pos))?;
            continue;
        }
        if magic != 0x184D_2204 {
            return Err(corrupt("not an LZ4 frame (bad magic)", pos));
        }
        let frame_at = pos;
        let (flg, bd) = match input.get(pos + 4..pos + 6) {
            Some(b) => (b[0], b[1]),
            None => return Err(corrupt("truncated frame descriptor", pos)),
        };
        // Version 01, independent blocks, no dictionary, reserved bits clear, a valid size.
        let block_max = lz4_block_max(bd)
            .filter(|_| flg & 0xC0 == 0x40 && flg & 0x20 != 0 && flg & 0x03 == 0 && bd & 0x8F == 0);
        if decoding && block_max.is_none() {
            return Ok(None);
        }
        let block_max = block_max.unwrap_or(0);
        let has_size = flg & 0x08 != 0;
        let block_checksums = flg & 0x10 != 0;
        let has_content_checksum = flg & 0x04 != 0;
        // FLG, BD, the content size and dictionary id when present; then the header checksum.
        let descriptor_len = 2 + if has_size { 8 } else { 0 } + if flg & 0x01 != 0 { 4 } else { 0 };
        let Some(descriptor) = input.get(pos + 4..pos + 4 + descriptor_len + 1) else {
            return Err(corrupt("truncated frame descriptor", input.len()));
        };
        let (descriptor, header_checksum) = descriptor.split_at(descriptor_len);
        if decoding && (XxHash32::oneshot(0, descriptor) >> 8) as u8 != header_checksum[0] {
            return Err(corrupt("frame header checksum mismatch", frame_at));
        }
        let content_size = (decoding && has_size)
            .then(|| u64::from_le_bytes(descriptor[2..10].try_into().expect("8 bytes")));
        let mut content = (decoding && has_content_checksum).then(|| XxHash32::with_seed(0));
        let frame_start = filled;
        pos += 4 + descriptor_len + 1;
        loop {
            let info =
                u32_at(pos).ok_or_else(|| corrupt("truncated block header (no end mark)", pos))?;
            pos += 4;
            if info == 0 {
                break;
            }
            let block_at = pos;
            let len = (info & 0x7FFF_FFFF) as usize;
            let block = input
                .get(pos..pos + len)
                .filter(|_| !block_checksums || input.len() - (pos + len) >= 4)
                .ok_or_else(|| corrupt("truncated block", block_at))?;
            pos += len + if block_checksums { 4 } else { 0 };
            if !decoding {
                continue;
            }
            if block_checksums && Some(XxHash32::oneshot(0, block)) != u32_at(pos - 4) {
                return Err(corrupt("block checksum mismatch", block_at));
            }
            let start = filled;
            if info & 0x8000_0000 != 0 {
                if len > block_max {
                    return Err(corrupt(
                        "stored block larger than the frame's block size",
                        block_at,
                    ));
                }
                out.room(start + len, start)[start..].copy_from_slice(block);
                filled += len;
            } else {
                // Room for what the block likely holds (records compress a few times over),
                // then, should that be too little, for the largest block the frame allows:
                // a frame declaring 4 MiB blocks (franz-go's) for a small batch does not
                // zero-fill 4 MiB per block. The cap is checked after the block (at most one
                // block past the cap is ever held).
                let guess = block_max.min(len.saturating_mul(8).max(LZ4_BLOCK_MAX));
                // First into the room the buffer already has, when there is some (no growth,
                // no copy: a guess is only an upper bound), then into the guess, then the
                // frame's block size.
                let avail = out.capacity().saturating_sub(start).min(block_max);
                let mut size = if avail > len { avail } else { guess };
                let mut r;
                loop {
                    r = lz4_block_into(block, &mut out.room(start + size, start)[start..]);
                    let too_small =
                        matches!(r, Err(lz4_flex::block::DecompressError::OutputTooSmall { .. }));
                    if !too_small || size >= block_max {
                        break;
                    }
                    size = if size < guess { guess } else { block_max };
                }
                match r {
                    Ok(n) => filled += n,
                    Err(e) => {
                        return Err(corrupt(&format!("corrupt compressed data ({e})"), block_at))
                    }
                }
            }
            if filled > cap {
                return Err(too_large(Compression::Lz4, cap));
            }
            if let Some(h) = content.as_mut() {
                h.write(&out.as_slice()[start..filled]);
            }
        }
        if has_content_checksum {
            let sum = u32_at(pos).ok_or_else(|| corrupt("truncated content checksum", pos))?;
            if content.is_some_and(|h| h.finish_32() != sum) {
                return Err(corrupt("content checksum mismatch", pos));
            }
            pos += 4;
        }
        if content_size.is_some_and(|size| size != (filled - frame_start) as u64) {
            return Err(corrupt(
                "content size does not match the frame's data",
                frame_at,
            ));
        }
    }
    if decoding && filled > 0 {
        LZ4_RATIO.with(|r| r.set((filled as f64 / input.len() as f64).min(1024.0)));
    }
    Ok(decode.map(|_| out.freeze(filled)))
}

#[cfg(feature = "lz4")]
thread_local! {
    /// Output bytes per input byte of the last lz4 batch this thread decompressed (at most
    /// 1024), for sizing the next batch's output buffer (as `ZSTD_RATIO` for zstd).
    static LZ4_RATIO: std::cell::Cell<f64> = const { std::cell::Cell::new(4.0) };
}

#[cfg(feature = "zstd")]
thread_local! {
    /// One zstd decompression context per thread, reused across batches (creating one, and
    /// its window, per batch was 2 % of a C-zstd consumer's samples).
    static ZSTD_DCTX: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { RefCell::new(None) };
}

#[cfg(feature = "zstd")]
thread_local! {
    /// Output bytes per input byte of the last zstd batch this thread decompressed (at most
    /// 1024): the next batch's output buffer is sized from it (batches of one producer
    /// compress alike; a higher ratio than the cap costs a retry, not a huge reservation).
    static ZSTD_RATIO: std::cell::Cell<f64> = const { std::cell::Cell::new(4.0) };
}

/// Decompresses the zstd frames of `input` into a pooled buffer, never past `cap` bytes.
///
/// One call decodes all frames straight into the buffer (zstd writes into its spare
/// capacity; nothing is zero-filled first, and no window buffer is copied out as the
/// streaming decoder does: that copy was 12 % of a C-zstd consumer's samples). The buffer
/// is sized from the frame's declared content size when it has one (ours and Java's bulk
/// paths do), else from the thread's last ratio with a quarter to spare (librdkafka's and
/// Java's streaming encoders declare none); too small, and the decode is done again in a
/// buffer twice the size, up to one byte past the cap, so output beyond the cap is an
/// error. The decoder's window is bounded by zstd's default limit (128 MiB), so a frame
/// cannot make it allocate more than that whatever it declares.
#[cfg(feature = "zstd")]
fn zstd_decompress(input: &[u8], cap: usize, hint: usize) -> Result<Bytes> {
    use super::out_pool::OutBuf;
    use zstd::zstd_safe::{zstd_sys::ZSTD_ErrorCode, DCtx};
    let too_small = (ZSTD_ErrorCode::ZSTD_error_dstSize_tooSmall as usize).wrapping_neg();
    let corrupt = |e: usize| {
        Error::Protocol(format!(
            "zstd: corrupt compressed data: {}",
            zstd::zstd_safe::get_error_name(e)
        ))
    };
    let declared = zstd::zstd_safe::get_frame_content_size(input)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok());
    let ratio = ZSTD_RATIO.with(|r| r.get());
    let guessed = (input.len() as f64 * ratio * 1.25) as usize + 16 * 1024;
    let mut size = declared
        .unwrap_or(guessed.max(hint))
        .clamp(1, cap.saturating_add(1));
    ZSTD_DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        let dctx = match slot.as_mut() {
            Some(d) => d,
            None => slot.insert(
                DCtx::try_create()
                    .ok_or_else(|| Error::Protocol("zstd: cannot create decoder".into()))?,
            ),
        };
        loop {
            let mut out = super::out_pool::take(size);
            let r = match &mut out {
                OutBuf::Heap(v) => {
                    v.clear();
                    v.reserve_exact(size);
                    dctx.decompress(v, input)
                }
                OutBuf::Mapped(m) => dctx.decompress(&mut m[..], input),
            };
            match r {
                Ok(n) if n > cap => return Err(too_large(Compression::Zstd, cap)),
                Ok(n) => {
                    if n > 0 {
                        ZSTD_RATIO.with(|r| r.set((n as f64 / input.len() as f64).min(1024.0)));
                    }
                    return Ok(out.freeze(n));
                }
                Err(e) if e == too_small => {
                    let had = out.capacity();
                    out.release();
                    if had > cap {
                        return Err(too_large(Compression::Zstd, cap));
                    }
                    size = had.saturating_mul(2).min(cap.saturating_add(1));
                }
                Err(e) => return Err(corrupt(e)),
            }
        }
    })
}

#[cfg(feature = "snappy")]
fn snappy_decompress(input: &[u8], cap: usize) -> Result<Bytes> {
    let corrupt = |what: String| Error::Protocol(format!("snappy: {what}"));
    let mut dec = snap::raw::Decoder::new();
    let mut out: Vec<u8> = Vec::new();
    // Appends the decompression of one raw block to `out`, bounded by the cap.
    let mut raw_block = |block: &[u8], out: &mut Vec<u8>| -> Result<()> {
        let n = snap::raw::decompress_len(block)
            .map_err(|e| corrupt(format!("corrupt block header: {e}")))?;
        if n > cap - out.len() {
            return Err(too_large(Compression::Snappy, cap));
        }
        let start = out.len();
        out.resize(start + n, 0);
        let written = dec
            .decompress(block, &mut out[start..])
            .map_err(|e| corrupt(format!("corrupt block: {e}")))?;
        out.truncate(start + written);
        Ok(())
    };

    if !input.starts_with(&SNAPPY_XERIAL_MAGIC) {
        raw_block(input, &mut out)?;
        return Ok(Bytes::from(out));
    }
    let mut pos = 0;
    while pos < input.len() {
        let rest = &input[pos..];
        // A (possibly concatenated) xerial stream header.
        if rest.starts_with(&SNAPPY_XERIAL_MAGIC) {
            if rest.len() < SNAPPY_XERIAL_HEADER_LEN {
                return Err(corrupt(format!(
                    "truncated xerial header: {} of {SNAPPY_XERIAL_HEADER_LEN} bytes",
                    rest.len()
                )));
            }
            pos += SNAPPY_XERIAL_HEADER_LEN;
            continue;
        }
        if rest.len() < 4 {
            return Err(corrupt(format!(
                "truncated xerial block length: {} of 4 bytes",
                rest.len()
            )));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(block) = rest.get(4..4 + len) else {
            return Err(corrupt(format!(
                "xerial block of {len} bytes but only {} bytes remain",
                rest.len() - 4
            )));
        };
        raw_block(block, &mut out)?;
        pos += 4 + len;
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codecs this build has (all of them with the default features).
    fn enabled() -> impl Iterator<Item = Compression> {
        ALL.into_iter().filter(|c| c.is_enabled())
    }

    fn corpus() -> Vec<Vec<u8>> {
        let mut rng = fastrand::Rng::with_seed(7);
        let text: Vec<u8> = (0..200_000)
            .map(|i| b"the quick brown fox jumps over the lazy dog "[i % 44])
            .collect();
        let random: Vec<u8> = (0..100_000).map(|_| rng.u8(..)).collect();
        let mib: Vec<u8> = (0..(1 << 20))
            .map(|i: usize| {
                if i.is_multiple_of(7) {
                    rng.u8(..)
                } else {
                    (i % 251) as u8
                }
            })
            .collect();
        vec![vec![], vec![42], text, random, mib]
    }

    fn compressed(codec: Compression, input: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        compress(codec, None, input, &mut out).unwrap();
        out
    }

    #[test]
    fn attribute_bits_round_trip() {
        for c in ALL {
            assert_eq!(Compression::from_attributes(c.attribute_bits()).unwrap(), c);
            // Other attribute bits do not matter.
            assert_eq!(
                Compression::from_attributes(c.attribute_bits() | 0x70).unwrap(),
                c
            );
        }
        for bad in 5..=7 {
            let e = Compression::from_attributes(bad).unwrap_err();
            assert!(e.to_string().contains("unknown compression codec"), "{e}");
        }
    }

    #[test]
    fn round_trip_corpus() {
        for input in corpus() {
            for c in enabled() {
                let out = compressed(c, &input);
                let back = decompress(c, &out, 2 << 20).unwrap();
                assert_eq!(back.len(), input.len(), "{c} {}", input.len());
                assert!(back == input, "{c} mismatch for {} bytes", input.len());
            }
        }
    }

    #[test]
    fn levels() {
        let input = corpus().swap_remove(2);
        for (c, l) in [
            (Compression::Gzip, 1),
            (Compression::Gzip, 9),
            (Compression::Gzip, -1),
            (Compression::Zstd, 1),
            (Compression::Zstd, 19),
            (Compression::Zstd, -5),
            (Compression::Lz4, 17),
        ]
        .into_iter()
        .filter(|(c, _)| c.is_enabled())
        {
            let mut out = BytesMut::new();
            compress(c, Some(l), &input, &mut out).unwrap();
            assert_eq!(decompress(c, &out, 1 << 20).unwrap(), input);
        }
        for (c, l) in [
            (Compression::Gzip, 0),
            (Compression::Gzip, 10),
            (Compression::Lz4, 18),
            (Compression::Zstd, 23),
        ]
        .into_iter()
        .filter(|(c, _)| c.is_enabled())
        {
            let e = compress(c, Some(l), b"x", &mut BytesMut::new()).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        }
    }

    #[test]
    fn compress_appends() {
        for c in enabled() {
            let mut out = BytesMut::from(&b"prefix"[..]);
            compress(c, None, b"hello hello hello", &mut out).unwrap();
            assert_eq!(&out[..6], b"prefix");
            assert_eq!(
                &decompress(c, &out[6..], 100).unwrap()[..],
                b"hello hello hello"
            );
        }
    }

    #[test]
    #[cfg(feature = "snappy")]
    fn snappy_xerial_framing() {
        let input = corpus().swap_remove(2); // 200 000 bytes -> 7 blocks of 32 KiB
        let out = compressed(Compression::Snappy, &input);
        assert_eq!(&out[..8], b"\x82SNAPPY\0");
        assert_eq!(&out[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        // Walk the blocks: each decompresses to 32 KiB except the last.
        let mut pos = 16;
        let mut blocks = 0;
        while pos < out.len() {
            let len = u32::from_be_bytes(out[pos..pos + 4].try_into().unwrap()) as usize;
            let block = &out[pos + 4..pos + 4 + len];
            let n = snap::raw::decompress_len(block).unwrap();
            assert!(n <= 32 * 1024);
            pos += 4 + len;
            blocks += 1;
        }
        assert_eq!(pos, out.len());
        assert_eq!(blocks, input.len().div_ceil(32 * 1024));

        // Raw snappy (no xerial framing) is accepted too.
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, 1 << 20).unwrap(),
            input
        );

        // Concatenated xerial streams.
        let mut two = compressed(Compression::Snappy, b"abc");
        two.extend_from_slice(&compressed(Compression::Snappy, b"def"));
        assert_eq!(
            &decompress(Compression::Snappy, &two, 100).unwrap()[..],
            b"abcdef"
        );
    }

    #[test]
    #[cfg(feature = "lz4")]
    fn lz4_frames_match_lz4_flex() {
        use std::io::Write;
        // The hand-written frames are byte for byte what lz4_flex's frame encoder writes with
        // Kafka's settings: header (incl. its checksum), compressed and stored blocks, end.
        let mut noise = Vec::new();
        let mut x = 0x2545_f491_u32;
        for _ in 0..70_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise.push(x as u8);
        }
        let text: Vec<u8> = b"{\"id\":42,\"name\":\"kafka\"} ".repeat(9_000);
        let inputs: [&[u8]; 6] = [b"", b"x", b"hello", &text, &noise, &noise[..65_536]];
        for input in inputs {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent)
                .block_checksums(false)
                .content_checksum(false)
                .content_size(None);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(input).unwrap();
            let expected = enc.finish().unwrap();
            let ours = compressed(Compression::Lz4, input);
            assert_eq!(&ours[..], &expected[..], "input of {} bytes", input.len());
            assert_eq!(&decompress(Compression::Lz4, &ours, 1 << 20).unwrap()[..], input);
        }
    }

    #[test]
    #[cfg(feature = "lz4")]
    fn lz4_frame_settings() {
        use std::io::Write;
        let out = compressed(Compression::Lz4, b"hello");
        assert_eq!(&out[..4], &[0x04, 0x22, 0x4d, 0x18]);
        let flg = out[4];
        assert_eq!(flg >> 6, 0b01, "version 01");
        assert_ne!(flg & 0x20, 0, "independent blocks");
        assert_eq!(flg & 0x10, 0, "no block checksum");
        assert_eq!(flg & 0x08, 0, "no content size");
        assert_eq!(flg & 0x04, 0, "no content checksum");
        assert_eq!((out[5] >> 4) & 0x07, 4, "64 KiB blocks");

        // Frames with checksums, content size and linked blocks decode too.
        let input = corpus().swap_remove(4);
        let info = lz4_flex::frame::FrameInfo::new()
            .block_size(lz4_flex::frame::BlockSize::Max256KB)
            .block_mode(lz4_flex::frame::BlockMode::Linked)
            .block_checksums(true)
            .content_checksum(true)
            .content_size(Some(input.len() as u64));
        let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(&input).unwrap();
        let framed = enc.finish().unwrap();
        assert_eq!(
            decompress(Compression::Lz4, &framed, 1 << 20).unwrap(),
            input
        );
    }

    /// Frames with independent blocks are read without the frame decoder: every block size,
    /// checksums and a content size (as franz-go and others write them), several frames and a
    /// skippable frame in one input, each giving what `lz4_flex`'s frame decoder gives.
    #[test]
    #[cfg(feature = "lz4")]
    fn lz4_independent_frames_with_checksums_and_sizes() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};
        use std::io::{Read, Write};
        let input = corpus().swap_remove(4); // 1 MiB, partly random
        let frame = |size, block_sums, content_sum, content_size: bool, data: &[u8]| {
            let info = FrameInfo::new()
                .block_size(size)
                .block_mode(BlockMode::Independent)
                .block_checksums(block_sums)
                .content_checksum(content_sum)
                .content_size(content_size.then_some(data.len() as u64));
            let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(data).unwrap();
            enc.finish().unwrap()
        };
        for size in [
            BlockSize::Max64KB,
            BlockSize::Max256KB,
            BlockSize::Max1MB,
            BlockSize::Max4MB,
        ] {
            for (b, c, z) in [(false, false, false), (true, true, true), (false, true, false)] {
                let f = frame(size, b, c, z, &input);
                assert!(
                    lz4_frames(&f, Some((2 << 20, 0))).unwrap().is_some(),
                    "{size:?}: read without the decoder"
                );
                let mut expected = Vec::new();
                FrameDecoder::new(&f[..]).read_to_end(&mut expected).unwrap();
                let got = decompress(Compression::Lz4, &f, 2 << 20).unwrap();
                assert!(got == expected && got == input, "{size:?} {b} {c} {z}");
            }
        }
        // A block that holds more than eight times its size (decoded again with room for
        // the declared block size), and one that holds more than the cap.
        let zeros = vec![0u8; 3 << 20];
        let f = frame(BlockSize::Max4MB, false, true, false, &zeros);
        assert!(f.len() * 8 < zeros.len());
        assert_eq!(decompress(Compression::Lz4, &f, 4 << 20).unwrap(), zeros);
        let e = decompress(Compression::Lz4, &f, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("exceeds the cap"), "{e}");
        // Two frames with a skippable frame between them: one output.
        let mut two = frame(BlockSize::Max64KB, true, true, false, b"abc");
        two.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
        two.extend_from_slice(&compressed(Compression::Lz4, b"def"));
        assert_eq!(
            &decompress(Compression::Lz4, &two, 100).unwrap()[..],
            b"abcdef"
        );
        // Linked blocks still go through the frame decoder.
        let info = FrameInfo::new().block_mode(BlockMode::Linked);
        let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(&input).unwrap();
        let linked = enc.finish().unwrap();
        assert!(lz4_frames(&linked, Some((2 << 20, 0))).unwrap().is_none());
        assert_eq!(decompress(Compression::Lz4, &linked, 2 << 20).unwrap(), input);
    }

    /// A frame whose header, block or content checksum, or declared content size, does not
    /// match its data is an error naming what is wrong (not data handed on).
    #[test]
    #[cfg(feature = "lz4")]
    fn lz4_checksum_and_size_mismatches_are_errors() {
        use lz4_flex::frame::{BlockMode, FrameEncoder, FrameInfo};
        use std::io::Write;
        let data = b"kafka kafka kafka kafka kafka kafka kafka kafka".repeat(100);
        let info = FrameInfo::new()
            .block_mode(BlockMode::Independent)
            .block_checksums(true)
            .content_checksum(true)
            .content_size(Some(data.len() as u64));
        let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(&data).unwrap();
        let good = enc.finish().unwrap();
        assert_eq!(decompress(Compression::Lz4, &good, 1 << 20).unwrap(), data);
        let header_len = 4 + 2 + 8 + 1;
        let block_len = u32::from_le_bytes(good[header_len..header_len + 4].try_into().unwrap())
            as usize
            & 0x7FFF_FFFF;
        let block_sum_at = header_len + 4 + block_len;
        let content_sum_at = good.len() - 4;
        let cases: [(usize, &str); 4] = [
            (header_len - 1, "frame header checksum mismatch"),
            (block_sum_at, "block checksum mismatch"),
            (content_sum_at, "content checksum mismatch"),
            (6, "content size does not match"),
        ];
        for (at, what) in cases {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            if at == 6 {
                // The size is covered by the header checksum: fix that up.
                let hc = (twox_hash::XxHash32::oneshot(0, &bad[4..14]) >> 8) as u8;
                bad[14] = hc;
            }
            let e = decompress(Compression::Lz4, &bad, 1 << 20).unwrap_err();
            assert!(e.to_string().contains(what), "byte {at}: {e}");
        }
    }

    #[test]
    fn decompression_bomb_is_capped() {
        let zeros = vec![0u8; 100 << 20];
        for c in enabled() {
            let bomb = compressed(c, &zeros);
            let e = decompress(c, &bomb, 1 << 20).unwrap_err();
            let s = e.to_string();
            assert!(s.contains("exceeds the cap of 1048576 bytes"), "{c}: {s}");
        }
        // A raw snappy block declaring a huge length is refused before allocating.
        #[cfg(feature = "snappy")]
        {
            let mut lie = Vec::new();
            let mut n: u64 = u32::MAX as u64;
            while n >= 0x80 {
                lie.push((n as u8) | 0x80);
                n >>= 7;
            }
            lie.push(n as u8);
            lie.extend_from_slice(&[0, 1, 2]);
            assert!(decompress(Compression::Snappy, &lie, 1 << 20).is_err());
        }
        // Exactly at the cap is fine.
        #[cfg(feature = "zstd")]
        {
            let small = compressed(Compression::Zstd, &[7u8; 1000]);
            assert_eq!(
                decompress(Compression::Zstd, &small, 1000).unwrap().len(),
                1000
            );
            assert!(decompress(Compression::Zstd, &small, 999).is_err());
        }
    }

    /// Frames as other producers write them: Java's streaming encoder declares no content
    /// size (streamed, the buffer growing past its first guess), several frames back to
    /// back, a skippable frame, a declared size that lies, and cuts and caps on each path.
    #[test]
    #[cfg(feature = "zstd")]
    fn zstd_frames_with_and_without_declared_sizes() {
        use std::io::Write;
        let streamed = |data: &[u8]| {
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            enc.include_contentsize(false).unwrap();
            enc.write_all(data).unwrap();
            enc.finish().unwrap()
        };
        let input = corpus().swap_remove(2);
        // Records compress well: the output is far more than the first guess (4x the input).
        let big: Vec<u8> = input.iter().copied().cycle().take(3 << 20).collect();
        for data in [&input[..], &big[..], &[][..]] {
            let frame = streamed(data);
            assert_eq!(
                zstd::zstd_safe::get_frame_content_size(&frame).unwrap(),
                None,
                "the streaming encoder declared a size"
            );
            let out = decompress(Compression::Zstd, &frame, 64 << 20).unwrap();
            assert!(out[..] == data[..], "{} bytes streamed", data.len());
            if !data.is_empty() {
                let e = decompress(Compression::Zstd, &frame, data.len() - 1).unwrap_err();
                assert!(e.to_string().contains("exceeds the cap"), "{e}");
                for cut in [frame.len() / 2, frame.len() - 1] {
                    assert!(decompress(Compression::Zstd, &frame[..cut], 64 << 20).is_err());
                }
            }
        }
        // Two frames (one with a declared size, one without) and a skippable frame between.
        let mut two = compressed(Compression::Zstd, &input[..1000]).to_vec();
        two.extend_from_slice(&[0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        two.extend_from_slice(&streamed(&big));
        let out = decompress(Compression::Zstd, &two, 64 << 20).unwrap();
        assert_eq!(out.len(), 1000 + big.len());
        assert!(out[..1000] == input[..1000] && out[1000..] == big[..]);
        // A declared size that is not the data's: an error, whichever path sees it.
        let mut lie = compressed(Compression::Zstd, &input[..3000]).to_vec();
        let declared = zstd::zstd_safe::get_frame_content_size(&lie).unwrap();
        assert_eq!(declared, Some(3000));
        // Frame header: magic (4), descriptor (1; its top bits give the size field's width),
        // then for a 2-byte field the size minus 256, little endian.
        assert_eq!(lie[4] >> 6, 1, "2-byte content size field");
        assert_ne!(lie[4] & 0x20, 0, "single segment: no window descriptor before the size");
        lie[5] ^= 0x01;
        assert!(decompress(Compression::Zstd, &lie, 64 << 20).is_err());
    }

    #[test]
    fn truncated_and_garbage_inputs_error() {
        let input = corpus().swap_remove(2);
        for c in enabled().skip(1) {
            let out = compressed(c, &input[..5000]);
            assert!(decompress(c, &[], 1 << 20).is_err(), "{c} empty");
            for cut in [1, 2, 5, 10, out.len() / 2, out.len() - 1] {
                assert!(
                    decompress(c, &out[..cut], 1 << 20).is_err(),
                    "{c}: truncation at {cut} of {} decoded",
                    out.len()
                );
            }
        }
        // Random garbage and bit flips: Ok or Err, never a panic.
        let mut rng = fastrand::Rng::with_seed(99);
        for c in enabled() {
            for _ in 0..300 {
                let len = rng.usize(0..200);
                let junk: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                let _ = decompress(c, &junk, 1 << 16);
            }
            let good = compressed(c, &input[..3000]);
            for _ in 0..300 {
                let mut bad = good.to_vec();
                let i = rng.usize(0..bad.len());
                bad[i] ^= 1 << rng.u8(0..8);
                let _ = decompress(c, &bad, 1 << 16);
            }
        }
    }

    /// A build without some codec: compressing or decompressing with it is the typed
    /// `CodecDisabled` error naming the codec and its feature, not a panic.
    #[test]
    #[cfg(not(all(
        feature = "gzip",
        feature = "snappy",
        feature = "lz4",
        feature = "zstd"
    )))]
    fn disabled_codec_is_a_typed_error() {
        let off: Vec<Compression> = ALL.into_iter().filter(|c| !c.is_enabled()).collect();
        assert!(!off.is_empty());
        for c in off {
            for e in [
                compress(c, None, b"hello", &mut BytesMut::new()).unwrap_err(),
                compress(c, Some(1), b"hello", &mut BytesMut::new()).unwrap_err(),
                decompress(c, b"\x01\x02\x03", 1 << 20).unwrap_err(),
                decompress(c, b"", 1 << 20).unwrap_err(),
            ] {
                match &e {
                    Error::CodecDisabled { codec, feature } => {
                        assert_eq!(*codec, c.name());
                        assert_eq!(*feature, c.name());
                    }
                    other => panic!("{c}: expected CodecDisabled, got {other:?}"),
                }
                let text = e.to_string();
                assert!(text.contains(&format!("`{}` feature", c.name())), "{text}");
            }
        }
        // `none` never needs a feature.
        let mut out = BytesMut::new();
        compress(Compression::None, None, b"abc", &mut out).unwrap();
        assert_eq!(
            &decompress(Compression::None, &out, 10).unwrap()[..],
            b"abc"
        );
    }
}
