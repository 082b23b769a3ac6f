//! sftp:// targets against a real OpenSSH sshd started here on a loopback
//! port with a private config, a throwaway host key and a throwaway user
//! key: operations, host-key checking (unknown and changed keys refused),
//! refused authentication, end-to-end backups through `cairn`, the server
//! killed mid-upload, and a full disk.

mod common;

use cairn::backend::{self, BackendError, BackendOptions};
use common::servers::*;
use std::fs;
use std::io::Write;
use std::time::Duration;

fn opts_for(s: &Sshd) -> BackendOptions {
    let mut o = BackendOptions {
        num_retries: 3,
        retry_delay: Duration::from_millis(500),
        timeout: Duration::from_secs(15),
        ..BackendOptions::default()
    };
    o.sftp.identity_files = vec![s.user_key.clone()];
    o.sftp.known_hosts = vec![s.known_hosts.clone()];
    o
}

fn url(s: &Sshd, dir: &std::path::Path) -> String {
    format!("sftp://{}@127.0.0.1:{}/{}", s.user, s.port, dir.display())
}

#[test]
fn operations() {
    let s = Sshd::start();
    let dir = tmpdir("sftp-ops");
    let target = dir.path().join("a/b");
    let b = backend::open(&url(&s, &target), &opts_for(&s)).unwrap();
    exercise_backend(b.as_ref());
    assert!(target.is_dir(), "missing directories are created");
    let left: Vec<_> = fs::read_dir(&target).unwrap().collect();
    assert!(left.is_empty(), "no temporary files are left behind");
}

#[test]
fn host_keys_are_checked() {
    let s = Sshd::start();
    let dir = tmpdir("sftp-hk");
    let u = url(&s, dir.path());

    // Unknown: an empty known_hosts.
    let kh = dir.path().join("empty_known_hosts");
    fs::write(&kh, "").unwrap();
    let mut o = opts_for(&s);
    o.sftp.known_hosts = vec![kh];
    let e = backend::open(&u, &o).unwrap().list().unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, BackendError::HostKey { .. }), "{m}");
    assert!(m.contains("unknown host key"), "{m}");
    assert!(m.contains("SHA256:"), "the fingerprint is shown: {m}");
    assert!(
        m.contains(&format!("ssh-keyscan -p {} 127.0.0.1", s.port)),
        "{m}"
    );

    // Changed: another key recorded for this host and port.
    let other = dir.path().join("other_key");
    keygen(&other, "ed25519");
    let pubk = fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut f = pubk.split_whitespace();
    let kh = dir.path().join("changed_known_hosts");
    fs::write(
        &kh,
        format!(
            "[127.0.0.1]:{} {} {}\n",
            s.port,
            f.next().unwrap(),
            f.next().unwrap()
        ),
    )
    .unwrap();
    o.sftp.known_hosts = vec![kh];
    let e = backend::open(&u, &o).unwrap().list().unwrap_err();
    assert!(e.to_string().contains("does NOT match"), "{e}");
    assert!(!e.is_transient(), "a host key problem is not retried");
}

#[test]
fn refused_authentication_is_named() {
    let s = Sshd::start();
    let dir = tmpdir("sftp-auth");
    let stranger = dir.path().join("stranger");
    keygen(&stranger, "ed25519");
    let mut o = opts_for(&s);
    o.sftp.identity_files = vec![stranger.clone()];
    let u = url(&s, dir.path());
    let e = backend::open(&u, &o).unwrap().list().unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, BackendError::Auth { .. }), "{m}");
    assert!(m.contains("authentication failed"), "{m}");
    assert!(m.contains(&stranger.display().to_string()), "{m}");
    assert!(m.contains(&format!("127.0.0.1:{}", s.port)), "{m}");
}

/// `cairn backup` and `restore` with the keys where ssh keeps them:
/// $HOME/.ssh/id_ed25519 and $HOME/.ssh/known_hosts.
#[test]
fn cli_backup_and_restore() {
    let s = Sshd::start();
    let home = tmpdir("sftp-home");
    let ssh = home.path().join(".ssh");
    fs::create_dir(&ssh).unwrap();
    fs::copy(&s.user_key, ssh.join("id_ed25519")).unwrap();
    fs::copy(&s.known_hosts, ssh.join("known_hosts")).unwrap();
    let target = tmpdir("sftp-target");
    let u = format!(
        "sftp://{}@127.0.0.1:{}/{}/t",
        s.user,
        s.port,
        target.path().display()
    );
    backup_twice_and_restore(&u, &[("HOME", home.path().to_str().unwrap())]);
    assert_all_complete(&target.path().join("t"), PASSPHRASE);
}

