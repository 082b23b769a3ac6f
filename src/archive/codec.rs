//! The layer around a stored file's contents, chosen by its name's suffix as
//! duplicity chooses it (`DupPath.filtered_open`): OpenPGP (`.gpg`), gzip
//! (`.gz`), or nothing.
//!
//! Encoding is a pipeline, so a backup keeps every core busy: the caller's
//! thread frames the data (the OpenPGP literal packet) and cuts it into
//! 1 MiB segments; a pool of threads compresses segments in parallel, each
//! into an independent piece of one deflate stream (ended with a sync flush,
//! as pigz does), storing segments that would not shrink without spending
//! time trying; and a writer thread puts the pieces back in order into the
//! gzip or OpenPGP container, encrypts, hashes and uploads.

use super::deflate::Deflater;
use super::names::Encoding;
use crate::crypto::{self, CryptoError, Keyring, MessageKeys, MessageWriter};
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Seek, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

/// Wraps a stored file's bytes in the decoder its encoding needs.
pub fn decode<'k, R>(
    raw: R,
    enc: Encoding,
    keys: &'k Keyring,
) -> Result<Box<dyn Read + Send + 'k>, CryptoError>
where
    R: Read + Seek + Send + Sync + 'static,
{
    Ok(match enc {
        Encoding::Plain => Box::new(raw),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            256 * 1024,
            raw,
        ))),
        Encoding::Gpg => crypto::message::open(raw, keys)?,
    })
}

/// What was stored: the facts a manifest records about a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// SHA1 of the bytes as stored, lowercase hex.
    pub sha1: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The destination could not make the file durable (for an upload, the
    /// error carries the target's own error inside).
    #[error("storing the file: {0}")]
    Commit(io::Error),
    #[error("writing {0}")]
    Io(#[from] io::Error),
}

/// Where an encoded file goes: its bytes in order, then [`commit`] makes
/// it durable under its final name. [`crate::repo::Repo::create`] supplies
/// one that uploads to the target; the format knows no transport.
///
/// [`commit`]: Destination::commit
pub trait Destination: Write + Send {
    fn commit(self: Box<Self>) -> io::Result<()>;
}

/// The end of every encoder: counts and hashes what is stored, then hands
/// it to the destination.
struct Sink {
    dest: Box<dyn Destination>,
    hash: Sha1,
    written: Arc<AtomicU64>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.dest.write(buf)?;
        self.hash.update(&buf[..n]);
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.dest.flush()
    }
}

impl Sink {
    fn seal(self) -> Sealed {
        let size = self.written.load(Ordering::Relaxed);
        let sha1 = hex::encode(self.hash.finalize());
        Sealed {
            stored: Stored { sha1, size },
            dest: self.dest,
        }
    }
}

/// A file encoded in full, not yet committed: what the manifest records
/// about it, and the destination that makes it durable (for a remote
/// target, the staged upload). It can be committed on another thread while
/// the next file is encoded.
pub struct Sealed {
    pub stored: Stored,
    dest: Box<dyn Destination>,
}

impl Sealed {
    /// Makes the file durable under its final name (uploads it, for a
    /// remote target). Dropped uncommitted, nothing reaches the target.
    pub fn commit(self) -> Result<Stored, EncodeError> {
        self.dest.commit().map_err(EncodeError::Commit)?;
        Ok(self.stored)
    }
}

/// Adler-32 (zlib's checksum) of `data`, continuing from `a`.
fn adler32(a: u32, data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut s1, mut s2) = (a & 0xffff, a >> 16);
    for chunk in data.chunks(5552) {
        for &b in chunk {
            s1 += u32::from(b);
            s2 += s1;
        }
        s1 %= MOD;
        s2 %= MOD;
    }
    (s2 << 16) | s1
}

/// zlib's `adler32_combine`: the checksum of A‖B from those of A and B.
fn adler32_combine(a: u32, b: u32, len_b: u64) -> u32 {
    const MOD: u64 = 65521;
    let rem = len_b % MOD;
    let (a1, a2) = (u64::from(a & 0xffff), u64::from(a >> 16));
    let (b1, b2) = (u64::from(b & 0xffff), u64::from(b >> 16));
    let s1 = (a1 + b1 + MOD - 1) % MOD;
    let s2 = (a2 + b2 + (rem * a1) % MOD + MOD - rem) % MOD;
    ((s2 << 16) | s1) as u32
}

/// What compresses the content of an encrypted file (inside OpenPGP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// OpenPGP ZIP: raw deflate (gpg's default).
    Zip,
    /// OpenPGP ZLIB: deflate with zlib's header and Adler-32.
    Zlib,
    /// No compressed-data packet at all.
    None,
}

