//! Tar headers written exactly as duplicity writes them: Python's `tarfile`
//! in pax format (`TarInfo.tobuf(errors="replace")`, Python ≥ 3.8), a
//! `././@PaxHeader` record block before any header whose name, link, owner
//! name or number does not fit ustar, and `hdrcharset=BINARY` for names that
//! are not UTF-8.
//!
//! Reading goes through the `tar` crate; writing is done here, byte for byte
//! as `tarfile.py` does it, so Cairn's volumes are bit-identical to
//! duplicity's for the same input, which the tests use.

use super::meta::{FileType, Meta};

pub const BLOCK: usize = 512;
/// `tarfile.RECORDSIZE`: footers pad to this.
pub const RECORD: usize = 20 * BLOCK;

/// Python's `itn` in POSIX mode: zero-padded octal and a NUL.
fn itn(field: &mut [u8], n: u64) {
    let digits = field.len() - 1;
    let s = format!("{n:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// Python's `stn(s, length, "ascii", "replace")`: every character that is
/// not ASCII becomes one `?` (a valid UTF-8 sequence is one character; each
/// byte of an invalid one is one character, as `surrogateescape` decodes it).
fn ascii_replace(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.extend(
                    valid
                        .chars()
                        .map(|c| if c.is_ascii() { c as u8 } else { b'?' }),
                );
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                let good = std::str::from_utf8(good).unwrap_or_default();
                out.extend(
                    good.chars()
                        .map(|c| if c.is_ascii() { c as u8 } else { b'?' }),
                );
                let skip = e.error_len().unwrap_or(bad.len());
                out.extend(std::iter::repeat_n(b'?', skip));
                rest = &bad[skip..];
            }
        }
    }
    out
}

fn stn(field: &mut [u8], s: &[u8]) {
    let enc = ascii_replace(s);
    let n = enc.len().min(field.len());
    field[..n].copy_from_slice(&enc[..n]);
    field[n..].fill(0);
}

fn char_len(s: &[u8]) -> usize {
    match std::str::from_utf8(s) {
        Ok(v) => v.chars().count(),
        Err(_) => s.len(),
    }
}

/// The fields of one tar entry, as duplicity fills a `TarInfo`.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Full entry name; directories end in `/`.
    pub name: &'a [u8],
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub linkname: &'a [u8],
    pub uname: &'a [u8],
    pub gname: &'a [u8],
    pub devmajor: u32,
    pub devminor: u32,
}

impl<'a> Entry<'a> {
    /// An entry with `meta`'s fields under `name`, carrying `size` bytes.
    pub fn from_meta(name: &'a [u8], meta: &'a Meta, size: u64) -> Self {
        let typeflag = match meta.kind {
            Some(FileType::Regular) | None => b'0',
            Some(FileType::Directory) => b'5',
            Some(FileType::Symlink) => b'2',
            Some(FileType::Fifo) => b'6',
            Some(FileType::CharDevice) => b'3',
            Some(FileType::BlockDevice) => b'4',
        };
        Entry {
            name,
            typeflag,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            size,
            mtime: meta.mtime.max(0),
            linkname: &meta.link_target,
            uname: &meta.uname,
            gname: &meta.gname,
            devmajor: meta.devmajor,
            devminor: meta.devminor,
        }
    }

    /// A `deleted/` entry: every field zero (`ROPath(index).get_tarinfo()`).
    pub fn deleted(name: &'a [u8]) -> Self {
        Entry {
            name,
            typeflag: b'0',
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            linkname: b"",
            uname: b"",
            gname: b"",
            devmajor: 0,
            devminor: 0,
        }
    }
}

fn ustar_header(e: &Entry, out: &mut Vec<u8>) {
    let mut h = [0u8; BLOCK];
    stn(&mut h[0..100], e.name);
    itn(&mut h[100..108], u64::from(e.mode & 0o7777));
    itn(&mut h[108..116], e.uid);
    itn(&mut h[116..124], e.gid);
    itn(&mut h[124..136], e.size);
    itn(&mut h[136..148], e.mtime.max(0) as u64);
    h[148..156].fill(b' ');
    h[156] = e.typeflag;
    stn(&mut h[157..257], e.linkname);
    h[257..265].copy_from_slice(b"ustar\x0000");
    stn(&mut h[265..297], e.uname);
    stn(&mut h[297..329], e.gname);
    if e.typeflag == b'3' || e.typeflag == b'4' {
        itn(&mut h[329..337], u64::from(e.devmajor));
        itn(&mut h[337..345], u64::from(e.devminor));
    }
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let ck = format!("{sum:06o}\0");
    h[148..155].copy_from_slice(&ck.as_bytes()[ck.len() - 7..]);
    out.extend_from_slice(&h);
}

