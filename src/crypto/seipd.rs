//! The bulk of an encrypted file: the OpenPGP Symmetrically Encrypted
//! Integrity Protected Data packet, version 1 (RFC 4880 §5.13), which is
//! what gpg 2.2 writes and what every duplicity version reads and writes.
//!
//! Packet parsing, key handling, S2K, signatures and compression stay with
//! sequoia; this module only does the stream cipher work of SEIPD v1 —
//! AES in OpenPGP CFB mode with the SHA-1 "modification detection code" —
//! because here it decides throughput: sequoia hashes the MDC with
//! collision-detecting SHA-1 (right for signatures, pointless for an MDC,
//! and several times slower), and its writer stack cannot be split across
//! threads. With the accelerated `sha1` crate and a plain `aes` CFB loop the
//! cipher runs at memory speed on x86 and stays off the critical path.

use aes::{Aes128, Aes192, Aes256};
use cfb_mode::cipher::KeyIvInit;
use sequoia_openpgp::types::SymmetricAlgorithm;
use sha1::{Digest, Sha1};
use std::io::{self, Read, Write};

const BLOCK: usize = 16;

/// The MDC packet: tag 19, length 20, then the SHA-1.
const MDC_HEADER: [u8; 2] = [0xD3, 0x14];
const MDC_LEN: usize = 22;

#[derive(Debug, thiserror::Error)]
pub enum SeipdError {
    #[error("unsupported cipher {0} (Cairn's fast path handles AES-128, AES-192 and AES-256)")]
    Cipher(SymmetricAlgorithm),
    #[error("wrong key: the encrypted data does not start as OpenPGP requires")]
    QuickCheck,
    #[error("integrity check failed: the encrypted data was modified or truncated (MDC mismatch)")]
    Mdc,
    #[error("unsupported SEIPD version {0}")]
    Version(u8),
}

enum Enc {
    A128(cfb_mode::BufEncryptor<Aes128>),
    A192(cfb_mode::BufEncryptor<Aes192>),
    A256(cfb_mode::BufEncryptor<Aes256>),
}

enum Dec {
    A128(CfbDecryptor<Aes128>),
    A192(CfbDecryptor<Aes192>),
    A256(CfbDecryptor<Aes256>),
}

/// CFB decryption that runs whole blocks through the cipher together.
/// Encryption is serial (each block's input is the previous output), but a
/// decrypted block needs only the ciphertext before it, so a run of blocks
/// is one `encrypt_blocks` call: AES-NI and ARMv8 pipeline 8 blocks, the
/// software fixslice code computes 2 or 4 at once. `cfb_mode::BufDecryptor`
/// takes them one at a time. Reads may end anywhere in a block; the rest of
/// that block continues with the same keystream.
struct CfbDecryptor<C> {
    cipher: C,
    /// The last whole ciphertext block (the IV at first).
    prev: [u8; BLOCK],
    /// The keystream of the block under way, and how much of it is used.
    keystream: [u8; BLOCK],
    pos: usize,
    /// The ciphertext of the block under way, so far.
    partial: [u8; BLOCK],
    scratch: Vec<aes::Block>,
}