/// Plaintext bytes per compression job.
const SEGMENT: usize = 1 << 20;

/// deflate's window: how much of a segment the next one may refer to.
const DICTIONARY: usize = 32 << 10;

/// Segment buffers, recycled. Allocating a fresh megabyte for every segment
/// and its output made glibc's per-thread arenas keep freed ones around:
/// peak RSS was 20 MB above what was in use. Reuse keeps it at the data in
/// flight, which the channels bound.
struct Buffers(Mutex<Vec<Vec<u8>>>);

/// More than the channels ever hold in flight.
const KEEP_BUFFERS: usize = 24;

fn buffers() -> &'static Buffers {
    static B: OnceLock<Buffers> = OnceLock::new();
    B.get_or_init(|| Buffers(Mutex::new(Vec::new())))
}

impl Buffers {
    /// An empty buffer with room for `cap` bytes.
    fn take(&self, cap: usize) -> Vec<u8> {
        let got = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut v = got.unwrap_or_default();
        v.clear();
        v.reserve(cap);
        v
    }

    fn give(&self, v: Vec<u8>) {
        if v.capacity() < SEGMENT || v.capacity() > 4 * SEGMENT {
            return;
        }
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < KEEP_BUFFERS {
            pool.push(v);
        }
    }
}

/// Frees the recycled segment buffers (up to `KEEP_BUFFERS` MiB), for a
/// long-running process between jobs; the next encoder allocates anew.
pub fn release_buffers() {
    buffers()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

/// Data this random compresses by less than a few percent: stored as is.
fn looks_random(data: &[u8]) -> bool {
    if data.len() < 4096 {
        return false;
    }
    // Byte entropy of up to 32 samples of 512 bytes across the segment.
    let mut hist = [0u32; 256];
    let step = (data.len() / 32).max(512);
    let mut n = 0u32;
    let mut at = 0;
    while at + 512 <= data.len() {
        for &b in &data[at..at + 512] {
            hist[b as usize] += 1;
        }
        n += 512;
        at += step;
    }
    let total = f64::from(n);
    let entropy: f64 = hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / total;
            -p * p.log2()
        })
        .sum();
    // 16 KiB of truly random bytes measure about 7.98 bits per byte.
    entropy > 7.9
}

/// Compresses one segment into a piece of a raw deflate stream: ends with
/// a sync flush (byte-aligned, not final) unless it is the last piece.
/// `dict` is the end of the previous segment's plaintext (empty for the
/// first), which the decoder has in its window when this piece starts.
fn deflate_segment(dict: &[u8], data: &[u8], level: u32, last: bool) -> Vec<u8> {
    fn run(dict: &[u8], data: &[u8], level: u32, last: bool) -> Vec<u8> {
        // One compressor per thread and level, reset between segments: its
        // window and hash tables are a few hundred KiB.
        thread_local! {
            static COMPRESSOR: std::cell::RefCell<Option<Deflater>> =
                const { std::cell::RefCell::new(None) };
        }
        COMPRESSOR.with_borrow_mut(|slot| {
            let d = match slot {
                Some(d) if d.level() == level => d,
                _ => slot.insert(Deflater::new(level)),
            };
            let mut out = buffers().take(data.len() + data.len() / 500 + 1024);
            d.segment(dict, data, last, &mut out);
            out
        })
    }
    if level == 0 || looks_random(data) {
        return run(&[], data, 0, last);
    }
    let out = run(dict, data, level, last);
    if out.len() as f64 > data.len() as f64 * 0.98 {
        // It did not pay: store it, and save the reader's time too.
        buffers().give(out);
        return run(&[], data, 0, last);
    }
    out
}

/// The checksum a container wants of the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    Crc32,
    Adler32,
}

struct Job {
    seq: u64,
    /// The end of the previous segment's plaintext (up to 32 KiB).
    dict: Vec<u8>,
    data: Vec<u8>,
    last: bool,
    /// deflate level, or `None` to pass the data through unchanged.
    level: Option<u32>,
    check: Check,
    done: SyncSender<Piece>,
}

struct Piece {
    seq: u64,
    bytes: Vec<u8>,
    crc: Option<crc32fast::Hasher>,
    adler: u32,
    plain_len: u64,
    last: bool,
}

