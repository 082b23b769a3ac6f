//! rsync:// targets against a real `rsync --daemon` (module, user, secrets
//! file) and a real sshd, both started here on loopback: the backend's
//! operations, end-to-end backups and restores through `cairn`, stock
//! duplicity restoring what Cairn uploaded, the seed's cron lines, and
//! faults (wrong password, missing module, the daemon killed mid-upload,
//! a full disk).

mod common;

use cairn::backend::{self, BackendError, BackendOptions};
use common::servers::*;
use common::{args, dup08, ok, random_bytes, run};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

fn fast() -> BackendOptions {
    BackendOptions {
        num_retries: 3,
        retry_delay: Duration::from_millis(300),
        timeout: Duration::from_secs(15),
        ..BackendOptions::default()
    }
}

fn pw_env() -> Vec<(&'static str, &'static str)> {
    vec![("FTP_PASSWORD", RSYNC_PASSWORD)]
}

#[test]
fn daemon_backend_operations() {
    let d = Rsyncd::start();
    let b = backend::open(&d.url_pw("deep/er/target"), &fast()).unwrap();
    assert!(!b.describe().contains(RSYNC_PASSWORD));
    exercise_backend(b.as_ref());
    assert!(
        d.module_dir.join("deep/er/target").is_dir(),
        "missing directories under the module are created"
    );
}

#[test]
fn ssh_backend_operations() {
    let s = Sshd::start();
    let dir = tmpdir("rsync-ssh");
    let mut o = fast();
    o.ssh_options = s.ssh_options();
    let url = format!(
        "rsync://{}@127.0.0.1:{}/{}/target",
        s.user,
        s.port,
        dir.path().display()
    );
    let b = backend::open(&url, &o).unwrap();
    exercise_backend(b.as_ref());
    assert!(dir.path().join("target").is_dir());

    // An unknown host key is refused: ssh runs with BatchMode and the
    // test's known_hosts only.
    let other = tmpdir("kh");
    fs::write(other.path().join("known_hosts"), "").unwrap();
    let mut o2 = o.clone();
    for opt in o2.ssh_options.iter_mut() {
        if opt.starts_with("-oUserKnownHostsFile=") {
            *opt = format!(
                "-oUserKnownHostsFile={}/known_hosts",
                other.path().display()
            );
        }
    }
    let e = backend::open(&url, &o2).unwrap().list().unwrap_err();
    assert!(matches!(e, BackendError::HostKey { .. }), "{e}");
}

/// A `rsync` first in PATH that records its arguments and whether it got
/// RSYNC_PASSWORD, then runs the real one.
fn logging_rsync(dir: &Path) -> String {
    let log = dir.join("argv.log");
    let script = dir.join("rsync");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"ARGV $*\" \"HAS_PASSWORD ${{RSYNC_PASSWORD:+yes}}\" >> {}\nexec /usr/bin/rsync \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap())
}

