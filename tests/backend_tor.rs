//! Targets behind Tor onion services.
//!
//! Fast tier (every `cargo test`): a SOCKS5 server in the test stands in
//! for tor's SocksPort in front of a real rsync daemon / sshd, and records
//! what it is asked: the onion name must arrive unresolved (ATYP 0x03), for
//! rsync daemon URLs (`cairn tor-connect` as RSYNC_CONNECT_PROG), rsync over
//! ssh (as ProxyCommand) and SFTP; tor's onion error codes must reach the
//! user.
//!
//! Heavy tier (`just test-tor`: `--features tor`, `--include-ignored`): a
//! private Tor network (3 authorities, 2 relays, an onion service in front
//! of an rsync daemon, a tor client), then backups and restores through the
//! system tor's SOCKS port and through embedded arti, under a hard time
//! bound; every process is killed at the end, also on failure.

mod common;

use cairn::backend::{self, BackendError, BackendOptions, TorMode};
use common::servers::*;
use std::fs;
use std::time::{Duration, Instant};

/// A syntactically valid v3 onion name (56 base32 characters).
const ONION: &str = "cairntestxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxd.onion";

fn socks_opts(addr: &str) -> BackendOptions {
    let mut o = BackendOptions {
        num_retries: 2,
        retry_delay: Duration::from_millis(200),
        timeout: Duration::from_secs(15),
        ..BackendOptions::default()
    };
    o.tor.mode = TorMode::Socks(addr.to_string());
    o.tor.helper = Some(common::cairn());
    o.tor.connect_timeout = Duration::from_secs(20);
    o
}

fn assert_unresolved(socks: &FakeSocks, host: &str, port: u16) {
    let reqs = socks.requests.lock().unwrap();
    assert!(!reqs.is_empty(), "the SOCKS server was used");
    for (atyp, h, p) in reqs.iter() {
        assert_eq!(
            *atyp, 3,
            "the name is sent as a domain (ATYP 3), never resolved"
        );
        assert_eq!(h, host);
        assert_eq!(*p, port);
    }
}

#[test]
fn rsync_daemon_over_socks_sends_the_onion_name_unresolved() {
    let d = Rsyncd::start();
    let socks = FakeSocks::start(&d.addr, None);
    let url = format!("rsync://{RSYNC_USER}:{RSYNC_PASSWORD}@{ONION}::backup/lib");
    let b = backend::open(&url, &socks_opts(&socks.addr)).unwrap();
    exercise_backend(b.as_ref());
    assert_unresolved(&socks, ONION, 873);
}

/// `cairn backup` / `restore` with `cairn tor-connect --socks` as the
/// connect program, exactly as a duplicity user would set it.
#[test]
fn cli_through_tor_connect_as_rsync_connect_prog() {
    let d = Rsyncd::start();
    let socks = FakeSocks::start(&d.addr, None);
    let prog = format!(
        "{} tor-connect --socks {} %H 873",
        common::cairn().display(),
        socks.addr
    );
    let url = format!("rsync://{RSYNC_USER}@{ONION}::backup/cli");
    backup_twice_and_restore(
        &url,
        &[
            ("FTP_PASSWORD", RSYNC_PASSWORD),
            ("RSYNC_CONNECT_PROG", &prog),
        ],
    );
    assert_unresolved(&socks, ONION, 873);
    assert!(d.module_dir.join("cli").read_dir().unwrap().count() > 0);
}

#[test]
fn sftp_and_rsync_over_ssh_to_an_onion_host() {
    let s = Sshd::start();
    let socks = FakeSocks::start(&format!("127.0.0.1:{}", s.port), None);
    let dir = tmpdir("onion-ssh");
    // The host key is recorded for the onion name, as ssh would.
    let kh = dir.path().join("known_hosts");
    let line = fs::read_to_string(&s.known_hosts).unwrap();
    let key = line.split_once(' ').unwrap().1;
    fs::write(&kh, format!("{ONION} {key}")).unwrap();

    let mut o = socks_opts(&socks.addr);
    o.sftp.identity_files = vec![s.user_key.clone()];
    o.sftp.known_hosts = vec![kh.clone()];
    let url = format!("sftp://{}@{ONION}/{}/sftp", s.user, dir.path().display());
    exercise_backend(backend::open(&url, &o).unwrap().as_ref());
    assert_unresolved(&socks, ONION, 22);

    let mut o = socks_opts(&socks.addr);
    o.ssh_options = s.ssh_options();
    for opt in o.ssh_options.iter_mut() {
        if opt.starts_with("-oUserKnownHostsFile=") {
            *opt = format!("-oUserKnownHostsFile={}", kh.display());
        }
    }
    let url = format!("rsync://{}@{ONION}/{}/rsync", s.user, dir.path().display());
    exercise_backend(backend::open(&url, &o).unwrap().as_ref());
    assert_unresolved(&socks, ONION, 22);
}