impl<C> CfbDecryptor<C>
where
    C: aes::cipher::BlockEncrypt + aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>,
{
    fn new(cipher: C) -> Self {
        CfbDecryptor {
            cipher,
            prev: [0; BLOCK],
            keystream: [0; BLOCK],
            pos: 0,
            partial: [0; BLOCK],
            scratch: Vec::new(),
        }
    }

    fn decrypt(&mut self, buf: &mut [u8]) {
        let mut rest = self.continue_block(buf);
        let whole = rest.len() / BLOCK * BLOCK;
        // 4 KiB of keystream at a time keeps the scratch in L1.
        for run in rest[..whole].chunks_mut(256 * BLOCK) {
            self.decrypt_blocks(run);
        }
        rest = &mut rest[whole..];
        if !rest.is_empty() {
            let mut ks = aes::Block::from(self.prev);
            self.cipher.encrypt_block(&mut ks);
            self.keystream = ks.into();
            self.take_bytes(rest);
        }
    }

    /// Decrypts into the block under way, if one is; returns what is left
    /// after it.
    fn continue_block<'b>(&mut self, buf: &'b mut [u8]) -> &'b mut [u8] {
        if self.pos == 0 {
            return buf;
        }
        self.take_bytes(buf)
    }

    /// Decrypts up to the end of the current block with its keystream.
    fn take_bytes<'b>(&mut self, buf: &'b mut [u8]) -> &'b mut [u8] {
        let n = (BLOCK - self.pos).min(buf.len());
        let (head, rest) = buf.split_at_mut(n);
        for b in head {
            self.partial[self.pos] = *b;
            *b ^= self.keystream[self.pos];
            self.pos += 1;
        }
        if self.pos == BLOCK {
            self.prev = self.partial;
            self.pos = 0;
        }
        rest
    }

    /// Decrypts whole blocks (`run.len()` a multiple of the block size).
    fn decrypt_blocks(&mut self, run: &mut [u8]) {
        self.scratch.clear();
        self.scratch.push(aes::Block::from(self.prev));
        let blocks = run.len() / BLOCK;
        for c in run.chunks_exact(BLOCK).take(blocks - 1) {
            self.scratch.push(*aes::Block::from_slice(c));
        }
        self.prev.copy_from_slice(&run[run.len() - BLOCK..]);
        self.cipher.encrypt_blocks(&mut self.scratch);
        for (c, k) in run.chunks_exact_mut(BLOCK).zip(&self.scratch) {
            c.iter_mut().zip(k).for_each(|(b, k)| *b ^= k);
        }
    }
}

fn key_len(algo: SymmetricAlgorithm) -> Result<usize, SeipdError> {
    match algo {
        SymmetricAlgorithm::AES128 => Ok(16),
        SymmetricAlgorithm::AES192 => Ok(24),
        SymmetricAlgorithm::AES256 => Ok(32),
        other => Err(SeipdError::Cipher(other)),
    }
}

/// Whether the fast path handles this cipher.
pub fn supported(algo: SymmetricAlgorithm) -> bool {
    key_len(algo).is_ok()
}

impl Enc {
    fn new(algo: SymmetricAlgorithm, key: &[u8]) -> Result<Self, SeipdError> {
        let iv = [0u8; BLOCK];
        if key.len() != key_len(algo)? {
            return Err(SeipdError::Cipher(algo));
        }
        Ok(match algo {
            SymmetricAlgorithm::AES128 => {
                Enc::A128(cfb_mode::BufEncryptor::new_from_slices(key, &iv).expect("key length"))
            }
            SymmetricAlgorithm::AES192 => {
                Enc::A192(cfb_mode::BufEncryptor::new_from_slices(key, &iv).expect("key length"))
            }
            _ => Enc::A256(cfb_mode::BufEncryptor::new_from_slices(key, &iv).expect("key length")),
        })
    }

    fn apply(&mut self, buf: &mut [u8]) {
        match self {
            Enc::A128(c) => c.encrypt(buf),
            Enc::A192(c) => c.encrypt(buf),
            Enc::A256(c) => c.encrypt(buf),
        }
    }
}

impl Dec {
    fn new(algo: SymmetricAlgorithm, key: &[u8]) -> Result<Self, SeipdError> {
        if key.len() != key_len(algo)? {
            return Err(SeipdError::Cipher(algo));
        }
        use aes::cipher::KeyInit;
        Ok(match algo {
            SymmetricAlgorithm::AES128 => Dec::A128(CfbDecryptor::new(
                Aes128::new_from_slice(key).expect("key length"),
            )),
            SymmetricAlgorithm::AES192 => Dec::A192(CfbDecryptor::new(
                Aes192::new_from_slice(key).expect("key length"),
            )),
            _ => Dec::A256(CfbDecryptor::new(
                Aes256::new_from_slice(key).expect("key length"),
            )),
        })
    }

