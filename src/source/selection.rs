//! Which paths a backup includes, exactly as duplicity's `selection.py` and
//! `globmatch.py` decide: a list of selection functions in command-line
//! order, the first that has an opinion wins, the default is include; an
//! include also makes its parent directories "scanned" (kept only if
//! something inside is kept); globs match the full path as given (source
//! root included), `*` and `?` stop at `/`, `**` does not, `[...]` is a
//! class, and an `ignorecase:` prefix ignores case.

use crate::archive::meta::{FileType, Meta};
use regex::bytes::Regex;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Include,
    Exclude,
    /// Excluded, but something below it may be included: scan it, and keep
    /// it only if something inside is kept.
    ScanOnly,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectionError {
    #[error(
        "the file specification {0:?} cannot match any files in the base directory {1:?}; \
         useful file specifications begin with the base directory or a pattern such as \
         '**' that matches it"
    )]
    Prefix(String, String),
    #[error("bad globbing expression {0:?}: {1}")]
    Glob(String, String),
    #[error("bad regular expression {0:?}: {1}")]
    Regexp(String, String),
    #[error(
        "the last selection expression {0:?} only includes files; since everything is \
         included by default it changes nothing, which is probably not what you meant \
         (end with an exclude, e.g. --exclude '**')"
    )]
    RedundantInclude(String),
    #[error("cannot read file list {0}: {1}")]
    Filelist(String, String),
    #[error(
        "the last file selection option is the filter option --{0}, which has no effect as \
         no selection option follows it; put it before the --include/--exclude options it is for"
    )]
    TrailingFilter(String),
    #[error(
        "only the filter options {0} were given; case-sensitive globbing is the default, so \
         they change nothing; drop them or add --filter-literal, --filter-regexp or \
         --filter-ignorecase"
    )]
    RedundantFilter(String),
    #[error(
        "the --files-from list contains the absolute path {0:?}; give every path relative to \
         the backup source"
    )]
    AbsoluteFilesFrom(String),
    #[error(
        "the --files-from list names no files, so the backup would be empty; give a list \
         with one path per line, relative to the backup source"
    )]
    EmptyFilesFrom,
}

impl SelectionError {
    /// duplicity's exit code (`log.ErrorCode`) for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            SelectionError::Prefix(..) => 14,
            SelectionError::Glob(..) | SelectionError::Regexp(..) => 15,
            SelectionError::RedundantInclude(_) => 16,
            SelectionError::Filelist(..) => 7,
            SelectionError::RedundantFilter(_) => 70,
            SelectionError::TrailingFilter(_) => 71,
            SelectionError::AbsoluteFilesFrom(_) => 72,
            SelectionError::EmptyFilesFrom => 73,
        }
    }
}

/// How `--include`/`--exclude` patterns (and file-list lines) are read:
/// duplicity 3.x's `--filter-globbing`, `--filter-literal`, `--filter-regexp`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Globbing,
    Literal,
    Regexp,
}

/// One non-`/` character, as Python's `[^/]` on a `str` matches it: a whole
/// UTF-8 sequence, or one byte that cannot start one (a file name that is not
/// UTF-8 reaches duplicity with one surrogate per such byte).
const ONE_CHAR: &str = r"(?:(?u:[^/])|(?-u:[\x80-\xbf\xc0\xc1\xf5-\xff]))";

/// `globmatch.glob_to_regex`, producing a byte regex that is compiled
/// without Unicode mode (so any file name can be matched); the parts that
/// must see characters, not bytes (non-ASCII literals, `?`, `[...]`), are
/// Unicode-mode groups.
fn glob_to_regex(pat: &str) -> String {
    let p: Vec<char> = pat.chars().collect();
    let (mut i, n) = (0, p.len());
    let mut res = String::new();
    while i < n {
        let c = p[i];
        i += 1;
        if c == '*' && i < n && p[i] == '*' {
            res.push_str(".*");
            i += 1;
        } else if c == '*' {
            res.push_str("[^/]*");
        } else if c == '?' {
            res.push_str(ONE_CHAR);
        } else if c == '[' {
            let mut j = i;
            if j < n && (p[j] == '!' || p[j] == '^') {
                j += 1;
            }
            if j < n && p[j] == ']' {
                j += 1;
            }
            while j < n && p[j] != ']' {
                j += 1;
            }
            if j >= n {
                res.push_str("\\[");
            } else {
                res.push_str(&char_class(&p[i..j]));
                i = j + 1;
            }
        } else if c.is_ascii() {
            res.push_str(&regex::escape(&c.to_string()));
        } else {
            res.push_str(&format!("(?u:{c})"));
        }
    }
    res
}

