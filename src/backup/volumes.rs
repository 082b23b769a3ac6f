//! Cutting the stream of tar entries into volumes (`dup_main.write_multivol`):
//! a new volume starts before an entry once the current one has reached its
//! size target (entries are never split), each volume ends with a tar footer,
//! is encoded and uploaded, and its index range and SHA1 go into the manifest
//! as soon as it is stored.

use crate::archive::codec::{Encoder, Format, Stored};
use crate::archive::index::Index;
use crate::archive::manifest::VolumeInfo;
use crate::archive::tarfmt;
use crate::error::{Error, Result};
use crate::repo::Repo;
use crate::time::Seconds;
use std::io::Write;

struct Open<'c> {
    number: u64,
    name: String,
    encoder: Encoder<'c>,
    offset: u64,
    start: (Index, Option<u64>),
    end: (Index, Option<u64>),
}

/// Receives finished volumes' manifest entries (the manifest writer).
pub trait VolumeLog {
    fn volume_done(&mut self, info: &VolumeInfo, stored: &Stored) -> Result<()>;
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
    /// When resuming an interrupted set: entries are dropped up to and
    /// including this one (the last entry of the last volume kept).
    skip_until: Option<(Index, Option<u64>)>,
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
            skip_until: None,
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
        let upload = self.repo.backend.create(&name)?;
        let encoder = Encoder::new(upload, self.format).map_err(|e| encode_err(&name, e))?;
        self.open = Some(Open {
            number,
            name,
            encoder,
            offset: 0,
            start: (index.clone(), chunk),
            end: (index.clone(), chunk),
        });
        Ok(())
    }

    /// Resumes an interrupted set: drops the entries that volumes already
    /// stored hold, up to the last one's `(index, block)` from the manifest
    /// (`dup_main.restart_position_iterator`).
    pub fn resume_after(&mut self, last: (Index, Option<u64>)) {
        self.skip_until = Some(last);
    }

    /// Whether the entry at `(index, chunk)` was already stored.
    fn already_stored(&mut self, index: &Index, chunk: Option<u64>) -> bool {
        let Some((end, end_block)) = &self.skip_until else {
            return false;
        };
        let drop = match index.cmp(end) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => match (end_block, chunk) {
                // The volume ended with this path's last piece: all of it is stored.
                (None, _) => true,
                (Some(k), Some(j)) => {
                    if j == *k {
                        // The last stored piece: drop it, write from the next.
                        self.skip_until = None;
                        return true;
                    }
                    j < *k
                }
                // The path's last chunk comes after chunk `k`.
                (Some(_), None) => false,
            },
        };
        if !drop {
            self.skip_until = None;
        }
        drop
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
        if self.already_stored(index, chunk) {
            return Ok(());
        }
        if let Some(o) = &self.open
            && o.encoder.estimated_size(self.ratio) >= self.threshold
        {
            self.close(log)?;
        }
        if self.open.is_none() {
            self.start(index, chunk)?;
        }
        let o = self.open.as_mut().expect("open volume");
        let pad = (tarfmt::BLOCK - data.len() % tarfmt::BLOCK) % tarfmt::BLOCK;
        let io = |e| Error::local("write volume", o.name.clone(), e);
        o.encoder.write_all(header).map_err(io)?;
        o.encoder.write_all(data).map_err(io)?;
        o.encoder
            .write_all(&[0u8; tarfmt::BLOCK][..pad])
            .map_err(io)?;
        o.offset += (header.len() + data.len() + pad) as u64;
        o.end = (index.clone(), chunk);
        Ok(())
    }

    fn close(&mut self, log: &mut dyn VolumeLog) -> Result<()> {
        let Some(mut o) = self.open.take() else {
            return Ok(());
        };
        let footer = vec![0u8; tarfmt::footer_len(o.offset)];
        o.encoder
            .write_all(&footer)
            .map_err(|e| Error::local("write volume", o.name.clone(), e))?;
        let name = o.name.clone();
        let plain = o.encoder.plain_bytes().max(1);
        let stored = o.encoder.finish().map_err(|e| encode_err(&name, e))?;
        self.ratio = (stored.size as f64 / plain as f64).clamp(0.01, 1.5);
        let info = VolumeInfo {
            number: o.number,
            start: o.start.0,
            start_block: o.start.1,
            end: o.end.0,
            end_block: o.end.1,
            hashes: vec![("SHA1".into(), stored.sha1.clone())],
        };
        self.stored += stored.size;
        self.volumes += 1;
        log.volume_done(&info, &stored)
    }

    /// Closes the last volume. A backup with nothing to store still writes
    /// one (empty) volume, as duplicity does.
    pub fn finish(mut self, log: &mut dyn VolumeLog) -> Result<(u64, u64)> {
        if self.open.is_none() && self.volumes == 0 && self.next_number == 1 {
            self.start(&Index::root(), None)?;
        }
        self.close(log)?;
        Ok((self.volumes, self.stored))
    }
}

pub fn encode_err(name: &str, e: crate::archive::codec::EncodeError) -> Error {
    use crate::archive::codec::EncodeError;
    match e {
        EncodeError::Backend(b) => Error::Backend(b),
        EncodeError::Crypto(c) => Error::Crypto {
            file: name.to_string(),
            source: c,
        },
        EncodeError::Io(io) => Error::local("write", name.to_string(), io),
    }
}
