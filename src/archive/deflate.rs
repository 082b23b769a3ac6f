//! One compressor for the codec's 1 MiB segments: zlib-rs through its C
//! API, because flate2 exposes neither `memLevel` nor `deflateTune`.
//!
//! gpg compresses with an 8 KiB window (`deflateInit2(…, -13, 8, …)` in
//! g10/compress.c); Cairn uses the full 32 KiB window, which finds longer and
//! farther matches, so at level 6 it can walk half as many hash-chain links
//! and still write no more than gpg does:
//! - `deflateTune(8, 16, 64, 64)`: level 6's lazy matching with chains of 64
//!   instead of 128 links;
//! - `memLevel` 9: larger Huffman blocks;
//! - the previous 32 KiB of the stream as a dictionary, so a segment's first
//!   bytes find their matches too (the decoder has those bytes in its window
//!   already: segments are pieces of one continuous raw deflate stream).
//!
//! Measured on 100 MiB per corpus (`../shared/research/perf-round2.md` §2):
//! 2.07× level 6's speed on the benchmark's synthetic text at gpg's size,
//! 1.16× on real source text at 9% below gpg's size. Other levels keep zlib's
//! own parameters, with the dictionary.

use libz_rs_sys as z;

/// deflateTune's parameters at level 6: good, lazy, nice, chain.
const TUNE_L6: [i32; 4] = [8, 16, 64, 64];

/// The window: raw deflate (negative), 32 KiB.
const WINDOW_BITS: i32 = -15;

/// A raw deflate compressor, reset for every segment.
pub struct Deflater {
    /// Boxed: zlib's state points back at its stream, which must not move.
    strm: Box<z::z_stream>,
    level: i32,
}

// SAFETY: the stream and its state are owned by this value alone (zlib-rs
// allocates the state with the Rust allocator and keeps no thread-local or
// shared data); moving it to another thread moves all of it.
unsafe impl Send for Deflater {}

impl Deflater {
    pub fn new(level: u32) -> Deflater {
        let level = level.min(9) as i32;
        let mut strm = Box::<z::z_stream>::default();
        // SAFETY: `strm` is a valid, default-initialised stream (null
        // allocators select zlib-rs's Rust allocator); the version and size
        // are this library's own.
        let ret = unsafe {
            z::deflateInit2_(
                &mut *strm,
                level,
                z::Z_DEFLATED,
                WINDOW_BITS,
                9,
                z::Z_DEFAULT_STRATEGY,
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as i32,
            )
        };
        assert_eq!(ret, z::Z_OK, "deflateInit2 with constant, valid parameters");
        let mut d = Deflater { strm, level };
        d.tune();
        d
    }

    pub fn level(&self) -> u32 {
        self.level as u32
    }

    /// `deflateReset` restores the level's own parameters: tune after each.
    fn tune(&mut self) {
        if self.level == 6 {
            let [good, lazy, nice, chain] = TUNE_L6;
            // SAFETY: an initialised stream owned by `self`.
            let ret = unsafe { z::deflateTune(&mut *self.strm, good, lazy, nice, chain) };
            debug_assert_eq!(ret, z::Z_OK);
        }
    }

    /// Compresses `data` into `out` (appended) as a piece of a raw deflate
    /// stream whose previous bytes end with `dict` (up to 32 KiB; empty for
    /// the first piece). The piece ends with a sync flush (byte-aligned, not
    /// final) unless it is the `last`.
    pub fn segment(&mut self, dict: &[u8], data: &[u8], last: bool, out: &mut Vec<u8>) {
        // SAFETY (all calls below): the stream is initialised and owned by
        // `self`; `next_in`/`next_out` point into `data` and `out`'s spare
        // capacity with matching lengths, and are cleared before returning.
        let ret = unsafe { z::deflateReset(&mut *self.strm) };
        debug_assert_eq!(ret, z::Z_OK);
        self.tune();
        if self.level > 0 && !dict.is_empty() {
            let dict = &dict[dict.len().saturating_sub(1 << 15)..];
            let ret = unsafe {
                z::deflateSetDictionary(&mut *self.strm, dict.as_ptr(), dict.len() as u32)
            };
            debug_assert_eq!(ret, z::Z_OK);
        }
        let flush = if last { z::Z_FINISH } else { z::Z_SYNC_FLUSH };
        let s = &mut *self.strm;
        s.next_in = data.as_ptr().cast_mut();
        s.avail_in = data.len() as u32;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(4096));
            }
            let spare = out.capacity() - out.len();
            s.next_out = unsafe { out.as_mut_ptr().add(out.len()) };
            s.avail_out = spare.min(u32::MAX as usize) as u32;
            let ret = unsafe { z::deflate(s, flush) };
            let wrote = spare.min(u32::MAX as usize) - s.avail_out as usize;
            // SAFETY: deflate initialised the `wrote` bytes after `len`.
            unsafe { out.set_len(out.len() + wrote) };
            let finished = if last {
                ret == z::Z_STREAM_END
            } else {
                s.avail_in == 0 && s.avail_out > 0
            };
            assert!(
                ret == z::Z_OK || ret == z::Z_STREAM_END || ret == z::Z_BUF_ERROR,
                "deflate failed ({ret}) on a valid stream"
            );
            if finished {
                break;
            }
        }
        s.next_in = std::ptr::null_mut();
        s.next_out = std::ptr::null_mut();
        s.avail_in = 0;
        s.avail_out = 0;
    }
}

impl Drop for Deflater {
    fn drop(&mut self) {
        // SAFETY: an initialised stream owned by `self`, ended once.
        unsafe { z::deflateEnd(&mut *self.strm) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn inflate(stream: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(stream)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Text with matches near and far, from a small vocabulary.
    fn text(len: usize) -> Vec<u8> {
        let words = [
            "backup ", "volume ", "the ", "cairn ", "onion ", "delta\n", "of ",
        ];
        let mut x = 1u32;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.extend_from_slice(words[x as usize % words.len()].as_bytes());
        }
        out.truncate(len);
        out
    }

    #[test]
    fn pieces_with_dictionaries_join_into_one_stream() {
        let data = text(3 << 20 | 4321);
        for level in [1, 6, 9] {
            let mut d = Deflater::new(level);
            let mut stream = Vec::new();
            let pieces: Vec<&[u8]> = data.chunks(1 << 20).collect();
            let mut prev: &[u8] = &[];
            for (i, p) in pieces.iter().enumerate() {
                d.segment(prev, p, i + 1 == pieces.len(), &mut stream);
                prev = p;
            }
            assert_eq!(inflate(&stream), data, "level {level}");
        }
    }

    #[test]
    fn a_dictionary_makes_a_repeated_segment_smaller() {
        let data = text(1 << 20);
        let mut d = Deflater::new(6);
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        d.segment(&[], &data[40_000..], true, &mut cold);
        d.segment(&data[..40_000], &data[40_000..], true, &mut warm);
        assert!(warm.len() < cold.len(), "{} vs {}", warm.len(), cold.len());
        let mut whole = Vec::new();
        d.segment(&[], &data[..40_000], false, &mut whole);
        whole.extend_from_slice(&warm);
        assert_eq!(inflate(&whole), data);
    }

    #[test]
    fn empty_and_tiny_outputs_grow_the_buffer() {
        let mut d = Deflater::new(6);
        let mut out = Vec::new();
        d.segment(&[], &[], true, &mut out);
        assert_eq!(inflate(&out), b"");
        let random: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut out = Vec::new();
        d.segment(&[], &random, true, &mut out);
        assert_eq!(inflate(&out), random);
    }
}
