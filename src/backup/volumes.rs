//! Cutting the stream of tar entries into volumes (`dup_main.write_multivol`):
//! a new volume starts before an entry once the current one has reached its
//! size target (entries are never split), each volume ends with a tar footer,
//! is encoded and uploaded, and its index range and SHA1 go into the manifest
//! as soon as it is stored.
//!
//! A finished volume is committed (uploaded) by [`Uploads`] while the next
//! one is encoded; its manifest entry is written once it is stored, in
//! volume order.
//!
//! Each volume's plaintext (the tar bytes before compression and encryption)
//! is hashed too. When an interrupted set is resumed, the entries the stored
//! volumes hold are generated again and must hash the same: only then is
//! continuing after them sound. If the source changed in between, resuming
//! would join old and new data, so the writer reports
//! [`Error::SourceChanged`] and the set is started again.

use super::uploads::Uploads;
use crate::archive::codec::{Encoder, Format, Stored};
use crate::archive::index::Index;
use crate::archive::manifest::VolumeInfo;
use crate::archive::tarfmt;
use crate::error::{Error, Result};
use crate::repo::Repo;
use crate::time::Seconds;
use sha1::{Digest, Sha1};
use std::collections::VecDeque;
use std::io::Write;

struct Open<'c> {
    number: u64,
    name: String,
    encoder: Encoder<'c>,
    offset: u64,
    start: (Index, Option<u64>),
    end: (Index, Option<u64>),
    plain: Sha1,
}

/// Receives finished volumes' manifest entries (the manifest writer), with
/// the SHA1 of the volume's plaintext tar.
pub trait VolumeLog {
    fn volume_done(&mut self, info: &VolumeInfo, stored: &Stored, plain_sha1: &[u8]) -> Result<()>;
}

/// A volume an interrupted run stored: its number, the `(index, block)` of
/// its last entry, and its plaintext SHA1.
pub struct StoredVolume {
    pub number: u64,
    pub end: (Index, Option<u64>),
    pub plain_sha1: Vec<u8>,
}

/// The entries being generated again while resuming, and what they must
/// hash to.
struct Resume {
    pending: VecDeque<StoredVolume>,
    hash: Sha1,
    offset: u64,
}

/// Orders `(index, block)` positions: a path's numbered chunks come before its
/// last piece (no block number).
fn position_key(p: &(Index, Option<u64>)) -> (&Index, u64) {
    (&p.0, p.1.unwrap_or(u64::MAX))
}

pub struct VolumeWriter<'r, 'c> {
    repo: &'r Repo,
    prev: Option<Seconds>,
    time: Seconds,
    format: Format<'c>,
    /// Start a new volume once this many bytes are stored.
    threshold: u64,
    open: Option<Open<'c>>,
    next_number: u64,
    /// Stored bytes per input byte in the last finished volume (1.0 before
    /// any): the guess for input whose output is not out yet, until the
    /// current volume has some of its own.
    ratio: f64,
    /// When resuming an interrupted set: the volumes already stored, whose
    /// entries are checked and dropped.
    resume: Option<Resume>,
    /// Volumes being sent: the manifest entry and plaintext hash each gets
    /// once it is stored.
    uploads: Uploads<(VolumeInfo, Vec<u8>)>,
    /// Bytes stored in finished volumes.
    pub stored: u64,
    pub volumes: u64,
}

impl<'r, 'c> VolumeWriter<'r, 'c> {
    /// Volumes of the set `prev`..`time` (`prev` is `None` for a full).
    pub fn new(
        repo: &'r Repo,
        (prev, time): (Option<Seconds>, Seconds),
        format: Format<'c>,
        volsize: u64,
        first_number: u64,
        concurrency: usize,
    ) -> Self {
        // duplicity stops 50 KiB (footer and OpenPGP slack) plus 16 KiB and
        // one 64 KiB block short of --volsize.
        let threshold = volsize.saturating_sub(130 * 1024).max(64 * 1024);
        VolumeWriter {
            repo,
            prev,
            time,
            format,
            threshold,
            open: None,
            next_number: first_number,
            ratio: 1.0,
            resume: None,
            uploads: Uploads::new(concurrency),
            stored: 0,
            volumes: 0,
        }
    }

    fn start(&mut self, index: &Index, chunk: Option<u64>) -> Result<()> {
        let number = self.next_number;
        self.next_number += 1;
        let name = self
            .repo
            .naming
            .volume(self.prev, self.time, number, self.format.encoding);
        let dest = self.repo.create(&name)?;
        let encoder = Encoder::new(dest, self.format).map_err(|e| encode_err(&name, e))?;
        self.open = Some(Open {
            number,
            name,
            encoder,
            offset: 0,
            start: (index.clone(), chunk),
            end: (index.clone(), chunk),
            plain: Sha1::new(),
        });
        Ok(())
    }

    /// Resumes an interrupted set after the volumes it stored
    /// (`dup_main.restart_position_iterator`): their entries are generated
    /// again, checked against each volume's plaintext hash, and dropped.
    pub fn resume_after(&mut self, stored: Vec<StoredVolume>) {
        if !stored.is_empty() {
            self.resume = Some(Resume {
                pending: stored.into(),
                hash: Sha1::new(),
                offset: 0,
            });
        }
    }

