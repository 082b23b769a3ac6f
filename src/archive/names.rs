//! Archive file names, written and parsed exactly as `duplicity/file_naming.py`
//! does, so that both tools see the same sets in a target. Names that match
//! nothing (3.x `jsonstat` files under 0.8, stray files) are simply ignored.

use crate::time::{self, Seconds};
use regex::bytes::Regex;
use std::sync::OnceLock;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Full,
    Inc,
    FullSig,
    NewSig,
    FullStat,
    IncStat,
}

/// The encoding layer a stored file carries, from its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Plain,
    Gzip,
    Gpg,
}

impl Encoding {
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::Plain => "",
            Encoding::Gzip => ".gz",
            Encoding::Gpg => ".gpg",
        }
    }
}

/// The facts duplicity reads out of a name (`file_naming.ParseResults`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName {
    pub kind: Kind,
    pub manifest: bool,
    pub volume: Option<u64>,
    /// Set for full sets and full signatures.
    pub time: Option<Seconds>,
    /// Set for incremental sets and new signatures.
    pub start_time: Option<Seconds>,
    pub end_time: Option<Seconds>,
    pub partial: bool,
    pub encrypted: bool,
    pub compressed: bool,
}

impl ParsedName {
    /// The time a set or signature file stands for: `time` or `end_time`.
    pub fn set_time(&self) -> Seconds {
        self.time.or(self.end_time).unwrap_or(0)
    }

    pub fn encoding(&self) -> Encoding {
        if self.encrypted {
            Encoding::Gpg
        } else if self.compressed {
            Encoding::Gzip
        } else {
            Encoding::Plain
        }
    }
}

/// Optional name prefixes (`--file-prefix`, `--file-prefix-archive`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefixes {
    pub all: String,
    pub archive: String,
    pub manifest: String,
    pub signature: String,
    pub jsonstat: String,
}

struct Patterns {
    full_vol: Regex,
    full_vol_short: Regex,
    full_man: Regex,
    full_man_short: Regex,
    inc_vol: Regex,
    inc_vol_short: Regex,
    inc_man: Regex,
    inc_man_short: Regex,
    full_sig: Regex,
    full_sig_short: Regex,
    new_sig: Regex,
    new_sig_short: Regex,
    stat: Regex,
    stat_short: Regex,
}

impl Patterns {
    fn new(p: &Prefixes) -> Self {
        let arc = regex::escape(&format!("{}{}", p.all, p.archive));
        let man = regex::escape(&format!("{}{}", p.all, p.manifest));
        let sig = regex::escape(&format!("{}{}", p.all, p.signature));
        let st = regex::escape(&format!("{}{}", p.all, p.jsonstat));
        let r = |s: String| Regex::new(&format!("(?s-u){s}")).expect("static name pattern");
        Patterns {
            full_vol: r(format!(
                r"^{arc}duplicity-full\.(?P<time>.*?)\.vol(?P<num>[0-9]+)\.difftar(?P<partial>(\.part))?($|\.)"
            )),
            full_vol_short: r(format!(
                r"^{arc}df\.(?P<time>[0-9a-z]+?)\.(?P<num>[0-9a-z]+)\.dt(?P<partial>(\.p))?($|\.)"
            )),
            full_man: r(format!(
                r"^{man}duplicity-full\.(?P<time>.*?)\.manifest(?P<partial>(\.part))?($|\.)"
            )),
            full_man_short: r(format!(
                r"^{man}df\.(?P<time>[0-9a-z]+?)\.m(?P<partial>(\.p))?($|\.)"
            )),
            inc_vol: r(format!(
                r"^{arc}duplicity-inc\.(?P<start_time>.*?)\.to\.(?P<end_time>.*?)\.vol(?P<num>[0-9]+)\.difftar($|\.)"
            )),
            inc_vol_short: r(format!(
                r"^{arc}di\.(?P<start_time>[0-9a-z]+?)\.(?P<end_time>[0-9a-z]+?)\.(?P<num>[0-9a-z]+)\.dt($|\.)"
            )),
            inc_man: r(format!(
                r"^{man}duplicity-inc\.(?P<start_time>.*?)\.to\.(?P<end_time>.*?)\.manifest(?P<partial>(\.part))?(\.|$)"
            )),
            inc_man_short: r(format!(
                r"^{man}di\.(?P<start_time>[0-9a-z]+?)\.(?P<end_time>[0-9a-z]+?)\.m(?P<partial>(\.p))?(\.|$)"
            )),
            full_sig: r(format!(
                r"^{sig}duplicity-full-signatures\.(?P<time>.*?)\.sigtar(?P<partial>(\.part))?(\.|$)"
            )),
            full_sig_short: r(format!(
                r"^{sig}dfs\.(?P<time>[0-9a-z]+?)\.st(?P<partial>(\.p))?(\.|$)"
            )),
            new_sig: r(format!(
                r"^{sig}duplicity-new-signatures\.(?P<start_time>.*?)\.to\.(?P<end_time>.*?)\.sigtar(?P<partial>(\.part))?(\.|$)"
            )),
            new_sig_short: r(format!(
                r"^{sig}dns\.(?P<start_time>[0-9a-z]+?)\.(?P<end_time>[0-9a-z]+?)\.st(?P<partial>(\.p))?(\.|$)"
            )),
            stat: r(format!(
                r"^{st}duplicity-(?P<type>full|inc)\.(?P<time>.*?)(?:\.to\.(?P<end_time>.+?))?\.jsonstat(?P<partial>(\.part))?(\.|$)"
            )),
            stat_short: r(format!(
                r"^{st}(?P<type>dfst|dist)\.(?P<time>.*?)(?:\.to\.(?P<end_time>.+?))?\.jst(?P<partial>(\.p))?(\.|$)"
            )),
        }
    }
}

