//! One backup set's entries, in index order, produced by background threads:
//! a fetcher that makes each volume local and checks its SHA1 against the
//! manifest (one volume ahead), and a decoder that decrypts or gunzips it and
//! walks its tar entries, joining multivol chunks into one logical entry.
//!
//! The consumer side, [`SetCursor`], peeks at the next entry's index and reads
//! or skips its data. Channels are bounded, so memory stays at a few chunks
//! per set however large the archive is.

use crate::archive::codec;
use crate::archive::difftar::{self, DiffType, DifftarError};
use crate::archive::index::Index;
use crate::archive::manifest::VolumeInfo;
use crate::archive::meta::Meta;
use crate::archive::names::Encoding;
use crate::crypto::CryptoError;
use crate::repo::{Repo, VerifiedVolume, VolumeProblem};
use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// The head of a logical entry.
#[derive(Debug, Clone)]
pub struct Head {
    pub index: Index,
    pub difftype: DiffType,
    pub meta: Meta,
    /// Which volume it starts in, for messages.
    pub volume: u64,
}

/// A range of a set that cannot be read.
#[derive(Debug, Clone)]
pub struct Gap {
    pub volume: u64,
    pub file: String,
    pub start: Index,
    pub end: Index,
    pub reason: String,
}

impl Gap {
    pub fn covers(&self, ix: &Index) -> bool {
        self.start <= *ix && *ix <= self.end
    }
}

pub enum Item {
    /// A new entry with the first part of its data; `complete` means no
    /// `Data`/`End`/`Broken` follow for it.
    Entry {
        head: Head,
        data: Vec<u8>,
        complete: bool,
    },
    Data(Vec<u8>),
    /// The current entry's data is complete.
    End,
    /// The current entry's data was cut short by a damaged volume.
    Broken,
    Gap(Gap),
    /// An entry that was refused (a hostile or unrecognised name), with why.
    Refused(String),
    /// Reading the set cannot go on (for example, the wrong passphrase).
    Fatal(String),
}

/// A volume to read, with the manifest entry that vouches for it.
pub struct VolumeJob {
    pub number: u64,
    /// The volume's file name (the expected one, if it is missing).
    pub name: String,
    /// Whether the target holds it.
    pub present: bool,
    pub info: VolumeInfo,
    pub encoding: Encoding,
}

/// Starts the threads for one set. `restrict` keeps only indexes under a
/// prefix, with the prefix removed (`patchdir.filter_path_iter`).
pub fn spawn<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    repo: &'env Repo,
    jobs: Vec<VolumeJob>,
    restrict: Option<Index>,
) -> SetCursor {
    let (vol_tx, vol_rx) = sync_channel::<(VolumeJob, Result<VerifiedVolume, VolumeProblem>)>(1);
    // At most ITEMS × BATCH bytes wait here when the destination disk is slow.
    let (tx, rx) = sync_channel::<Item>(ITEMS);
    scope.spawn(move || {
        for job in jobs {
            let fetched = if job.present {
                repo.fetch_volume(&job.name, Some(&job.info))
            } else {
                Err(VolumeProblem::Missing)
            };
            if vol_tx.send((job, fetched)).is_err() {
                return;
            }
        }
    });
    scope.spawn(move || decode_set(repo, vol_rx, tx, restrict));
    SetCursor {
        rx,
        peeked: None,
        taken: None,
        gaps: Vec::new(),
        refused: Vec::new(),
        finished: false,
        fatal: None,
    }
}

/// Data is sent in batches of about this size, so a small file is one
/// message and a large one a few, not one per 64 KiB chunk.
const BATCH: usize = 256 << 10;

/// Messages queued between a set's decoder and the restore: enough to keep
/// both sides busy, few enough that a stalled disk cannot make the queue
/// grow past 4 MiB (64 MiB, the old bound, broke the 64 MB RSS goal).
const ITEMS: usize = 16;

struct OpenEntry {
    index: Index,
    multivol: bool,
    /// The head, until it is sent with the first batch.
    head: Option<Head>,
    pending: Vec<u8>,
}

struct Decoder {
    tx: SyncSender<Item>,
    /// The entry whose data is being gathered.
    open: Option<OpenEntry>,
    restrict: Option<Index>,
}

/// Marks the consumer as gone, so producers can stop.
struct Hangup;

impl Decoder {
    fn send(&self, item: Item) -> Result<(), Hangup> {
        self.tx.send(item).map_err(|_| Hangup)
    }