    fn apply(&mut self, buf: &mut [u8]) {
        match self {
            Dec::A128(c) => c.decrypt(buf),
            Dec::A192(c) => c.decrypt(buf),
            Dec::A256(c) => c.decrypt(buf),
        }
    }
}

/// Writes an OpenPGP packet body with partial body lengths (new format),
/// so the packet can be streamed without knowing its length.
pub struct PartialBody<W: Write> {
    out: W,
    buf: Vec<u8>,
}

/// The partial-length chunk: 2^16 bytes, well above the 512-byte minimum for
/// the first chunk.
const PARTIAL: usize = 1 << 16;

impl<W: Write> PartialBody<W> {
    /// Starts packet `tag` (new-format header).
    pub fn new(mut out: W, tag: u8) -> io::Result<Self> {
        out.write_all(&[0xC0 | tag])?;
        Ok(PartialBody {
            out,
            buf: Vec::with_capacity(PARTIAL),
        })
    }

    fn write_body(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let take = (PARTIAL - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == PARTIAL {
                self.out.write_all(&[0xE0 | 16])?;
                self.out.write_all(&self.buf)?;
                self.buf.clear();
            }
        }
        Ok(())
    }

    /// Writes the last chunk with a definite length and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        let n = self.buf.len();
        if n < 192 {
            self.out.write_all(&[n as u8])?;
        } else if n < 8384 {
            let v = n - 192;
            self.out
                .write_all(&[((v >> 8) + 192) as u8, (v & 0xff) as u8])?;
        } else {
            let mut h = [0xFFu8; 5];
            h[1..].copy_from_slice(&(n as u32).to_be_bytes());
            self.out.write_all(&h)?;
        }
        self.out.write_all(&self.buf)?;
        Ok(self.out)
    }
}

impl<W: Write> Write for PartialBody<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_body(data)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encrypts a stream into a SEIPD v1 packet.
pub struct SeipdWriter<W: Write> {
    body: PartialBody<W>,
    cipher: Enc,
    mdc: Sha1,
    scratch: Vec<u8>,
}

impl<W: Write> SeipdWriter<W> {
    /// Starts the packet: header, version, and the encrypted random prefix.
    pub fn new(out: W, algo: SymmetricAlgorithm, session_key: &[u8]) -> io::Result<Self> {
        let cipher = Enc::new(algo, session_key).map_err(io::Error::other)?;
        let mut body = PartialBody::new(out, 18)?;
        body.write_body(&[1])?;
        let mut prefix = [0u8; BLOCK + 2];
        sequoia_openpgp::crypto::random(&mut prefix[..BLOCK]).map_err(io::Error::other)?;
        prefix[BLOCK] = prefix[BLOCK - 2];
        prefix[BLOCK + 1] = prefix[BLOCK - 1];
        let mut w = SeipdWriter {
            body,
            cipher,
            mdc: Sha1::new(),
            scratch: Vec::with_capacity(PARTIAL),
        };
        w.put(&prefix)?;
        Ok(w)
    }

    fn put(&mut self, data: &[u8]) -> io::Result<()> {
        self.mdc.update(data);
        self.scratch.clear();
        self.scratch.extend_from_slice(data);
        self.cipher.apply(&mut self.scratch);
        let s = std::mem::take(&mut self.scratch);
        let r = self.body.write_body(&s);
        self.scratch = s;
        r
    }

    /// Appends the MDC and ends the packet.
    pub fn finish(mut self) -> io::Result<W> {
        self.mdc.update(MDC_HEADER);
        let digest = std::mem::take(&mut self.mdc).finalize();
        let mut tail = [0u8; MDC_LEN];
        tail[..2].copy_from_slice(&MDC_HEADER);
        tail[2..].copy_from_slice(&digest);
        self.cipher.apply(&mut tail);
        self.body.write_body(&tail)?;
        self.body.finish()
    }
}