/// Parses and writes names under one set of prefixes.
pub struct Naming {
    prefixes: Prefixes,
    patterns: Patterns,
}

impl Default for Naming {
    fn default() -> Self {
        Naming::new(Prefixes::default())
    }
}

/// The naming with no prefixes, the common case.
pub fn default_naming() -> &'static Naming {
    static N: OnceLock<Naming> = OnceLock::new();
    N.get_or_init(Naming::default)
}

fn group_str<'a>(c: &'a regex::bytes::Captures, name: &str) -> &'a str {
    c.name(name)
        .and_then(|m| std::str::from_utf8(m.as_bytes()).ok())
        .unwrap_or("")
}

impl Naming {
    pub fn new(prefixes: Prefixes) -> Self {
        let patterns = Patterns::new(&prefixes);
        Naming { prefixes, patterns }
    }

    pub fn prefixes(&self) -> &Prefixes {
        &self.prefixes
    }

    /// `file_naming.parse`: full, then inc, then signatures, then jsonstat; in
    /// each, the short form is tried first.
    pub fn parse(&self, name: &str) -> Option<ParsedName> {
        let now = time::now();
        let bytes = name.as_bytes();
        let p = &self.patterns;
        let t = |s: &str, short: bool| time::from_name_part(s, short, now);
        let num = |s: &str, short: bool| -> Option<u64> {
            if short {
                time::from_base36(s).and_then(|v| u64::try_from(v).ok())
            } else {
                s.parse().ok()
            }
        };
        let blank = |kind| ParsedName {
            kind,
            manifest: false,
            volume: None,
            time: None,
            start_time: None,
            end_time: None,
            partial: false,
            encrypted: false,
            compressed: false,
        };

        let mut result: Option<ParsedName> = None;

        // Full sets.
        let (mut short, mut m1, mut m2) = (
            true,
            p.full_vol_short.captures(bytes),
            p.full_man_short.captures(bytes),
        );
        if m1.is_none() && m2.is_none() {
            short = false;
            m1 = p.full_vol.captures(bytes);
            m2 = p.full_man.captures(bytes);
        }
        if let Some(c) = m1.as_ref().or(m2.as_ref())
            && let Some(tm) = t(group_str(c, "time"), short)
        {
            let mut r = blank(Kind::Full);
            r.time = Some(tm);
            if let Some(c1) = &m1 {
                r.volume = num(group_str(c1, "num"), short);
                r.volume?;
            } else if let Some(c2) = &m2 {
                r.manifest = true;
                r.partial = c2.name("partial").is_some();
            }
            result = Some(r);
        }

        if result.is_none() {
            let (mut short, mut m1, mut m2) = (
                true,
                p.inc_vol_short.captures(bytes),
                p.inc_man_short.captures(bytes),
            );
            if m1.is_none() && m2.is_none() {
                short = false;
                m1 = p.inc_vol.captures(bytes);
                m2 = p.inc_man.captures(bytes);
            }
            if let Some(c) = m1.as_ref().or(m2.as_ref())
                && let (Some(t1), Some(t2)) = (
                    t(group_str(c, "start_time"), short),
                    t(group_str(c, "end_time"), short),
                )
            {
                let mut r = blank(Kind::Inc);
                r.start_time = Some(t1);
                r.end_time = Some(t2);
                if let Some(c1) = &m1 {
                    r.volume = num(group_str(c1, "num"), short);
                    r.volume?;
                } else if let Some(c2) = &m2 {
                    r.manifest = true;
                    r.partial = c2.name("partial").is_some();
                }
                result = Some(r);
            }
        }

        if result.is_none() {
            let (mut short, mut m) = (true, p.full_sig_short.captures(bytes));
            if m.is_none() {
                short = false;
                m = p.full_sig.captures(bytes);
            }
            if let Some(c) = &m {
                // A name that looks like a full signature but has a bad time is
                // nothing at all, as in duplicity.
                let tm = t(group_str(c, "time"), short)?;
                let mut r = blank(Kind::FullSig);
                r.time = Some(tm);
                r.partial = c.name("partial").is_some();
                result = Some(r);
            } else {
                let (mut short, mut m) = (true, p.new_sig_short.captures(bytes));
                if m.is_none() {
                    short = false;
                    m = p.new_sig.captures(bytes);
                }
                if let Some(c) = &m
                    && let (Some(t1), Some(t2)) = (
                        t(group_str(c, "start_time"), short),
                        t(group_str(c, "end_time"), short),
                    )
                {
                    let mut r = blank(Kind::NewSig);
                    r.start_time = Some(t1);
                    r.end_time = Some(t2);
                    r.partial = c.name("partial").is_some();
                    result = Some(r);
                }
            }
        }

        if result.is_none() {
            let (mut short, mut m) = (true, p.stat_short.captures(bytes));
            if m.is_none() {
                short = false;
                m = p.stat.captures(bytes);
            }
            if let Some(c) = &m {
                let ty = group_str(c, "type");
                let mut r = blank(if ty == "full" || ty == "dfst" {
                    Kind::FullStat
                } else {
                    Kind::IncStat
                });
                if r.kind == Kind::FullStat {
                    r.time = Some(t(group_str(c, "time"), short)?);
                } else {
                    r.start_time = Some(t(group_str(c, "time"), short)?);
                    r.end_time = Some(t(group_str(c, "end_time"), short)?);
                }
                r.partial = c.name("partial").is_some();
                result = Some(r);
            }
        }

        let mut r = result?;
        r.compressed = name.ends_with(".z") || name.ends_with(".gz");
        r.encrypted = name.ends_with(".g") || name.ends_with(".gpg") || name.ends_with(".p7m");
        Some(r)
    }