/// A glob's `[...]` (its inside given) as a class over characters, so a
/// non-ASCII member matches the whole character and a negated class never
/// matches half of one.
fn char_class(stuff: &[char]) -> String {
    let (negated, members) = match stuff.first() {
        Some('!' | '^') => (true, &stuff[1..]),
        _ => (false, stuff),
    };
    let mut class = String::from(if negated { "[^" } else { "[" });
    for &ch in members {
        match ch {
            '\\' => class.push_str("\\\\"),
            '[' | '&' | '~' => {
                class.push('\\');
                class.push(ch);
            }
            c => class.push(c),
        }
    }
    class.push(']');
    if negated {
        format!(r"(?:(?u:{class})|(?-u:[\x80-\xbf\xc0\xc1\xf5-\xff]))")
    } else {
        format!("(?u:{class})")
    }
}

/// The glob's prefixes as regexes (`_glob_get_prefix_regexs`).
fn prefix_regexes(glob: &str) -> Result<Vec<String>, SelectionError> {
    let parts: Vec<&str> = glob.split('/').collect();
    if parts.len() > 2 && parts[1..parts.len() - 1].contains(&"") {
        return Err(SelectionError::Glob(glob.into(), "consecutive '/'s".into()));
    }
    let mut prefixes: Vec<String> = (0..parts.len()).map(|i| parts[..=i].join("/")).collect();
    if prefixes[0].is_empty() {
        prefixes[0] = "/".into();
    }
    Ok(prefixes.iter().map(|p| glob_to_regex(p)).collect())
}

#[derive(Debug, Clone)]
struct GlobFn {
    /// `**` alone: matches everything.
    all: bool,
    matches: Option<Regex>,
    exact: Option<Regex>,
    scan: Option<Regex>,
}

fn compile(re: &str, ignore_case: bool) -> Result<Regex, SelectionError> {
    let full = if ignore_case {
        format!("(?is-u){re}")
    } else {
        format!("(?s-u){re}")
    };
    Regex::new(&full).map_err(|e| SelectionError::Glob(re.into(), e.to_string()))
}

impl GlobFn {
    fn new(glob: &str, ignore_case: bool) -> Result<(Self, bool), SelectionError> {
        if glob == "**" {
            return Ok((
                GlobFn {
                    all: true,
                    matches: None,
                    exact: None,
                    scan: None,
                },
                false,
            ));
        }
        let mut g = glob.to_string();
        let mut ends_slash = false;
        if g == "/" {
            g = "/**".into();
        } else if g.ends_with('/') {
            ends_slash = true;
            g.pop();
        }
        let matches = compile(&format!("^{}($|/)", glob_to_regex(&g)), ignore_case)?;
        let exact = if ends_slash {
            Some(compile(&format!("^{}$", glob_to_regex(&g)), ignore_case)?)
        } else {
            None
        };
        let scan_glob = match g.find("**") {
            Some(at) => g[..at + 2].to_string(),
            None => g.clone(),
        };
        let scan = compile(
            &format!("^({})$", prefix_regexes(&scan_glob)?.join("|")),
            ignore_case,
        )?;
        Ok((
            GlobFn {
                all: false,
                matches: Some(matches),
                exact,
                scan: Some(scan),
            },
            ends_slash,
        ))
    }

    /// `select_fn_from_glob`'s test: Some(include), Some(scan), or None.
    fn test(&self, name: &[u8], is_dir: bool, include: bool, ends_slash: bool) -> Option<Decision> {
        let yes = if include {
            Decision::Include
        } else {
            Decision::Exclude
        };
        if self.all {
            return Some(yes);
        }
        if self.matches.as_ref().is_some_and(|r| r.is_match(name)) {
            if !ends_slash {
                return Some(yes);
            }
            if self.exact.as_ref().is_some_and(|r| r.is_match(name)) {
                return is_dir.then_some(yes);
            }
            return Some(yes);
        }
        if include && self.scan.as_ref().is_some_and(|r| r.is_match(name)) {
            return Some(Decision::ScanOnly);
        }
        None
    }
}

