//! Segmented deltas: `fast_rsync::diff` on fixed-size segments of the new
//! file, re-encoded into one librsync stream.
//!
//! Each segment's delta is decoded and re-emitted through [`DeltaEncoder`], so
//! copies that continue across a segment boundary merge. The few bytes at the
//! end of a segment that `fast_rsync` could not test as the start of a block
//! are carried into the next segment instead of being written as a literal,
//! so segmenting costs nothing in delta size.

use super::command::{Command, CommandReader, DeltaEncoder};
use fast_rsync::Signature;
use std::io::{self, Read, Write};

/// Bytes of the new file diffed per `fast_rsync` call.
const SEGMENT: usize = 8 << 20;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeltaStats {
    /// Bytes of the new file.
    pub new_len: u64,
    /// Bytes sent as literals.
    pub literal: u64,
    /// Bytes copied from the basis.
    pub copied: u64,
}

/// Computes deltas against one basis signature.
pub struct Differ<'s> {
    index: fast_rsync::IndexedSignature<'s>,
    block: usize,
    segment: usize,
}

impl<'s> Differ<'s> {
    pub fn new(sig: &'s Signature) -> Self {
        let hdr = sig.serialized();
        let block = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
        Differ {
            index: sig.index(),
            block: block.max(1),
            segment: SEGMENT.max(block * 2),
        }
    }

    #[cfg(test)]
    fn with_segment(mut self, segment: usize) -> Self {
        self.segment = segment.max(self.block * 2);
        self
    }

    /// Reads the new file from `new`, writes its delta to `out`, and shows
    /// every byte of the new file to `observe` (to build its signature in the
    /// same pass).
    pub fn diff<R: Read, W: Write>(
        &self,
        mut new: R,
        out: W,
        mut observe: impl FnMut(&[u8]),
    ) -> io::Result<(W, DeltaStats)> {
        let mut enc = DeltaEncoder::new(out);
        let mut stats = DeltaStats::default();
        let mut buf = vec![0u8; self.segment];
        let mut scratch = Vec::new();
        let mut carry = 0usize;
        loop {
            let mut filled = carry;
            while filled < buf.len() {
                match new.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            observe(&buf[carry..filled]);
            stats.new_len += (filled - carry) as u64;
            let eof = filled < buf.len();
            let data = &buf[..filled];

            scratch.clear();
            fast_rsync::diff(&self.index, data, &mut scratch)
                .map_err(|e| io::Error::other(e.to_string()))?;

            // Replay the segment's commands; hold back the unchecked tail.
            let mut cmds = CommandReader::new(&scratch[..]);
            let mut ops: Vec<Command> = Vec::new();
            loop {
                let c = cmds.next_command()?;
                if let Command::Literal(n) = c {
                    io::copy(&mut cmds.inner().take(n), &mut io::sink())?;
                }
                if c == Command::End {
                    break;
                }
                ops.push(c);
            }
            let mut hold = 0usize;
            if !eof && let Some(Command::Literal(n)) = ops.last().copied() {
                hold = (n as usize).min(self.block - 1);
            }
            let mut pos = 0usize;
            let last = ops.len();
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    Command::Copy { offset, len } => {
                        enc.copy(offset, len)?;
                        stats.copied += len;
                        pos += len as usize;
                    }
                    Command::Literal(n) => {
                        let mut n = n as usize;
                        if i + 1 == last {
                            n -= hold;
                        }
                        enc.literal(&data[pos..pos + n])?;
                        stats.literal += n as u64;
                        pos += n;
                    }
                    Command::End => {}
                }
            }
            if eof {
                break;
            }
            buf.copy_within(pos..filled, 0);
            carry = filled - pos;
        }
        Ok((enc.finish()?, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::{SignatureBuilder, apply, parse_signature};
    use std::io::Cursor;

    fn pseudo(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    fn sig_of(data: &[u8], bs: u32) -> Signature {
        let mut b = SignatureBuilder::new(bs);
        b.update(data);
        parse_signature(b.finish()).unwrap()
    }

    fn patch(basis: &[u8], delta: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("basis");
        std::fs::write(&p, basis).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let mut out = Vec::new();
        apply(&f, delta, &mut out, u64::MAX).unwrap();
        out
    }

    #[test]
    fn segmented_delta_reconstructs_and_stays_small() {
        let old = pseudo(300_000, 1);
        let mut new = old.clone();
        new.splice(100_000..100_000, pseudo(5_000, 2)); // insertion
        new[250_000..250_100].copy_from_slice(&pseudo(100, 3)); // overwrite
        let sig = sig_of(&old, 512);
        let whole = Differ::new(&sig);
        let (d_whole, s_whole) = whole.diff(Cursor::new(&new), Vec::new(), |_| {}).unwrap();
        for seg in [1024usize, 4096, 65_536, 100_003] {
            let mut seen = Vec::new();
            let (d, s) = Differ::new(&sig)
                .with_segment(seg)
                .diff(Cursor::new(&new), Vec::new(), |b| seen.extend_from_slice(b))
                .unwrap();
            assert_eq!(seen, new, "observer sees every byte once");
            assert_eq!(patch(&old, &d), new, "segment {seg}");
            assert_eq!(s.new_len, new.len() as u64);
            assert!(
                s.literal <= s_whole.literal + 512,
                "segment {seg}: {} literal bytes vs {} unsegmented",
                s.literal,
                s_whole.literal
            );
        }
        assert_eq!(patch(&old, &d_whole), new);
        // 5,000 inserted + one 512-byte block per edit + the unmatched tail.
        assert!(s_whole.literal < 7_000, "{s_whole:?}");
    }

    #[test]
    fn empty_inputs() {
        let sig = sig_of(b"", 512);
        let (d, s) = Differ::new(&sig)
            .diff(Cursor::new(b"abc"), Vec::new(), |_| {})
            .unwrap();
        assert_eq!(s.literal, 3);
        assert_eq!(patch(b"", &d), b"abc");
        let sig = sig_of(b"abc", 512);
        let (d, _) = Differ::new(&sig)
            .diff(Cursor::new(b""), Vec::new(), |_| {})
            .unwrap();
        assert_eq!(d, [0x72, 0x73, 2, 0x36, 0]);
    }
}