/// The compression threads, shared by every encoder of the process.
struct Pool {
    jobs: Mutex<SyncSender<Job>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(1);
        let (tx, rx) = sync_channel::<Job>(threads * 2);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("cairn-deflate-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let guard = rx.lock().unwrap_or_else(|e| e.into_inner());
                            guard.recv()
                        };
                        let Ok(job) = job else { return };
                        let crc = (job.check == Check::Crc32).then(|| {
                            let mut h = crc32fast::Hasher::new();
                            h.update(&job.data);
                            h
                        });
                        let adler = if job.check == Check::Adler32 {
                            adler32(1, &job.data)
                        } else {
                            1
                        };
                        let plain_len = job.data.len() as u64;
                        let bytes = match job.level {
                            Some(level) => {
                                let out = deflate_segment(&job.dict, &job.data, level, job.last);
                                buffers().give(job.data);
                                out
                            }
                            None => job.data,
                        };
                        let _ = job.done.send(Piece {
                            seq: job.seq,
                            bytes,
                            crc,
                            adler,
                            plain_len,
                            last: job.last,
                        });
                    }
                })
                .expect("spawn compression thread");
        }
        Pool {
            jobs: Mutex::new(tx),
        }
    })
}

/// Cuts the framed stream into segments for the pool.
struct Segmenter {
    buf: Vec<u8>,
    /// The last 32 KiB of the segment sent before: the next one's
    /// dictionary.
    tail: Vec<u8>,
    seq: u64,
    level: Option<u32>,
    check: Check,
    done: SyncSender<Piece>,
    jobs: SyncSender<Job>,
    plain: Arc<AtomicU64>,
}

impl Segmenter {
    fn send(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, buffers().take(SEGMENT));
        self.plain.fetch_add(data.len() as u64, Ordering::Relaxed);
        let tail = data.len().saturating_sub(DICTIONARY);
        let dict = std::mem::replace(&mut self.tail, data[tail..].to_vec());
        let job = Job {
            seq: self.seq,
            dict,
            data,
            last,
            level: self.level,
            check: self.check,
            done: self.done.clone(),
        };
        self.seq += 1;
        self.jobs
            .send(job)
            .map_err(|_| io::Error::other("the compression threads stopped"))
    }
}

impl Write for Segmenter {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let take = (SEGMENT - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == SEGMENT {
                self.send(false)?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A shared handle, so sequoia's writer stack can own the segmenter while
/// the encoder still ends it.
#[derive(Clone)]
struct SharedSegmenter(Arc<Mutex<Segmenter>>);

impl Write for SharedSegmenter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The container the writer thread puts the pieces into.
enum Container<'k> {
    Gzip(Sink),
    /// The message, and whether it ends with zlib's Adler-32.
    Gpg(
        Box<MessageWriter<Sink>>,
        bool,
        std::marker::PhantomData<&'k ()>,
    ),
}

fn gzip_header(sink: &mut Sink) -> io::Result<()> {
    let mtime = (crate::time::now().max(0) as u32).to_le_bytes();
    sink.write_all(&[
        0x1f, 0x8b, 8, 0, mtime[0], mtime[1], mtime[2], mtime[3], 0, 255,
    ])
}

/// Puts pieces back in order and writes them out; runs on its own thread.
/// `reflected` counts the input bytes whose output has been written.
fn write_pieces(
    mut c: Container<'_>,
    pieces: Receiver<Piece>,
    reflected: Arc<AtomicU64>,
) -> Result<Sealed, EncodeError> {
    let mut pending: BTreeMap<u64, Piece> = BTreeMap::new();
    let mut next = 0u64;
    let mut crc = crc32fast::Hasher::new();
    let mut adler = 1u32;
    let mut total: u64 = 0;
    loop {
        let piece = pieces
            .recv()
            .map_err(|_| io::Error::other("the compression threads stopped"))?;
        pending.insert(piece.seq, piece);
        while let Some(p) = pending.remove(&next) {
            next += 1;
            match &mut c {
                Container::Gzip(s) => s.write_all(&p.bytes)?,
                Container::Gpg(m, _, _) => m.write_content(&p.bytes)?,
            }
            buffers().give(p.bytes);
            if let Some(h) = &p.crc {
                crc.combine(h);
            }
            adler = adler32_combine(adler, p.adler, p.plain_len);
            total += p.plain_len;
            reflected.fetch_add(p.plain_len, Ordering::Relaxed);
            if p.last {
                return match c {
                    Container::Gzip(mut s) => {
                        s.write_all(&crc.finalize().to_le_bytes())?;
                        s.write_all(&(total as u32).to_le_bytes())?;
                        Ok(s.seal())
                    }
                    Container::Gpg(mut m, zlib, _) => {
                        if zlib {
                            m.write_content(&adler.to_be_bytes())?;
                        }
                        Ok(m.finish()?.seal())
                    }
                };
            }
        }
    }
}

enum Front<'k> {
    /// Written straight through (no encoding).
    Plain(Sink),
    /// Gzip: the data is the deflate input.
    Gzip(SharedSegmenter),
    /// OpenPGP: sequoia frames the literal packet; that is the deflate input.
    Gpg(
        sequoia_openpgp::serialize::stream::Message<'k>,
        SharedSegmenter,
    ),
}

/// Encodes a stored file (volume, signatures, manifest) on its way to the
/// target: OpenPGP, gzip or nothing, with the SHA1 of the stored bytes.
pub struct Encoder<'k> {
    front: Option<Front<'k>>,
    writer: Option<std::thread::JoinHandle<Result<Sealed, EncodeError>>>,
    stored: Arc<AtomicU64>,
    /// Input bytes whose encoded output is already stored (all of them for
    /// plain files); with `stored` this gives the compression ratio so far.
    reflected: Arc<AtomicU64>,
    plain: u64,
}