/// `max_upload_rate` reaches rsync as `--bwlimit` and holds an upload to
/// it: 1 MiB at 256 KiB/s cannot take less than about 4 s (only a lower
/// bound is checked; a loaded machine is slower, never faster).
#[test]
fn an_upload_limit_slows_the_upload_to_its_rate() {
    let d = Rsyncd::start();
    let opts = BackendOptions {
        max_upload_rate: Some(256 << 10),
        ..fast()
    };
    let b = backend::open(&d.url_pw("limited"), &opts).unwrap();
    let data = random_bytes(1 << 20, 5);
    let started = Instant::now();
    let mut u = b
        .create("duplicity-full.20261208T000000Z.vol1.difftar.gpg")
        .unwrap();
    u.write_all(&data).unwrap();
    u.commit().unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2500),
        "1 MiB at 256 KiB/s in {took:?}"
    );
    let stored = d
        .module_dir
        .join("limited/duplicity-full.20261208T000000Z.vol1.difftar.gpg");
    assert_eq!(fs::read(stored).unwrap(), data);

    // From the command line (and the profile's [remote] key of the same name).
    let bin = tmpdir("bin");
    let mut env = pw_env();
    let path = logging_rsync(bin.path());
    env.push(("PATH", &path));
    let src = tmpdir("src");
    fs::write(src.path().join("f"), b"small").unwrap();
    let cache = tmpdir("cache");
    let url = d.url("cli-limited");
    let a = [
        "backup",
        "--no-encryption",
        "--max-upload-rate",
        "2M",
        "--archive-dir",
        cache.path().to_str().unwrap(),
        src.path().to_str().unwrap(),
        &url,
    ];
    ok(&common::cairn(), &args(&a), &env);
    let log = fs::read_to_string(bin.path().join("argv.log")).unwrap();
    assert!(log.contains("--bwlimit=2048"), "{log}");
    let o = run(
        &common::cairn(),
        &args(&[
            "backup",
            "--max-upload-rate",
            "2 MB/s",
            src.path().to_str().unwrap(),
            &url,
        ]),
        &env,
    );
    assert!(
        !o.status.success() && text(&o).contains("2 MB/s"),
        "{}",
        text(&o)
    );
    // Several uploads at once would add up to more than the rate.
    let s = src.path().to_str().unwrap();
    let a = [
        "backup",
        "--max-upload-rate",
        "2M",
        "--concurrency",
        "2",
        s,
        &url,
    ];
    let o = run(&common::cairn(), &args(&a), &env);
    assert!(
        !o.status.success() && text(&o).contains("concurrency 2"),
        "{}",
        text(&o)
    );
    let o = run(
        &common::cairn(),
        &args(&["backup", "--no-encryption", "--concurrency", "9", s, &url]),
        &env,
    );
    assert!(
        !o.status.success() && text(&o).contains("at most 8"),
        "{}",
        text(&o)
    );
}