impl<W: Write> Write for SeipdWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        for piece in data.chunks(PARTIAL) {
            self.put(piece)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decrypts the body of a SEIPD v1 packet (after its header, starting at
/// the version byte) and checks the MDC at the end. Data is returned before
/// the MDC is known, as any streaming reader must; the error at the end is
/// what tells truncation or tampering apart from a good file.
pub struct SeipdReader<R: Read> {
    inner: R,
    cipher: Dec,
    mdc: Sha1,
    /// Decrypted bytes not yet returned; the last 22 are held back until
    /// the end is seen, because they may be the MDC.
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    checked: bool,
}

impl<R: Read> SeipdReader<R> {
    pub fn new(
        mut inner: R,
        algo: SymmetricAlgorithm,
        session_key: &[u8],
    ) -> Result<Self, io::Error> {
        let mut v = [0u8; 1];
        inner.read_exact(&mut v)?;
        if v[0] != 1 {
            return Err(io::Error::other(SeipdError::Version(v[0])));
        }
        let mut cipher = Dec::new(algo, session_key).map_err(io::Error::other)?;
        let mut prefix = [0u8; BLOCK + 2];
        inner.read_exact(&mut prefix)?;
        cipher.apply(&mut prefix);
        if prefix[BLOCK - 2..BLOCK] != prefix[BLOCK..] {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                SeipdError::QuickCheck,
            ));
        }
        let mut mdc = Sha1::new();
        mdc.update(prefix);
        Ok(SeipdReader {
            inner,
            cipher,
            mdc,
            buf: Vec::with_capacity(1 << 20),
            pos: 0,
            eof: false,
            checked: false,
        })
    }

    fn fill(&mut self) -> io::Result<()> {
        // Keep the held-back tail, read more behind it.
        self.buf.drain(..self.pos);
        self.pos = 0;
        let start = self.buf.len();
        self.buf.resize(start + (1 << 20), 0);
        let mut got = 0;
        while got < 1 << 20 {
            match self.inner.read(&mut self.buf[start + got..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(start + got);
                    return Err(e);
                }
            }
        }
        self.buf.truncate(start + got);
        self.cipher.apply(&mut self.buf[start..]);
        Ok(())
    }

    fn available(&self) -> usize {
        let held = if self.eof {
            MDC_LEN
        } else {
            MDC_LEN.min(self.buf.len())
        };
        (self.buf.len() - self.pos).saturating_sub(if self.eof {
            held
        } else {
            MDC_LEN.saturating_sub(0)
        })
    }
}