    /// While resuming: checks an entry against the stored volumes. `true`
    /// when it is already stored.
    fn already_stored(&mut self, at: (&Index, Option<u64>), bytes: [&[u8]; 3]) -> Result<bool> {
        let Some(r) = &mut self.resume else {
            return Ok(false);
        };
        let front = r.pending.front().expect("resume has pending volumes");
        let here = (at.0.clone(), at.1);
        if position_key(&here) > position_key(&front.end) {
            return Err(Error::SourceChanged {
                volume: front.number,
            });
        }
        for b in bytes {
            r.hash.update(b);
            r.offset += b.len() as u64;
        }
        if here == front.end {
            r.hash.update(vec![0u8; tarfmt::footer_len(r.offset)]);
            let digest = std::mem::take(&mut r.hash).finalize();
            let done = r.pending.pop_front().expect("front");
            if digest.as_slice() != done.plain_sha1.as_slice() {
                return Err(Error::SourceChanged {
                    volume: done.number,
                });
            }
            r.offset = 0;
            if r.pending.is_empty() {
                self.resume = None;
            }
        }
        Ok(true)
    }

    /// Adds one tar entry: `header` (already padded) and `data` (unpadded).
    /// `chunk` is the multivol chunk number if the entry is a chunk that is
    /// not its file's last (what the manifest records as a block number).
    pub fn add(
        &mut self,
        index: &Index,
        chunk: Option<u64>,
        header: &[u8],
        data: &[u8],
        log: &mut dyn VolumeLog,
    ) -> Result<()> {
        let pad = (tarfmt::BLOCK - data.len() % tarfmt::BLOCK) % tarfmt::BLOCK;
        let padding = &[0u8; tarfmt::BLOCK][..pad];
        if self.already_stored((index, chunk), [header, data, padding])? {
            return Ok(());
        }
        let polled = self.uploads.poll();
        self.log_stored(log)?;
        polled?;
        if let Some(o) = &self.open
            && o.encoder.estimated_size(self.ratio) >= self.threshold
        {
            self.close(log)?;
        }
        if self.open.is_none() {
            self.start(index, chunk)?;
        }
        let o = self.open.as_mut().expect("open volume");
        let io = |e| Error::local("write volume", o.name.clone(), e);
        for b in [header, data, padding] {
            o.encoder.write_all(b).map_err(io)?;
            o.plain.update(b);
        }
        o.offset += (header.len() + data.len() + pad) as u64;
        o.end = (index.clone(), chunk);
        Ok(())
    }

    /// Ends the open volume and sends it; the next one can start at once.
    fn close(&mut self, log: &mut dyn VolumeLog) -> Result<()> {
        let Some(mut o) = self.open.take() else {
            return Ok(());
        };
        let footer = vec![0u8; tarfmt::footer_len(o.offset)];
        o.encoder
            .write_all(&footer)
            .map_err(|e| Error::local("write volume", o.name.clone(), e))?;
        o.plain.update(&footer);
        let plain_sha1 = o.plain.finalize().to_vec();
        let plain = o.encoder.plain_bytes().max(1);
        let sealed = o.encoder.seal().map_err(|e| encode_err(&o.name, e))?;
        self.ratio = (sealed.stored.size as f64 / plain as f64).clamp(0.01, 1.5);
        let info = VolumeInfo {
            number: o.number,
            start: o.start.0,
            start_block: o.start.1,
            end: o.end.0,
            end_block: o.end.1,
            hashes: vec![("SHA1".into(), sealed.stored.sha1.clone())],
        };
        let sent = self
            .uploads
            .send(o.number, o.name, sealed, (info, plain_sha1));
        self.log_stored(log)?;
        sent
    }

    /// Writes the manifest entries of the volumes stored so far, in order.
    fn log_stored(&mut self, log: &mut dyn VolumeLog) -> Result<()> {
        for (_, (info, plain_sha1), stored) in self.uploads.confirmed() {
            self.stored += stored.size;
            self.volumes += 1;
            log.volume_done(&info, &stored, &plain_sha1)?;
        }
        Ok(())
    }

    /// Closes the last volume. A backup with nothing to store still writes
    /// one (empty) volume, as duplicity does.
    pub fn finish(mut self, log: &mut dyn VolumeLog) -> Result<(u64, u64)> {
        if let Some(r) = &self.resume {
            // The source ended before the stored volumes did.
            return Err(Error::SourceChanged {
                volume: r.pending.front().map_or(0, |v| v.number),
            });
        }
        if self.open.is_none() && self.volumes == 0 && self.next_number == 1 {
            self.start(&Index::root(), None)?;
        }
        self.close(log)?;
        let waited = self.uploads.wait_all();
        self.log_stored(log)?;
        waited?;
        Ok((self.volumes, self.stored))
    }
}

pub fn encode_err(name: &str, e: crate::archive::codec::EncodeError) -> Error {
    use crate::archive::codec::EncodeError;
    match e {
        EncodeError::Commit(io) => match io.downcast::<crate::backend::BackendError>() {
            Ok(b) => Error::Backend(b),
            Err(io) => Error::local("store", name.to_string(), io),
        },
        EncodeError::Crypto(c) => Error::Encrypt {
            file: name.to_string(),
            source: c,
        },
        EncodeError::Io(io) => Error::local("write", name.to_string(), io),
    }
}