#[test]
fn server_killed_mid_upload_is_retried_and_completes() {
    let mut s = Sshd::start();
    let dir = tmpdir("sftp-kill");
    let mut o = opts_for(&s);
    o.retry_delay = Duration::from_secs(1);
    o.num_retries = 4;
    let u = url(&s, dir.path());
    let b = backend::open(&u, &o).unwrap();
    let work = tmpdir("sftp-kill-src");
    random_file(&work.path().join("f"), 48 << 20, 11);
    let data = fs::read(work.path().join("f")).unwrap();
    let name = "duplicity-full.20261125T000000Z.vol1.difftar.gpg";
    let mut up = b.create(name).unwrap();
    up.write_all(&data).unwrap();
    let target = dir.path().to_path_buf();
    let sp = &mut s;
    let r = std::thread::scope(|sc| {
        sc.spawn(move || {
            // Wait until the temporary file is being written, then kill.
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while std::time::Instant::now() < deadline {
                let growing = fs::read_dir(&target).unwrap().any(|e| {
                    let e = e.unwrap();
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".cairn-upload.")
                        && e.metadata().unwrap().len() > 0
                });
                if growing {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            sp.kill();
            assert!(
                !target.join(name).exists(),
                "no final name before the rename"
            );
            std::thread::sleep(Duration::from_millis(200));
            sp.restart();
        });
        up.commit()
    });
    r.unwrap_or_else(|e| panic!("the retry should complete the upload: {e}"));
    assert!(fs::read(dir.path().join(name)).unwrap() == data);
    assert_eq!(b.list().unwrap(), vec![name.to_string()]);
    // The listing's sizes (the catalog's "stored" for remote targets).
    assert_eq!(
        b.list_sized().unwrap(),
        vec![(name.to_string(), Some(data.len() as u64))]
    );
}

#[test]
fn full_disk_fails_clearly_and_the_next_run_succeeds() {
    let target = tmpdir("sftp-full");
    let mut s = Sshd::start_with(Some((target.path().to_path_buf(), 2048)));
    let home = tmpdir("sftp-full-home");
    let ssh = home.path().join(".ssh");
    fs::create_dir(&ssh).unwrap();
    fs::copy(&s.user_key, ssh.join("id_ed25519")).unwrap();
    fs::copy(&s.known_hosts, ssh.join("known_hosts")).unwrap();
    let env = [("HOME", home.path().to_str().unwrap())];
    let work = tmpdir("sftp-full-src");
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..5 {
        random_file(&src.join(format!("r{i}")), 1 << 20, 100 + i);
    }
    let u = format!(
        "sftp://{}@127.0.0.1:{}/{}",
        s.user,
        s.port,
        target.path().display()
    );
    let cache = work.path().join("cache");
    let o = cairn_backup(&u, &src, &cache, 1, &env);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("no space left"), "{t}");
    let seen = seen_by(s.pid(), target.path());
    assert_all_complete(&seen, PASSPHRASE);
    let hidden: Vec<_> = fs::read_dir(&seen)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .collect();
    assert!(
        hidden.is_empty(),
        "the failed upload's temporary file was removed"
    );
    resize_tmpfs(s.pid(), target.path(), 64 << 10);
    let o = cairn_backup(&u, &src, &cache, 1, &env);
    assert!(o.status.success(), "{}", text(&o));
    let dest = work.path().join("restored");
    let o = cairn_restore(&u, &dest, &work.path().join("cache2"), &env);
    assert!(o.status.success(), "{}", text(&o));
    common::assert_same_tree(
        &common::capture(&src),
        &common::capture(&dest),
        "sftp full disk",
    );
    s.kill();
}

#[test]
fn a_silent_server_times_out_with_a_clear_message() {
    let (addr, _h) = black_hole();
    let port = addr.rsplit_once(':').unwrap().1;
    let o = BackendOptions {
        num_retries: 2,
        retry_delay: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        ..BackendOptions::default()
    };
    let t = std::time::Instant::now();
    let e = backend::open(&format!("sftp://u@127.0.0.1:{port}/x"), &o)
        .unwrap()
        .list()
        .unwrap_err();
    assert!(matches!(e, BackendError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "bounded by --timeout"
    );
}
