//! Zigzag variable-length integers as used by record batches (magic 2).
//!
//! Kafka encodes record fields as protobuf-style zigzag varints: `varint` for 32-bit values
//! (at most 5 bytes) and `varlong` for 64-bit values (at most 10 bytes). Decoding is
//! bounds-checked: a truncated or overlong encoding is a [`Error::Protocol`].

use bytes::BufMut;

use crate::error::{Error, Result};

/// Largest encoded size of a 32-bit varint.
pub const MAX_VARINT_LEN: usize = 5;
/// Largest encoded size of a 64-bit varlong.
pub const MAX_VARLONG_LEN: usize = 10;

/// Zigzag-maps a signed 32-bit value to unsigned (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...).
#[inline]
pub fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// Zigzag-maps a signed 64-bit value to unsigned.
#[inline]
pub fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag32`].
#[inline]
pub fn unzigzag32(n: u32) -> i32 {
    ((n >> 1) as i32) ^ -((n & 1) as i32)
}

/// Inverse of [`zigzag64`].
#[inline]
pub fn unzigzag64(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// Encoded size in bytes of `v` as a zigzag varint.
#[inline]
pub fn varint_len(v: i32) -> usize {
    unsigned_len(zigzag32(v) as u64)
}

/// Encoded size in bytes of `v` as a zigzag varlong.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    unsigned_len(zigzag64(v))
}

/// Encoded size of an unsigned LEB128 value.
#[inline]
fn unsigned_len(n: u64) -> usize {
    // 1 byte per started group of 7 bits; 0 still takes one byte.
    let bits = 64 - (n | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Writes `v` as a zigzag varint at the start of `out`, returning the number of bytes written.
///
/// # Panics
/// When `out` is shorter than [`varint_len`]`(v)` (at most [`MAX_VARINT_LEN`]).
#[inline]
pub fn write_varint(out: &mut [u8], v: i32) -> usize {
    write_unsigned(out, zigzag32(v) as u64)
}

/// Writes `v` as a zigzag varlong at the start of `out`, returning the number of bytes written.
///
/// # Panics
/// When `out` is shorter than [`varlong_len`]`(v)` (at most [`MAX_VARLONG_LEN`]).
#[inline]
pub fn write_varlong(out: &mut [u8], v: i64) -> usize {
    write_unsigned(out, zigzag64(v))
}

#[inline]
fn write_unsigned(out: &mut [u8], mut n: u64) -> usize {
    // Record fields are mostly 1 or 2 bytes long (lengths, offset and timestamp deltas):
    // write those without the loop.
    if n < 0x80 {
        out[0] = n as u8;
        return 1;
    }
    if n < 0x4000 {
        let two = &mut out[..2];
        two[0] = (n as u8) | 0x80;
        two[1] = (n >> 7) as u8;
        return 2;
    }
    let mut i = 0;
    while n >= 0x80 {
        out[i] = (n as u8) | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    i + 1
}

/// Appends `v` as a zigzag varint to `buf`.
#[inline]
pub fn put_varint<B: BufMut>(buf: &mut B, v: i32) {
    let mut tmp = [0u8; MAX_VARINT_LEN];
    let n = write_varint(&mut tmp, v);
    buf.put_slice(&tmp[..n]);
}

/// Appends `v` as a zigzag varlong to `buf`.
#[inline]
pub fn put_varlong<B: BufMut>(buf: &mut B, v: i64) {
    let mut tmp = [0u8; MAX_VARLONG_LEN];
    let n = write_varlong(&mut tmp, v);
    buf.put_slice(&tmp[..n]);
}

/// Reads a zigzag varint from `buf` at `*pos`, advancing `*pos` past it.
///
/// Errors when the input ends inside the varint or when it is longer than 5 bytes or its
/// value does not fit in 32 bits.
#[inline]
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32> {
    // Fast paths: one and two bytes (lengths below 8 KiB).
    if let Some(&b0) = buf.get(*pos) {
        if b0 < 0x80 {
            *pos += 1;
            return Ok(unzigzag32(b0 as u32));
        }
        if let Some(&b1) = buf.get(*pos + 1) {
            if b1 < 0x80 {
                *pos += 2;
                return Ok(unzigzag32((b0 & 0x7f) as u32 | (b1 as u32) << 7));
            }
        }
    }
    let n = read_unsigned(buf, pos, MAX_VARINT_LEN, 32, "varint")?;
    Ok(unzigzag32(n as u32))
}

/// Reads a zigzag varlong from `buf` at `*pos`, advancing `*pos` past it.
///
/// Errors when the input ends inside the varlong or when it is longer than 10 bytes or its
/// value does not fit in 64 bits.
#[inline]
pub fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64> {
    if let Some(&b0) = buf.get(*pos) {
        if b0 < 0x80 {
            *pos += 1;
            return Ok(unzigzag64(b0 as u64));
        }
        if let Some(&b1) = buf.get(*pos + 1) {
            if b1 < 0x80 {
                *pos += 2;
                return Ok(unzigzag64((b0 & 0x7f) as u64 | (b1 as u64) << 7));
            }
        }
    }
    let n = read_unsigned(buf, pos, MAX_VARLONG_LEN, 64, "varlong")?;
    Ok(unzigzag64(n))
}

fn read_unsigned(
    buf: &[u8],
    pos: &mut usize,
    max_len: usize,
    bits: u32,
    what: &str,
) -> Result<u64> {
    let start = *pos;
    let mut value: u64 = 0;
    for i in 0..max_len {
        let Some(&b) = buf.get(start + i) else {
            return Err(Error::Protocol(format!(
                "truncated {what}: input ends after {i} byte(s)"
            )));
        };
        let shift = 7 * i as u32;
        let chunk = (b & 0x7f) as u64;
        if i == max_len - 1 {
            // Last allowed byte: no continuation, and no bits beyond the type's width.
            let room = bits - shift;
            if b & 0x80 != 0 || chunk >> room != 0 {
                return Err(Error::Protocol(format!(
                    "overlong {what}: more than {max_len} bytes or more than {bits} bits"
                )));
            }
        }
        value |= chunk << shift;
        if b & 0x80 == 0 {
            *pos = start + i + 1;
            return Ok(value);
        }
    }
    unreachable!("the last iteration returns or errors")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
            (i32::MAX as i64, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN as i64, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for &(v, enc) in cases {
            let mut buf = Vec::new();
            put_varint(&mut buf, v as i32);
            assert_eq!(buf, enc, "{v}");
            assert_eq!(varint_len(v as i32), enc.len());
            let mut pos = 0;
            assert_eq!(read_varint(enc, &mut pos).unwrap() as i64, v);
            assert_eq!(pos, enc.len());
            let mut pos = 0;
            assert_eq!(read_varlong(enc, &mut pos).unwrap(), v);
        }
        let mut buf = Vec::new();
        put_varlong(&mut buf, i64::MIN);
        assert_eq!(buf.len(), 10);
        assert_eq!(*buf.last().unwrap(), 0x01);
        let mut pos = 0;
        assert_eq!(read_varlong(&buf, &mut pos).unwrap(), i64::MIN);
    }

    #[test]
    fn malformed() {
        let mut pos = 0;
        assert!(read_varint(&[], &mut pos).is_err());
        assert!(read_varint(&[0x80], &mut pos).is_err());
        assert!(read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &mut pos).is_err());
        // Fifth byte carrying bits beyond 32.
        assert!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut pos).is_err());
        assert!(read_varlong(&[0xff; 10], &mut pos).is_err());
        let mut ten = [0xffu8; 10];
        ten[9] = 0x02;
        assert!(read_varlong(&ten, &mut pos).is_err());
        assert_eq!(pos, 0, "failed reads do not advance");
        let e = read_varint(&[0x80, 0x80], &mut pos).unwrap_err();
        assert!(e.to_string().contains("truncated varint"), "{e}");
    }

    proptest! {
        #[test]
        fn varint_round_trip(v in any::<i32>()) {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            prop_assert_eq!(buf.len(), varint_len(v));
            let mut pos = 0;
            prop_assert_eq!(read_varint(&buf, &mut pos).unwrap(), v);
            prop_assert_eq!(pos, buf.len());
        }

        #[test]
        fn varlong_round_trip(v in any::<i64>()) {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            prop_assert_eq!(buf.len(), varlong_len(v));
            let mut pos = 0;
            prop_assert_eq!(read_varlong(&buf, &mut pos).unwrap(), v);
            prop_assert_eq!(pos, buf.len());
        }

        #[test]
        fn varint_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let mut pos = 0;
            let _ = read_varint(&bytes, &mut pos);
            let mut pos = 0;
            let _ = read_varlong(&bytes, &mut pos);
        }
    }
}
