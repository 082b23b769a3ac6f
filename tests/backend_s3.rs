//! s3:// targets against a real S3-compatible server started here on
//! loopback (moto's server mode, from PyPI): operations, end-to-end backups
//! through `cairn`, multipart uploads, listings of more than 1,000 objects,
//! refused credentials (moto with IAM authentication on), a missing bucket,
//! and the server going away mid-upload.

mod common;

use cairn::backend::{self, BackendError, BackendOptions};
use common::servers::*;
use std::fs;
use std::io::Write;
use std::time::Duration;

fn opts(endpoint: &str, key: &str, secret: &str) -> BackendOptions {
    let mut o = BackendOptions {
        num_retries: 3,
        retry_delay: Duration::from_millis(300),
        timeout: Duration::from_secs(20),
        ..BackendOptions::default()
    };
    o.s3.endpoint = Some(endpoint.to_string());
    o.s3.region = Some("us-east-1".into());
    // Credentials from a file, not the environment (the tests share one).
    let dir = tmpdir("aws");
    let f = dir.path().join("credentials");
    fs::write(
        &f,
        format!("[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    std::mem::forget(dir);
    o.s3.credentials_file = Some(f);
    o
}

#[test]
fn operations() {
    let m = Moto::start();
    m.create_bucket("ops");
    let b = backend::open(
        "s3://ops/some/prefix",
        &opts(&m.endpoint, S3_KEY, S3_SECRET),
    )
    .unwrap();
    exercise_backend(b.as_ref());
    // The prefix is honoured: nothing outside it is listed.
    let (st, body) = m.http("GET", "/ops?list-type=2", b"");
    assert_eq!(st, 200);
    assert!(!body.contains("<Key>"), "delete removed everything: {body}");
}

#[test]
fn cli_backup_and_restore() {
    let m = Moto::start();
    m.create_bucket("cli");
    let env = m.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    backup_twice_and_restore("s3://cli/host1/backups", &env);
    let (_, body) = m.http("GET", "/cli?list-type=2&prefix=host1/backups/", b"");
    assert!(body.contains("duplicity-full."), "{body}");
}

#[test]
fn large_volumes_go_up_in_parts() {
    let m = Moto::start();
    m.create_bucket("multipart");
    let mut o = opts(&m.endpoint, S3_KEY, S3_SECRET);
    o.s3.multipart_chunk_size = 5 << 20;
    let b = backend::open("s3://multipart/x", &o).unwrap();
    let work = tmpdir("mp");
    random_file(&work.path().join("f"), (12 << 20) + 123, 9);
    let data = fs::read(work.path().join("f")).unwrap();
    let name = "duplicity-full.20261125T000000Z.vol1.difftar.gpg";
    let mut u = b.create(name).unwrap();
    u.write_all(&data).unwrap();
    u.commit().unwrap();
    // A multipart object's ETag ends in -<number of parts>.
    let (st, body) = m.http("GET", "/multipart?list-type=2", b"");
    assert_eq!(st, 200);
    assert!(
        body.contains("-3&#34;") || body.contains("-3\""),
        "3 parts: {body}"
    );
    let dest = work.path().join("back");
    b.get(name, &dest).unwrap();
    assert!(
        fs::read(&dest).unwrap() == data,
        "the parts were put together in order"
    );
}

#[test]
fn listings_of_more_than_1000_objects_are_complete() {
    let m = Moto::start();
    m.create_bucket("many");
    let o = opts(&m.endpoint, S3_KEY, S3_SECRET);
    let b = backend::open("s3://many/p", &o).unwrap();
    let names: Vec<String> = (0..1037)
        .map(|i| {
            format!(
                "duplicity-inc.20261125T{:06}Z.to.20261125T{:06}Z.manifest.gpg",
                i,
                i + 1
            )
        })
        .collect();
    std::thread::scope(|s| {
        for chunk in names.chunks(260) {
            let b = &b;
            s.spawn(move || {
                for n in chunk {
                    let mut u = b.create(n).unwrap();
                    u.write_all(n.as_bytes()).unwrap();
                    u.commit().unwrap();
                }
            });
        }
    });
    let listed = b.list().unwrap();
    let mut want = names.clone();
    want.sort();
    assert_eq!(
        listed.len(),
        1037,
        "one page holds 1000; the rest come with the token"
    );
    assert_eq!(listed, want);
    // The listing's sizes (the catalog's "stored" for remote targets).
    let sized = b.list_sized().unwrap();
    assert!(
        sized.iter().all(|(n, size)| *size == Some(n.len() as u64)),
        "{:?}",
        sized.first()
    );
    assert_eq!(sized.len(), 1037);
    b.delete(&names).unwrap();
    assert!(b.list().unwrap().is_empty(), "batched deletes removed all");
}

#[test]
fn refused_credentials_and_missing_bucket_are_named() {
    let (m, key, secret) = Moto::start_with_auth("locked");
    // The right key works: moto really checks signatures here.
    let good = backend::open("s3://locked/x", &opts(&m.endpoint, &key, &secret)).unwrap();
    assert!(good.list().unwrap().is_empty());
    let mut u = good
        .create("duplicity-full.20261125T000000Z.manifest.gpg")
        .unwrap();
    u.write_all(b"m").unwrap();
    u.commit().unwrap();

    let bad_secret = "0000000000000000000000000000000000000000";
    let b = backend::open("s3://locked/x", &opts(&m.endpoint, &key, bad_secret)).unwrap();
    let e = b.list().unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, BackendError::Auth { .. }), "{msg}");
    assert!(msg.contains("s3://locked/x"), "{msg}");
    assert!(
        !msg.contains(bad_secret) && !msg.contains("X-Amz-Signature"),
        "{msg}"
    );

    let b = backend::open("s3://nosuchbucket/x", &opts(&m.endpoint, &key, &secret)).unwrap();
    let e = b.list().unwrap_err();
    assert!(matches!(e, BackendError::MissingContainer { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("bucket \"nosuchbucket\" does not exist"),
        "{e}"
    );

    // No credentials at all: said plainly before anything is sent.
    let mut o = opts(&m.endpoint, &key, &secret);
    o.s3.credentials_file = Some("/nonexistent/credentials".into());
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        let e = backend::open("s3://locked/x", &o)
            .err()
            .expect("no credentials");
        assert!(e.to_string().contains("no S3 credentials"), "{e}");
    }
}

#[test]
fn server_crash_mid_multipart_is_retried_and_leaves_no_partial_object() {
    let m = Moto::start();
    m.create_bucket("crash");
    let proxy = FaultProxy::start(&format!("127.0.0.1:{}", m.port));
    let mut o = opts(
        &format!("http://127.0.0.1:{}", proxy.port),
        S3_KEY,
        S3_SECRET,
    );
    o.s3.multipart_chunk_size = 5 << 20;
    o.retry_delay = Duration::from_secs(1);
    o.num_retries = 4;
    let b = backend::open("s3://crash/x", &o).unwrap();
    let work = tmpdir("crash");
    random_file(&work.path().join("f"), 16 << 20, 21);
    let data = fs::read(work.path().join("f")).unwrap();
    let name = "duplicity-full.20261125T000000Z.vol1.difftar.gpg";
    let mut u = b.create(name).unwrap();
    u.write_all(&data).unwrap();
    // The "server" dies inside the second part and is back 1.5 s later.
    proxy.crash_after(7 << 20);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            let t0 = std::time::Instant::now();
            while proxy.is_up() && t0.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(20));
            }
            // While it is down, nothing is visible under the name.
            let (_, body) = m.http("GET", "/crash?list-type=2", b"");
            assert!(!body.contains(name), "no object before completion: {body}");
            std::thread::sleep(Duration::from_millis(1500));
            proxy.restart();
        });
        u.commit()
    });
    r.unwrap_or_else(|e| panic!("the retry should complete the upload: {e}"));
    let dest = work.path().join("back");
    b.get(name, &dest).unwrap();
    assert!(fs::read(&dest).unwrap() == data);
    let (_, body) = m.http("GET", "/crash?uploads", b"");
    assert!(
        !body.contains("<UploadId>"),
        "no multipart upload left open: {body}"
    );
}

#[test]
fn server_gone_for_good_fails_clearly_and_aborts_nothing_visible() {
    let mut m = Moto::start();
    m.create_bucket("gone");
    let mut o = opts(&m.endpoint, S3_KEY, S3_SECRET);
    o.num_retries = 2;
    let b = backend::open("s3://gone/x", &o).unwrap();
    m.kill();
    let mut u = b
        .create("duplicity-full.20261125T000000Z.manifest.gpg")
        .unwrap();
    u.write_all(b"x").unwrap();
    let e = u.commit().unwrap_err();
    assert!(matches!(e, BackendError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains("s3://gone/x"), "{e}");
    assert!(e.to_string().contains("cannot reach"), "{e}");
}

#[test]
fn a_silent_server_times_out_with_a_clear_message() {
    let (addr, _h) = black_hole();
    let mut o = opts(&format!("http://{addr}"), S3_KEY, S3_SECRET);
    o.timeout = Duration::from_secs(2);
    o.num_retries = 2;
    let t = std::time::Instant::now();
    let e = backend::open("s3://silent/x", &o)
        .unwrap()
        .list()
        .unwrap_err();
    assert!(matches!(e, BackendError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("s3://silent/x"), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "bounded by --timeout"
    );
}