    fn pre(&self, kind: &str) -> String {
        format!("{}{}", self.prefixes.all, kind)
    }

    pub fn full_volume(&self, t: Seconds, vol: u64, enc: Encoding) -> String {
        format!(
            "{}duplicity-full.{}.vol{vol}.difftar{}",
            self.pre(&self.prefixes.archive),
            time::to_string(t),
            enc.suffix()
        )
    }

    pub fn inc_volume(&self, prev: Seconds, t: Seconds, vol: u64, enc: Encoding) -> String {
        format!(
            "{}duplicity-inc.{}.to.{}.vol{vol}.difftar{}",
            self.pre(&self.prefixes.archive),
            time::to_string(prev),
            time::to_string(t),
            enc.suffix()
        )
    }

    /// `prev` is `None` for a full set.
    pub fn volume(&self, prev: Option<Seconds>, t: Seconds, vol: u64, enc: Encoding) -> String {
        match prev {
            None => self.full_volume(t, vol, enc),
            Some(p) => self.inc_volume(p, t, vol, enc),
        }
    }

    /// Manifests are plain or `.gpg`, never gzipped.
    pub fn manifest(
        &self,
        prev: Option<Seconds>,
        t: Seconds,
        enc: Encoding,
        partial: bool,
    ) -> String {
        let enc = if enc == Encoding::Gzip {
            Encoding::Plain
        } else {
            enc
        };
        let part = if partial { ".part" } else { "" };
        match prev {
            None => format!(
                "{}duplicity-full.{}.manifest{part}{}",
                self.pre(&self.prefixes.manifest),
                time::to_string(t),
                enc.suffix()
            ),
            Some(p) => format!(
                "{}duplicity-inc.{}.to.{}.manifest{part}{}",
                self.pre(&self.prefixes.manifest),
                time::to_string(p),
                time::to_string(t),
                enc.suffix()
            ),
        }
    }

