//! Throughput to each remote target on loopback, next to file://: one
//! volume-sized upload (create, write, commit) and one download (get) per
//! target, against real servers started here (rsync daemon, sshd, moto).
//! `cargo bench --bench targets` (or `just bench-targets`); set
//! CAIRN_BENCH_MIB to change the size (default 64).

#[path = "../tests/common/mod.rs"]
mod common;

use cairn::backend::{self, BackendOptions, TorMode};
use common::servers::*;
use std::io::Write;
use std::time::{Duration, Instant};

struct Row {
    target: &'static str,
    put: f64,
    get: f64,
}

fn measure(target: &'static str, url: &str, opts: &BackendOptions, data: &[u8]) -> Row {
    let b = backend::open(url, opts).unwrap_or_else(|e| panic!("{target}: {e}"));
    let name = "duplicity-full.20261125T000000Z.vol1.difftar.gpg";
    let _ = b.delete(&[name.to_string()]);
    // Warm-up: connections, directories.
    let mut u = b
        .create("duplicity-full.20261125T000000Z.manifest.gpg")
        .unwrap();
    u.write_all(b"warm").unwrap();
    u.commit().unwrap();
    let t = Instant::now();
    let mut u = b.create(name).unwrap();
    u.write_all(data).unwrap();
    u.commit().unwrap_or_else(|e| panic!("{target}: {e}"));
    let put = t.elapsed().as_secs_f64();
    let dir = tmpdir("bench-get");
    let dest = dir.path().join("v");
    let t = Instant::now();
    b.get(name, &dest)
        .unwrap_or_else(|e| panic!("{target}: {e}"));
    let get = t.elapsed().as_secs_f64();
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), data.len() as u64);
    let mib = data.len() as f64 / (1 << 20) as f64;
    Row {
        target,
        put: mib / put,
        get: mib / get,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this too:
    // keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let mib: usize = std::env::var("CAIRN_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 4 } else { 64 });
    let work = tmpdir("bench");
    let f = work.path().join("data");
    random_file(&f, mib << 20, 42);
    let data = std::fs::read(&f).unwrap();
    let base = BackendOptions {
        num_retries: 1,
        timeout: Duration::from_secs(60),
        ..BackendOptions::default()
    };
    let mut rows = Vec::new();

    let dir = work.path().join("file-target");
    rows.push(measure(
        "file://",
        &format!("file://{}", dir.display()),
        &base,
        &data,
    ));

    let d = Rsyncd::start();
    rows.push(measure("rsync daemon", &d.url_pw("bench"), &base, &data));

    let socks = FakeSocks::start(&d.addr, None);
    let mut o = base.clone();
    o.tor.mode = TorMode::Socks(socks.addr.clone());
    o.tor.helper = Some(common::cairn());
    let onion = "cairntestxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxd.onion";
    rows.push(measure(
        "rsync daemon via tor-connect (SOCKS relay, no Tor)",
        &format!("rsync://{RSYNC_USER}:{RSYNC_PASSWORD}@{onion}::backup/bench-socks"),
        &o,
        &data,
    ));

    let s = Sshd::start();
    let target = tmpdir("bench-ssh");
    let mut o = base.clone();
    o.ssh_options = s.ssh_options();
    rows.push(measure(
        "rsync over ssh",
        &format!(
            "rsync://{}@127.0.0.1:{}/{}/r",
            s.user,
            s.port,
            target.path().display()
        ),
        &o,
        &data,
    ));
    let mut o = base.clone();
    o.sftp.identity_files = vec![s.user_key.clone()];
    o.sftp.known_hosts = vec![s.known_hosts.clone()];
    rows.push(measure(
        "sftp",
        &format!(
            "sftp://{}@127.0.0.1:{}/{}/s",
            s.user,
            s.port,
            target.path().display()
        ),
        &o,
        &data,
    ));

    let m = Moto::start();
    m.create_bucket("bench");
    let mut o = base.clone();
    o.s3.endpoint = Some(m.endpoint.clone());
    let creds = work.path().join("aws");
    std::fs::write(
        &creds,
        format!("[default]\naws_access_key_id = {S3_KEY}\naws_secret_access_key = {S3_SECRET}\n"),
    )
    .unwrap();
    o.s3.credentials_file = Some(creds);
    rows.push(measure(
        "s3 (moto, multipart 20 MiB parts)",
        "s3://bench/p",
        &o,
        &data,
    ));

    println!(
        "\nThroughput on loopback, one {mib} MiB volume (MiB/s; upload = stage + send + commit):\n"
    );
    println!("| target | upload MiB/s | download MiB/s | upload vs file:// |");
    println!("|---|---:|---:|---:|");
    let file_put = rows[0].put;
    for r in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.0} % |",
            r.target,
            r.put,
            r.get,
            100.0 * r.put / file_put
        );
    }
}
