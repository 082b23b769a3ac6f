//! The Raspberry Pi SD image, built and booted (issue 6).
//!
//! Builds `out/cairn-<version>-arm64.img` with `image/build` (or takes the one
//! named by `CAIRN_IMAGE`), boots a copy of it under `qemu-system-aarch64`,
//! with user-mode networking that forwards one loopback port to the guest's
//! :8080, and waits until `cairn serve` answers `/health` from inside the guest.
//! The virt guest is claimed with the boot partition's code and backs up from
//! the dashboard to an rsync daemon on the host's loopback, which stock
//! duplicity on the host then restores. Then it cuts the power (kills QEMU) and reads the disk from the host, without
//! mounting it: the root partition must be byte-for-byte unchanged (read-only),
//! the data partition must have grown to the end of the (enlarged) card and be
//! clean after journal recovery, and the `cairn.toml`, secret and SSH key placed
//! on the FAT partition must have moved to the data partition, root-only.
//!
//! Ignored by default: it needs root, the tools from `scripts/setup-image`, and
//! minutes. `just boot-test` runs it.

mod common;

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// The first build compiles the embedded Tor client for aarch64 with LTO.
const BUILD_LIMIT: Duration = Duration::from_secs(90 * 60);
/// The folder of the image the boot test backs up (hundreds of files and symlinks).
const GUEST_SOURCE: &str = "/usr/share/doc";
const GUEST_BACKUP_LIMIT: Duration = Duration::from_secs(10 * 60);
const VIRT_BOOT_LIMIT: Duration = Duration::from_secs(10 * 60);
const RASPI_BOOT_LIMIT: Duration = Duration::from_secs(15 * 60);
/// The test copy of the card: bigger than the image (the data partition must
/// grow into it) and a power of two (QEMU's raspi SD card model needs that).
const CARD_BYTES: u64 = 2 << 30;
const QEMU: &str = "qemu-system-aarch64";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------- processes

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).unwrap()
}

/// Kills a process group when dropped, so that nothing outlives a failed test.
struct Group(Child);

impl Group {
    fn spawn(cmd: &mut Command) -> Group {
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe; the child dies with this thread.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Group(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
        )
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().unwrap()
    }