#[derive(Debug, Clone)]
enum Rule {
    Glob {
        f: GlobFn,
        include: bool,
        ends_slash: bool,
    },
    Regexp {
        re: Regex,
        include: bool,
    },
    Literal {
        lit: Vec<u8>,
        include: bool,
        ignore_case: bool,
    },
    ExcludeIfPresent(String),
    ExcludeDevices,
    ExcludeOtherFilesystems(u64),
    ExcludeOlderThan(i64),
}

#[derive(Debug, Clone)]
struct Func {
    rule: Rule,
    name: String,
    excludes: bool,
}

/// The selection rules; empty means everything is included.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    funcs: Vec<Func>,
    /// `--copy-links`: the walk follows symlinks (how the tree is read, kept
    /// here because every walk of the tree is given its selection).
    pub copy_links: bool,
    /// The pattern mode and case rule set by the `--filter-*` options so far.
    mode: Mode,
    ignore_case: bool,
    /// The `--filter-*` options given, and whether the last selection
    /// option was one (both are refused as duplicity 3.x refuses them).
    filters: Vec<String>,
    last_was_filter: bool,
    /// `--files-from`: the listed paths and their parents, relative to the
    /// source; nothing else is walked.
    files_from: Option<std::collections::BTreeSet<Vec<u8>>>,
}