    /// Sends what has been gathered of the open entry.
    fn flush(&mut self, complete: bool) -> Result<(), Hangup> {
        let Some(o) = self.open.as_mut() else {
            return Ok(());
        };
        let data = std::mem::take(&mut o.pending);
        let item = match o.head.take() {
            Some(head) => Item::Entry {
                head,
                data,
                complete,
            },
            None => Item::Data(data),
        };
        self.send(item)
    }

    /// Finishes the open entry: complete, or cut short by damage.
    fn close_open(&mut self, ok: bool) -> Result<(), Hangup> {
        let Some(o) = self.open.as_ref() else {
            return Ok(());
        };
        let head_sent = o.head.is_none();
        if ok {
            if head_sent {
                self.flush(false)?;
                self.send(Item::End)?;
            } else {
                self.flush(true)?;
            }
        } else {
            if !head_sent {
                self.flush(false)?;
            }
            self.send(Item::Broken)?;
        }
        self.open = None;
        Ok(())
    }
}

fn decode_set(
    repo: &Repo,
    vols: Receiver<(VolumeJob, Result<VerifiedVolume, VolumeProblem>)>,
    tx: SyncSender<Item>,
    restrict: Option<Index>,
) {
    let mut d = Decoder {
        tx,
        open: None,
        restrict,
    };
    let _ = (|| -> Result<(), Hangup> {
        for (job, fetched) in vols {
            let file = job.name.clone();
            let gap = |reason: String| {
                Item::Gap(Gap {
                    volume: job.number,
                    file: file.clone(),
                    start: job.info.start.clone(),
                    end: job.info.end.clone(),
                    reason,
                })
            };
            let vol = match fetched {
                Ok(v) => v,
                Err(p) => {
                    d.close_open(false)?;
                    d.send(gap(p.to_string()))?;
                    continue;
                }
            };
            let raw = match vol.open() {
                Ok(f) => f,
                Err(e) => {
                    d.close_open(false)?;
                    d.send(gap(e.to_string()))?;
                    continue;
                }
            };
            let reader = match codec::decode(raw, job.encoding, &repo.keys) {
                Ok(r) => r,
                Err(
                    e @ (CryptoError::WrongPassphrase
                    | CryptoError::NoPassphrase
                    | CryptoError::NoSecretKey(_)),
                ) => {
                    d.close_open(false)?;
                    return d.send(Item::Fatal(format!("cannot decrypt {file}: {e}")));
                }
                Err(e) => {
                    d.close_open(false)?;
                    d.send(gap(e.to_string()))?;
                    continue;
                }
            };
            match read_volume(&mut d, reader, job.number) {
                Ok(()) => {}
                Err(VolumeError::Hangup) => return Err(Hangup),
                Err(VolumeError::Bad(e)) => {
                    d.close_open(false)?;
                    d.send(gap(format!("it is damaged: {e}")))?;
                }
            }
            drop(vol);
        }
        d.close_open(true)
    })();
}

enum VolumeError {
    Hangup,
    Bad(DifftarError),
}

fn read_volume(
    d: &mut Decoder,
    reader: Box<dyn Read + Send + '_>,
    volume: u64,
) -> Result<(), VolumeError> {
    let mut hung = false;
    let res = difftar::for_each_entry(reader, |raw, data| {
        let name = match difftar::parse_entry_name(&raw.name) {
            Ok(n) => n,
            Err(e) => {
                // Refuse this entry alone; the rest of the volume is fine.
                if d.close_open(true).is_err() || d.send(Item::Refused(e.to_string())).is_err() {
                    hung = true;
                    return Err(DifftarError::Tar(io::Error::other("consumer gone")));
                }
                return Ok(());
            }
        };
        let mut index = name.index;
        if let Some(prefix) = &d.restrict {
            match index.strip_prefix(prefix) {
                Some(rest) => index = rest,
                None => {
                    // Not under the restored path; nothing to send.
                    if d.close_open(true).is_err() {
                        hung = true;
                        return Err(DifftarError::Tar(io::Error::other("consumer gone")));
                    }
                    return Ok(());
                }
            }
        }
        let continues =
            matches!(&d.open, Some(o) if o.multivol && name.multivol && o.index == index);
        let gone = |hung: &mut bool| {
            *hung = true;
            DifftarError::Tar(io::Error::other("consumer gone"))
        };
        if !continues {
            if d.close_open(true).is_err() {
                return Err(gone(&mut hung));
            }
            let mut meta = raw.meta;
            if name.difftype == DiffType::Deleted {
                meta.kind = None;
            }
            let carries_data = meta.is_regular();
            let head = Head {
                index: index.clone(),
                difftype: name.difftype,
                meta,
                volume,
            };
            if !carries_data {
                if d.send(Item::Entry {
                    head,
                    data: Vec::new(),
                    complete: true,
                })
                .is_err()
                {
                    return Err(gone(&mut hung));
                }
                return Ok(());
            }
            d.open = Some(OpenEntry {
                index,
                multivol: name.multivol,
                head: Some(head),
                pending: Vec::new(),
            });
        }
        // Gather the data, sending a batch whenever one is full (so even a
        // huge single entry from a foreign writer stays bounded in memory).
        loop {
            let o = d.open.as_mut().expect("open entry");
            let want = BATCH.saturating_sub(o.pending.len()).max(difftar::CHUNK);
            let n = (&mut *data)
                .take(want as u64)
                .read_to_end(&mut o.pending)
                .map_err(DifftarError::Tar)?;
            if n == 0 {
                break;
            }
            if o.pending.len() >= BATCH && d.flush(false).is_err() {
                return Err(gone(&mut hung));
            }
        }
        if !name.multivol && d.close_open(true).is_err() {
            return Err(gone(&mut hung));
        }
        Ok(())
    });
    match res {
        Ok(()) => Ok(()),
        Err(_) if hung => Err(VolumeError::Hangup),
        Err(e) => Err(VolumeError::Bad(e)),
    }
}

