//! The dashboard through its HTTP API, against a real `cairn serve` and a
//! real rsync daemon on loopback: setup from a fresh card, the recovery
//! kit's commands run with stock duplicity, secrets on every route, paths as
//! data, downloads and restores compared byte for byte, a new card for an
//! old target. (The same flow in a real browser: `dashboard_browser.rs`.)

mod common;

use common::servers::{Moto, Proc, RSYNC_PASSWORD, Rsyncd, free_port, wait_port};
use common::*;
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OWNER: &str = "owner password 1";

/// A `cairn serve` on a fresh "card" (an empty configuration directory).
struct Card {
    dir: tempfile::TempDir,
    addr: String,
    proc: Option<Proc>,
    token: String,
}

impl Card {
    fn new() -> Card {
        Card::with_config("")
    }

    /// A fresh card whose cairn.toml holds `toml` (nothing if empty).
    fn with_config(toml: &str) -> Card {
        let dir = tmpdir();
        fs::create_dir_all(dir.path().join("cairn")).unwrap();
        fs::write(dir.path().join("cairn/claim-token"), "card-token\n").unwrap();
        if !toml.is_empty() {
            fs::write(dir.path().join("cairn/cairn.toml"), toml).unwrap();
        }
        let mut c = Card {
            addr: format!("127.0.0.1:{}", free_port()),
            dir,
            proc: None,
            token: String::new(),
        };
        c.start();
        c
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("cairn")
    }

    fn start(&mut self) {
        let mut cmd = Command::new(cairn());
        cmd.arg("--config")
            .arg(self.conf().join("cairn.toml"))
            .args(["serve", "--board", "sim", "--listen", &self.addr])
            .env("TMPDIR", self.dir.path())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.dir.path().join("daemon.log")).unwrap());
        self.proc = Some(Proc::spawn("cairn serve", cmd));
        assert!(wait_port(&self.addr, Duration::from_secs(20)));
    }

    fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            self.token,
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let i = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..i]).into_owned();
        let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut body = raw[i + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        (code, String::from_utf8_lossy(&body).into_owned())
    }

    /// A download's bytes.
    fn bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.addr, self.token
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let i = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..i]).to_ascii_lowercase();
        let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = &raw[i + 4..];
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_vec()
        };
        (code, body)
    }

    fn json(&self, method: &str, path: &str, body: &str) -> Value {
        let (code, text) = self.http(method, path, body);
        assert!(code < 300, "{method} {path}: {code} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    fn claim(&mut self) {
        let body = format!(r#"{{"password":"{OWNER}","token":"card-token"}}"#);
        let v = self.json("POST", "/setup/claim", &body);
        self.token = v["token"].as_str().unwrap().to_string();
    }

    /// Waits until `n` jobs have finished; returns the newest.
    fn wait_finished(&self, n: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let s = self.json("GET", "/api/status", "");
            let f = s["finished"].as_array().unwrap();
            if f.len() >= n && s["running"].is_null() {
                return f[0].clone();
            }
            assert!(Instant::now() < deadline, "no job finished: {s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let i = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 4 + n..];
    }
}

/// A zip's entries and data, as Python's zipfile reads them (CRCs checked).
fn zip_files(bytes: &[u8], scratch: &Path) -> Vec<(String, Vec<u8>)> {
    let p = scratch.join("download.zip");
    fs::write(&p, bytes).unwrap();
    let script = "import sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1])\n\
        assert z.testzip() is None\n\
        for i in z.infolist():\n    print(i.filename, z.read(i).hex())\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (name, hex) = l.split_once(' ').unwrap();
            let data = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (name.to_string(), data)
        })
        .collect()
}

/// A small tree to back up.
fn source(root: &Path) -> PathBuf {
    let src = root.join("share");
    fs::create_dir_all(src.join("docs/2024")).unwrap();
    fs::write(src.join("docs/2024/letter.txt"), b"Dear Sir,\n").unwrap();
    fs::write(src.join("docs/notes.md"), b"# notes\nremember the milk\n").unwrap();
    fs::write(src.join("photo.raw"), random_bytes(3 << 20, 7)).unwrap();
    std::os::unix::fs::symlink("docs/notes.md", src.join("link")).unwrap();
    src
}

/// Claims a fresh card and sets it up to back `src` up to the rsync daemon.
fn set_up(card: &mut Card, src: &Path, rsyncd: &Rsyncd, extra: &str) -> String {
    card.claim();
    let target = rsyncd.url("pi");
    let body = format!(
        r#"{{"source":"{}","target":"{target}","target_password":"{RSYNC_PASSWORD}"{extra}}}"#,
        src.display()
    );
    card.json("POST", "/api/setup", &body);
    let kit = card.bytes("/api/setup/kit.txt");
    assert_eq!(kit.0, 200);
    String::from_utf8(kit.1).unwrap()
}