/// `select_fn_from_literal`'s test: the path itself or anything below it;
/// for an include, its parents are scanned.
fn literal_test(lit: &[u8], name: &[u8], include: bool, ignore_case: bool) -> Option<Decision> {
    let fold = |b: &[u8]| String::from_utf8_lossy(b).to_lowercase().into_bytes();
    let (lit, name) = if ignore_case {
        (fold(lit), fold(name))
    } else {
        (lit.to_vec(), name.to_vec())
    };
    let yes = if include {
        Decision::Include
    } else {
        Decision::Exclude
    };
    let below =
        |long: &[u8], short: &[u8]| long.starts_with(short) && long.get(short.len()) == Some(&b'/');
    if name == lit || below(&name, &lit) {
        Some(yes)
    } else if include && below(&lit, &name) {
        Some(Decision::ScanOnly)
    } else {
        None
    }
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.funcs.is_empty() && self.files_from.is_none()
    }

    fn push(&mut self, f: Func, at_start: bool) {
        if at_start {
            self.funcs.insert(0, f);
        } else {
            self.funcs.push(f);
        }
    }

    fn glob(&mut self, glob: &str, include: bool, root: &[u8]) -> Result<(), SelectionError> {
        let (pattern, ignore_case) = match glob.get(..11) {
            Some(p) if p.eq_ignore_ascii_case("ignorecase:") => (glob[11..].to_lowercase(), true),
            _ => (glob.to_string(), self.ignore_case),
        };
        let (f, ends_slash) = GlobFn::new(&pattern, ignore_case)?;
        if !f.all {
            // The glob must be able to match the root or something below it.
            let (probe, probe_slash) = GlobFn::new(&pattern, self.ignore_case)?;
            if probe.test(root, true, true, probe_slash).is_none() {
                return Err(SelectionError::Prefix(
                    glob.into(),
                    String::from_utf8_lossy(root).into_owned(),
                ));
            }
        }
        let name = format!(
            "Command-line {} glob: {glob}",
            if include { "include" } else { "exclude" }
        );
        self.push(
            Func {
                rule: Rule::Glob {
                    f,
                    include,
                    ends_slash,
                },
                name,
                excludes: !include,
            },
            false,
        );
        Ok(())
    }

    /// A `--filter-*` option: changes how the following patterns are read.
    fn filter(&mut self, opt: &str) -> bool {
        match opt {
            "filter-globbing" => self.mode = Mode::Globbing,
            "filter-literal" => self.mode = Mode::Literal,
            "filter-regexp" => self.mode = Mode::Regexp,
            "filter-ignorecase" => self.ignore_case = true,
            "filter-strictcase" => self.ignore_case = false,
            _ => return false,
        }
        if !self.filters.iter().any(|f| f == opt) {
            self.filters.push(opt.to_string());
        }
        self.last_was_filter = true;
        true
    }

    /// An include/exclude pattern, read in the current filter mode.
    fn pattern(&mut self, arg: &str, include: bool, root: &[u8]) -> Result<(), SelectionError> {
        match self.mode {
            Mode::Globbing => self.glob(arg, include, root),
            Mode::Regexp => self.regexp(arg, include),
            Mode::Literal => self.literal(arg, include, root),
        }
    }

    fn regexp(&mut self, arg: &str, include: bool) -> Result<(), SelectionError> {
        let re = regex::bytes::RegexBuilder::new(arg)
            .case_insensitive(self.ignore_case)
            .build()
            .map_err(|e| SelectionError::Regexp(arg.into(), e.to_string()))?;
        self.push(
            Func {
                rule: Rule::Regexp { re, include },
                name: format!("Regular expression: {arg}"),
                excludes: !include,
            },
            false,
        );
        Ok(())
    }

    /// `literal_get_sf`: the path as written (a trailing `/` dropped).
    fn literal(&mut self, arg: &str, include: bool, root: &[u8]) -> Result<(), SelectionError> {
        let lit = match arg.strip_suffix('/') {
            Some(l) if arg != "/" => l,
            _ => arg,
        };
        let lit = lit.as_bytes().to_vec();
        if literal_test(&lit, root, true, self.ignore_case).is_none() {
            return Err(SelectionError::Prefix(
                arg.into(),
                String::from_utf8_lossy(root).into_owned(),
            ));
        }
        let name = format!(
            "literal string {} {}case: {arg}",
            if include { "include" } else { "exclude" },
            if self.ignore_case { "no-" } else { "" }
        );
        let ignore_case = self.ignore_case;
        self.push(
            Func {
                rule: Rule::Literal {
                    lit,
                    include,
                    ignore_case,
                },
                name,
                excludes: !include,
            },
            false,
        );
        Ok(())
    }

    /// `--files-from`: only the listed paths (relative to the source, one
    /// per line or NUL-separated, every byte significant) and their parent
    /// directories are walked; the other selection options still apply.
    pub fn add_files_from(
        &mut self,
        text: &[u8],
        null_separated: bool,
    ) -> Result<(), SelectionError> {
        let sep = if null_separated { b'\0' } else { b'\n' };
        let set = self.files_from.get_or_insert_with(Default::default);
        for line in text.split(|&b| b == sep).filter(|l| !l.is_empty()) {
            if line.starts_with(b"/") {
                return Err(SelectionError::AbsoluteFilesFrom(
                    String::from_utf8_lossy(line).into_owned(),
                ));
            }
            let mut path = line.strip_suffix(b"/").unwrap_or(line);
            while !path.is_empty() {
                set.insert(path.to_vec());
                path = match path.iter().rposition(|&b| b == b'/') {
                    Some(at) => &path[..at],
                    None => b"",
                };
            }
        }
        if set.is_empty() {
            return Err(SelectionError::EmptyFilesFrom);
        }
        self.last_was_filter = false;
        Ok(())
    }

    /// Adds one selection option, in command-line order. `opt` is the
    /// option name without dashes; `root` is the source as given.
    pub fn add(&mut self, opt: &str, arg: &str, root: &Path) -> Result<(), SelectionError> {
        use std::os::unix::ffi::OsStrExt;
        let root_name = super::canonical_source(root);
        if self.filter(opt) {
            return Ok(());
        }
        self.last_was_filter = false;
        match opt {
            "include" => self.pattern(arg, true, &root_name),
            "exclude" => self.pattern(arg, false, &root_name),
            "include-regexp" | "exclude-regexp" => self.regexp(arg, opt == "include-regexp"),
            "exclude-if-present" => {
                self.push(
                    Func {
                        rule: Rule::ExcludeIfPresent(arg.into()),
                        name: format!("Command-line exclude-if-present filename: {arg}"),
                        excludes: true,
                    },
                    true,
                );
                Ok(())
            }
            "exclude-device-files" => {
                self.push(
                    Func {
                        rule: Rule::ExcludeDevices,
                        name: "Exclude device files".into(),
                        excludes: true,
                    },
                    true,
                );
                Ok(())
            }
            "exclude-other-filesystems" => {
                use std::os::unix::fs::MetadataExt;
                let dev = std::fs::metadata(root).map(|m| m.dev()).map_err(|e| {
                    SelectionError::Filelist(
                        String::from_utf8_lossy(root.as_os_str().as_bytes()).into(),
                        e.to_string(),
                    )
                })?;
                self.push(
                    Func {
                        rule: Rule::ExcludeOtherFilesystems(dev),
                        name: "Match other filesystems".into(),
                        excludes: true,
                    },
                    false,
                );
                Ok(())
            }
            "exclude-older-than" => {
                let t = crate::time::parse_user_time(arg, crate::time::now())
                    .map_err(|e| SelectionError::Glob(arg.into(), e.to_string()))?;
                self.push(
                    Func {
                        rule: Rule::ExcludeOlderThan(t),
                        name: format!("Select older than {t}"),
                        excludes: true,
                    },
                    false,
                );
                Ok(())
            }
            other => Err(SelectionError::Glob(
                other.into(),
                "not a selection option".into(),
            )),
        }
    }

    /// Adds the lines of a (globbing) file list: `+ `/`- ` prefixes override
    /// the list's sense, `#` comments and blank lines are skipped, quotes
    /// around a line are removed (`filelist_sanitise_line`).
    pub fn add_filelist(
        &mut self,
        text: &str,
        include: bool,
        null_separated: bool,
        root: &Path,
    ) -> Result<(), SelectionError> {
        let root_name = super::canonical_source(root);
        let sep = if null_separated { '\0' } else { '\n' };
        for raw in text.split(sep) {
            let mut line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut inc = include;
            if let Some(rest) = line.strip_prefix("+ ") {
                inc = true;
                line = rest;
            } else if let Some(rest) = line.strip_prefix("- ") {
                inc = false;
                line = rest;
            }
            if line.len() >= 2
                && ((line.starts_with('\'') && line.ends_with('\''))
                    || (line.starts_with('"') && line.ends_with('"')))
            {
                line = &line[1..line.len() - 1];
            }
            self.pattern(line, inc, &root_name)?;
        }
        self.last_was_filter = false;
        Ok(())
    }

    /// Refuses a list that ends with an include (`parse_last_excludes`).
    pub fn check(&self) -> Result<(), SelectionError> {
        if self.last_was_filter {
            let last = self.filters.last().cloned().unwrap_or_default();
            return Err(SelectionError::TrailingFilter(last));
        }
        if !self.filters.is_empty()
            && self
                .filters
                .iter()
                .all(|f| f == "filter-globbing" || f == "filter-strictcase")
        {
            let given: Vec<String> = self.filters.iter().map(|f| format!("--{f}")).collect();
            return Err(SelectionError::RedundantFilter(given.join(", ")));
        }
        match self.funcs.last() {
            Some(f) if !f.excludes => Err(SelectionError::RedundantInclude(f.name.clone())),
            _ => Ok(()),
        }
    }

    /// `Select.Select`: the first function with an opinion wins; a pending
    /// scan turns a later exclude into a scan.
    pub fn decide(&self, path: &Path, meta: &Meta, root: &Path) -> Decision {
        use std::os::unix::ffi::OsStrExt;
        let rel = path.strip_prefix(root).unwrap_or(path);
        if let Some(listed) = &self.files_from {
            let r = rel.as_os_str().as_bytes();
            if !r.is_empty() && !listed.contains(r) {
                return Decision::Exclude;
            }
        }
        if self.funcs.is_empty() {
            return Decision::Include;
        }
        // duplicity matches the root as given joined with the relative path.
        let mut name = super::canonical_source(root);
        if !rel.as_os_str().is_empty() {
            if name != b"/" {
                name.push(b'/');
            }
            name.extend_from_slice(rel.as_os_str().as_bytes());
        }
        let is_dir = meta.is_dir();
        let mut scan_pending = false;
        let mut result = None;
        for f in &self.funcs {
            let r = match &f.rule {
                Rule::Glob {
                    f,
                    include,
                    ends_slash,
                } => f.test(&name, is_dir, *include, *ends_slash),
                Rule::Regexp { re, include } => re.is_match(&name).then_some(if *include {
                    Decision::Include
                } else {
                    Decision::Exclude
                }),
                Rule::Literal {
                    lit,
                    include,
                    ignore_case,
                } => literal_test(lit, &name, *include, *ignore_case),
                Rule::ExcludeIfPresent(n) => {
                    (is_dir && path.join(n).symlink_metadata().is_ok()).then_some(Decision::Exclude)
                }
                Rule::ExcludeDevices => matches!(
                    meta.kind,
                    Some(FileType::CharDevice | FileType::BlockDevice)
                )
                .then_some(Decision::Exclude),
                Rule::ExcludeOtherFilesystems(dev) => {
                    use std::os::unix::fs::MetadataExt;
                    path.symlink_metadata()
                        .ok()
                        .filter(|m| m.dev() != *dev)
                        .map(|_| Decision::Exclude)
                }
                Rule::ExcludeOlderThan(t) => {
                    (meta.is_regular() && meta.mtime < *t).then_some(Decision::Exclude)
                }
            };
            match r {
                Some(Decision::ScanOnly) => scan_pending = true,
                Some(d) => {
                    result = Some(d);
                    break;
                }
                None => {}
            }
        }
        if scan_pending && result != Some(Decision::Include) {
            return Decision::ScanOnly;
        }
        result.unwrap_or(Decision::Include)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn meta(dir: bool) -> Meta {
        Meta {
            kind: Some(if dir {
                FileType::Directory
            } else {
                FileType::Regular
            }),
            ..Default::default()
        }
    }

    fn sel(opts: &[(&str, &str)]) -> Selection {
        let mut s = Selection::default();
        for (o, a) in opts {
            s.add(o, a, Path::new("/src")).unwrap();
        }
        s
    }

    fn d(s: &Selection, p: &str, dir: bool) -> Decision {
        s.decide(&PathBuf::from(p), &meta(dir), Path::new("/src"))
    }

    #[test]
    fn first_match_wins_and_includes_scan_parents() {
        let s = sel(&[("include", "/src/a/keep"), ("exclude", "**")]);
        assert_eq!(d(&s, "/src/a", true), Decision::ScanOnly);
        assert_eq!(d(&s, "/src/a/keep", false), Decision::Include);
        assert_eq!(
            d(&s, "/src/a/keep/deeper", false),
            Decision::Include,
            "everything below an include"
        );
        assert_eq!(d(&s, "/src/a/other", false), Decision::Exclude);
        assert_eq!(d(&s, "/src/b", true), Decision::Exclude);
    }

    #[test]
    fn glob_syntax() {
        let s = sel(&[
            ("exclude", "/src/*.tmp"),
            ("exclude", "**/cache"),
            ("exclude", "/src/x?[0-9]"),
            ("exclude", "ignorecase:/src/UPPER"),
        ]);
        assert_eq!(d(&s, "/src/a.tmp", false), Decision::Exclude);
        assert_eq!(
            d(&s, "/src/sub/a.tmp", false),
            Decision::Include,
            "* stops at /"
        );
        assert_eq!(d(&s, "/src/deep/er/cache", true), Decision::Exclude);
        assert_eq!(d(&s, "/src/deep/er/cache/f", false), Decision::Exclude);
        assert_eq!(d(&s, "/src/xa7", false), Decision::Exclude);
        assert_eq!(d(&s, "/src/xab", false), Decision::Include);
        assert_eq!(d(&s, "/src/upper", false), Decision::Exclude);
        assert_eq!(d(&s, "/src/Upper/x", false), Decision::Exclude);
    }

    #[test]
    fn trailing_slash_means_directories_only() {
        let s = sel(&[("exclude", "/src/d/")]);
        assert_eq!(d(&s, "/src/d", true), Decision::Exclude);
        assert_eq!(d(&s, "/src/d", false), Decision::Include);
    }

    #[test]
    fn prefix_and_redundancy_errors() {
        let mut s = Selection::default();
        assert!(matches!(
            s.add("exclude", "/elsewhere/x", Path::new("/src")),
            Err(SelectionError::Prefix(..))
        ));
        assert!(s.add("exclude", "**/x", Path::new("/src")).is_ok());
        s.add("include", "/src/y", Path::new("/src")).unwrap();
        assert!(matches!(
            s.check(),
            Err(SelectionError::RedundantInclude(_))
        ));
    }

    #[test]
    fn filelists() {
        let mut s = Selection::default();
        s.add_filelist(
            "# comment\n\n+ /src/keep\n- /src/drop\n'/src/quoted'\n",
            false,
            false,
            Path::new("/src"),
        )
        .unwrap();
        assert_eq!(d(&s, "/src/keep", false), Decision::Include);
        assert_eq!(d(&s, "/src/drop", false), Decision::Exclude);
        assert_eq!(d(&s, "/src/quoted", false), Decision::Exclude);
        assert_eq!(d(&s, "/src/other", false), Decision::Include);
    }

    #[test]
    fn filter_modes_change_how_patterns_are_read() {
        let s = sel(&[
            ("filter-literal", ""),
            ("include", "/src/a[1]"),
            ("filter-regexp", ""),
            ("filter-ignorecase", ""),
            ("exclude", "\\.TMP$"),
            ("filter-globbing", ""),
            ("filter-strictcase", ""),
            ("exclude", "**"),
        ]);
        assert_eq!(d(&s, "/src/a[1]/f", false), Decision::Include);
        assert_eq!(
            d(&s, "/src/a1", false),
            Decision::Exclude,
            "literal, not a class"
        );
        assert_eq!(d(&s, "/src/x.tmp", false), Decision::Exclude);
        s.check().unwrap();
        let mut t = sel(&[("exclude", "**"), ("filter-literal", "")]);
        assert!(matches!(t.check(), Err(SelectionError::TrailingFilter(_))));
        t = sel(&[("filter-globbing", ""), ("exclude", "**")]);
        assert!(matches!(t.check(), Err(SelectionError::RedundantFilter(_))));
    }

    #[test]
    fn files_from_walks_only_the_listed_paths_and_their_parents() {
        let mut s = Selection::default();
        s.add_files_from(b"a/b/c\nd\n", false).unwrap();
        assert_eq!(d(&s, "/src", true), Decision::Include);
        assert_eq!(d(&s, "/src/a", true), Decision::Include);
        assert_eq!(d(&s, "/src/a/b/c", false), Decision::Include);
        assert_eq!(d(&s, "/src/a/x", false), Decision::Exclude);
        assert_eq!(d(&s, "/src/d", true), Decision::Include);
        assert_eq!(d(&s, "/src/d/inside", false), Decision::Exclude);
        let mut e = Selection::default();
        assert_eq!(
            e.add_files_from(b"\n", false),
            Err(SelectionError::EmptyFilesFrom)
        );
        assert!(matches!(
            e.add_files_from(b"/etc\n", false),
            Err(SelectionError::AbsoluteFilesFrom(_))
        ));
    }

    #[test]
    fn glob_regexes_match_duplicity() {
        assert_eq!(glob_to_regex("a*b"), "a[^/]*b");
        assert_eq!(glob_to_regex("**/x"), ".*/x");
        assert_eq!(glob_to_regex("[a"), "\\[a");
        assert_eq!(glob_to_regex("[ab]"), "(?u:[ab])");
        assert_eq!(glob_to_regex("é"), "(?u:é)");
    }

    /// duplicity 3.x matches globs against `str` paths: a class, `?` or a
    /// negated class stands for one character, however many bytes it takes.
    #[test]
    fn classes_and_question_marks_match_whole_non_ascii_characters() {
        let root = "/src";
        let s = |opts: &[(&str, &str)]| {
            let mut s = Selection::default();
            for (o, a) in opts {
                s.add(o, a, Path::new(root)).unwrap();
            }
            s
        };
        let incl = s(&[("include", "/src/u/при[м]ер"), ("exclude", "**")]);
        assert_eq!(d(&incl, "/src/u", true), Decision::ScanOnly);
        assert_eq!(d(&incl, "/src/u/пример", true), Decision::Include);
        assert_eq!(d(&incl, "/src/u/пример/f", false), Decision::Include);
        assert_eq!(d(&incl, "/src/u/приxер", true), Decision::Exclude);
        let q = s(&[("exclude", "/src/a?b"), ("exclude", "/src/c[!x]d")]);
        assert_eq!(d(&q, "/src/aмb", false), Decision::Exclude, "? is one char");
        assert_eq!(d(&q, "/src/aммb", false), Decision::Include);
        assert_eq!(
            d(&q, "/src/cмd", false),
            Decision::Exclude,
            "[!x] is one char"
        );
        assert_eq!(d(&q, "/src/cxd", false), Decision::Include);
        let r = s(&[("exclude", "/src/[а-я]*")]);
        assert_eq!(
            d(&r, "/src/жук", false),
            Decision::Exclude,
            "a range of letters"
        );
        assert_eq!(d(&r, "/src/zuk", false), Decision::Include);
        let ic = s(&[("exclude", "ignorecase:/src/ПРИМЕР")]);
        assert_eq!(d(&ic, "/src/Пример", false), Decision::Exclude);
        // A name that is not UTF-8: `?` takes the stray byte.
        use std::os::unix::ffi::OsStrExt;
        let raw = s(&[("exclude", "/src/x?y")]);
        let name = std::ffi::OsStr::from_bytes(b"/src/x\xffy");
        assert_eq!(
            raw.decide(Path::new(name), &meta(false), Path::new(root)),
            Decision::Exclude
        );
    }
}