/// deflate level used inside OpenPGP and gzip (gpg's and duplicity's default).
pub const DEFAULT_LEVEL: u32 = 6;

/// How stored files are encoded: the layer, the keys, the deflate level.
#[derive(Clone, Copy)]
pub struct Format<'k> {
    pub encoding: Encoding,
    pub keys: Option<&'k MessageKeys>,
    /// deflate level (0 stores everything).
    pub level: u32,
    /// How OpenPGP content is compressed (encrypted files only).
    pub packing: Packing,
}

impl<'k> Encoder<'k> {
    /// `level` is the deflate level (0 stores everything).
    pub fn new(dest: Box<dyn Destination>, format: Format<'_>) -> Result<Self, EncodeError> {
        let Format {
            encoding: enc,
            keys,
            level,
            packing,
        } = format;
        let stored = Arc::new(AtomicU64::new(0));
        let reflected = Arc::new(AtomicU64::new(0));
        let mut sink = Sink {
            dest,
            hash: Sha1::new(),
            written: Arc::clone(&stored),
        };
        if enc == Encoding::Plain {
            return Ok(Encoder {
                front: Some(Front::Plain(sink)),
                writer: None,
                stored,
                reflected,
                plain: 0,
            });
        }
        let (done_tx, done_rx) = sync_channel::<Piece>(8);
        let seg = SharedSegmenter(Arc::new(Mutex::new(Segmenter {
            buf: Vec::with_capacity(SEGMENT),
            tail: Vec::new(),
            seq: 0,
            level: (enc == Encoding::Gzip || packing != Packing::None).then_some(level.min(9)),
            check: match (enc, packing) {
                (Encoding::Gzip, _) => Check::Crc32,
                (_, Packing::Zlib) => Check::Adler32,
                _ => Check::None,
            },
            done: done_tx,
            jobs: pool()
                .jobs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            plain: Arc::new(AtomicU64::new(0)),
        })));
        let (container, front) = match enc {
            Encoding::Gzip => {
                gzip_header(&mut sink)?;
                (Container::Gzip(sink), Front::Gzip(seg))
            }
            _ => {
                let keys = keys.ok_or(CryptoError::NoPassphraseToEncrypt)?;
                let mut m = MessageWriter::new(sink, keys, packing != Packing::None)?;
                // The compressed-data packet starts with its algorithm: 1 is
                // ZIP (raw deflate), 2 is ZLIB (with zlib's 2-byte header).
                match packing {
                    Packing::Zip => m.write_content(&[1])?,
                    Packing::Zlib => m.write_content(&[2, 0x78, 0x9c])?,
                    Packing::None => {}
                }
                let mut message = sequoia_openpgp::serialize::stream::Message::new(seg.clone());
                if let Some(pair) = keys.signer() {
                    // One-pass signature before the literal packet, the
                    // signature after it, as `gpg --sign --encrypt` writes.
                    message =
                        sequoia_openpgp::serialize::stream::Signer::new(message, pair.clone())
                            .and_then(|s| s.build())
                            .map_err(|e| CryptoError::Encrypt(format!("{e:#}")))?;
                }
                let literal = sequoia_openpgp::serialize::stream::LiteralWriter::new(message)
                    .build()
                    .map_err(|e| CryptoError::Encrypt(format!("{e:#}")))?;
                (
                    Container::Gpg(
                        Box::new(m),
                        packing == Packing::Zlib,
                        std::marker::PhantomData,
                    ),
                    Front::Gpg(literal, seg),
                )
            }
        };
        // The container holds only owned parts; the thread needs no borrow.
        let container: Container<'static> = match container {
            Container::Gzip(s) => Container::Gzip(s),
            Container::Gpg(m, z, _) => Container::Gpg(m, z, std::marker::PhantomData),
        };
        let r2 = Arc::clone(&reflected);
        let writer = std::thread::Builder::new()
            .name("cairn-volume-writer".into())
            .spawn(move || write_pieces(container, done_rx, r2))
            .map_err(EncodeError::Io)?;
        Ok(Encoder {
            front: Some(front),
            writer: Some(writer),
            stored,
            reflected,
            plain: 0,
        })
    }

    /// Bytes stored so far (lagging the input by what is in flight).
    pub fn stored_bytes(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Bytes fed in so far.
    pub fn plain_bytes(&self) -> u64 {
        self.plain
    }

    /// The stored size this file will have if it ends now: what is stored,
    /// plus the input still in flight at the ratio seen so far (or
    /// `fallback_ratio` before any output).
    pub fn estimated_size(&self, fallback_ratio: f64) -> u64 {
        if self.writer.is_none() {
            return self.stored_bytes();
        }
        let stored = self.stored_bytes() as f64;
        let reflected = self.reflected.load(Ordering::Relaxed) as f64;
        let ratio = if reflected > 0.0 {
            stored / reflected
        } else {
            fallback_ratio
        };
        (stored + (self.plain as f64 - reflected).max(0.0) * ratio) as u64
    }

    /// Finishes the layers and commits the upload.
    pub fn finish(self) -> Result<Stored, EncodeError> {
        self.seal()?.commit()
    }

    /// Finishes the layers; the caller commits the result.
    pub fn seal(mut self) -> Result<Sealed, EncodeError> {
        let seg = match self.front.take().expect("open encoder") {
            Front::Plain(sink) => return Ok(sink.seal()),
            Front::Gzip(seg) => seg,
            Front::Gpg(literal, seg) => {
                literal
                    .finalize()
                    .map_err(|e| CryptoError::Encrypt(format!("{e:#}")))?;
                seg
            }
        };
        let sent = seg.0.lock().unwrap_or_else(|e| e.into_inner()).send(true);
        let joined = self
            .writer
            .take()
            .expect("writer thread")
            .join()
            .map_err(|_| io::Error::other("the volume writer thread panicked"))?;
        sent?;
        joined
    }
}

