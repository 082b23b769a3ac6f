//! Manifests (`duplicity/manifest.py`): which host and directory a set came
//! from, the index range and SHA1 of every volume, and the list of changed files.
//!
//! The writer streams the manifest as duplicity does (header, one block per
//! volume as it is finished, Filelist last); the parser accepts everything
//! duplicity's regexes accept, including duplicate `Volume N:` blocks left by a
//! restarted backup (the last one wins) and a Filelist in either position.

use super::index::{Index, quote, unquote};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest volume block has a bad first line {0:?}")]
    BadVolumeLine(String),
    #[error("manifest entry for volume {0} has no StartingPath or EndingPath")]
    MissingRange(u64),
    #[error("manifest entry for volume {0} has an unreadable path or block number: {1:?}")]
    BadField(u64, String),
}

/// One volume's entry: the index range it holds and the hash of its stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub number: u64,
    pub start: Index,
    pub start_block: Option<u64>,
    pub end: Index,
    pub end_block: Option<u64>,
    /// `(algorithm, hex)` pairs in file order; duplicity writes only `SHA1`.
    pub hashes: Vec<(String, String)>,
}

impl VolumeInfo {
    /// SHA1 if present, else MD5, else whatever is there (`get_best_hash`).
    pub fn best_hash(&self) -> Option<(&str, &str)> {
        for want in ["SHA1", "MD5"] {
            if let Some((k, v)) = self.hashes.iter().find(|(k, _)| k == want) {
                return Some((k, v));
            }
        }
        self.hashes.first().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether any index starting with `prefix` may be in this volume
    /// (`VolumeInfo.contains`, recursive form).
    pub fn contains(&self, prefix: &Index) -> bool {
        self.start.truncated(prefix.len()) <= *prefix && *prefix <= self.end
    }

    /// The block exactly as `VolumeInfo.to_string` writes it, without the
    /// trailing newline that `add_volume_info` appends.
    pub fn to_bytes(&self) -> Vec<u8> {
        fn idx(i: &Index) -> Vec<u8> {
            if i.is_root() {
                b".".to_vec()
            } else {
                quote(&i.joined())
            }
        }
        fn blk(b: Option<u64>) -> Vec<u8> {
            b.map_or_else(|| b" ".to_vec(), |v| v.to_string().into_bytes())
        }
        let mut out = format!("Volume {}:\n", self.number).into_bytes();
        out.extend_from_slice(b"    StartingPath   ");
        out.extend(idx(&self.start));
        out.push(b' ');
        out.extend(blk(self.start_block));
        out.extend_from_slice(b"\n    EndingPath     ");
        out.extend(idx(&self.end));
        out.push(b' ');
        out.extend(blk(self.end_block));
        for (k, v) in &self.hashes {
            out.extend_from_slice(format!("\n    Hash {k} {v}").as_bytes());
        }
        out
    }

    fn parse(block: &[u8]) -> Result<Self, ManifestError> {
        let text = trim(block);
        let mut lines = text.split(|&b| b == b'\n');
        let first = lines.next().unwrap_or_default();
        let number = parse_volume_header(first)
            .ok_or_else(|| ManifestError::BadVolumeLine(String::from_utf8_lossy(first).into()))?;
        let bad = |l: &[u8]| ManifestError::BadField(number, String::from_utf8_lossy(l).into());
        let (mut start, mut end) = (None, None);
        let (mut start_block, mut end_block) = (None, None);
        let mut hashes: Vec<(String, String)> = Vec::new();
        for line in lines {
            let fields: Vec<&[u8]> = line
                .split(|b| b.is_ascii_whitespace() || *b == 0x0b)
                .filter(|f| !f.is_empty())
                .collect();
            let Some(name) = fields.first() else { continue };
            let name = name.to_ascii_lowercase();
            let rest = &fields[1..];
            match name.as_slice() {
                b"startingpath" | b"endingpath" => {
                    let path = rest.first().ok_or_else(|| bad(line))?;
                    let index = string_to_index(path).ok_or_else(|| bad(line))?;
                    let block = match rest.get(1) {
                        Some(b) => Some(
                            std::str::from_utf8(b)
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .ok_or_else(|| bad(line))?,
                        ),
                        None => None,
                    };
                    if name == b"startingpath" {
                        start = Some(index);
                        start_block = block;
                    } else {
                        end = Some(index);
                        end_block = block;
                    }
                }
                b"hash" => {
                    let (Some(k), Some(v)) = (rest.first(), rest.get(1)) else {
                        return Err(bad(line));
                    };
                    let k = String::from_utf8_lossy(k).into_owned();
                    let v = String::from_utf8_lossy(v).into_owned();
                    match hashes.iter_mut().find(|(hk, _)| *hk == k) {
                        Some(e) => e.1 = v,
                        None => hashes.push((k, v)),
                    }
                }
                _ => {}
            }
        }
        match (start, end) {
            (Some(start), Some(end)) => Ok(VolumeInfo {
                number,
                start,
                start_block,
                end,
                end_block,
                hashes,
            }),
            _ => Err(ManifestError::MissingRange(number)),
        }
    }
}

/// The change recorded for a regular file in a set's Filelist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    New,
    Changed,
    Deleted,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Changed => "changed",
            Change::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub hostname: Option<String>,
    pub localdir: Option<Vec<u8>>,
    pub volumes: BTreeMap<u64, VolumeInfo>,
    /// `(change, path)` with paths unquoted; `change` is the word as written.
    pub files_changed: Vec<(String, Vec<u8>)>,
    /// The count on the `Filelist` line, if there was one.
    pub filelist_count: Option<usize>,
}

