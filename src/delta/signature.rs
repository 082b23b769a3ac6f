//! Streaming librsync signatures.

use fast_rsync::{Signature, SignatureOptions};

/// How many bytes to hash per `fast_rsync` call (rounded to whole blocks).
const CHUNK: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "unsupported rsync signature (magic {0:#010x}): duplicity archives use MD4 \
         signatures (0x72730136)"
    )]
    Unsupported(u32),
    #[error("truncated or malformed rsync signature ({0} bytes)")]
    Malformed(usize),
}

/// The block length for a file of `len` bytes: duplicity 3.x's rule,
/// `round512(isqrt(len))`, at least 512.
///
/// Chosen over 0.8's rule (512…2048, capped) because it keeps a signature's
/// size, and the hash index built from it, at O(√size): a 4 GiB file gets 64 Ki
/// blocks (768 KiB of signature) instead of 2 Mi blocks (24 MiB, and a larger
/// index) — the difference between fitting a Pi Zero's RAM and not. Deltas
/// cost at most one block more per change. Both duplicity versions read any
/// block length, since it is stored in each signature.
pub fn block_size(len: u64) -> u32 {
    let root = len.isqrt().max(1);
    let rounded = root.div_ceil(512) * 512;
    u32::try_from(rounded).unwrap_or(u32::MAX - 511)
}

/// Builds a signature from data fed in pieces of any size.
pub struct SignatureBuilder {
    block: usize,
    chunk: usize,
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl SignatureBuilder {
    pub fn new(block_size: u32) -> Self {
        let block = block_size.max(1) as usize;
        let chunk = (CHUNK / block).max(1) * block;
        let mut out = Vec::with_capacity(12);
        out.extend_from_slice(&super::SIG_MAGIC.to_be_bytes());
        out.extend_from_slice(&block_size.max(1).to_be_bytes());
        out.extend_from_slice(&super::STRONG_LEN.to_be_bytes());
        SignatureBuilder {
            block,
            chunk,
            buf: Vec::new(),
            out,
        }
    }

    fn hash(&mut self, data_end: usize) {
        let sig = Signature::calculate(
            &self.buf[..data_end],
            SignatureOptions {
                block_size: self.block as u32,
                crypto_hash_size: super::STRONG_LEN,
            },
        );
        self.out.extend_from_slice(&sig.serialized()[12..]);
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.buf.is_empty() && data.len() >= self.chunk {
                // Whole chunks straight from the caller's buffer.
                let n = data.len() / self.block * self.block;
                let sig = Signature::calculate(
                    &data[..n],
                    SignatureOptions {
                        block_size: self.block as u32,
                        crypto_hash_size: super::STRONG_LEN,
                    },
                );
                self.out.extend_from_slice(&sig.serialized()[12..]);
                data = &data[n..];
                continue;
            }
            let take = (self.chunk - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == self.chunk {
                self.hash(self.chunk);
                self.buf.clear();
            }
        }
    }

    /// The serialized signature, header included.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.buf.is_empty() {
            let n = self.buf.len();
            self.hash(n);
        }
        self.out
    }
}

/// Checks and wraps a serialized signature for computing deltas.
pub fn parse_signature(bytes: Vec<u8>) -> Result<Signature, SignatureError> {
    if bytes.len() < 12 {
        return Err(SignatureError::Malformed(bytes.len()));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != super::SIG_MAGIC {
        return Err(SignatureError::Unsupported(magic));
    }
    let strong = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let block = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if strong == 0 || strong > 16 || block == 0 {
        return Err(SignatureError::Malformed(bytes.len()));
    }
    let len = bytes.len();
    Signature::deserialize(bytes).map_err(|_| SignatureError::Malformed(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_size_matches_duplicity_3() {
        assert_eq!(block_size(0), 512);
        assert_eq!(block_size(263_168), 512);
        assert_eq!(block_size(263_170), 1024);
        assert_eq!(block_size(30 * 1024 * 1024), 5632);
        assert_eq!(block_size(4 << 30), 65536);
    }

    #[test]
    fn chunked_equals_whole() {
        let data: Vec<u8> = (0..3_000_017u32)
            .map(|i| (i.wrapping_mul(7919) % 251) as u8)
            .collect();
        for bs in [512u32, 1000, 2048, 5632] {
            let whole = Signature::calculate(
                &data,
                SignatureOptions {
                    block_size: bs,
                    crypto_hash_size: 8,
                },
            );
            for piece in [1usize, 777, 65536, 1 << 22, 5 << 20] {
                let mut b = SignatureBuilder::new(bs);
                for c in data.chunks(piece) {
                    b.update(c);
                }
                assert_eq!(b.finish(), whole.serialized(), "block {bs} piece {piece}");
            }
        }
        let empty = SignatureBuilder::new(512).finish();
        assert_eq!(empty, [0x72, 0x73, 1, 0x36, 0, 0, 2, 0, 0, 0, 0, 8]);
    }

    #[test]
    fn rejects_other_magics() {
        assert!(matches!(
            parse_signature(vec![0x72, 0x73, 1, 0x46, 0, 0, 2, 0, 0, 0, 0, 8]),
            Err(SignatureError::Unsupported(0x72730146))
        ));
        assert!(parse_signature(vec![1, 2]).is_err());
    }
}