/// The consumer's view of one set's entry stream.
pub struct SetCursor {
    rx: Receiver<Item>,
    peeked: Option<(Head, Vec<u8>, bool)>,
    /// The taken entry's first data, and whether it was all of it.
    taken: Option<(Vec<u8>, bool)>,
    /// Unreadable ranges seen so far.
    pub gaps: Vec<Gap>,
    /// Entries refused so far, with why.
    pub refused: Vec<String>,
    finished: bool,
    pub fatal: Option<String>,
}

impl SetCursor {
    /// The head of the next entry, without consuming it.
    pub fn peek(&mut self) -> Option<&Head> {
        while self.peeked.is_none() && !self.finished {
            match self.rx.recv() {
                Ok(Item::Entry {
                    head,
                    data,
                    complete,
                }) => self.peeked = Some((head, data, complete)),
                Ok(Item::Gap(g)) => self.gaps.push(g),
                Ok(Item::Refused(r)) => self.refused.push(r),
                // Stray data of an entry that was skipped.
                Ok(Item::Data(_) | Item::End | Item::Broken) => {}
                Ok(Item::Fatal(e)) => {
                    self.fatal = Some(e);
                    self.finished = true;
                }
                Err(_) => self.finished = true,
            }
        }
        self.peeked.as_ref().map(|p| &p.0)
    }

    /// Takes the peeked entry; its data must then be read with
    /// [`SetCursor::data`] or dropped with [`SetCursor::skip`].
    pub fn take(&mut self) -> Option<Head> {
        self.peek();
        let (head, data, complete) = self.peeked.take()?;
        self.taken = Some((data, complete));
        Some(head)
    }

    /// A reader over the taken entry's data.
    pub fn data(&mut self) -> EntryData<'_> {
        let (buf, done) = self.taken.take().unwrap_or((Vec::new(), true));
        EntryData {
            cursor: self,
            buf,
            pos: 0,
            done,
        }
    }

    /// Discards the taken entry's data. Returns false if it was broken.
    pub fn skip(&mut self) -> bool {
        let mut d = self.data();
        io::copy(&mut d, &mut io::sink()).is_ok()
    }

    /// Whether `ix` lies in a range of this set that could not be read.
    pub fn damaged(&self, ix: &Index) -> Option<&Gap> {
        self.gaps.iter().find(|g| g.covers(ix))
    }
}

pub struct EntryData<'a> {
    cursor: &'a mut SetCursor,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for EntryData<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            match self.cursor.rx.recv() {
                Ok(Item::Data(b)) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Ok(Item::End) => self.done = true,
                Ok(Item::Broken) => {
                    self.done = true;
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the rest of this file is in a damaged or missing volume",
                    ));
                }
                Ok(Item::Gap(g)) => self.cursor.gaps.push(g),
                Ok(Item::Refused(r)) => self.cursor.refused.push(r),
                Ok(Item::Entry {
                    head,
                    data,
                    complete,
                }) => {
                    // Should not happen: the producer always ends an entry first.
                    self.cursor.peeked = Some((head, data, complete));
                    self.done = true;
                }
                Ok(Item::Fatal(e)) => {
                    self.cursor.fatal = Some(e.clone());
                    self.cursor.finished = true;
                    self.done = true;
                    return Err(io::Error::other(e));
                }
                Err(_) => {
                    self.cursor.finished = true;
                    self.done = true;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "backup set ended in the middle of a file",
                    ));
                }
            }
        }
        let n = (self.buf.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