/// Appends the header block(s) of `e` (pax extension first, if needed).
pub fn write_header(e: &Entry, out: &mut Vec<u8>) {
    let mut records: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut fixed = e.clone();
    for (key, value, limit) in [
        ("path", e.name, 100usize),
        ("linkpath", e.linkname, 100),
        ("uname", e.uname, 32),
        ("gname", e.gname, 32),
    ] {
        if !value.is_ascii() || char_len(value) > limit {
            records.push((key, value.to_vec()));
        }
    }
    for (key, value, digits) in [
        ("uid", e.uid, 8u32),
        ("gid", e.gid, 8),
        ("size", e.size, 12),
        ("mtime", e.mtime.max(0) as u64, 12),
    ] {
        if value >= 8u64.pow(digits - 1) {
            records.push((key, value.to_string().into_bytes()));
            match key {
                "uid" => fixed.uid = 0,
                "gid" => fixed.gid = 0,
                "size" => fixed.size = 0,
                _ => fixed.mtime = 0,
            }
        }
    }
    if !records.is_empty() {
        let binary = records.iter().any(|(_, v)| std::str::from_utf8(v).is_err());
        let mut body = Vec::new();
        if binary {
            body.extend_from_slice(b"21 hdrcharset=BINARY\n");
        }
        for (k, v) in &records {
            // "<len> <key>=<value>\n", where <len> counts itself.
            let l = k.len() + v.len() + 3;
            let mut p = 0usize;
            loop {
                let n = l + p.to_string().len();
                if n == p {
                    break;
                }
                p = n;
            }
            body.extend_from_slice(format!("{p} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        ustar_header(
            &Entry {
                name: b"././@PaxHeader",
                typeflag: b'x',
                mode: 0,
                uid: 0,
                gid: 0,
                size: body.len() as u64,
                mtime: 0,
                linkname: b"",
                uname: b"",
                gname: b"",
                devmajor: 0,
                devminor: 0,
            },
            out,
        );
        out.extend_from_slice(&body);
        pad(out);
    }
    ustar_header(&fixed, out);
}

/// Pads `out` with zeros to the next 512-byte boundary.
pub fn pad(out: &mut Vec<u8>) {
    let r = out.len() % BLOCK;
    if r != 0 {
        out.resize(out.len() + BLOCK - r, 0);
    }
}

/// Zero bytes to add after `offset` bytes of tar data to end the archive at
/// the next record boundary (`TarBlockIter.get_footer`: 512 to 10240 bytes).
pub fn footer_len(offset: u64) -> usize {
    RECORD - (offset % RECORD as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Python's tarfile output for the same entries, when python3 is there.
    fn python_header(
        name: &[u8],
        typeflag: char,
        link: &[u8],
        uid: u64,
        size: u64,
        mtime: i64,
    ) -> Option<Vec<u8>> {
        let script = format!(
            "import tarfile,sys,os\nti=tarfile.TarInfo(os.fsdecode(bytes.fromhex('{}')))\nti.type=b'{}'\nti.linkname=os.fsdecode(bytes.fromhex('{}'))\nti.uid={}\nti.gid=7\nti.size={}\nti.mtime={}\nti.mode=0o644\nti.uname='bob'\nti.gname=''\nsys.stdout.buffer.write(ti.tobuf(format=tarfile.PAX_FORMAT, errors='replace', encoding='utf-8'))",
            hex::encode(name),
            typeflag,
            hex::encode(link),
            uid,
            size,
            mtime
        );
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout)
    }

    #[test]
    fn headers_are_byte_identical_to_python_tarfile() {
        let long = [b'x'; 150];
        type Case<'a> = (&'a [u8], char, &'a [u8], u64, u64, i64);
        let cases: Vec<Case> = vec![
            (b"snapshot/a.txt", '0', b"", 0, 12, 1_704_164_645),
            (b"snapshot/sub/", '5', b"", 1234, 0, 0),
            ("snapshot/ünïcødé_文件.txt".as_bytes(), '0', b"", 0, 8, 1),
            (b"snapshot/latin1_\xe9t\xe9.txt", '0', b"", 0, 14, 1),
            (&long, '0', b"", 0, 0, 1),
            (b"snapshot/link", '2', b"/nonexistent/target", 65534, 0, 1),
            (b"snapshot/biguid", '0', b"", 8u64.pow(7), 0, 1),
            (b"snapshot/future", '0', b"", 0, 0, 8i64.pow(11)),
        ];
        let mut checked = 0;
        for (name, t, link, uid, size, mtime) in cases {
            let Some(py) = python_header(name, t, link, uid, size, mtime) else {
                continue;
            };
            let mut ours = Vec::new();
            write_header(
                &Entry {
                    name,
                    typeflag: t as u8,
                    mode: 0o644,
                    uid,
                    gid: 7,
                    size,
                    mtime,
                    linkname: link,
                    uname: b"bob",
                    gname: b"",
                    devmajor: 0,
                    devminor: 0,
                },
                &mut ours,
            );
            assert_eq!(ours, py, "{:?}", String::from_utf8_lossy(name));
            checked += 1;
        }
        assert!(checked == 8 || Command::new("python3").arg("-V").output().is_err());
    }

    #[test]
    fn footer_sizes() {
        assert_eq!(footer_len(0), RECORD);
        assert_eq!(footer_len(512), RECORD - 512);
        assert_eq!(footer_len(RECORD as u64 - 512), 512);
    }
}
