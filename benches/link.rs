//! Backups over a slow link, as from a home uplink or over Tor: a
//! rate-limiting TCP relay on loopback in front of the rsync daemon, at
//! 1 MB/s and 8 MB/s. For each rate, one full backup (encrypted, about 5
//! volumes) by Cairn sending each volume while it encodes the next (the
//! default), by Cairn with `--concurrency 0` (each volume sent before the
//! next is encoded), with `--concurrency 2`, and by duplicity 0.8 with
//! `--asynchronous-upload`.
//!
//! The goal: with the overlap, wall time within 10% of the bytes stored
//! divided by the link rate, plus one volume's encoding time (the first
//! volume has nothing to overlap with). `cargo bench --bench link` (or
//! `just bench-link`); CAIRN_BENCH_SECONDS sets the seconds of data per rate
//! (default 20).

#[path = "../tests/common/mod.rs"]
mod common;

use common::servers::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSPHRASE: &str = "benchmark passphrase";

/// A TCP relay whose client-to-server direction (the upload) is held to
/// `rate` bytes per second in total, across connections, with at most
/// 50 ms of credit saved up while idle.
fn start_relay(target: &str, rate: f64) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let next = Arc::new(Mutex::new(Instant::now()));
    let target = target.to_string();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(client) = c else { continue };
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let next = Arc::clone(&next);
            std::thread::spawn(move || pump(client, server, Some((rate, next))));
            std::thread::spawn(move || pump(s2, c2, None));
        }
    });
    addr
}

fn pump(mut from: TcpStream, mut to: TcpStream, limit: Option<(f64, Arc<Mutex<Instant>>)>) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((rate, next)) = &limit {
            let due = {
                let mut at = next.lock().unwrap();
                // Up to 50 ms of credit, so a sleep that overran does not
                // lower the rate; no more, so an idle link does not burst.
                let floor = Instant::now() - Duration::from_millis(50);
                *at = (*at).max(floor) + Duration::from_secs_f64(n as f64 / rate);
                *at
            };
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

fn du(p: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() { du(&e.path()) } else { m.len() };
    }
    n
}

/// Runs `tool` (a duplicity command line) and returns its wall time.
fn timed(tool: &Path, args: &[String]) -> f64 {
    let t = Instant::now();
    let mut c = Command::new(tool);
    if tool.ends_with("cairn") {
        // The same duplicity command line, through Cairn's front end for it.
        c.arg("duplicity");
    }
    let out = c
        .args(args)
        .env("PASSPHRASE", PASSPHRASE)
        .env("FTP_PASSWORD", RSYNC_PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        tool.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

fn full(
    work: &Path,
    (tag, vol): (&str, u64),
    src: &Path,
    url: &str,
    extra: &[&str],
) -> Vec<String> {
    let mut a: Vec<String> = ["full", "--volsize", &vol.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push("--archive-dir".into());
    a.push(work.join(format!("cache-{tag}")).display().to_string());
    a.push(src.display().to_string());
    a.push(url.to_string());
    a
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` builds and starts this: nothing to check.
        return;
    }
    let seconds: f64 = std::env::var("CAIRN_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20.0);
    let cairn = common::cairn();
    let duplicity = Path::new("/usr/bin/duplicity");
    let work = tmpdir("bench-link");
    let d = Rsyncd::start();
    println!(
        "\nFull backups through a rate-limited relay in front of an rsync daemon (random data, encrypted).\nexpected = bytes stored / rate + one volume's encoding; goal: Cairn's default within 10% of it.\n"
    );
    println!(
        "| link | data | tool | wall | bytes stored | expected | wall / expected | vs Cairn |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    for rate_mb in [1.0f64, 8.0] {
        let rate = rate_mb * 1e6;
        let size = (rate * seconds) as usize;
        let src = work.path().join(format!("src-{rate_mb}"));
        std::fs::create_dir_all(&src).unwrap();
        for (i, chunk) in (0..size).step_by(1 << 20).enumerate() {
            let len = (1usize << 20).min(size - chunk);
            random_file(&src.join(format!("f{i:04}")), len, i as u64 + 7);
        }
        // One volume's encoding: a backup to a local directory, per volume.
        let local = work.path().join(format!("local-{rate_mb}"));
        let url = format!("file://{}", local.display());
        // About 5 volumes: each upload is one rsync connection, whose set-up
        // (about 0.15 s here) is not data.
        let vol = ((rate * seconds / 5.0) as u64 >> 20).max(4);
        let wall = timed(&cairn, &full(work.path(), ("local", vol), &src, &url, &[]));
        let volumes = std::fs::read_dir(&local)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".vol")
            })
            .count()
            .max(1);
        let one_volume = wall / volumes as f64;
        let relay = start_relay(&d.addr, rate);
        let mut ours = 0.0;
        for (n, (tag, tool, extra)) in [
            ("Cairn (overlap, default)", cairn.as_path(), &[][..]),
            (
                "Cairn --concurrency 0",
                cairn.as_path(),
                &["--concurrency", "0"][..],
            ),
            (
                "Cairn --concurrency 2",
                cairn.as_path(),
                &["--concurrency", "2"][..],
            ),
            (
                "duplicity 0.8 --asynchronous-upload",
                duplicity,
                &["--asynchronous-upload"][..],
            ),
        ]
        .into_iter()
        .enumerate()
        {
            if !tool.exists() {
                continue;
            }
            let path = format!("link-{rate_mb}-{n}");
            // duplicity's rsync backend does not make the folder.
            std::fs::create_dir_all(d.module_dir.join(&path)).unwrap();
            let url = format!("rsync://{RSYNC_USER}@{relay}::backup/{path}");
            let wall = timed(tool, &full(work.path(), (&path, vol), &src, &url, extra));
            let stored = du(&d.files_dir().join(&path));
            let expected = stored as f64 / rate + one_volume;
            if ours == 0.0 {
                ours = wall;
            }
            println!(
                "| {rate_mb} MB/s | {:.0} MB, {vol} MiB volumes | {tag} | {wall:.1} s | {:.1} MB | {expected:.1} s | {:.2} | {:.2}× |",
                size as f64 / 1e6,
                stored as f64 / 1e6,
                wall / expected,
                wall / ours,
            );
        }
    }
}