    /// SIGKILL to the whole group, then reap: for QEMU, a power cut.
    fn kill(&mut self) {
        let pgid = self.0.id() as libc::pid_t;
        // SAFETY: plain syscall on our own child's process group.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------- the image

static IMAGE: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The image under test, built once per test process.
fn image() -> PathBuf {
    IMAGE
        .get_or_init(build_image)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn build_image() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("CAIRN_IMAGE") {
        return Ok(PathBuf::from(p));
    }
    let version = env!("CARGO_PKG_VERSION");
    let out = repo().join("out");
    let img = out.join(format!("cairn-{version}-arm64.img"));
    let t = Instant::now();
    let mut build = Group::spawn(
        Command::new(repo().join("image/build"))
            .env("COMPRESS", "0")
            .env("OUT_DIR", &out),
    );
    let status = loop {
        if let Some(s) = build.exited() {
            break s;
        }
        if t.elapsed() > BUILD_LIMIT {
            build.kill();
            return Err(format!("image/build took more than {BUILD_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if !status.success() {
        return Err(format!("image/build failed: {status}"));
    }
    eprintln!(
        "image/build: {:.0} s, {}",
        t.elapsed().as_secs_f64(),
        img.display()
    );
    // The build leaves nothing mounted.
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let out_str = out.to_str().unwrap();
    if let Some(m) = mounts.lines().find(|l| l.contains(out_str)) {
        return Err(format!("image/build left a mount behind: {m}"));
    }
    // The appliance reaches .onion targets with the embedded Tor client.
    let manifest = out.join(format!("cairn-{version}-arm64.manifest.txt"));
    let text = fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let line = text
        .lines()
        .find(|l| l.starts_with("cairn: "))
        .unwrap_or("");
    if !line.contains("embedded arti") {
        return Err(format!(
            "the image's cairn was built without the tor feature: {line:?}"
        ));
    }
    Ok(img)
}

#[derive(Debug, Clone, Copy)]
struct Part {
    start: u64,
    size: u64,
    kind: u32,
    bootable: bool,
}

/// The MBR partitions, from `sfdisk --json`.
fn partitions(img: &Path) -> Vec<Part> {
    let json: serde_json::Value =
        serde_json::from_str(&stdout(Command::new("sfdisk").arg("--json").arg(img))).unwrap();
    let table = &json["partitiontable"];
    assert_eq!(table["label"], "dos", "not an MBR disk: {json}");
    let sector = table["sectorsize"].as_u64().unwrap_or(512);
    table["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Part {
            start: p["start"].as_u64().unwrap() * sector,
            size: p["size"].as_u64().unwrap() * sector,
            kind: u32::from_str_radix(p["type"].as_str().unwrap(), 16).unwrap(),
            bootable: p["bootable"].as_bool().unwrap_or(false),
        })
        .collect()
}

/// A writable test copy of the card, `CARD_BYTES` long.
fn card_copy(dir: &Path) -> PathBuf {
    let card = dir.join("card.img");
    run(Command::new("cp")
        .arg("--sparse=always")
        .arg(image())
        .arg(&card));
    let len = fs::metadata(&card).unwrap().len();
    assert!(
        len < CARD_BYTES,
        "image ({len} bytes) is not smaller than the test card"
    );
    File::options()
        .write(true)
        .open(&card)
        .unwrap()
        .set_len(CARD_BYTES)
        .unwrap();
    card
}

/// The FAT partition as an mtools image specification (`file@@offset`).
fn fat(card: &Path, boot: Part) -> String {
    format!("{}@@{}", card.display(), boot.start)
}

fn mtools(tool: &str) -> Command {
    let mut c = Command::new(tool);
    c.env("MTOOLS_SKIP_CHECK", "1");
    c
}

fn fat_names(spec: &str) -> Vec<String> {
    stdout(mtools("mdir").args(["-b", "-i", spec, "::/"]))
        .lines()
        .map(|l| {
            l.trim_start_matches("::/")
                .trim_end_matches('/')
                .to_lowercase()
        })
        .collect()
}

fn fat_read(spec: &str, name: &str) -> String {
    stdout(mtools("mtype").args(["-i", spec, &format!("::/{name}")]))
}

fn fat_get(spec: &str, name: &str, dest: &Path) {
    run(mtools("mcopy")
        .args(["-n", "-i", spec, &format!("::/{name}")])
        .arg(dest));
}

fn fat_put(spec: &str, src: &Path, name: &str) {
    run(mtools("mcopy")
        .args(["-o", "-i", spec])
        .arg(src)
        .arg(format!("::/{name}")));
}

/// SHA-1 of a partition's bytes.
fn digest(card: &Path, p: Part) -> String {
    use sha1::{Digest, Sha1};
    let mut f = File::open(card).unwrap();
    f.seek(SeekFrom::Start(p.start)).unwrap();
    let mut h = Sha1::new();
    let mut rest = p.size;
    let mut buf = vec![0u8; 1 << 20];
    while rest > 0 {
        let n = rest.min(buf.len() as u64) as usize;
        f.read_exact(&mut buf[..n]).unwrap();
        h.update(&buf[..n]);
        rest -= n as u64;
    }
    hex::encode(h.finalize())
}

/// Copies a partition out into its own file (for e2fsck and debugfs).
fn extract(card: &Path, p: Part, dest: &Path) {
    let mut f = File::open(card).unwrap();
    f.seek(SeekFrom::Start(p.start)).unwrap();
    let mut out = File::create(dest).unwrap();
    let copied = std::io::copy(&mut f.take(p.size), &mut out).unwrap();
    assert_eq!(copied, p.size);
}

/// What the firmware would load, per config.txt and cmdline.txt on FAT.
struct BootFiles {
    kernel: PathBuf,
    initrd: PathBuf,
    cmdline: String,
}

fn boot_files(spec: &str, dir: &Path) -> BootFiles {
    let config = fat_read(spec, "config.txt");
    let value = |key: &str, sep: char| {
        config
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(sep))
            .unwrap_or_else(|| panic!("config.txt names no {key}:\n{config}"))
            .trim()
            .to_string()
    };
    let (kernel, initrd) = (dir.join("kernel"), dir.join("initrd"));
    fat_get(spec, &value("kernel", '='), &kernel);
    fat_get(spec, &value("initramfs", ' '), &initrd);
    let cmdline = fat_read(spec, "cmdline.txt").trim().to_string();
    assert!(
        cmdline
            .split_whitespace()
            .rev()
            .find(|w| *w == "ro" || *w == "rw")
            == Some("ro"),
        "the kernel command line does not mount the root read-only: {cmdline}"
    );
    BootFiles {
        kernel,
        initrd,
        cmdline,
    }
}

// ---------------------------------------------------------------- the guest

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.0 GET on loopback; `None` until the guest answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http(port, "GET", path, "", "")
}

/// One HTTP/1.0 exchange (a JSON body, a bearer token if not empty).
fn http(port: u16, method: &str, path: &str, body: &str, token: &str) -> Option<(u16, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    s.write_all(
        format!(
            "{method} {path} HTTP/1.0\r\nHost: cairn\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

struct Guest {
    qemu: Group,
    port: u16,
    serial: PathBuf,
    started: Instant,
}

impl Guest {
    fn boot(machine_args: &[String], dir: &Path) -> Guest {
        let port = free_port();
        let serial = dir.join("serial.log");
        let mut cmd = Command::new(QEMU);
        cmd.args(["-display", "none", "-monitor", "none", "-no-reboot"])
            .args(machine_args)
            .args([
                "-netdev",
                &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:8080"),
            ])
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("qemu.out")).unwrap())
            .stderr(File::create(dir.join("qemu.err")).unwrap());
        eprintln!("booting: {cmd:?}");
        Guest {
            qemu: Group::spawn(&mut cmd),
            port,
            serial,
            started: Instant::now(),
        }
    }

    fn log_tail(&self) -> String {
        let mut s = String::new();
        for f in [&self.serial, &self.serial.with_file_name("qemu.err")] {
            let text = fs::read_to_string(f).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(40);
            s += &format!("--- {}\n{}\n", f.display(), lines[from..].join("\n"));
        }
        s
    }

    /// Polls `/health` until it answers 200; returns its JSON and the seconds
    /// from QEMU's start.
    fn wait_for_health(&mut self, limit: Duration) -> (serde_json::Value, f64) {
        loop {
            if let Some(status) = self.qemu.exited() {
                panic!(
                    "QEMU exited ({status}) before cairn answered\n{}",
                    self.log_tail()
                );
            }
            if let Some((200, body)) = http_get(self.port, "/health") {
                let secs = self.started.elapsed().as_secs_f64();
                let json = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("/health is not JSON ({e}): {body}"));
                return (json, secs);
            }
            if self.started.elapsed() > limit {
                panic!(
                    "no answer from the guest within {limit:?}\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path).unwrap_or_else(|| panic!("no answer to GET {path}"))
    }

    /// Waits until the dashboard reports job `id` finished; returns it.
    fn wait_for_job(&self, session: &str, id: u64, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let (code, text) = http(self.port, "GET", "/api/status", "", session).expect("status");
            assert_eq!(code, 200, "{text}");
            let st: serde_json::Value = serde_json::from_str(&text).unwrap();
            let finished = st["finished"].as_array().cloned().unwrap_or_default();
            if let Some(j) = finished.iter().find(|j| j["job"]["id"] == id) {
                return j.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no backup finished within {limit:?}: {st}\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn power_cut(mut self) {
        self.qemu.kill();
    }
}

fn qemu_supports(what: &[&str], name: &str) -> bool {
    Command::new(QEMU)
        .args(what)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .any(|w| w.trim_matches(|c| c == '"' || c == ',') == name)
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------- host-side checks

fn e2fsck(fs_image: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("e2fsck")
        .args(args)
        .arg(fs_image)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn debugfs(fs_image: &Path, request: &str) -> String {
    let out = run(Command::new("debugfs").arg("-R").arg(request).arg(fs_image));
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Asserts that `path` in the ext4 image is a regular file owned by root with
/// mode 0600 and exactly `content`.
fn assert_root_only_file(fs_image: &Path, path: &str, content: &[u8], scratch: &Path) {
    assert_eq!(
        root_only_file(fs_image, path, scratch),
        content,
        "{path} differs"
    );
}

/// The content of `path`, a regular file of root's, mode 0600.
fn root_only_file(fs_image: &Path, path: &str, scratch: &Path) -> Vec<u8> {
    let stat = debugfs(fs_image, &format!("stat {path}"));
    assert!(stat.contains("Type: regular"), "{path}: {stat}");
    assert!(stat.contains("Mode:  0600"), "{path} is not 0600: {stat}");
    assert!(
        stat.contains("User:     0") && stat.contains("Group:     0"),
        "{path} is not root's: {stat}"
    );
    let dumped = scratch.join("dumped");
    let _ = fs::remove_file(&dumped);
    debugfs(fs_image, &format!("dump {path} {}", dumped.display()));
    fs::read(&dumped).unwrap()
}

/// Putting a folder back where it was, inside the service's sandbox (the
/// data partition must be writable to it): a restore writes libc6's docs to
/// /data/restore, a second plan added through Settings backs that folder up,
/// and the folder is put back over itself, the version there kept beside it.
fn put_back_inside_the_sandbox(guest: &Guest, session: &str, guest_url: &str) {
    let job = |body: &str| {
        let (status, answer) = http(guest.port, "POST", "/api/jobs", body, session).unwrap();
        assert_eq!(status, 202, "{body}: {answer}");
        let id = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["id"]
            .as_u64()
            .unwrap();
        let run = guest.wait_for_job(session, id, GUEST_BACKUP_LIMIT);
        assert_eq!(run["outcome"], "ok", "{body}: {run}\n{}", guest.log_tail());
        run
    };
    job(r#"{"kind":"restore","restore":{"path":"libc6","into":"docs"}}"#);
    let target = guest_url.replace("::backup/pi", "::backup/pi-restored");
    let plan =
        format!(r#"{{"plan":"restored","new":true,"source":"/data/restore","target":"{target}"}}"#);
    let (status, answer) = http(guest.port, "POST", "/api/settings/plan", &plan, session).unwrap();
    assert_eq!(status, 200, "{answer}");
    job(r#"{"kind":"backup","plan":"restored"}"#);
    let run = job(
        r#"{"kind":"restore","plan":"restored","restore":{"path":"docs","replace":"/data/restore/docs"}}"#,
    );
    let said = run["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("kept as /data/restore/docs.before-restore-"),
        "{run}"
    );
}

fn layout(card: &Path) -> (Part, Part, Part) {
    let parts = partitions(card);
    assert_eq!(
        parts.len(),
        3,
        "expected boot, root and data partitions: {parts:?}"
    );
    let (boot, root, data) = (parts[0], parts[1], parts[2]);
    assert_eq!(boot.kind, 0x0c, "boot partition is not FAT32 (LBA)");
    assert!(boot.bootable, "boot partition is not marked bootable");
    assert_eq!((root.kind, data.kind), (0x83, 0x83));
    (boot, root, data)
}

// ---------------------------------------------------------------- the tests

/// A scratch directory under target/, removed afterwards (even on failure)
/// unless CAIRN_BOOT_TEST_KEEP=1 asks to keep it for a post-mortem.
fn scratch_dir() -> tempfile::TempDir {
    let keep = std::env::var_os("CAIRN_BOOT_TEST_KEEP").is_some_and(|v| v == "1");
    let dir = tempfile::Builder::new()
        .prefix("boot-test-")
        .disable_cleanup(keep)
        .tempdir_in(repo().join("target"))
        .unwrap();
    if keep {
        eprintln!("keeping {}", dir.path().display());
    }
    dir
}

/// `-M virt`: the fast path. The card is configured through its FAT partition.
#[test]
#[ignore = "builds and boots the SD image (root, scripts/setup-image, minutes): just boot-test"]
fn virt_boots_configured_from_the_boot_partition() {
    let tmp = scratch_dir();
    let dir = tmp.path();
    let card = card_copy(dir);
    let (boot, root, data) = layout(&card);
    let image_data_size = data.size;
    let spec = fat(&card, boot);
    let root_before = digest(&card, root);

    // The target: an rsync daemon on the host's loopback, which QEMU's user
    // network shows the guest as 10.0.2.2.
    let rsyncd = common::servers::Rsyncd::start();
    let guest_url = rsyncd
        .url_pw("pi")
        .replace(&rsyncd.addr, &format!("10.0.2.2:{}", rsyncd.port));

    // What a user drops onto the FAT partition (with Windows line ends).
    let token = format!("test-{}", std::process::id());
    let toml = format!(
        "# cairn.toml written by the boot test\nname = \"{token}\"\n\
         source = \"{GUEST_SOURCE}\"\ntarget = \"{guest_url}\"\n\
         [encryption]\npassphrase_file = \"/data/cairn/secrets/passphrase\"\n"
    );
    let secret = format!("passphrase-{token}\n");
    let key = format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{token} test@host\r\n");
    fs::write(dir.join("cairn.toml"), &toml).unwrap();
    fs::write(dir.join("passphrase"), &secret).unwrap();
    fs::write(dir.join("authorized_keys"), &key).unwrap();
    let claim = format!("claim-{token}");
    fs::write(dir.join("cairn-claim.txt"), format!("{claim}\r\n")).unwrap();
    fat_put(&spec, &dir.join("cairn-claim.txt"), "cairn-claim.txt");
    fat_put(&spec, &dir.join("cairn.toml"), "cairn.toml");
    fat_put(&spec, &dir.join("authorized_keys"), "authorized_keys");
    run(mtools("mmd").args(["-i", &spec, "::/cairn-secrets"]));
    fat_put(&spec, &dir.join("passphrase"), "cairn-secrets/passphrase");

    let files = boot_files(&spec, dir);
    let args: Vec<String> = [
        "-M",
        "virt",
        "-cpu",
        "cortex-a53",
        "-smp",
        "2",
        "-m",
        "1024",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "-kernel".into(),
        files.kernel.display().to_string(),
        "-initrd".into(),
        files.initrd.display().to_string(),
        // the card's own command line; the console moves to virt's PL011
        "-append".into(),
        format!("{} console=ttyAMA0", files.cmdline),
        "-drive".into(),
        format!("file={},if=none,format=raw,id=card", card.display()),
        "-device".into(),
        "virtio-blk-pci,drive=card".into(),
        "-device".into(),
        "virtio-net-pci,netdev=n0,romfile=".into(),
        "-serial".into(),
        format!("file:{}", dir.join("serial.log").display()),
    ])
    .collect();
    let mut guest = Guest::boot(&args, dir);
    let (health, secs) = guest.wait_for_health(VIRT_BOOT_LIMIT);
    println!("boot-to-answer (virt): {secs:.1} s");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"), "{health}");
    assert_eq!(
        health["configured"],
        true,
        "cairn.toml was not moved into place: {health}\n{}",
        guest.log_tail()
    );
    assert_eq!(health["config_ok"], true, "{health}");
    // No Pi under QEMU: `--board auto` runs the simulated board.
    assert_eq!(health["board"], "sim", "{health}");
    // The dashboard is claimed with the code from the boot partition (CR LF
    // and all), then answers the owner's session.
    let body = format!(r#"{{"password":"owner password 1","token":"{claim}"}}"#);
    let (status, answer) = http(guest.port, "POST", "/setup/claim", &body, "").expect("claim");
    assert_eq!(status, 200, "{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let session = v["token"].as_str().unwrap();
    assert_eq!(
        http(guest.port, "GET", "/api/status", "", "").unwrap().0,
        401
    );
    let (status, st) = http(guest.port, "GET", "/api/status", "", session).unwrap();
    assert_eq!(status, 200, "{st}");
    let st: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(st["plans"][0]["id"], "main", "{st}");
    // The owner backs up now, from the dashboard, to the host's rsync daemon.
    let (status, answer) = http(
        guest.port,
        "POST",
        "/api/jobs",
        r#"{"kind":"backup"}"#,
        session,
    )
    .unwrap();
    assert_eq!(status, 202, "{answer}");
    let id = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["id"]
        .as_u64()
        .unwrap();
    let run = guest.wait_for_job(session, id, GUEST_BACKUP_LIMIT);
    assert_eq!(run["outcome"], "ok", "{run}\n{}", guest.log_tail());
    put_back_inside_the_sandbox(&guest, session, &guest_url);
    // cairn answers only after cairn-firstboot and cairn-grow-data ran (units
    // order it so) and both flush what they write; now cut the power.
    guest.power_cut();

    // The root partition was never written, and holds no password or key.
    assert_eq!(
        digest(&card, root),
        root_before,
        "the root partition changed"
    );
    let root_fs = dir.join("root.ext4");
    extract(&card, root, &root_fs);
    restored_on_the_host_by_duplicity(&root_fs, &rsyncd, &format!("passphrase-{token}"), dir);
    let shadow = debugfs(&root_fs, "cat /etc/shadow");
    let unlocked: Vec<&str> = shadow
        .lines()
        .filter(|l| l.contains(':'))
        .filter(|l| {
            !l.split(':')
                .nth(1)
                .is_some_and(|p| p.starts_with(['!', '*']))
        })
        .collect();
    assert!(
        unlocked.is_empty(),
        "accounts that are not locked: {unlocked:?}"
    );
    // systemd starts the daemon as Type=notify with a watchdog.
    let unit = debugfs(&root_fs, "cat /etc/systemd/system/cairn.service");
    for line in ["Type=notify", "WatchdogSec=", "--board auto"] {
        assert!(unit.contains(line), "cairn.service lacks {line}: {unit}");
    }
    let ssh = debugfs(&root_fs, "ls /etc/ssh");
    assert!(
        !ssh.contains("ssh_host_"),
        "SSH host keys in the image: {ssh}"
    );
    fs::remove_file(&root_fs).unwrap();

    // The FAT partition no longer holds the configuration.
    let names = fat_names(&spec);
    for gone in [
        "cairn.toml",
        "authorized_keys",
        "cairn-secrets",
        "cairn-claim.txt",
    ] {
        assert!(
            !names.iter().any(|n| n == gone),
            "{gone} still on FAT: {names:?}"
        );
    }
    assert!(names.iter().any(|n| n == "config.txt"), "{names:?}");
    let boot_fs = dir.join("boot.vfat");
    extract(&card, boot, &boot_fs);
    let fsck = Command::new("fsck.vfat")
        .arg("-n")
        .arg(&boot_fs)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "FAT partition damaged: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );

    // The data partition grew to the end of the card, file system included.
    let (_, _, data) = layout(&card);
    assert!(
        data.size > image_data_size,
        "the data partition did not grow"
    );
    assert!(
        CARD_BYTES - (data.start + data.size) < 4 << 20,
        "the data partition does not reach the end of the card: {data:?}"
    );
    let data_fs = dir.join("data.ext4");
    extract(&card, data, &data_fs);
    // Replay the journal (the power was cut), then it must be clean.
    let (code, text) = e2fsck(&data_fs, &["-fy"]);
    assert!(code == 0 || code == 1, "e2fsck -fy: {code}\n{text}");
    let (code, text) = e2fsck(&data_fs, &["-fn"]);
    assert_eq!(
        code, 0,
        "data file system not clean after recovery:\n{text}"
    );
    let sb = stdout(Command::new("dumpe2fs").arg("-h").arg(&data_fs));
    let field = |name: &str| -> u64 {
        sb.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in dumpe2fs output"))
    };
    let fs_bytes = field("Block count:") * field("Block size:");
    assert!(
        data.size - fs_bytes < 4 << 20,
        "the data file system ({fs_bytes} bytes) was not grown to its partition ({} bytes)",
        data.size
    );

    // The configuration arrived, root-only; CR LF became LF where daemons parse lines.
    // (Settings added a plan after it, comments and all kept.)
    let config = root_only_file(&data_fs, "/cairn/cairn.toml", dir);
    let config = String::from_utf8(config).unwrap();
    assert!(
        config.starts_with(&toml) && config.contains("id = \"restored\""),
        "{config}"
    );
    // The folder put back, and the version it replaced beside it.
    let restored = debugfs(&data_fs, "ls -p /restore");
    assert!(
        restored.contains("/docs/") && restored.contains("/docs.before-restore-"),
        "{restored}"
    );
    assert_root_only_file(
        &data_fs,
        "/cairn/secrets/passphrase",
        secret.as_bytes(),
        dir,
    );
    assert_root_only_file(
        &data_fs,
        "/cairn/ssh/authorized_keys",
        key.replace('\r', "").as_bytes(),
        dir,
    );
    let ls = debugfs(&data_fs, "ls -l /cairn");
    assert!(ls.contains("40700"), "/data/cairn is not 0700: {ls}");
    // The claim used the token (gone) and left the owner's password hash.
    assert!(!ls.contains("claim-token"), "{ls}");
    let admin = debugfs(&data_fs, "cat /cairn/admin");
    assert!(admin.contains("$argon2id$"), "{admin}");
    // SSH was turned on by the key: its host key was made on /data.
    let ls = debugfs(&data_fs, "ls -l /cairn/ssh");
    assert!(ls.contains("ssh_host_ed25519_key"), "no SSH host key: {ls}");
    // /var is an overlay whose changes went to /data.
    let ls = debugfs(&data_fs, "ls /var/upper");
    assert!(
        ls.contains("lib"),
        "nothing written through the /var overlay: {ls}"
    );
}

/// Stock duplicity 3.x on the host restores the guest's backup from the rsync
/// daemon; the result equals the source folder as the root partition holds it.
fn restored_on_the_host_by_duplicity(
    root_fs: &Path,
    rsyncd: &common::servers::Rsyncd,
    passphrase: &str,
    dir: &Path,
) {
    let expected = dir.join("expected");
    fs::create_dir(&expected).unwrap();
    debugfs(
        root_fs,
        &format!("rdump {GUEST_SOURCE} {}", expected.display()),
    );
    let name = Path::new(GUEST_SOURCE).file_name().unwrap();
    let restored = dir.join("restored");
    let out = Command::new(common::dup3())
        .args(["restore", "--archive-dir"])
        .arg(dir.join("dup-cache"))
        .arg(rsyncd.url("pi"))
        .arg(&restored)
        .env("PASSPHRASE", passphrase)
        .env("FTP_PASSWORD", common::servers::RSYNC_PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duplicity restore: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let want = common::capture(&expected.join(name));
    assert!(want.len() > 100, "{GUEST_SOURCE} is nearly empty: {want:?}");
    common::assert_same_tree(
        &want,
        &common::capture(&restored),
        "restored by duplicity 3",
    );
}

/// `-M raspi3b`: the Pi 3's SoC, SD host and USB network, with the card's own
/// device tree and command line. Nothing on FAT: the appliance comes up
/// unconfigured and says so.
#[test]
#[ignore = "builds and boots the SD image (root, scripts/setup-image, minutes): just boot-test"]
fn raspi3b_boots_unconfigured() {
    if !qemu_supports(&["-machine", "help"], "raspi3b")
        || !qemu_supports(&["-device", "help"], "usb-net")
    {
        println!("SKIPPED: this {QEMU} has no raspi3b machine or no usb-net device");
        return;
    }
    let tmp = scratch_dir();
    let dir = tmp.path();
    let card = card_copy(dir);
    let (boot, root, _) = layout(&card);
    let spec = fat(&card, boot);
    let names_before = fat_names(&spec);
    let root_before = digest(&card, root);
    let files = boot_files(&spec, dir);
    let dtb = dir.join("board.dtb");
    fat_get(&spec, "bcm2837-rpi-3-b.dtb", &dtb);
    let d = |p: &Path| p.display().to_string();
    let args: Vec<String> = vec![
        "-M".into(),
        "raspi3b".into(),
        "-kernel".into(),
        d(&files.kernel),
        "-initrd".into(),
        d(&files.initrd),
        "-dtb".into(),
        d(&dtb),
        "-append".into(),
        files.cmdline.clone(),
        "-drive".into(),
        format!("file={},if=sd,format=raw", card.display()),
        "-device".into(),
        "usb-net,netdev=n0".into(),
        // UART0 (PL011), then the mini UART: ttyS1, the card's console
        "-serial".into(),
        format!("file:{}", dir.join("uart0.log").display()),
        "-serial".into(),
        format!("file:{}", dir.join("serial.log").display()),
    ];
    let mut guest = Guest::boot(&args, dir);
    let (health, secs) = guest.wait_for_health(RASPI_BOOT_LIMIT);
    println!("boot-to-answer (raspi3b): {secs:.1} s");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["configured"], false, "{health}");
    // QEMU's raspi3b looks like a Pi but has no GPIO to open: the daemon
    // says so and runs on the simulated board.
    assert_eq!(health["board"], "sim", "{health}");
    let (status, page) = guest.get("/setup");
    assert_eq!(status, 200);
    assert!(page.contains("Claim this appliance"), "{page}");
    guest.power_cut();
    assert_eq!(
        digest(&card, root),
        root_before,
        "the root partition changed"
    );
    assert_eq!(fat_names(&spec), names_before, "the FAT partition changed");
    // Without an authorized_keys file SSH never started: no host key was made.
    let (_, _, data) = layout(&card);
    let data_fs = dir.join("data.ext4");
    extract(&card, data, &data_fs);
    let (code, text) = e2fsck(&data_fs, &["-fy"]);
    assert!(code == 0 || code == 1, "e2fsck -fy: {code}\n{text}");
    let ls = debugfs(&data_fs, "ls /cairn");
    assert!(!ls.contains("ssh"), "SSH started without a key: {ls}");
    assert!(!ls.contains("cairn.toml"), "{ls}");
}

/// `cross/Cross.toml` (for users of the `cross` tool) and `.cargo/config.toml`
/// (the container-free path CI uses) name the same targets, each of which has a
/// linker and a test runner in the latter.
#[test]
fn cross_configurations_agree() {
    fn targets(path: &str) -> Vec<String> {
        let text = fs::read_to_string(repo().join(path)).unwrap();
        let mut t: Vec<String> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("[target.")?.strip_suffix(']'))
            .map(str::to_string)
            .collect();
        t.sort();
        t
    }
    let cargo = targets(".cargo/config.toml");
    assert_eq!(
        cargo,
        ["aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf"]
    );
    assert_eq!(targets("cross/Cross.toml"), cargo);
    let config = fs::read_to_string(repo().join(".cargo/config.toml")).unwrap();
    for section in config.split("[target.").skip(1) {
        assert!(section.contains("\nlinker = "), "no linker: {section}");
        assert!(section.contains("\nrunner = "), "no runner: {section}");
    }
}