impl<R: Read> Read for SeipdReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let avail = self.available();
            if avail > 0 {
                let n = avail.min(out.len());
                let chunk = &self.buf[self.pos..self.pos + n];
                self.mdc.update(chunk);
                out[..n].copy_from_slice(chunk);
                self.pos += n;
                return Ok(n);
            }
            if self.eof {
                if !self.checked {
                    self.checked = true;
                    let tail = &self.buf[self.pos..];
                    if tail.len() != MDC_LEN || tail[..2] != MDC_HEADER {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, SeipdError::Mdc));
                    }
                    self.mdc.update(MDC_HEADER);
                    let digest = std::mem::take(&mut self.mdc).finalize();
                    if digest[..] != tail[2..] {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, SeipdError::Mdc));
                    }
                }
                return Ok(0);
            }
            self.fill()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(len: usize, algo: SymmetricAlgorithm) {
        let key: Vec<u8> = (0..key_len(algo).unwrap() as u8).collect();
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut w = SeipdWriter::new(Vec::new(), algo, &key).unwrap();
        for c in data.chunks(7777) {
            w.write_all(c).unwrap();
        }
        let packet = w.finish().unwrap();
        // Walk the partial-length framing to get the body.
        assert_eq!(packet[0], 0xC0 | 18);
        let body = unframe(&packet[1..]);
        let mut r = SeipdReader::new(&body[..], algo, &key).unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, data, "len {len}");

        // Tampering is caught at the end.
        let mut bad = body.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        let mut r = SeipdReader::new(&bad[..], algo, &key).unwrap();
        let mut sink = Vec::new();
        assert!(r.read_to_end(&mut sink).is_err());
        // So is truncation.
        let cut = &body[..body.len() - 5];
        let mut r = SeipdReader::new(cut, algo, &key).unwrap();
        assert!(r.read_to_end(&mut Vec::new()).is_err());
        // A wrong key fails the quick check.
        let wrong = vec![0xAAu8; key.len()];
        assert!(SeipdReader::new(&body[..], algo, &wrong).is_err());
    }

    pub(crate) fn unframe(mut p: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = p[0];
            if (224..255).contains(&b) {
                let n = 1usize << (b & 0x1f);
                out.extend_from_slice(&p[1..1 + n]);
                p = &p[1 + n..];
            } else {
                let (n, h) = if b < 192 {
                    (b as usize, 1)
                } else if b < 224 {
                    ((((b as usize) - 192) << 8) + p[1] as usize + 192, 2)
                } else {
                    (u32::from_be_bytes([p[1], p[2], p[3], p[4]]) as usize, 5)
                };
                out.extend_from_slice(&p[h..h + n]);
                return out;
            }
        }
    }

    /// `just test-aarch64` runs the tests on a CPU with the ARMv8 crypto
    /// extensions and on one without (`CAIRN_EXPECT_AES`); this checks that
    /// the run-time detection, which picks the `aes` crate's path, saw what
    /// that run meant to offer.
    #[test]
    #[cfg(target_arch = "aarch64")]
    fn aes_instructions_are_detected_as_the_run_expects() {
        if let Ok(want) = std::env::var("CAIRN_EXPECT_AES") {
            let have = std::arch::is_aarch64_feature_detected!("aes");
            assert_eq!(have, want == "1", "CAIRN_EXPECT_AES={want}");
            assert_eq!(std::arch::is_aarch64_feature_detected!("sha2"), have);
        }
    }

    /// The block-parallel decryptor agrees with cfb-mode's serial one
    /// whatever the read sizes, block-aligned or not.
    #[test]
    fn parallel_cfb_matches_the_serial_decryptor() {
        use aes::cipher::KeyInit;
        let key = [7u8; 32];
        let cipher: Vec<u8> = (0..70_000u32).map(|i| (i * 7919 % 253) as u8).collect();
        let mut serial = cipher.clone();
        cfb_mode::BufDecryptor::<Aes256>::new_from_slices(&key, &[0u8; BLOCK])
            .unwrap()
            .decrypt(&mut serial);
        for sizes in [
            &[1usize, 15, 16, 17, 4096, 5000][..],
            &[3],
            &[16],
            &[65536],
            &[33, 4097],
        ] {
            let mut d = CfbDecryptor::new(Aes256::new_from_slice(&key).unwrap());
            let mut buf = cipher.clone();
            let mut at = 0;
            for n in sizes.iter().cycle() {
                let end = (at + n).min(buf.len());
                d.decrypt(&mut buf[at..end]);
                at = end;
                if at == buf.len() {
                    break;
                }
            }
            assert!(buf == serial, "read sizes {sizes:?}");
        }
    }

    #[test]
    fn round_trips_and_detects_damage() {
        for len in [
            0usize, 1, 15, 16, 17, 190, 8383, 65535, 65536, 65537, 300_000,
        ] {
            roundtrip(len, SymmetricAlgorithm::AES256);
        }
        roundtrip(1000, SymmetricAlgorithm::AES128);
        roundtrip(1000, SymmetricAlgorithm::AES192);
    }
}