    /// duplicity 3.x's `--jsonstat` statistics file of a set.
    pub fn jsonstat(&self, prev: Option<Seconds>, t: Seconds, enc: Encoding) -> String {
        match prev {
            None => format!(
                "{}duplicity-full.{}.jsonstat{}",
                self.pre(&self.prefixes.jsonstat),
                time::to_string(t),
                enc.suffix()
            ),
            Some(p) => format!(
                "{}duplicity-inc.{}.to.{}.jsonstat{}",
                self.pre(&self.prefixes.jsonstat),
                time::to_string(p),
                time::to_string(t),
                enc.suffix()
            ),
        }
    }

    pub fn signatures(
        &self,
        prev: Option<Seconds>,
        t: Seconds,
        enc: Encoding,
        partial: bool,
    ) -> String {
        let part = if partial { ".part" } else { "" };
        match prev {
            None => format!(
                "{}duplicity-full-signatures.{}.sigtar{part}{}",
                self.pre(&self.prefixes.signature),
                time::to_string(t),
                enc.suffix()
            ),
            Some(p) => format!(
                "{}duplicity-new-signatures.{}.to.{}.sigtar{part}{}",
                self.pre(&self.prefixes.signature),
                time::to_string(p),
                time::to_string(t),
                enc.suffix()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Seconds = 1_795_591_822;
    const P: Seconds = T - 3600;

    fn parse(s: &str) -> Option<ParsedName> {
        default_naming().parse(s)
    }

    #[test]
    fn written_names_parse_back() {
        let n = default_naming();
        for enc in [Encoding::Plain, Encoding::Gzip, Encoding::Gpg] {
            let v = parse(&n.full_volume(T, 3, enc)).unwrap();
            assert_eq!((v.kind, v.time, v.volume), (Kind::Full, Some(T), Some(3)));
            assert_eq!(v.encoding(), enc);
            let v = parse(&n.inc_volume(P, T, 12, enc)).unwrap();
            assert_eq!(
                (v.kind, v.start_time, v.end_time, v.volume),
                (Kind::Inc, Some(P), Some(T), Some(12))
            );
            let s = parse(&n.signatures(Some(P), T, enc, false)).unwrap();
            assert_eq!(s.kind, Kind::NewSig);
            let m = parse(&n.manifest(None, T, enc, false)).unwrap();
            assert!(m.manifest && !m.compressed);
        }
        assert_eq!(
            n.full_volume(T, 1, Encoding::Gpg),
            "duplicity-full.20261125T073022Z.vol1.difftar.gpg"
        );
        assert_eq!(
            n.signatures(Some(P), T, Encoding::Gzip, false),
            "duplicity-new-signatures.20261125T063022Z.to.20261125T073022Z.sigtar.gz"
        );
        assert_eq!(
            n.manifest(None, T, Encoding::Plain, true),
            "duplicity-full.20261125T073022Z.manifest.part"
        );
    }

    #[test]
    fn partials_short_and_old_names() {
        let m = parse("duplicity-inc.20261125T063022Z.to.20261125T073022Z.manifest.part").unwrap();
        assert!(m.partial && m.manifest);
        let s = parse("duplicity-full-signatures.20261125T073022Z.sigtar.part").unwrap();
        assert!(s.partial);
        let short = format!(
            "df.{}.{}.dt.z",
            time::to_base36(T as u64),
            time::to_base36(40)
        );
        let v = parse(&short).unwrap();
        assert_eq!((v.time, v.volume, v.compressed), (Some(T), Some(40), true));
        let old = parse("duplicity-full.2026-11-25T07:30:22Z.vol1.difftar.gpg").unwrap();
        assert_eq!(old.time, Some(T));
    }

    #[test]
    fn unknown_and_jsonstat_names() {
        assert!(parse("README").is_none());
        assert!(parse("duplicity-full.garbage.vol1.difftar.gz").is_none());
        let st = parse("duplicity-full.20261125T073022Z.jsonstat.gz").unwrap();
        assert_eq!(st.kind, Kind::FullStat);
    }

    #[test]
    fn prefixes_filter_names() {
        let n = Naming::new(Prefixes {
            all: "host1_".into(),
            ..Default::default()
        });
        let name = n.full_volume(T, 1, Encoding::Gzip);
        assert!(name.starts_with("host1_duplicity-full."));
        assert!(n.parse(&name).is_some());
        assert!(
            n.parse("duplicity-full.20261125T073022Z.vol1.difftar.gz")
                .is_none()
        );
        assert!(default_naming().parse(&name).is_none());
    }
}
