//! The ZIP format as a download needs it (APPNOTE 6.3): stored entries whose
//! size and CRC-32 are known before their data, so the archive is written
//! front to back without seeking; Unix modes and symlinks by Info-ZIP's
//! conventions (the mode in the high half of the external attributes, a
//! symlink's target as its data); exact times in the extended-timestamp
//! field beside the DOS time; ZIP64 fields only where a size, an offset or the
//! number of entries needs them.

use chrono::{Datelike, Local, TimeZone, Timelike};

/// Sizes and offsets from this value on need ZIP64 fields.
pub const ZIP64_FROM: u64 = 0xFFFF_FFFF;
const UNIX: u16 = 3 << 8;
const VERSION: u16 = 20;
const VERSION_ZIP64: u16 = 45;
const UTF8_NAME: u16 = 1 << 11;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// One entry's header facts.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The path inside the archive (`a/b.txt`, `a/` for a directory).
    pub name: Vec<u8>,
    pub kind: Kind,
    /// Permission bits (07777).
    pub mode: u32,
    pub mtime: i64,
    pub size: u64,
    pub crc: u32,
}

impl Entry {
    fn flags(&self) -> u16 {
        if std::str::from_utf8(&self.name).is_ok() {
            UTF8_NAME
        } else {
            0
        }
    }

    fn unix_mode(&self) -> u32 {
        let kind = match self.kind {
            Kind::File => 0o100000,
            Kind::Dir => 0o040000,
            Kind::Symlink => 0o120000,
        };
        kind | (self.mode & 0o7777)
    }

    /// The extended-timestamp field (modification time, UTC), if it fits.
    fn timestamp(&self) -> Vec<u8> {
        let Ok(t) = u32::try_from(self.mtime) else {
            return Vec::new();
        };
        let mut x = Vec::with_capacity(9);
        put16(&mut x, 0x5455);
        put16(&mut x, 5);
        x.push(1);
        put32(&mut x, t);
        x
    }
}

/// The local header before `e`'s data, at any offset.
pub fn local_header(e: &Entry, zip64_from: u64) -> Vec<u8> {
    let zip64 = e.size >= zip64_from;
    let mut extra = Vec::new();
    if zip64 {
        put16(&mut extra, 1);
        put16(&mut extra, 16);
        put64(&mut extra, e.size);
        put64(&mut extra, e.size);
    }
    extra.extend(e.timestamp());
    let (time, date) = dos_time(e.mtime);
    let mut h = Vec::with_capacity(30 + e.name.len() + extra.len());
    put32(&mut h, 0x0403_4b50);
    put16(&mut h, if zip64 { VERSION_ZIP64 } else { VERSION });
    put16(&mut h, e.flags());
    put16(&mut h, 0); // stored
    put16(&mut h, time);
    put16(&mut h, date);
    put32(&mut h, e.crc);
    let size = if zip64 { 0xFFFF_FFFF } else { e.size as u32 };
    put32(&mut h, size);
    put32(&mut h, size);
    put16(&mut h, e.name.len() as u16);
    put16(&mut h, extra.len() as u16);
    h.extend_from_slice(&e.name);
    h.extend(extra);
    h
}

/// `e`'s record in the central directory; its local header is at `offset`.
pub fn central_record(e: &Entry, offset: u64, zip64_from: u64) -> Vec<u8> {
    let big_size = e.size >= zip64_from;
    let big_offset = offset >= zip64_from;
    let mut extra = Vec::new();
    if big_size || big_offset {
        let fields = [big_size, big_size, big_offset];
        put16(&mut extra, 1);
        put16(&mut extra, 8 * fields.iter().filter(|b| **b).count() as u16);
        if big_size {
            put64(&mut extra, e.size);
            put64(&mut extra, e.size);
        }
        if big_offset {
            put64(&mut extra, offset);
        }
    }
    extra.extend(e.timestamp());
    let (time, date) = dos_time(e.mtime);
    let version = if big_size || big_offset {
        VERSION_ZIP64
    } else {
        VERSION
    };
    let mut h = Vec::with_capacity(46 + e.name.len() + extra.len());
    put32(&mut h, 0x0201_4b50);
    put16(&mut h, UNIX | VERSION_ZIP64);
    put16(&mut h, version);
    put16(&mut h, e.flags());
    put16(&mut h, 0);
    put16(&mut h, time);
    put16(&mut h, date);
    put32(&mut h, e.crc);
    let size = if big_size { 0xFFFF_FFFF } else { e.size as u32 };
    put32(&mut h, size);
    put32(&mut h, size);
    put16(&mut h, e.name.len() as u16);
    put16(&mut h, extra.len() as u16);
    put16(&mut h, 0); // comment
    put16(&mut h, 0); // disk
    put16(&mut h, 0); // internal attributes
    let dos_dir = if e.kind == Kind::Dir { 0x10 } else { 0 };
    put32(&mut h, (e.unix_mode() << 16) | dos_dir);
    put32(
        &mut h,
        if big_offset {
            0xFFFF_FFFF
        } else {
            offset as u32
        },
    );
    h.extend_from_slice(&e.name);
    h.extend(extra);
    h
}

/// The end of the archive: `entries` records of `cd_size` bytes starting at
/// `cd_offset`, with the ZIP64 end records first if anything overflows.
pub fn end_records(entries: u64, cd_offset: u64, cd_size: u64, zip64_from: u64) -> Vec<u8> {
    let zip64 =
        entries >= 0xFFFF.min(zip64_from) || cd_offset >= zip64_from || cd_size >= zip64_from;
    let mut h = Vec::with_capacity(98);
    if zip64 {
        let at = cd_offset + cd_size;
        put32(&mut h, 0x0606_4b50);
        put64(&mut h, 44);
        put16(&mut h, UNIX | VERSION_ZIP64);
        put16(&mut h, VERSION_ZIP64);
        put32(&mut h, 0);
        put32(&mut h, 0);
        put64(&mut h, entries);
        put64(&mut h, entries);
        put64(&mut h, cd_size);
        put64(&mut h, cd_offset);
        put32(&mut h, 0x0706_4b50);
        put32(&mut h, 0);
        put64(&mut h, at);
        put32(&mut h, 1);
    }
    let clamp16 = |v: u64| if zip64 { 0xFFFF } else { v as u16 };
    let clamp32 = |v: u64| if zip64 { 0xFFFF_FFFF } else { v as u32 };
    put32(&mut h, 0x0605_4b50);
    put16(&mut h, 0);
    put16(&mut h, 0);
    put16(&mut h, clamp16(entries));
    put16(&mut h, clamp16(entries));
    put32(&mut h, clamp32(cd_size));
    put32(&mut h, clamp32(cd_offset));
    put16(&mut h, 0);
    h
}

/// MS-DOS time and date in the appliance's local time (1980 to 2107).
fn dos_time(mtime: i64) -> (u16, u16) {
    let Some(t) = Local.timestamp_opt(mtime, 0).single() else {
        return (0, 0x21);
    };
    let year = t.year().clamp(1980, 2107);
    if year != t.year() {
        return if year == 1980 {
            (0, 0x21)
        } else {
            (0xBF7D, 0xFF9F)
        };
    }
    let time = (t.hour() << 11) | (t.minute() << 5) | (t.second() / 2);
    let date = (((year - 1980) as u32) << 9) | (t.month() << 5) | t.day();
    (time as u16, date as u16)
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}