#[test]
fn onion_errors_and_a_missing_tor_are_explained() {
    let socks = FakeSocks::start("127.0.0.1:9", Some(0xF0));
    let url = format!("rsync://{RSYNC_USER}:{RSYNC_PASSWORD}@{ONION}::backup/x");
    let e = backend::open(&url, &socks_opts(&socks.addr))
        .unwrap()
        .list()
        .unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, BackendError::Unreachable { .. }), "{m}");
    assert!(m.contains("descriptor not found"), "{m}");
    assert!(
        m.contains(&format!("rsync://{RSYNC_USER}@{ONION}::backup/x")),
        "{m}"
    );
    assert!(!m.contains(RSYNC_PASSWORD), "{m}");

    // Nothing listening where tor should be.
    let port = free_port();
    let e = backend::open(&url, &socks_opts(&format!("127.0.0.1:{port}")))
        .unwrap()
        .list()
        .unwrap_err();
    assert!(e.to_string().contains("SOCKS proxy"), "{e}");

    // Tor switched off: an onion host is refused, never looked up in DNS.
    let mut o = socks_opts("127.0.0.1:9");
    o.tor.mode = TorMode::Off;
    let e = backend::open(&url, &o).err().expect("refused");
    assert!(e.to_string().contains("onion address"), "{e}");
}

#[test]
fn tor_connect_reports_its_failures() {
    // The embedded client: without the `tor` feature it says so; with it,
    // a broken configuration is reported before anything is contacted.
    let dir = tmpdir("arti-bad");
    let cfg = dir.path().join("arti.toml");
    fs::write(&cfg, "[tor_network\n").unwrap();
    let o = common::run(
        &common::cairn(),
        &common::args(&[
            "tor-connect",
            "--arti-dir",
            dir.path().to_str().unwrap(),
            "--arti-config",
            cfg.to_str().unwrap(),
            ONION,
            "873",
        ]),
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains(&format!("cairn tor-connect: cannot reach {ONION}:873")),
        "{t}"
    );
    if cfg!(feature = "tor") {
        assert!(t.contains("parsing"), "{t}");
    } else {
        assert!(t.contains("built without the embedded Tor client"), "{t}");
    }
    let help = common::run(&common::cairn(), &common::args(&["--help"]), &[]);
    assert!(!text(&help).contains("tor-connect"), "the helper is hidden");
}