/// [`set_up`], then the kit confirmed: the configuration in effect. Returns
/// the passphrase.
fn set_up_confirmed(card: &mut Card, src: &Path, rsyncd: &Rsyncd, extra: &str) -> String {
    let passphrase = passphrase_of(&set_up(card, src, rsyncd, extra));
    let last = &passphrase[passphrase.len() - 5..];
    card.json(
        "POST",
        "/api/setup/confirm",
        &format!(r#"{{"last":"{last}"}}"#),
    );
    passphrase
}

/// A card set up for [`source`] on `rsyncd`, its first backup made.
fn backed_up(rsyncd: &Rsyncd) -> (Card, PathBuf) {
    let mut card = Card::new();
    let src = source(card.dir.path());
    set_up_confirmed(&mut card, &src, rsyncd, "");
    card.json("POST", "/api/jobs", r#"{"kind":"backup"}"#);
    assert_eq!(card.wait_finished(1)["outcome"], "ok");
    (card, src)
}

fn passphrase_of(kit: &str) -> String {
    kit.lines()
        .find_map(|l| l.strip_prefix("Passphrase:"))
        .unwrap()
        .trim()
        .to_string()
}

fn tar_files(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

#[test]
fn setup_from_a_fresh_card_and_the_kit_restores_with_stock_duplicity() {
    let rsyncd = Rsyncd::start();
    let mut card = Card::new();
    let src = source(card.dir.path());
    card.claim();

    // The connection test says exactly what failed, then what it found.
    let target = rsyncd.url("pi");
    let bad = format!(r#"{{"target":"{target}","target_password":"wrong"}}"#);
    let (code, body) = card.http("POST", "/api/setup/test", &bad);
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("cannot list the target"), "{body}");
    let good = format!(r#"{{"target":"{target}","target_password":"{RSYNC_PASSWORD}"}}"#);
    let v = card.json("POST", "/api/setup/test", &good);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("holds no backups yet"),
        "{v}"
    );

    // A source that is not a directory, a bad schedule: refused, nothing written.
    let nodir = format!(r#"{{"source":"/nonexistent","target":"{target}"}}"#);
    assert_eq!(card.http("POST", "/api/setup", &nodir).0, 400);
    let sched = format!(
        r#"{{"source":"{}","target":"{target}","schedule":"61 * * * *"}}"#,
        src.display()
    );
    assert_eq!(card.http("POST", "/api/setup", &sched).0, 400);
    assert!(!card.conf().join("cairn.toml.pending").exists());

    let body = format!(
        r#"{{"source":"{}","target":"{target}","target_password":"{RSYNC_PASSWORD}"}}"#,
        src.display()
    );
    card.json("POST", "/api/setup", &body);
    let kit = String::from_utf8(card.bytes("/api/setup/kit.txt").1).unwrap();
    let passphrase = passphrase_of(&kit);
    assert_eq!(passphrase.len(), 35, "{kit}");
    let page = card.http("GET", "/setup/kit", "").1;
    assert!(page.contains("<svg"), "no QR code");
    // Not configured until the kit is confirmed: nothing runs yet.
    assert!(!card.conf().join("cairn.toml").exists());
    assert_eq!(card.json("GET", "/health", "")["configured"], false);
    assert_eq!(
        card.http("POST", "/api/setup/confirm", r#"{"last":"XXXXX"}"#)
            .0,
        400
    );
    let last = &passphrase[passphrase.len() - 5..];
    card.json(
        "POST",
        "/api/setup/confirm",
        &format!(r#"{{"last":"{last}"}}"#),
    );
    assert!(card.conf().join("cairn.toml").exists());
    let mode = fs::metadata(card.conf().join("secrets/passphrase")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    card.json("POST", "/api/jobs", r#"{"kind":"backup"}"#);
    let j = card.wait_finished(1);
    assert_eq!(j["outcome"], "ok", "{j}");

    // The kit's own commands, as printed, with stock duplicity 3.x.
    let home = card.dir.path().join("elsewhere");
    let lines = kit.lines().map(str::trim);
    let script = lines.filter(|l| l.starts_with("export ") || l.starts_with("duplicity "));
    assert_eq!(script.count(), 4, "{kit}");
    run_kit(&kit, &home);
    assert_same_tree(
        &capture(&src),
        &capture(&home.join("cairn-restore")),
        "restored with the kit's commands",
    );

    // The kit again: only after the password and a press.
    assert_eq!(card.bytes("/api/setup/kit.txt").0, 403);
    assert_eq!(
        card.http("POST", "/api/kit/unlock", r#"{"password":"not it at all"}"#)
            .0,
        403
    );
    let again = unlocked_kit(&card);
    assert_eq!(passphrase_of(&again), passphrase);
    // That press unlocked the kit and started no backup.
    assert_eq!(
        card.json("GET", "/api/status", "")["finished"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn secrets_stay_out_of_every_page_and_answer() {
    let rsyncd = Rsyncd::start();
    let mut card = Card::new();
    let src = source(card.dir.path());
    let passphrase = set_up_confirmed(&mut card, &src, &rsyncd, "");
    card.json("POST", "/api/jobs", r#"{"kind":"backup"}"#);
    assert_eq!(card.wait_finished(1)["outcome"], "ok");
    let set = card.json("GET", "/api/sets", "")[0]["time"]
        .as_i64()
        .unwrap();
    // Every GET route of the table, as the library lists it.
    for r in cairn::web::routes() {
        if r.method != "GET" || r.path.contains("/events") {
            continue;
        }
        let path = r.path.replace("{file}", "app.js");
        let query = format!("?plan=main&t={set}&path=docs&q=notes&expr=5+3+*+*+2&id=x");
        let (_, body) = if path.contains("download") {
            let (c, b) = card.bytes(&format!("{path}{query}"));
            (c, String::from_utf8_lossy(&b).into_owned())
        } else {
            card.http("GET", &format!("{path}{query}"), "")
        };
        for secret in [passphrase.as_str(), RSYNC_PASSWORD] {
            assert!(!body.contains(secret), "GET {path} shows a secret: {body}");
        }
    }
    let log = fs::read_to_string(card.dir.path().join("daemon.log")).unwrap();
    assert!(
        !log.contains(RSYNC_PASSWORD) && !log.contains(&passphrase),
        "{log}"
    );
}

#[test]
fn downloads_and_restores_take_paths_as_data() {
    let rsyncd = Rsyncd::start();
    let mut card = Card::new();
    let src = source(card.dir.path());
    let _socket = std::os::unix::net::UnixListener::bind(src.join("a.sock")).unwrap();
    set_up_confirmed(&mut card, &src, &rsyncd, "");
    card.json("POST", "/api/jobs", r#"{"kind":"backup"}"#);
    assert_eq!(card.wait_finished(1)["outcome"], "ok");

    // The run's log says what was done and what was passed over.
    let runs = card.json("GET", "/api/runs", "");
    let id = runs["runs"][0]["id"].as_i64().unwrap();
    let log = card.json("GET", &format!("/api/runs/{id}/log"), "");
    let lines: Vec<&str> = log["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("3 new, 0 changed")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("1 socket(s) passed over")),
        "{lines:?}"
    );
    let (code, page) = card.bytes(&format!("/jobs/{id}"));
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&page).contains("passed over"));
    assert_eq!(card.http("GET", "/api/runs/99999/log", "").0, 404);

    // Browse from the catalog.
    let ls = card.json("GET", "/api/ls?path=docs", "");
    let names: Vec<&str> = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["2024", "notes.md"], "{ls}");
    let found = card.json("GET", "/api/find?q=letter", "");
    assert_eq!(found[0]["path"], "docs/2024/letter.txt", "{found}");

    // A directory and a file, as tar streams, byte for byte.
    let (code, tar) = card.bytes("/api/download?path=docs");
    assert_eq!(code, 200);
    let files = tar_files(&tar);
    let got: Vec<(&str, usize)> = files.iter().map(|(n, d)| (n.as_str(), d.len())).collect();
    assert_eq!(
        got,
        [
            ("docs/", 0),
            ("docs/2024/", 0),
            ("docs/2024/letter.txt", 10),
            ("docs/notes.md", 26)
        ]
    );
    for (name, data) in &files {
        if !data.is_empty() {
            assert_eq!(data, &fs::read(src.join(name)).unwrap(), "{name}");
        }
    }
    // The same directory as a zip, as Python's zipfile reads it.
    let (code, zip) = card.bytes("/api/download?path=docs&format=zip");
    assert_eq!(code, 200);
    let files = zip_files(&zip, card.dir.path());
    let got: Vec<(&str, usize)> = files.iter().map(|(n, d)| (n.as_str(), d.len())).collect();
    assert_eq!(
        got,
        [
            ("docs/", 0),
            ("docs/2024/", 0),
            ("docs/2024/letter.txt", 10),
            ("docs/notes.md", 26)
        ]
    );
    for (name, data) in &files {
        if !data.is_empty() {
            assert_eq!(data, &fs::read(src.join(name)).unwrap(), "{name}");
        }
    }
    assert_eq!(card.bytes("/api/download?path=docs&format=rar").0, 400);
    let (_, one) = card.bytes("/api/download?path=photo.raw");
    let files = tar_files(&one);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "photo.raw");
    assert_eq!(files[0].1, fs::read(src.join("photo.raw")).unwrap());
    // Nothing staged: the scratch files are gone.
    let tmp = card.conf().join("tmp");
    let left: Vec<_> = fs::read_dir(&tmp)
        .map(|r| r.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");

    // Paths that try to leave: refused, with what is wrong.
    for bad in ["../etc", "docs/../../etc", "./docs"] {
        let (code, body) = card.http("GET", &format!("/api/ls?path={bad}"), "");
        assert_eq!(code, 400, "{bad}: {body}");
        assert_eq!(
            card.bytes(&format!("/api/download?path={bad}")).0,
            404,
            "{bad}"
        );
    }
    assert_eq!(card.bytes("/api/download?path=/etc/passwd").0, 404);
    for spec in [
        r#"{"into":"../escape"}"#,
        r#"{"into":"a/b"}"#,
        r#"{"into":".."}"#,
        r#"{"path":"../etc","into":"x"}"#,
    ] {
        let body = format!(r#"{{"kind":"restore","restore":{spec}}}"#);
        let (code, text) = card.http("POST", "/api/jobs", &body);
        assert_eq!(code, 409, "{spec}: {text}");
    }
    // A name that is a symlink out of the restore directory is not followed.
    let restore_dir = card.dir.path().join("restore");
    fs::create_dir_all(&restore_dir).unwrap();
    let outside = card.dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, restore_dir.join("trap")).unwrap();
    card.json(
        "POST",
        "/api/jobs",
        r#"{"kind":"restore","restore":{"path":"docs","into":"trap"}}"#,
    );
    let j = card.wait_finished(2);
    assert_eq!(j["outcome"], "failed", "{j}");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);

    // A directory restored onto the appliance, into a new folder.
    card.json(
        "POST",
        "/api/jobs",
        r#"{"kind":"restore","restore":{"path":"docs","into":"docs-back"}}"#,
    );
    let j = card.wait_finished(3);
    assert_eq!(j["outcome"], "ok", "{j}");
    assert_same_tree(
        &capture(&src.join("docs")),
        &capture(&restore_dir.join("docs-back")),
        "restore of docs",
    );
}

#[test]
fn a_directory_goes_back_where_it_was_and_the_version_it_replaces_is_kept() {
    let rsyncd = Rsyncd::start();
    let (card, src) = backed_up(&rsyncd);
    let backed_up = capture(&src.join("docs"));
    // The owner changes things, then wants the backed-up docs back.
    fs::write(src.join("docs/2024/letter.txt"), b"overwritten by mistake").unwrap();
    fs::remove_file(src.join("docs/notes.md")).unwrap();
    fs::write(src.join("docs/new.txt"), b"written since").unwrap();
    let current = capture(&src.join("docs"));
    let original = src.join("docs").display().to_string();

    // The browse page offers it with the path spelled out.
    let (code, page) = card.bytes("/browse?path=docs");
    assert_eq!(code, 200);
    let page = String::from_utf8(page).unwrap().replace("&#x2f;", "/");
    assert!(
        page.contains(&format!(r#"name="restore.replace" value="{original}""#)),
        "{page}"
    );
    // The confirmation must name the place replaced; never the whole source.
    for spec in [
        r#"{"path":"docs","replace":"/etc"}"#.to_string(),
        r#"{"path":"docs","replace":"docs"}"#.to_string(),
        format!(r#"{{"replace":"{}"}}"#, src.display()),
        format!(r#"{{"path":"docs","into":"x","replace":"{original}"}}"#),
    ] {
        let body = format!(r#"{{"kind":"restore","restore":{spec}}}"#);
        let (code, text) = card.http("POST", "/api/jobs", &body);
        assert_eq!(code, 409, "{spec}: {text}");
    }
    assert_same_tree(&current, &capture(&src.join("docs")), "refused requests");

    // A folder of the owner's under the staging name is not touched.
    let staging = src.join(".cairn-restore-docs");
    fs::create_dir_all(staging.join("mine")).unwrap();
    let body =
        format!(r#"{{"kind":"restore","restore":{{"path":"docs","replace":"{original}"}}}}"#);
    card.json("POST", "/api/jobs", &body);
    let j = card.wait_finished(2);
    assert_eq!(j["outcome"], "failed", "{j}");
    assert!(
        j["message"].as_str().unwrap().contains("not Cairn's"),
        "{j}"
    );
    assert!(staging.join("mine").is_dir());
    assert_same_tree(&current, &capture(&src.join("docs")), "a refused restore");
    // Marked, but others may write to it: anyone on the share could have
    // made that, so it is still not Cairn's.
    fs::write(staging.join(".cairn-staging"), "").unwrap();
    card.json("POST", "/api/jobs", &body);
    let j = card.wait_finished(3);
    assert!(
        j["message"].as_str().unwrap().contains("not Cairn's"),
        "{j}"
    );
    assert!(staging.join("mine").is_dir());
    // A staging folder left by a run the power cut (marked, private) is
    // rebuilt, not trusted.
    let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
    fs::set_permissions(&staging, private).unwrap();
    card.json("POST", "/api/jobs", &body);
    let j = card.wait_finished(4);
    assert_eq!(j["outcome"], "ok", "{j}");
    assert_same_tree(&backed_up, &capture(&src.join("docs")), "docs put back");
    assert!(!staging.exists());
    let kept_as = |prefix: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(&src)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .collect();
        v.sort();
        v
    };
    let kept = kept_as("docs.before-restore-");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_same_tree(&current, &capture(&kept[0]), "the version replaced, kept");
    assert!(
        j["message"].as_str().unwrap().contains("before-restore-"),
        "{j}"
    );

    // One file put back; nothing of the restore's left beside it.
    fs::write(src.join("docs/notes.md"), b"scribbled over").unwrap();
    let body = format!(
        r#"{{"kind":"restore","restore":{{"path":"docs/notes.md","replace":"{original}/notes.md"}}}}"#
    );
    card.json("POST", "/api/jobs", &body);
    let j = card.wait_finished(5);
    assert_eq!(j["outcome"], "ok", "{j}");
    assert_eq!(
        fs::read(src.join("docs/notes.md")).unwrap(),
        b"# notes\nremember the milk\n"
    );
    let names: Vec<String> = fs::read_dir(src.join("docs"))
        .unwrap()
        .chain(fs::read_dir(&src).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("cairn-restore")),
        "{names:?}"
    );
    let note = names
        .iter()
        .find(|n| n.starts_with("notes.md.before-restore-"))
        .unwrap_or_else(|| panic!("{names:?}"));
    assert_eq!(
        fs::read(src.join("docs").join(note)).unwrap(),
        b"scribbled over"
    );

    // A symlink in the live source does not lead the restore elsewhere.
    let outside = card.dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::rename(src.join("docs"), src.join("docs-moved")).unwrap();
    std::os::unix::fs::symlink(&outside, src.join("docs")).unwrap();
    let body = format!(
        r#"{{"kind":"restore","restore":{{"path":"docs/2024","replace":"{original}/2024"}}}}"#
    );
    card.json("POST", "/api/jobs", &body);
    let j = card.wait_finished(6);
    assert_eq!(j["outcome"], "failed", "{j}");
    assert!(j["message"].as_str().unwrap().contains("symlink"), "{j}");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
}

/// One HTTPS exchange with a client that trusts only `cert_pem`, for `name`.
fn tls_exchange(addr: &str, cert_pem: &[u8], name: &str, request: &str) -> String {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(cert_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server = ServerName::try_from(name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), server).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    tls.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw); // a missing close_notify is not our concern
    String::from_utf8_lossy(&raw).into_owned()
}

#[test]
fn https_that_cannot_start_leaves_plain_http_and_says_why() {
    // The HTTPS port is taken by someone else.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let https = taken.local_addr().unwrap().to_string();
    let card = Card::with_config(&format!("https_listen = \"{https}\"\n"));
    let (code, body) = card.http("GET", "/api/status", "");
    assert_eq!(code, 401, "plain HTTP serves the dashboard itself: {body}");
    assert_eq!(card.http("GET", "/health", "").0, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = fs::read_to_string(card.dir.path().join("daemon.log")).unwrap();
        if log.contains("HTTPS is off") && log.contains(&https) {
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn https_with_a_certificate_made_on_the_appliance_and_plain_http_redirects() {
    let https = format!("127.0.0.1:{}", free_port());
    let mut card = Card::with_config(&format!("https_listen = \"{https}\"\n"));
    assert!(wait_port(&https, Duration::from_secs(20)));
    let cert = fs::read(card.conf().join("tls/cert.pem")).unwrap();
    let key = fs::metadata(card.conf().join("tls/key.pem")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
    // Claimed over HTTPS, by name and by address: the session cookie is Secure.
    let port = https.rsplit(':').next().unwrap();
    let body = format!(r#"{{"password":"{OWNER}","token":"card-token"}}"#);
    let claim = tls_exchange(
        &https,
        &cert,
        "localhost",
        &format!(
            "POST /setup/claim HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(claim.starts_with("HTTP/1.1 200"), "{claim}");
    let cookie = claim
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let token = claim
        .split("\"token\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let status = tls_exchange(
        &https,
        &cert,
        "127.0.0.1",
        &format!(
            "GET /api/status HTTP/1.1\r\nHost: {https}\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n"
        ),
    );
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // Setup over HTTPS keeps the owner's https_listen in the new configuration.
    let rsyncd = Rsyncd::start();
    let src = source(card.dir.path());
    let body = format!(
        r#"{{"source":"{}","target":"{}","target_password":"{RSYNC_PASSWORD}"}}"#,
        src.display(),
        rsyncd.url("pi")
    );
    let setup = tls_exchange(
        &https,
        &cert,
        "localhost",
        &format!(
            "POST /api/setup HTTP/1.1\r\nHost: localhost:{port}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(setup.starts_with("HTTP/1.1 200"), "{setup}");
    let pending = fs::read_to_string(card.conf().join("cairn.toml.pending")).unwrap();
    assert!(
        pending.contains(&format!("https_listen = \"{https}\"")),
        "{pending}"
    );
    // Plain HTTP: /health answers; everything else is sent to HTTPS.
    assert_eq!(card.http("GET", "/health", "").0, 200);
    let mut s = TcpStream::connect(&card.addr).unwrap();
    write!(
        s,
        "GET /api/status?x=1 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        card.addr
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 307"), "{raw}");
    assert!(
        raw.to_ascii_lowercase().contains(&format!(
            "location: https://127.0.0.1:{port}/api/status?x=1"
        )),
        "{raw}"
    );
    // Only a plain host name is carried into a redirect.
    let mut s = TcpStream::connect(&card.addr).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: evil.example/.local\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(!raw.to_ascii_lowercase().contains("location:"), "{raw}");
    // The certificate is the appliance's own: the same one is served after a restart.
    card.proc.take();
    card.start();
    assert!(wait_port(&https, Duration::from_secs(20)));
    let health = tls_exchange(
        &https,
        &cert,
        "localhost",
        &format!("GET /health HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"),
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

#[test]
fn a_new_card_connects_to_the_old_target_and_browses_it() {
    let rsyncd = Rsyncd::start();
    let mut old = Card::new();
    let src = source(old.dir.path());
    let passphrase = set_up_confirmed(&mut old, &src, &rsyncd, "");
    old.json("POST", "/api/jobs", r#"{"kind":"backup"}"#);
    assert_eq!(old.wait_finished(1)["outcome"], "ok");
    let sets = old.json("GET", "/api/sets", "");
    drop(old);
    // What is stored is known for an rsync target too: after the backup from
    // what it uploaded, after a rebuild from the target's listing.
    let at_target: u64 = fs::read_dir(rsyncd.module_dir.join("pi"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(sets[0]["stored_bytes"], at_target, "{sets}");

    // The Pi died; a new card, the same target.
    let mut card = Card::new();
    card.claim();
    let target = rsyncd.url("pi");
    let wrong = format!(
        r#"{{"target":"{target}","target_password":"{RSYNC_PASSWORD}","passphrase":"not the passphrase"}}"#
    );
    let (code, body) = card.http("POST", "/api/setup/test", &wrong);
    assert_eq!(code, 502, "{body}");
    assert!(
        body.contains("cannot be read with this passphrase"),
        "{body}"
    );
    let right = format!(
        r#"{{"target":"{target}","target_password":"{RSYNC_PASSWORD}","passphrase":"{passphrase}"}}"#
    );
    let v = card.json("POST", "/api/setup/test", &right);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("the passphrase opens them"),
        "{v}"
    );
    let fresh = card.dir.path().join("new-share");
    fs::create_dir_all(&fresh).unwrap();
    let body = format!(
        r#"{{"source":"{}","target":"{target}","target_password":"{RSYNC_PASSWORD}","passphrase":"{passphrase}","existing":true}}"#,
        fresh.display()
    );
    card.json("POST", "/api/setup", &body);
    let last = &passphrase[passphrase.len() - 5..];
    card.json(
        "POST",
        "/api/setup/confirm",
        &format!(r#"{{"last":"{last}"}}"#),
    );
    // The catalog is rebuilt from the target alone.
    let j = card.wait_finished(1);
    assert_eq!(j["job"]["kind"], "rebuild", "{j}");
    assert_eq!(j["outcome"], "ok", "{j}");
    let shape = |v: &Value| -> Vec<(Value, Value, Value)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| (s["time"].clone(), s["full"].clone(), s["files"].clone()))
            .collect()
    };
    let rebuilt = card.json("GET", "/api/sets", "");
    assert_eq!(shape(&rebuilt), shape(&sets));
    assert_eq!(rebuilt[0]["stored_bytes"], at_target, "{rebuilt}");
    let ls = card.json("GET", "/api/ls?path=docs/2024", "");
    assert_eq!(ls["entries"][0]["name"], "letter.txt", "{ls}");
    let (code, tar) = card.bytes("/api/download?path=docs/2024/letter.txt");
    let files = tar_files(&tar);
    assert_eq!(
        files.len(),
        1,
        "{code}: {}",
        fs::read_to_string(card.dir.path().join("daemon.log")).unwrap()
    );
    assert_eq!(files[0].1, b"Dear Sir,\n");
}

#[test]
fn the_schedule_changes_with_a_preview_and_keeps_the_owners_comments() {
    let rsyncd = Rsyncd::start();
    let mut card = Card::new();
    let src = source(card.dir.path());
    let kit = set_up(&mut card, &src, &rsyncd, r#","schedule":"0 2 * * *""#);
    let passphrase = passphrase_of(&kit);
    let last = &passphrase[passphrase.len() - 5..];
    card.json(
        "POST",
        "/api/setup/confirm",
        &format!(r#"{{"last":"{last}"}}"#),
    );
    let file = card.conf().join("cairn.toml");
    let text = fs::read_to_string(&file).unwrap() + "# my own note\n";
    fs::write(&file, text).unwrap();

    let p = card.json("GET", "/api/schedule/preview?expr=30+4+*+*+6", "");
    assert_eq!(p["next"].as_array().unwrap().len(), 5, "{p}");
    assert!(
        p["describe"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("saturday"),
        "{p}"
    );
    let (code, body) = card.http("GET", "/api/schedule/preview?expr=nonsense", "");
    assert_eq!(code, 400, "{body}");

    let (code, _) = card.http(
        "POST",
        "/api/settings/schedule",
        r#"{"plan":"main","schedule":"99 * * * *"}"#,
    );
    assert_eq!(code, 400);
    card.json(
        "POST",
        "/api/settings/schedule",
        r#"{"plan":"main","schedule":"30 4 * * 6"}"#,
    );
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("schedule = \"30 4 * * 6\"") && text.contains("# my own note"),
        "{text}"
    );
    let s = card.json("GET", "/api/status", "");
    assert_eq!(s["plans"][0]["schedule"], "30 4 * * 6", "{s}");

    // Retention: what it would delete now, then a new rule.
    card.json("POST", "/api/jobs", r#"{"kind":"backup"}"#);
    assert_eq!(card.wait_finished(1)["outcome"], "ok");
    let p = card.json("GET", "/api/retention/preview?plan=main&keep_full=1", "");
    assert_eq!(p["chains"], 1, "{p}");
    assert_eq!(p["removed_chains"].as_array().unwrap().len(), 0, "{p}");
    assert_eq!(
        card.http("GET", "/api/retention/preview?keep_full=0", "").0,
        400
    );
    card.json(
        "POST",
        "/api/settings/retention",
        r#"{"plan":"main","keep_full":4}"#,
    );
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("keep_full = 4") && text.contains("# my own note"),
        "{text}"
    );
    let p = card.json("GET", "/api/retention/preview", "");
    assert_eq!(p["rule"], "AllButNFull(4)", "{p}");

    // Notifications: a bad URL is named; a channel's URL is a secret the
    // page shows by its site only; "off" removes it.
    let (code, body) = card.http("POST", "/api/settings/notify", r#"{"ntfy":"ntfy.sh/x"}"#);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("ntfy"), "{body}");
    let v = card.json(
        "POST",
        "/api/settings/notify",
        r#"{"ntfy":"https://ntfy.sh/secret-topic-4711","stale_days":5}"#,
    );
    assert_eq!(v["ntfy"], "https://ntfy.sh/…", "{v}");
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("ntfy = \"https://ntfy.sh/secret-topic-4711\"")
            && text.contains("stale_days = 5")
            && text.contains("# my own note"),
        "{text}"
    );
    let (_, page) = card.bytes("/settings");
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("ntfy.sh") && !page.contains("secret-topic"),
        "{page}"
    );
    card.json("POST", "/api/settings/notify", r#"{"ntfy":"off"}"#);
    assert!(!fs::read_to_string(&file).unwrap().contains("secret-topic"));

    // Pins: the Pi board's rules first (I²C's SDA, the same pin twice), then saved.
    for bad in [
        r#"{"green":2,"red":27,"button":22}"#,
        r#"{"green":17,"red":17,"button":22}"#,
        r#"{"green":17,"red":27,"button":40}"#,
    ] {
        let (code, body) = card.http("POST", "/api/settings/pins", bad);
        assert_eq!(code, 400, "{bad}: {body}");
    }
    let v = card.json(
        "POST",
        "/api/settings/pins",
        r#"{"green":5,"red":6,"button":13}"#,
    );
    assert!(v["message"].as_str().unwrap().contains("next start"), "{v}");
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("green = 5") && text.contains("button = 13"),
        "{text}"
    );
}

#[test]
fn the_readme_first_command_serves_a_claimable_appliance_with_a_ready_target() {
    let home = tmpdir();
    let port = free_port();
    let mut cmd = Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/appliance"));
    cmd.env("CAIRN_BIN", cairn())
        .env("CAIRN_HOME", home.path())
        .env("PORT", port.to_string())
        .env("RSYNC_PORT", free_port().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut proc = Proc::spawn("scripts/appliance", cmd);
    let out = proc.child.stdout.take().unwrap();
    let mut said = std::collections::BTreeMap::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(out)) {
        let line = line.unwrap();
        if let Some((k, v)) = line.trim().split_once(':') {
            said.insert(k.trim().to_string(), v.trim().to_string());
        }
        if line.contains("button:") {
            break;
        }
    }
    let mut card = Card {
        dir: home,
        addr: format!("127.0.0.1:{port}"),
        proc: None,
        token: String::new(),
    };
    assert!(wait_port(&card.addr, Duration::from_secs(20)), "{said:?}");
    let body = format!(
        r#"{{"password":"{OWNER}","token":"{}"}}"#,
        said["claim code"]
    );
    card.token = card.json("POST", "/setup/claim", &body)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let target = &said["target to use"];
    let password = &said["target password"];
    let t = card.json(
        "POST",
        "/api/setup/test",
        &format!(r#"{{"target":"{target}","target_password":"{password}"}}"#),
    );
    assert!(
        t["message"].as_str().unwrap().starts_with("Connected"),
        "{t}"
    );
    let body = format!(
        r#"{{"source":"{}","target":"{target}","target_password":"{password}"}}"#,
        said["source to use"]
    );
    card.json("POST", "/api/setup", &body);
    let kit = String::from_utf8(card.bytes("/api/setup/kit.txt").1).unwrap();
    let passphrase = passphrase_of(&kit);
    let last = &passphrase[passphrase.len() - 5..];
    card.json(
        "POST",
        "/api/setup/confirm",
        &format!(r#"{{"last":"{last}"}}"#),
    );
    card.json("POST", "/api/jobs", r#"{"kind":"backup"}"#);
    assert_eq!(card.wait_finished(1)["outcome"], "ok");
    proc.kill();
}

/// One request's body to a one-shot HTTP server on loopback (a webhook).
fn hook_server() -> (String, std::sync::mpsc::Receiver<String>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).unwrap();
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw).into_owned();
            if let Some(i) = text.find("\r\n\r\n") {
                let len: usize = text[..i]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if raw.len() >= i + 4 + len || n == 0 {
                    s.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .unwrap();
                    tx.send(text[i + 4..].to_string()).unwrap();
                    return;
                }
            }
        }
    });
    (url, rx)
}

/// Runs the kit's commands (its `export`, `duplicity` and comment lines) with
/// stock duplicity 3.x in a clean environment whose home is `home`.
fn run_kit(kit: &str, home: &Path) {
    let bin = home.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let _ = std::os::unix::fs::symlink(dup3(), bin.join("duplicity"));
    let script: Vec<&str> = kit
        .lines()
        .map(str::trim)
        .filter(|l| {
            ["export ", "unset ", "duplicity "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    let out = Command::new("bash")
        .args(["-euc", &script.join("\n")])
        .env_clear()
        .env("HOME", home)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{kit}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Unlocks the recovery kit (the password, then a press) and returns it.
fn unlocked_kit(card: &Card) -> String {
    let w = card.json(
        "POST",
        "/api/kit/unlock",
        &format!(r#"{{"password":"{OWNER}"}}"#),
    );
    let poll = format!("/api/kit/unlock?id={}", w["id"].as_str().unwrap());
    assert_eq!(
        card.json("GET", &poll, "")["unlocked"],
        false,
        "not before a press"
    );
    assert_eq!(card.http("POST", "/sim/press", r#"{"ms":200}"#).0, 204);
    let deadline = Instant::now() + Duration::from_secs(10);
    while card.json("GET", &poll, "")["unlocked"] != true {
        assert!(
            Instant::now() < deadline,
            "the press did not unlock the kit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    String::from_utf8(card.bytes("/api/setup/kit.txt").1).unwrap()
}

#[test]
fn a_test_notification_names_each_channel_that_failed() {
    let rsyncd = Rsyncd::start();
    let mut card = Card::new();
    let src = source(card.dir.path());
    set_up_confirmed(&mut card, &src, &rsyncd, "");
    let (code, body) = card.http("POST", "/api/settings/notify/test", "");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("no notification channel"), "{body}");

    let (hook, got) = hook_server();
    let closed = format!("http://127.0.0.1:{}/topic", free_port());
    card.json(
        "POST",
        "/api/settings/notify",
        &format!(r#"{{"webhook":"{hook}","ntfy":"{closed}"}}"#),
    );
    let (code, body) = card.http("POST", "/api/settings/notify/test", "");
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("ntfy") && !body.contains("webhook"), "{body}");
    let sent = got.recv_timeout(Duration::from_secs(10)).unwrap();
    let sent: Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(sent["event"], "test", "{sent}");
    assert_eq!(sent["plan"], "main", "{sent}");
    assert!(!sent.to_string().contains(RSYNC_PASSWORD), "{sent}");

    let (hook, got) = hook_server();
    card.json(
        "POST",
        "/api/settings/notify",
        &format!(r#"{{"webhook":"{hook}","ntfy":"off"}}"#),
    );
    let v = card.json("POST", "/api/settings/notify/test", "");
    assert!(v["message"].as_str().unwrap().contains("webhook"), "{v}");
    got.recv_timeout(Duration::from_secs(10)).unwrap();
}

#[test]
fn plans_are_added_moved_to_s3_and_removed_and_the_kit_restores_each() {
    let rsyncd = Rsyncd::start();
    let (card, src) = backed_up(&rsyncd);
    let file = card.conf().join("cairn.toml");

    // A second plan: refused while anything is wrong, checked without
    // saving, then added.
    let docs = card.dir.path().join("docs");
    fs::create_dir_all(docs.join("sub")).unwrap();
    fs::write(docs.join("sub/a.txt"), b"kept\n").unwrap();
    fs::write(docs.join("scratch.tmp"), b"left out\n").unwrap();
    let usb = card.dir.path().join("usb");
    let plan = |extra: &str| {
        format!(
            r#"{{"plan":"docs","new":true,"source":"{}","target":"file://{}","selection":["- **/*.tmp"]{extra}}}"#,
            docs.display(),
            usb.display()
        )
    };
    let before = fs::read_to_string(&file).unwrap();
    for (bad, why) in [
        (
            plan(r#","plan":"Docs!""#).replacen(r#""plan":"docs","#, "", 1),
            "cannot name a plan",
        ),
        (
            plan("").replace(&docs.display().to_string(), "/no/such/dir"),
            "not a directory",
        ),
        (
            plan("").replace("- **/*.tmp", "- /elsewhere/x"),
            "selection",
        ),
        (
            plan("")
                .replace(r#""new":true"#, r#""new":true,"plan":"main""#)
                .replacen(r#""plan":"docs","#, "", 1),
            "exists already",
        ),
    ] {
        let (code, body) = card.http("POST", "/api/settings/plan", &bad);
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body.contains(why), "{bad}: {body}");
    }
    let v = card.json("POST", "/api/settings/plan", &plan(r#","dry_run":true"#));
    assert_eq!(v["saved"], false, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("no backups yet"),
        "{v}"
    );
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        before,
        "a dry run saves nothing"
    );
    card.json("POST", "/api/settings/plan", &plan(""));
    let s = card.json("GET", "/api/status", "");
    assert_eq!(s["plans"].as_array().unwrap().len(), 2, "{s}");
    card.json("POST", "/api/jobs", r#"{"kind":"backup","plan":"docs"}"#);
    assert_eq!(card.wait_finished(2)["outcome"], "ok");

    // The kit covers both plans; stock duplicity restores each.
    let kit = unlocked_kit(&card);
    assert!(kit.contains("# plan docs"), "{kit}");
    let home = card.dir.path().join("elsewhere");
    run_kit(&kit, &home);
    assert_same_tree(
        &capture(&src),
        &capture(&home.join("cairn-restore")),
        "main",
    );
    assert_same_tree(
        &capture(&docs.join("sub")),
        &capture(&home.join("cairn-restore-docs/sub")),
        "docs",
    );
    assert!(
        !home.join("cairn-restore-docs/scratch.tmp").exists(),
        "the plan's selection leaves *.tmp out"
    );

    // Another plan's target is refused (one chain, one cache, one retention
    // for both); so is a password without its target.
    let main_target = rsyncd.url("pi");
    let (code, body) = card.http(
        "POST",
        "/api/settings/plan",
        &format!(r#"{{"plan":"docs","target":"{main_target}"}}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("both back up to"), "{body}");
    let (code, body) = card.http(
        "POST",
        "/api/settings/plan",
        r#"{"plan":"docs","target_password":"new one"}"#,
    );
    assert_eq!(code, 400, "{body}");

    // A target whose backups another passphrase made is refused.
    let other = card.dir.path().join("other");
    let out = Command::new(dup3())
        .args(["full", "--no-print-statistics"])
        .arg(&docs)
        .arg(format!("file://{}", other.display()))
        .env("PASSPHRASE", "not the appliance's passphrase")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = fs::read_to_string(&file).unwrap();
    let (code, body) = card.http(
        "POST",
        "/api/settings/plan",
        &format!(r#"{{"plan":"docs","target":"file://{}"}}"#, other.display()),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("cannot be read with this passphrase"),
        "{body}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), before);

    // Moved to S3 with its keys (IAM on: wrong keys are refused, and no
    // key file is left behind); the keys stay out of every answer.
    let (moto, key, secret) = Moto::start_with_auth("cairn");
    let secrets = card.conf().join("secrets");
    let files = || {
        let mut v: Vec<String> = fs::read_dir(&secrets)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let kept = files();
    let s3 = |key: &str, secret: &str| {
        format!(
            r#"{{"plan":"docs","target":"s3://cairn/docs","s3":{{"endpoint":"{}","region":"us-east-1","access_key":"{key}","secret_key":"{secret}"}}}}"#,
            moto.endpoint
        )
    };
    let (code, body) = card.http("POST", "/api/settings/plan", &s3(&key, "wrong-secret"));
    assert_eq!(code, 400, "{body}");
    assert!(!body.contains("wrong-secret"), "{body}");
    assert_eq!(files(), kept, "the refused keys' file is gone");
    let dry = s3(&key, &secret).replace(r#""plan":"docs""#, r#""plan":"docs","dry_run":true"#);
    let v = card.json("POST", "/api/settings/plan", &dry);
    assert_eq!(v["saved"], false, "{v}");
    assert_eq!(files(), kept, "a check keeps no keys");
    assert_eq!(fs::read_to_string(&file).unwrap(), before);
    let v = card.json("POST", "/api/settings/plan", &s3(&key, &secret));
    assert!(
        v["message"].as_str().unwrap().contains("previous target"),
        "{v}"
    );
    assert!(!v.to_string().contains(&secret));
    let keys: Vec<String> = files().into_iter().filter(|f| !kept.contains(f)).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let mode = fs::metadata(secrets.join(&keys[0])).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    assert!(!fs::read_to_string(&file).unwrap().contains(&secret));
    for page in ["/settings", "/api/status", "/"] {
        let (code, body) = card.bytes(page);
        let body = String::from_utf8_lossy(&body);
        assert_eq!(code, 200, "{page}: {body}");
        assert!(!body.contains(&secret), "{page}");
    }
    let (_, page) = card.bytes("/settings");
    let page = String::from_utf8_lossy(&page).replace("&#x2f;", "/");
    assert!(
        page.contains("Plan docs")
            && page.contains("s3://cairn/docs")
            && page.contains("- **/*.tmp"),
        "{page}"
    );
    card.json("POST", "/api/jobs", r#"{"kind":"backup","plan":"docs"}"#);
    let j = card.wait_finished(3);
    assert_eq!(j["outcome"], "ok", "{j}");
    let kit = String::from_utf8(card.bytes("/api/setup/kit.txt").1).unwrap();
    assert!(
        kit.contains(&format!("--s3-endpoint-url {}", moto.endpoint))
            && kit.contains(&format!("AWS_ACCESS_KEY_ID={key}")),
        "{kit}"
    );
    // Stock duplicity (its boto3 backend) restores the plan from S3 too.
    let home = card.dir.path().join("elsewhere-again");
    run_kit(&kit, &home);
    assert_same_tree(
        &capture(&docs.join("sub")),
        &capture(&home.join("cairn-restore-docs/sub")),
        "docs from S3, with the kit",
    );

    // Removed: the name must be repeated; the main plan stays; the
    // backups stay where they are.
    let (code, _) = card.http(
        "POST",
        "/api/settings/plan/remove",
        r#"{"plan":"docs","confirm":"doc"}"#,
    );
    assert_eq!(code, 400);
    let (code, _) = card.http(
        "POST",
        "/api/settings/plan/remove",
        r#"{"plan":"main","confirm":"main"}"#,
    );
    assert_eq!(code, 400);
    let v = card.json(
        "POST",
        "/api/settings/plan/remove",
        r#"{"plan":"docs","confirm":"docs"}"#,
    );
    assert!(
        v["message"].as_str().unwrap().contains("s3://cairn/docs"),
        "{v}"
    );
    assert_eq!(
        card.json("GET", "/api/status", "")["plans"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(files(), kept, "the plan's keys went with it");
    assert!(!fs::read_to_string(&file).unwrap().contains("docs"));
    assert!(
        fs::read_dir(&usb).unwrap().count() > 0,
        "the old target's backups stay"
    );
}

#[test]
fn a_put_back_cut_between_its_two_renames_is_finished_at_the_next_start() {
    let rsyncd = Rsyncd::start();
    let (mut card, src) = backed_up(&rsyncd);
    let backed_up = capture(&src.join("docs"));
    fs::write(src.join("docs/notes.md"), b"scribbled over").unwrap();
    let original = src.join("docs").display().to_string();
    let body =
        format!(r#"{{"kind":"restore","restore":{{"path":"docs","replace":"{original}"}}}}"#);
    card.json("POST", "/api/jobs", &body);
    let j = card.wait_finished(2);
    assert_eq!(j["outcome"], "ok", "{j}");
    let notes = card.conf().join("put-back");
    assert_eq!(
        fs::read_dir(&notes).unwrap().count(),
        0,
        "the note goes when it is done"
    );

    // The power went after the version there was moved aside and before
    // the restored copy was moved in: the copy is still staged, complete.
    let staging = src.join(".cairn-restore-docs");
    fs::create_dir(&staging).unwrap();
    let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
    fs::set_permissions(&staging, private).unwrap();
    fs::write(staging.join(".cairn-staging"), "").unwrap();
    fs::write(staging.join(".cairn-complete"), "").unwrap();
    fs::rename(src.join("docs"), staging.join("docs")).unwrap();
    let dev = std::os::unix::fs::MetadataExt::dev(&fs::metadata(&src).unwrap());
    let notes = card.conf().join("put-back");
    fs::create_dir_all(&notes).unwrap();
    let note = format!("{}\0{original}\0STAMP\0{dev}\0", src.display());
    fs::write(notes.join("the-note"), note).unwrap();
    card.proc.take();
    card.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !src.join("docs").exists() {
        assert!(Instant::now() < deadline, "docs was not put in place");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_same_tree(&backed_up, &capture(&src.join("docs")), "finished at start");
    assert!(!staging.exists() && !notes.join("the-note").exists());
    let log = fs::read_to_string(card.dir.path().join("daemon.log")).unwrap();
    assert!(log.contains("finished putting it back"), "{log}");
    let kept = fs::read_dir(&src)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("docs.before-restore-")
        })
        .count();
    assert_eq!(kept, 1, "the replaced version is still kept");
}

#[test]
fn setup_with_an_s3_target_takes_its_keys_and_keeps_them_secret() {
    let (moto, key, secret) = Moto::start_with_auth("pi-backups");
    let mut card = Card::new();
    let src = source(card.dir.path());
    card.claim();
    let secrets = card.conf().join("secrets");
    let keys_files = || {
        fs::read_dir(&secrets)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("s3-"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let s3 = |secret: &str| {
        format!(
            r#""target":"s3://pi-backups/cairn","s3":{{"endpoint":"{}","access_key":"{key}","secret_key":"{secret}"}}"#,
            moto.endpoint
        )
    };
    let (code, body) = card.http("POST", "/api/setup/test", &format!("{{{}}}", s3("wrong")));
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("cannot list the target"), "{body}");
    let v = card.json("POST", "/api/setup/test", &format!("{{{}}}", s3(&secret)));
    assert!(
        v["message"].as_str().unwrap().contains("no backups yet"),
        "{v}"
    );
    assert_eq!(keys_files(), Vec::<String>::new(), "a test keeps no keys");

    // Saved twice (the owner went back): one key file stays, the last.
    for _ in 0..2 {
        let body = format!(r#"{{"source":"{}",{}}}"#, src.display(), s3(&secret));
        card.json("POST", "/api/setup", &body);
    }
    assert_eq!(keys_files().len(), 1, "{:?}", keys_files());
    let kit = String::from_utf8(card.bytes("/api/setup/kit.txt").1).unwrap();
    assert!(
        kit.contains(&format!("AWS_SECRET_ACCESS_KEY={secret}")),
        "{kit}"
    );
    let passphrase = passphrase_of(&kit);
    let last = &passphrase[passphrase.len() - 5..];
    card.json(
        "POST",
        "/api/setup/confirm",
        &format!(r#"{{"last":"{last}"}}"#),
    );
    assert!(
        !fs::read_to_string(card.conf().join("cairn.toml"))
            .unwrap()
            .contains(&secret)
    );
    card.json("POST", "/api/jobs", r#"{"kind":"backup"}"#);
    let j = card.wait_finished(1);
    assert_eq!(j["outcome"], "ok", "{j}");
    let s = card.json("GET", "/api/status", "");
    assert!(!s.to_string().contains(&secret), "{s}");
}