fn trim(b: &[u8]) -> &[u8] {
    let is_ws = |c: &u8| c.is_ascii_whitespace() || *c == 0x0b;
    let start = b.iter().position(|c| !is_ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_ws(c)).map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

fn is_py_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// `^Volume ([0-9]+):`, case-insensitive.
fn parse_volume_header(line: &[u8]) -> Option<u64> {
    let rest = line
        .get(..7)?
        .eq_ignore_ascii_case(b"volume ")
        .then(|| &line[7..])?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b':') {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

fn starts_with_word(line: &[u8], word: &[u8]) -> bool {
    line.len() > word.len()
        && line[..word.len()].eq_ignore_ascii_case(word)
        && is_py_space(line[word.len()])
}

fn string_to_index(s: &[u8]) -> Option<Index> {
    let s = unquote(s)?;
    if s == b"." {
        return Some(Index::root());
    }
    Some(Index::from_components(
        s.split(|&b| b == b'/').map(<[u8]>::to_vec).collect(),
    ))
}

impl Manifest {
    /// Parses manifest text (`Manifest.from_string`).
    pub fn parse(s: &[u8]) -> Result<Self, ManifestError> {
        let mut m = Manifest::default();
        // Lines, each with its starting offset; a line is "complete" when a
        // newline follows it, which the header regexes require.
        let mut lines: Vec<(&[u8], bool)> = Vec::new();
        let mut pos = 0;
        while pos <= s.len() {
            match s[pos..].iter().position(|&b| b == b'\n') {
                Some(n) => {
                    lines.push((&s[pos..pos + n], true));
                    pos += n + 1;
                }
                None => {
                    if pos < s.len() {
                        lines.push((&s[pos..], false));
                    }
                    break;
                }
            }
        }
        let field = |name: &[u8]| -> Option<Vec<u8>> {
            lines
                .iter()
                .find(|(l, complete)| *complete && starts_with_word(l, name))
                .and_then(|(l, _)| unquote(&l[name.len() + 1..]))
        };
        m.hostname = field(b"hostname").map(|h| String::from_utf8_lossy(&h).into_owned());
        m.localdir = field(b"localdir");

        // Volume blocks run from a `volume` line to the next one or the end.
        let mut highest = 0;
        let mut latest = 0;
        let mut i = 0;
        while i < lines.len() {
            if !starts_with_word(lines[i].0, b"volume") {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < lines.len() && !starts_with_word(lines[j].0, b"volume") {
                j += 1;
            }
            let block: Vec<u8> = lines[i..j]
                .iter()
                .map(|(l, _)| *l)
                .collect::<Vec<_>>()
                .join(&b'\n');
            let vi = VolumeInfo::parse(&block)?;
            latest = vi.number;
            highest = highest.max(latest);
            m.volumes.insert(vi.number, vi);
            i = j;
        }
        // Every volume numbered above the last block's goes (`del_volume_info`
        // for latest+1..=highest); by key, not by counting, since a hostile
        // manifest may number its volumes up to 2^64-1.
        if latest < highest {
            m.volumes.retain(|&n, _| n <= latest);
        }

        // Filelist: count, then entries up to the next volume block or the end.
        if let Some(at) = lines
            .iter()
            .position(|(l, complete)| *complete && starts_with_word(l, b"filelist"))
        {
            let count = trim(&lines[at].0[9..]);
            if let Some(n) = std::str::from_utf8(count).ok().and_then(|c| c.parse().ok()) {
                m.filelist_count = Some(n);
                for (l, _) in lines[at + 1..].iter() {
                    if starts_with_word(l, b"volume") {
                        break;
                    }
                    let fields: Vec<&[u8]> = l
                        .split(|&b| is_py_space(b))
                        .filter(|f| !f.is_empty())
                        .collect();
                    if fields.len() < 2 {
                        continue;
                    }
                    let quoted: Vec<u8> = fields[1..].concat();
                    let path = unquote(&quoted).unwrap_or(quoted);
                    m.files_changed
                        .push((String::from_utf8_lossy(fields[0]).into_owned(), path));
                }
            }
        }
        Ok(m)
    }

    /// The header lines as `set_dirinfo` writes them.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(h) = &self.hostname
            && !h.is_empty()
        {
            out.extend_from_slice(format!("Hostname {h}\n").as_bytes());
        }
        if let Some(d) = &self.localdir
            && !d.is_empty()
        {
            out.extend_from_slice(b"Localdir ");
            out.extend(quote(d));
            out.push(b'\n');
        }
        out
    }

    /// The Filelist section as `set_files_changed_info` writes it.
    pub fn filelist_bytes(&self) -> Vec<u8> {
        let mut out = format!("Filelist {}\n", self.files_changed.len()).into_bytes();
        for (change, path) in &self.files_changed {
            out.extend_from_slice(format!("    {change:<7}  ").as_bytes());
            out.extend(quote(path));
            out.push(b'\n');
        }
        out
    }

    /// The whole manifest as a streamed write leaves it: header, volumes,
    /// Filelist last.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header_bytes();
        for vi in self.volumes.values() {
            out.extend(vi.to_bytes());
            out.push(b'\n');
        }
        out.extend(self.filelist_bytes());
        out
    }

    /// Volume numbers that may hold `prefix` or anything below it.
    pub fn containing_volumes(&self, prefix: &Index) -> Vec<u64> {
        self.volumes
            .values()
            .filter(|v| v.contains(prefix))
            .map(|v| v.number)
            .collect()
    }

    /// Equality as `Manifest.__eq__` defines it: volume numbers, ranges and
    /// hashes, hostname and directory (block numbers are not compared).
    pub fn same_as(&self, other: &Manifest) -> bool {
        if self.volumes.len() != other.volumes.len() {
            return false;
        }
        for (a, b) in self.volumes.values().zip(other.volumes.values()) {
            let mut ha = a.hashes.clone();
            let mut hb = b.hashes.clone();
            ha.sort();
            hb.sort();
            if a.number != b.number || a.start != b.start || a.end != b.end || ha != hb {
                return false;
            }
        }
        self.hostname == other.hostname && self.localdir == other.localdir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"Hostname vm\nLocaldir src\nVolume 1:\n    StartingPath   .  \n    EndingPath     big.bin 15\n    Hash SHA1 2be77c47593c80a7afbd1d797eed5c72cd3869d0\nVolume 2:\n    StartingPath   big.bin 16\n    EndingPath     \"tab\\x09here\\x20back\\x5cslash.txt\"  \n    Hash SHA1 74006042cce5f82448ef8926dc8e6d0ec52afb87\nFilelist 2\n    new      a.txt\n    changed  \"with\\x20space.txt\"\n";

    #[test]
    fn parses_sample_and_round_trips() {
        let m = Manifest::parse(SAMPLE).unwrap();
        assert_eq!(m.hostname.as_deref(), Some("vm"));
        assert_eq!(m.localdir.as_deref(), Some(&b"src"[..]));
        assert_eq!(m.volumes.len(), 2);
        let v1 = &m.volumes[&1];
        assert!(v1.start.is_root());
        assert_eq!(v1.start_block, None);
        assert_eq!(v1.end_block, Some(15));
        assert_eq!(
            m.volumes[&2].end,
            Index::from_components(vec![b"tab\there back\\slash.txt".to_vec()])
        );
        assert_eq!(m.files_changed.len(), 2);
        assert_eq!(m.files_changed[1].1, b"with space.txt");
        assert_eq!(m.to_bytes(), SAMPLE);
    }

    #[test]
    fn duplicate_volume_blocks_last_wins_and_later_ones_drop() {
        let text = b"Hostname h\nVolume 1:\n    StartingPath   . \n    EndingPath     a 1\n    Hash SHA1 aa\nVolume 2:\n    StartingPath   a 2\n    EndingPath     b \n    Hash SHA1 bb\nVolume 3:\n    StartingPath   c \n    EndingPath     d \n    Hash SHA1 cc\nVolume 2:\n    StartingPath   a 2\n    EndingPath     z \n    Hash SHA1 dd\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.volumes.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(m.volumes[&2].best_hash(), Some(("SHA1", "dd")));
    }

    #[test]
    fn filelist_first_is_accepted() {
        let text = b"Hostname h\nLocaldir src\nFilelist 1\n    new      a\nVolume 1:\n    StartingPath   . \n    EndingPath     a \n    Hash SHA1 aa\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.volumes.len(), 1);
        assert_eq!(m.files_changed, vec![("new".to_string(), b"a".to_vec())]);
    }

    #[test]
    fn missing_range_is_an_error() {
        let text = b"Volume 1:\n    StartingPath   . \n    Hash SHA1 aa\n";
        assert_eq!(Manifest::parse(text), Err(ManifestError::MissingRange(1)));
    }

    /// Found by `cargo fuzz` (target `manifest`): a block numbered 2^32
    /// followed by volume 1 made the parser count 2^32 numbers to drop, and
    /// `Volume 18446744073709551615:` as the last block overflowed `latest + 1`
    /// (a panic with overflow checks, an endless count without).
    #[test]
    fn huge_volume_numbers_are_dropped_without_counting() {
        let text = b"Volume 4294967296:\n    StartingPath   . \n    EndingPath     a \n    Hash SHA1 aa\nVolume 18446744073709551615:\n    StartingPath   . \n    EndingPath     a \n    Hash SHA1 bb\nVolume 1:\n    StartingPath   . \n    EndingPath     a \n    Hash SHA1 cc\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.volumes.keys().copied().collect::<Vec<_>>(), vec![1]);
        let last = b"Volume 1:\n    StartingPath   . \n    EndingPath     a \n    Hash SHA1 aa\nVolume 18446744073709551615:\n    StartingPath   . \n    EndingPath     a \n    Hash SHA1 bb\n";
        let m = Manifest::parse(last).unwrap();
        assert_eq!(
            m.volumes.keys().copied().collect::<Vec<_>>(),
            vec![1, u64::MAX]
        );
    }

    #[test]
    fn contains_uses_prefix_order() {
        let m = Manifest::parse(SAMPLE).unwrap();
        let ix = |s: &str| Index::parse(s.as_bytes()).unwrap();
        assert_eq!(m.containing_volumes(&ix("big.bin")), vec![1, 2]);
        assert_eq!(m.containing_volumes(&ix("a.txt")), vec![1]);
        assert_eq!(m.containing_volumes(&ix("sub/b.txt")), vec![2]);
        assert_eq!(m.containing_volumes(&Index::root()), vec![1, 2]);
    }
}