#[test]
fn cli_backup_and_restore_through_the_daemon_keep_the_password_out_of_argv() {
    let d = Rsyncd::start();
    let bin = tmpdir("bin");
    let path = logging_rsync(bin.path());
    let url = d.url("host1");
    let mut env = pw_env();
    env.push(("PATH", &path));
    backup_twice_and_restore(&url, &env);
    let log = fs::read_to_string(bin.path().join("argv.log")).unwrap();
    assert!(log.contains("ARGV"), "the real rsync binary ran");
    assert!(
        !log.contains(RSYNC_PASSWORD),
        "the password never reaches argv"
    );
    assert!(
        log.contains("HAS_PASSWORD yes"),
        "it goes through RSYNC_PASSWORD"
    );
    assert!(log.contains("--partial-dir=.cairn-partial"));
    let o = run(
        &common::cairn(),
        &args(&[
            "status",
            "--archive-dir",
            bin.path().to_str().unwrap(),
            &url,
        ]),
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Full"), "{}", text(&o));
    // Nothing hidden or partial was left in the module.
    let names: Vec<String> = fs::read_dir(d.module_dir.join("host1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("duplicity-")),
        "{names:?}"
    );
    assert_all_complete(&d.module_dir.join("host1"), PASSPHRASE);
}

#[test]
fn stock_duplicity_restores_what_cairn_uploaded() {
    let d = Rsyncd::start();
    let work = tmpdir("dup08");
    let src = work.path().join("src");
    common::edge::build(&src, 1 << 20);
    let url = d.url("for-duplicity");
    let o = cairn_backup(&url, &src, &work.path().join("cache"), 1, &pw_env());
    assert!(o.status.success(), "{}", text(&o));
    let dest = work.path().join("restored");
    ok(
        &dup08(),
        &args(&[
            "restore",
            "--archive-dir",
            work.path().join("dupcache").to_str().unwrap(),
            &url,
            dest.to_str().unwrap(),
        ]),
        &[("PASSPHRASE", PASSPHRASE), ("FTP_PASSWORD", RSYNC_PASSWORD)],
    );
    common::assert_same_tree(
        &common::capture(&src),
        &common::capture(&dest),
        "duplicity 0.8",
    );
}

/// The seed's three cron lines, verbatim apart from the host, through the
/// duplicity entry point: backup with --full-if-older-than (twice: full,
/// then incremental), pruning with remove-all-but-n-full 12 --force, and
/// restore. The daemon listens on port 873 of its own loopback address, so
/// the URLs carry no port, as in the seed.
/// Afterwards stock duplicity 0.8 lists the chain Cairn wrote and pruned.
#[test]
fn seed_cron_lines_run_verbatim() {
    let ip = format!("127.0.{}.{}", std::process::id() % 250 + 1, 7);
    let d = Rsyncd::start_on(&ip, 873, None);
    let work = tmpdir("cron");
    let src = work.path().join("src");
    common::edge::build(&src, 1 << 20);
    let url = format!("rsync://{RSYNC_USER}@{ip}::backups/");
    let home = work.path().join("home");
    fs::create_dir(&home).unwrap();
    let env = [
        ("PASSPHRASE", PASSPHRASE),
        ("FTP_PASSWORD", RSYNC_PASSWORD),
        ("HOME", home.to_str().unwrap()),
    ];
    let cairn = common::cairn_as_duplicity();
    let line1 = format!(
        "--full-if-older-than 2M --gpg-options=--cipher-algo=AES256 --rsync-options=--partial {} {url}",
        src.display()
    );
    let line2 = format!("remove-all-but-n-full 12 --force {url}");
    let dest = work.path().join("restored");
    let line3 = format!("restore {url} {}", dest.display());
    for (prog, line) in [
        (&cairn, &line1),
        (&cairn, &line1),
        (&cairn, &line2),
        (&cairn, &line3),
    ] {
        let a: Vec<&str> = line.split_whitespace().collect();
        let o = run(prog, &args(&a), &env);
        assert!(
            o.status.success(),
            "{} {line}\n{}",
            prog.display(),
            text(&o)
        );
    }
    common::assert_same_tree(
        &common::capture(&src),
        &common::capture(&dest),
        "cron restore",
    );
    let status = run(
        &dup08(),
        &args(&[
            "collection-status",
            "--archive-dir",
            work.path().join("dupcache").to_str().unwrap(),
            &url,
        ]),
        &env,
    );
    assert!(
        status.status.success() && text(&status).contains("Full"),
        "duplicity 0.8 reads the pruned target:\n{}",
        text(&status)
    );
    let names: Vec<String> = fs::read_dir(&d.module_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("duplicity-full.") && n.contains(".manifest")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("duplicity-inc.")),
        "the second run was incremental: {names:?}"
    );
}

#[test]
fn wrong_password_and_missing_module_are_named() {
    let d = Rsyncd::start();
    let work = tmpdir("auth");
    let src = work.path().join("src");
    common::edge::build(&src, 4096);
    let url = d.url("x");
    let wrong = "Wrong-pw-77";
    let o = cairn_backup(
        &url,
        &src,
        &work.path().join("c"),
        1,
        &[("FTP_PASSWORD", wrong)],
    );
    let t = text(&o);
    assert!(!o.status.success());
    assert!(t.contains("authentication failed"), "{t}");
    assert!(
        t.contains(&format!("rsync://{RSYNC_USER}@{}::backup/x", d.addr)),
        "{t}"
    );
    assert!(!t.contains(wrong), "the password is never shown: {t}");
    assert!(
        !t.contains("retrying"),
        "wrong credentials are not retried: {t}"
    );

    let url = format!("rsync://{RSYNC_USER}@{}::nosuchmodule/x", d.addr);
    let o = cairn_backup(&url, &src, &work.path().join("c2"), 1, &pw_env());
    let t = text(&o);
    assert!(!o.status.success());
    assert!(
        t.contains("rsync module \"nosuchmodule\" does not exist"),
        "{t}"
    );

    // No daemon at all: unreachable, named.
    let port = free_port();
    let url = format!("rsync://{RSYNC_USER}:{RSYNC_PASSWORD}@127.0.0.1:{port}::backup/x");
    let mut o = fast();
    o.num_retries = 2;
    let e = backend::open(&url, &o).unwrap().list().unwrap_err();
    assert!(matches!(e, BackendError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

/// Uploads `data` as `name` on a backend whose transfers are slowed with
/// --bwlimit, and runs `during` while the upload is under way.
fn slow_upload(
    url: &str,
    opts: &BackendOptions,
    name: &str,
    data: &[u8],
    during: impl FnOnce() + Send,
) -> Result<(), BackendError> {
    let b = backend::open(url, opts).unwrap();
    let mut u = b.create(name).unwrap();
    u.write_all(data).unwrap();
    std::thread::scope(|s| {
        s.spawn(during);
        u.commit()
    })
}

#[test]
fn daemon_killed_mid_upload_is_retried_and_completes() {
    let mut d = Rsyncd::start();
    let mut o = fast();
    o.retry_delay = Duration::from_secs(1);
    o.rsync_options = vec!["--bwlimit=4000".into()];
    let work = tmpdir("kill");
    random_file(&work.path().join("f"), 6 << 20, 3);
    let data = fs::read(work.path().join("f")).unwrap();
    let name = "duplicity-full.20261125T000000Z.vol1.difftar.gpg";
    let url = d.url_pw("k");
    // Pre-create the target directory so the first rsync call is the upload.
    fs::create_dir(d.module_dir.join("k")).unwrap();
    let module = d.module_dir.join("k");
    let dp = &mut d;
    let t0 = Instant::now();
    let r = slow_upload(&url, &o, name, &data, move || {
        std::thread::sleep(Duration::from_millis(600));
        // Mid-transfer: the final name must not exist yet.
        assert!(!module.join(name).exists());
        dp.kill(); // the daemon and its session, SIGKILL
        assert!(
            !module.join(name).exists(),
            "a killed transfer leaves no final name"
        );
        std::thread::sleep(Duration::from_millis(300));
        dp.restart();
    });
    r.unwrap_or_else(|e| panic!("the retry should complete the upload: {e}"));
    assert!(
        t0.elapsed() > Duration::from_millis(900),
        "the first attempt was cut"
    );
    assert!(fs::read(d.module_dir.join("k").join(name)).unwrap() == data);
    let b = backend::open(&url, &o).unwrap();
    assert_eq!(b.list().unwrap(), vec![name.to_string()]);
    // The listing's sizes (the catalog's "stored" for remote targets).
    assert_eq!(
        b.list_sized().unwrap(),
        vec![(name.to_string(), Some(data.len() as u64))]
    );
}

#[test]
fn partial_option_never_leaves_a_partial_file_under_the_final_name() {
    let mut d = Rsyncd::start();
    let mut o = fast();
    o.num_retries = 1;
    // As the seed's cron line: --partial keeps interrupted files.
    o.rsync_options = vec!["--partial".into(), "--bwlimit=4000".into()];
    let work = tmpdir("partial");
    random_file(&work.path().join("f"), 6 << 20, 5);
    let data = fs::read(work.path().join("f")).unwrap();
    let name = "duplicity-full.20261125T000000Z.vol1.difftar.gpg";
    fs::create_dir(d.module_dir.join("p")).unwrap();
    let url = d.url_pw("p");
    let dp = &mut d;
    let r = slow_upload(&url, &o, name, &data, move || {
        std::thread::sleep(Duration::from_millis(800));
        dp.terminate(); // SIGTERM: rsync saves what it has
    });
    let e = r.expect_err("the daemon went away");
    assert!(e.is_transient(), "{e}");
    let dir = d.module_dir.join("p");
    assert!(
        !dir.join(name).exists(),
        "--partial must not leave the part under the final name"
    );
    d.restart();
    let b = backend::open(&url, &o).unwrap();
    assert!(
        b.list().unwrap().is_empty(),
        "nothing is listed after the failure"
    );
    // The next run succeeds.
    let mut o2 = fast();
    o2.rsync_options = vec!["--partial".into()];
    let b = backend::open(&url, &o2).unwrap();
    let mut u = b.create(name).unwrap();
    u.write_all(&data).unwrap();
    u.commit().unwrap();
    assert!(fs::read(dir.join(name)).unwrap() == data);
}

#[test]
fn full_disk_fails_clearly_and_the_next_run_succeeds() {
    let d = Rsyncd::start_on("127.0.0.1", free_port(), Some(2048));
    let work = tmpdir("full");
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..5 {
        random_file(&src.join(format!("r{i}")), 1 << 20, i);
    }
    let cache = work.path().join("cache");
    let url = d.url("");
    let o = cairn_backup(&url, &src, &cache, 1, &pw_env());
    let t = text(&o);
    assert!(!o.status.success(), "a 2 MiB disk cannot hold 5 MiB: {t}");
    assert!(t.contains("no space left"), "{t}");
    assert!(t.contains(&url.trim_end_matches('/').to_string()), "{t}");
    // Whatever reached the disk is complete.
    assert_all_complete(&d.files_dir(), PASSPHRASE);
    // More room (the admin grew the disk): the next run succeeds.
    resize_tmpfs(d.pid(), &d.module_dir, 64 << 10);
    let o = cairn_backup(&url, &src, &cache, 1, &pw_env());
    assert!(o.status.success(), "{}", text(&o));
    assert_all_complete(&d.files_dir(), PASSPHRASE);
    let dest = work.path().join("restored");
    let o = cairn_restore(&url, &dest, &work.path().join("cache2"), &pw_env());
    assert!(o.status.success(), "{}", text(&o));
    common::assert_same_tree(
        &common::capture(&src),
        &common::capture(&dest),
        "after full disk",
    );
}

#[test]
fn a_silent_daemon_times_out_with_a_clear_message() {
    let (addr, _h) = black_hole();
    let mut o = fast();
    o.timeout = Duration::from_secs(2);
    o.num_retries = 2;
    let url = format!("rsync://{RSYNC_USER}:{RSYNC_PASSWORD}@{addr}::backup/x");
    let t = Instant::now();
    let e = backend::open(&url, &o).unwrap().list().unwrap_err();
    assert!(matches!(e, BackendError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("timed out after 2 s"), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "bounded by --timeout"
    );
}

/// The pid of a child of `parent` named rsync whose command line holds
/// `needle`, if one runs.
fn rsync_child(parent: u32, needle: &str) -> Option<u32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(e.path().join("stat")).ok()?;
        let (comm, rest) = stat.split_once(") ")?;
        let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        let cmdline = fs::read(e.path().join("cmdline")).ok()?;
        let found = comm.ends_with("(rsync")
            && ppid == parent
            && String::from_utf8_lossy(&cmdline).contains(needle);
        found.then_some(pid)
    })
}

/// Whether `pid` is gone (or a zombie waiting for its new parent).
fn gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s.split_once(") ").is_some_and(|(_, r)| r.starts_with('Z')),
    }
}

/// rsync dies with Cairn: an upload cut off by a SIGKILL of `cairn` alone
/// (the OOM killer; a power cut takes everything) does not go on by itself
/// and land an old volume after the next run stored its own.
#[test]
fn a_killed_cairn_takes_its_rsync_upload_with_it() {
    let d = Rsyncd::start();
    let src = tmpdir("src");
    fs::write(src.path().join("f"), random_bytes(2 << 20, 3)).unwrap();
    let cache = tmpdir("cache");
    let mut child = std::process::Command::new(common::cairn())
        .args([
            "backup",
            "--no-encryption",
            "--max-upload-rate",
            "64K",
            "--archive-dir",
        ])
        .arg(cache.path())
        .arg(src.path())
        .arg(d.url("orphan"))
        .env("FTP_PASSWORD", RSYNC_PASSWORD)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let rsync = loop {
        if let Some(p) = rsync_child(child.id(), "cairn-upload-") {
            break p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no upload started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    while !gone(rsync) {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "rsync {rsync} still uploads after cairn was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
