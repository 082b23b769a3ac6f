//! Public-key (write-only) backups: encrypted to an OpenPGP certificate
//! from the GnuPG keyring or a key file, optionally signed. With the
//! archive-dir cache present, a machine holding only the public key can run
//! full and incremental backups but cannot read them; restoring needs the
//! secret key, and stock duplicity restores them with it.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

const KEYPASS: &str = "secret key passphrase";

fn gpg(home: &Path, a: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut c = Command::new("gpg");
    c.arg("--homedir")
        .arg(home)
        .args(["--batch", "--pinentry-mode", "loopback"])
        .args(a);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// A GnuPG home with one RSA key (sign + encrypt subkey); returns its
/// fingerprint.
fn make_key(home: &Path, uid: &str) -> String {
    make_key_with(home, uid, &[])
}

/// As [`make_key`], with extra gpg options (e.g. `--cert-digest-algo SHA1`).
fn make_key_with(home: &Path, uid: &str, extra: &[&str]) -> String {
    fs::create_dir_all(home).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut fs::metadata(home).unwrap().permissions(),
        0o700,
    );
    let _ = Command::new("chmod").arg("700").arg(home).status();
    let with =
        |a: &[&str]| -> Vec<String> { extra.iter().chain(a).map(|x| x.to_string()).collect() };
    let a = with(&[
        "--passphrase",
        KEYPASS,
        "--quick-gen-key",
        uid,
        "rsa2048",
        "sign",
        "never",
    ]);
    let o = gpg(
        home,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let list = gpg(home, &["--with-colons", "--list-keys", uid], None);
    let fpr = String::from_utf8_lossy(&list.stdout)
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .unwrap()
        .split(':')
        .nth(9)
        .unwrap()
        .to_string();
    let a = with(&[
        "--passphrase",
        KEYPASS,
        "--quick-add-key",
        &fpr,
        "rsa2048",
        "encr",
        "never",
    ]);
    let o = gpg(
        home,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    fpr
}

#[test]
fn write_only_backups_and_restores_with_the_secret_key() {
    let work = tmpdir();
    let full_home = work.path().join("gnupg-full");
    let fpr = make_key(&full_home, "Cairn Test <test@example.invalid>");
    // A machine that only has the public key.
    let pub_home = work.path().join("gnupg-public");
    fs::create_dir_all(&pub_home).unwrap();
    let _ = Command::new("chmod").arg("700").arg(&pub_home).status();
    let exported = gpg(&full_home, &["--export", &fpr], None).stdout;
    let pubfile = work.path().join("public.pgp");
    fs::write(&pubfile, &exported).unwrap();
    assert!(
        gpg(&pub_home, &["--import", pubfile.to_str().unwrap()], None)
            .status
            .success()
    );

    let src = work.path().join("src");
    edge::build(&src, 300_000);
    let target = work.path().join("t");
    let url = file_url(&target);
    let cache = work.path().join("cache");
    let pub_env = [("GNUPGHOME", pub_home.to_str().unwrap())];
    // Full and incremental on the public-only machine, through the duplicity line.
    ok(
        &cairn_as_duplicity(),
        &args(&[
            "full",
            "--encrypt-key",
            &fpr,
            "--archive-dir",
            cache.to_str().unwrap(),
            src.to_str().unwrap(),
            &url,
        ]),
        &pub_env,
    );
    let first = capture(&src);
    edge::mutate(&src, 1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(
        &cairn_as_duplicity(),
        &args(&[
            "incremental",
            "--encrypt-key",
            &fpr,
            "--archive-dir",
            cache.to_str().unwrap(),
            src.to_str().unwrap(),
            &url,
        ]),
        &pub_env,
    );
    let second = capture(&src);

    // That machine cannot read its backups.
    let o = run(
        &cairn(),
        &args(&[
            "restore",
            "--archive-dir",
            work.path().join("c1").to_str().unwrap(),
            &url,
            work.path().join("no").to_str().unwrap(),
        ]),
        &pub_env,
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no secret key"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Without the cache, an incremental there needs the secret key too.
    let o = run(
        &cairn_as_duplicity(),
        &args(&[
            "incremental",
            "--encrypt-key",
            &fpr,
            "--archive-dir",
            work.path().join("empty-cache").to_str().unwrap(),
            src.to_str().unwrap(),
            &url,
        ]),
        &pub_env,
    );
    assert!(
        !o.status.success(),
        "an incremental without cache needs to read signatures"
    );

    // With the secret key: Cairn (from the keyring, and from a key file) and duplicity.
    let full_env = [
        ("GNUPGHOME", full_home.to_str().unwrap()),
        ("PASSPHRASE", KEYPASS),
    ];
    let times = backup_times(&target);
    for (i, (t, want)) in [(&times[0], &first), (&times[1], &second)]
        .into_iter()
        .enumerate()
    {
        let d = work.path().join(format!("cairn-{i}"));
        ok(
            &cairn(),
            &args(&[
                "restore",
                "--time",
                t,
                "--archive-dir",
                work.path().join("c2").to_str().unwrap(),
                &url,
                d.to_str().unwrap(),
            ]),
            &full_env,
        );
        assert_same_tree(want, &capture(&d), "cairn with the keyring");
        let d = work.path().join(format!("dup-{i}"));
        ok(
            &dup08(),
            &args(&[
                "restore",
                "-t",
                t,
                "--archive-dir",
                work.path().join("c3").to_str().unwrap(),
                &url,
                d.to_str().unwrap(),
            ]),
            &full_env,
        );
        assert_same_tree(want, &capture(&d), "duplicity with the keyring");
    }
    let secfile = work.path().join("secret.pgp");
    fs::write(
        &secfile,
        gpg(
            &full_home,
            &["--passphrase", KEYPASS, "--export-secret-keys", &fpr],
            None,
        )
        .stdout,
    )
    .unwrap();
    let d = work.path().join("cairn-keyfile");
    ok(
        &cairn(),
        &args(&[
            "restore",
            "--secret-key",
            secfile.to_str().unwrap(),
            "--archive-dir",
            work.path().join("c4").to_str().unwrap(),
            &url,
            d.to_str().unwrap(),
        ]),
        &[
            ("PASSPHRASE", KEYPASS),
            ("GNUPGHOME", pub_home.to_str().unwrap()),
        ],
    );
    assert_same_tree(&second, &capture(&d), "cairn with a key file");
}

#[test]
fn signed_and_hidden_recipient_backups() {
    let work = tmpdir();
    let home = work.path().join("gnupg");
    let fpr = make_key(&home, "Signer <signer@example.invalid>");
    let src = work.path().join("src");
    edge::build(&src, 100_000);
    let target = work.path().join("t");
    let url = file_url(&target);
    let env = [
        ("GNUPGHOME", home.to_str().unwrap()),
        ("PASSPHRASE", KEYPASS),
    ];
    ok(
        &cairn_as_duplicity(),
        &args(&[
            "full",
            "--hidden-encrypt-key",
            &fpr,
            "--sign-key",
            &fpr,
            "--archive-dir",
            work.path().join("c").to_str().unwrap(),
            src.to_str().unwrap(),
            &url,
        ]),
        &env,
    );
    // gpg decrypts every file and reports a good signature from the key.
    for e in fs::read_dir(&target).unwrap() {
        let p = e.unwrap().path();
        let o = gpg(
            &home,
            &[
                "--passphrase",
                KEYPASS,
                "--status-fd",
                "2",
                "--decrypt",
                p.to_str().unwrap(),
            ],
            None,
        );
        let status = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{}: {status}", p.display());
        assert!(
            status.contains("GOODSIG") && status.contains(&fpr[24..]),
            "{status}"
        );
        assert!(
            !status.contains(&format!("ENC_TO {}", &fpr[24..])),
            "the recipient is hidden: {status}"
        );
    }
    let d = work.path().join("dup");
    ok(
        &dup08(),
        &args(&[
            "restore",
            "--archive-dir",
            work.path().join("c2").to_str().unwrap(),
            &url,
            d.to_str().unwrap(),
        ]),
        &env,
    );
    assert_same_tree(
        &capture(&src),
        &capture(&d),
        "duplicity restores signed, hidden-recipient backups",
    );
    let d = work.path().join("cairn");
    ok(
        &cairn(),
        &args(&[
            "restore",
            "--archive-dir",
            work.path().join("c3").to_str().unwrap(),
            &url,
            d.to_str().unwrap(),
        ]),
        &env,
    );
    assert_same_tree(
        &capture(&src),
        &capture(&d),
        "Cairn restores them from the keyring",
    );
}

/// A key whose self-signatures use SHA-1 (every key GnuPG made before about
/// 2.1): Cairn encrypts to it, as gpg and duplicity do, with a warning that
/// says how to renew them; stock duplicity restores the backup.
#[test]
fn keys_with_sha1_self_signatures_are_encrypted_to_with_a_warning() {
    let work = tmpdir();
    let home = work.path().join("gnupg");
    let fpr = make_key_with(
        &home,
        "Old <old@example.invalid>",
        &["--cert-digest-algo", "SHA1"],
    );
    let src = work.path().join("src");
    edge::build(&src, 50_000);
    let target = work.path().join("t");
    let env = [
        ("GNUPGHOME", home.to_str().unwrap()),
        ("PASSPHRASE", KEYPASS),
    ];
    let o = run(
        &cairn_as_duplicity(),
        &args(&[
            "full",
            "--encrypt-key",
            &fpr,
            "--archive-dir",
            work.path().join("c").to_str().unwrap(),
            src.to_str().unwrap(),
            &file_url(&target),
        ]),
        &env,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("SHA-1 self-signatures") && err.contains("--quick-set-expire"),
        "{err}"
    );
    let dest = work.path().join("r");
    ok(
        &dup3(),
        &args(&[
            "restore",
            "--archive-dir",
            work.path().join("c3").to_str().unwrap(),
            &file_url(&target),
            dest.to_str().unwrap(),
        ]),
        &env,
    );
    assert_same_tree(&capture(&src), &capture(&dest), "SHA-1 key backup");
}