/// The real thing: a private Tor network on loopback with an onion service
/// in front of an rsync daemon. Bounded by a hard deadline.
#[test]
#[ignore = "heavy: a private Tor network (about a minute); run by `just test-tor`"]
fn private_tor_network_backup_and_restore() {
    const BUDGET: Duration = Duration::from_secs(420);
    let t0 = Instant::now();
    let deadline = t0 + BUDGET;
    let d = Rsyncd::start();
    let net = TorNet::start(&[(873, d.addr.clone())], t0 + Duration::from_secs(240))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "tor network ready after {:.1} s; onion {}",
        net.ready_after.as_secs_f64(),
        net.onion
    );
    let cairn = common::cairn().display().to_string();

    // (a) The system tor's SOCKS port.
    let prog = format!("{cairn} tor-connect --socks {} %H 873", net.socks);
    let url = format!("rsync://{RSYNC_USER}@{}::backup/via-socks", net.onion);
    let env = [
        ("FTP_PASSWORD", RSYNC_PASSWORD),
        ("RSYNC_CONNECT_PROG", prog.as_str()),
    ];
    wait_for_onion(&net.onion, TorMode::Socks(net.socks.clone()), deadline);
    let ta = Instant::now();
    bounded_round_trip(&url, &env, deadline);
    eprintln!(
        "(a) tor SOCKS: backup+restore in {:.1} s",
        ta.elapsed().as_secs_f64()
    );

    // (b) Embedded arti in `cairn tor-connect`, cold state directory.
    if cfg!(feature = "tor") {
        let state = tmpdir("arti-state");
        let prog = format!(
            "{cairn} tor-connect --arti-dir {} --arti-config {} %H 873",
            state.path().display(),
            net.arti_toml.display()
        );
        let url = format!("rsync://{RSYNC_USER}@{}::backup/via-arti", net.onion);
        let env = [
            ("FTP_PASSWORD", RSYNC_PASSWORD),
            ("RSYNC_CONNECT_PROG", prog.as_str()),
        ];
        wait_for_onion(
            &net.onion,
            TorMode::Arti {
                dir: state.path().to_path_buf(),
                config: Some(net.arti_toml.clone()),
            },
            deadline,
        );
        let tb = Instant::now();
        bounded_round_trip(&url, &env, deadline);
        eprintln!(
            "(b) arti: backup+restore in {:.1} s",
            tb.elapsed().as_secs_f64()
        );

        // The options route (what the CLI flags will set): TorMode::Arti.
        let mut o = BackendOptions {
            num_retries: 3,
            retry_delay: Duration::from_secs(2),
            ..BackendOptions::default()
        };
        o.tor.mode = TorMode::Arti {
            dir: state.path().to_path_buf(),
            config: Some(net.arti_toml.clone()),
        };
        o.tor.helper = Some(common::cairn());
        let url = format!(
            "rsync://{RSYNC_USER}:{RSYNC_PASSWORD}@{}::backup/via-options",
            net.onion
        );
        exercise_backend(backend::open(&url, &o).unwrap().as_ref());
    } else {
        panic!(
            "the Tor tier needs the embedded client: run it with --features tor (just test-tor)"
        );
    }
    eprintln!("Tor tier done in {:.1} s", t0.elapsed().as_secs_f64());
    drop(net);
}

/// Retries a listing until the onion service answers (its descriptor may
/// still be spreading), within the deadline.
fn wait_for_onion(onion: &str, mode: TorMode, deadline: Instant) {
    let t = Instant::now();
    let mut o = BackendOptions {
        num_retries: 1,
        timeout: Duration::from_secs(30),
        ..BackendOptions::default()
    };
    o.tor.mode = mode;
    o.tor.helper = Some(common::cairn());
    o.tor.connect_timeout = Duration::from_secs(30);
    let url = format!("rsync://{RSYNC_USER}:{RSYNC_PASSWORD}@{onion}::backup/");
    let b = backend::open(&url, &o).unwrap();
    let mut last = String::new();
    while Instant::now() < deadline {
        match b.list() {
            Ok(_) => {
                eprintln!("onion reachable after {:.1} s", t.elapsed().as_secs_f64());
                return;
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    panic!("the onion service never answered before the deadline; last attempt: {last}");
}

fn bounded_round_trip(url: &str, env: &[(&str, &str)], deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now()).as_secs();
    assert!(left > 20, "out of time before the transfer");
    let work = tmpdir("tor-rt");
    let src = work.path().join("src");
    common::edge::build(&src, 2 << 20);
    let cache = work.path().join("cache");
    let mut e = vec![("PASSPHRASE", PASSPHRASE)];
    e.extend_from_slice(env);
    let o = cairn_bounded(
        left / 2,
        &[
            "backup",
            "--volsize",
            "1",
            "--archive-dir",
            cache.to_str().unwrap(),
            src.to_str().unwrap(),
            url,
        ],
        &e,
    );
    assert!(o.status.success(), "backup over Tor failed:\n{}", text(&o));
    let dest = work.path().join("restored");
    let left = deadline
        .saturating_duration_since(Instant::now())
        .as_secs()
        .max(1);
    let o = cairn_bounded(
        left,
        &[
            "restore",
            "--archive-dir",
            work.path().join("c2").to_str().unwrap(),
            url,
            dest.to_str().unwrap(),
        ],
        &e,
    );
    assert!(o.status.success(), "restore over Tor failed:\n{}", text(&o));
    common::assert_same_tree(&common::capture(&src), &common::capture(&dest), url);
}