impl Write for Encoder<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self.front.as_mut().expect("open encoder") {
            Front::Plain(s) => s.write(buf)?,
            Front::Gzip(seg) => seg.write(buf)?,
            Front::Gpg(m, _) => m.write(buf)?,
        };
        self.plain += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Encoder<'_> {
    fn drop(&mut self) {
        // An encoder dropped unfinished (an error upstream): end the segment
        // stream so the writer thread stops, then let the upload be dropped,
        // which removes it.
        let seg = match self.front.take() {
            Some(Front::Gzip(seg)) | Some(Front::Gpg(_, seg)) => Some(seg),
            _ => None,
        };
        if let (Some(seg), Some(w)) = (seg, self.writer.take()) {
            let _ = seg.0.lock().unwrap_or_else(|e| e.into_inner()).send(true);
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(pieces: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(pieces)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn adler32_combines_like_zlib() {
        let a = b"Wikipedia is great. ".repeat(1000);
        let b = b"Another piece of text".repeat(777);
        let whole = adler32(1, &[a.clone(), b.clone()].concat());
        assert_eq!(
            adler32_combine(adler32(1, &a), adler32(1, &b), b.len() as u64),
            whole
        );
        assert_eq!(adler32(1, b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn segments_concatenate_into_one_deflate_stream() {
        let text: Vec<u8> = b"backup appliance "
            .iter()
            .cycle()
            .take(3 * SEGMENT + 123)
            .copied()
            .collect();
        let mut random = vec![0u8; SEGMENT];
        sequoia_openpgp::crypto::random(&mut random).unwrap();
        for data in [
            text,
            random.clone(),
            [random.clone(), b"tail".to_vec()].concat(),
            Vec::new(),
        ] {
            let chunks: Vec<&[u8]> = if data.is_empty() {
                vec![&[][..]]
            } else {
                data.chunks(SEGMENT).collect()
            };
            let mut stream = Vec::new();
            for (i, c) in chunks.iter().enumerate() {
                let dict = if i == 0 { &[][..] } else { chunks[i - 1] };
                stream.extend(deflate_segment(dict, c, 6, i + 1 == chunks.len()));
            }
            assert_eq!(inflate(&stream), data);
        }
        assert!(looks_random(&random));
        assert!(!looks_random(&b"hello world ".repeat(10_000)));
        let stored = deflate_segment(&[], &random, 6, true);
        assert!(
            stored.len() < random.len() + 200,
            "random data is stored, not expanded"
        );
    }
}
