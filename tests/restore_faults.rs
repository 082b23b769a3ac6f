//! Bad input on restore: each case gets a clear message and a non-zero exit,
//! nothing is written outside DEST, and everything that does not depend on
//! the damage is still restored.

mod common;

use common::*;
use sha1::{Digest, Sha1};
use std::fs;
use std::io::Write;
use std::path::Path;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sample(work: &Path, set: &str) -> std::path::PathBuf {
    let t = work.join(set);
    copy_dir(&samples().join(set), &t);
    t
}

fn restore(
    target: &Path,
    dest: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let url = file_url(target);
    let cache = dest.with_extension("cache");
    let mut a = vec!["restore", "--archive-dir", cache.to_str().unwrap()];
    a.extend_from_slice(extra);
    a.push(&url);
    a.push(dest.to_str().unwrap());
    run(&cairn(), &args(&a), env)
}

fn only_file(dir: &Path, contains: &str) -> std::path::PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().contains(contains))
        .unwrap_or_else(|| panic!("no file with {contains}"))
}

#[test]
fn wrong_or_missing_passphrase_is_a_clear_error_and_writes_nothing() {
    let work = tmpdir();
    let t = sample(work.path(), "dup0822-sym");
    let dest = work.path().join("out");
    let o = restore(&t, &dest, &[], &[("PASSPHRASE", "not-it")]);
    assert_eq!(o.status.code(), Some(31), "{}", stderr(&o));
    assert!(stderr(&o).contains("wrong passphrase"), "{}", stderr(&o));
    assert!(
        !dest.exists() || fs::read_dir(&dest).unwrap().next().is_none(),
        "nothing restored"
    );

    let o = restore(&t, &dest, &[], &[]);
    assert_eq!(o.status.code(), Some(31));
    assert!(stderr(&o).contains("set PASSPHRASE"), "{}", stderr(&o));
}

#[test]
fn missing_volume_is_named_and_everything_else_restores() {
    let work = tmpdir();
    let t = sample(work.path(), "dup0822-noenc");
    // Full vol2 holds big.bin chunks 16.. and the paths after it.
    fs::remove_file(only_file(&t, "duplicity-full.20261125T073455Z.vol2")).unwrap();
    let dest = work.path().join("out");
    let o = restore(&t, &dest, &[], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(21), "{err}");
    assert!(err.contains("vol2") && err.contains("missing"), "{err}");
    assert!(
        err.contains("big.bin"),
        "files depending on the volume are named: {err}"
    );
    let tree = capture(&dest);
    // big.bin spans vol1 and vol2: it must not be restored half.
    assert!(!tree.contains_key(&b"big.bin"[..]), "no half-restored file");
    // Paths in vol1 are fine, and so are paths the incremental re-sent.
    for p in ["a.txt", "new.txt", "link_to_a"] {
        assert!(tree.contains_key(p.as_bytes()), "{p} restored");
    }
    // Paths only in vol2 are gone, and the volume's range says which.
    assert!(!tree.contains_key(&b"exact64k.bin"[..]));
    assert!(err.contains("paths big.bin to"), "{err}");
    // sub/changeme.txt was in vol2 (only a delta in the incremental): unrestorable.
    assert!(!tree.contains_key(&b"sub/changeme.txt"[..]));
    // No temporary files left behind.
    assert!(
        tree.keys()
            .all(|k| !String::from_utf8_lossy(k).contains(".cairn-restore"))
    );
}

#[test]
fn truncated_or_corrupt_volume_fails_its_hash() {
    for damage in ["truncate", "flip"] {
        let work = tmpdir();
        let t = sample(work.path(), "dup321-noenc");
        let vol = only_file(&t, "duplicity-inc.");
        let vol = if vol.to_str().unwrap().contains(".vol1.") {
            vol
        } else {
            only_file(&t, ".vol1.difftar")
        };
        let mut bytes = fs::read(&vol).unwrap();
        if damage == "truncate" {
            bytes.truncate(bytes.len() / 2);
        } else {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x55;
        }
        fs::write(&vol, &bytes).unwrap();
        let dest = work.path().join("out");
        let o = restore(&t, &dest, &[], &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(21), "{damage}: {err}");
        assert!(
            err.contains("SHA1") && err.contains(vol.file_name().unwrap().to_str().unwrap()),
            "{damage}: {err}"
        );
        assert!(err.contains("INCOMPLETE"), "{err}");
    }
}

#[test]
fn non_empty_destination_needs_force() {
    let work = tmpdir();
    let t = sample(work.path(), "dup321-noenc");
    let dest = work.path().join("out");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("precious.txt"), b"keep me").unwrap();
    let o = restore(&t, &dest, &[], &[]);
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"));
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 1, "nothing written");
    let o = restore(&t, &dest, &["--force"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fs::read(dest.join("precious.txt")).unwrap(),
        b"keep me",
        "unrelated files stay"
    );
    assert!(dest.join("new.txt").exists());
}

#[test]
fn target_without_backups_and_bad_manifest() {
    let work = tmpdir();
    let empty = work.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let o = restore(&empty, &work.path().join("o1"), &[], &[]);
    assert_eq!(o.status.code(), Some(30));
    assert!(stderr(&o).contains("no backups"), "{}", stderr(&o));

    let t = sample(work.path(), "dup0822-plain");
    let m = only_file(&t, "duplicity-full.20261125T073506Z.manifest");
    fs::write(&m, b"Hostname vm\nVolume 1:\n    Hash SHA1 00\n").unwrap();
    let o = restore(&t, &work.path().join("o2"), &[], &[]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("manifest") && stderr(&o).contains("StartingPath"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn path_not_in_backup() {
    let work = tmpdir();
    let t = sample(work.path(), "dup321-noenc");
    let o = restore(&t, &work.path().join("o"), &["--path", "no/such/file"], &[]);
    assert_eq!(o.status.code(), Some(19), "{}", stderr(&o));
    assert!(stderr(&o).contains("no/such/file"));
}

/// Writes a one-volume gzip full backup whose tar holds `entries`
/// (name, type, data, link target), with a correct manifest.
type RawEntry<'a> = (&'a [u8], tar::EntryType, &'a [u8], &'a [u8]);

fn hostile_target(dir: &Path, entries: &[RawEntry]) {
    fs::create_dir_all(dir).unwrap();
    let mut tarball = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        // Raw name bytes: the tar crate refuses ".." in set_path, attackers do not.
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name);
        if !link.is_empty() {
            gnu.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_cksum();
        tarball.append(&h, *data).unwrap();
    }
    let tar_bytes = tarball.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar_bytes).unwrap();
    let vol = gz.finish().unwrap();
    let t = "20261125T073022Z";
    fs::write(
        dir.join(format!("duplicity-full.{t}.vol1.difftar.gz")),
        &vol,
    )
    .unwrap();
    let sha = hex::encode(Sha1::digest(&vol));
    let manifest = format!(
        "Hostname h\nLocaldir src\nVolume 1:\n    StartingPath   .  \n    EndingPath     zzz  \n    Hash SHA1 {sha}\nFilelist 0\n"
    );
    fs::write(dir.join(format!("duplicity-full.{t}.manifest")), manifest).unwrap();
}

#[test]
fn hostile_paths_never_escape_the_destination() {
    let work = tmpdir();
    let t = work.path().join("evil");
    let outside = work.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let outside_s = outside.to_str().unwrap().as_bytes().to_vec();
    hostile_target(
        &t,
        &[
            (b"snapshot/./", tar::EntryType::Directory, b"", b""),
            (
                b"snapshot/../escaped.txt",
                tar::EntryType::Regular,
                b"pwned",
                b"",
            ),
            (
                b"snapshot/a/../../escaped2.txt",
                tar::EntryType::Regular,
                b"pwned",
                b"",
            ),
            (b"snapshot/fine.txt", tar::EntryType::Regular, b"fine", b""),
            // A symlink to outside, then a file "inside" it.
            (b"snapshot/link", tar::EntryType::Symlink, b"", &outside_s),
            (
                b"snapshot/link/pwned.txt",
                tar::EntryType::Regular,
                b"pwned",
                b"",
            ),
            (
                b"snapshot//etc/passwd",
                tar::EntryType::Regular,
                b"pwned",
                b"",
            ),
        ],
    );
    let dest = work.path().join("dest");
    let o = restore(&t, &dest, &[], &[]);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("security violation"), "{err}");
    assert!(!work.path().join("escaped.txt").exists());
    assert!(!work.path().join("escaped2.txt").exists());
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing written through the symlink"
    );
    assert_eq!(fs::read(dest.join("fine.txt")).unwrap(), b"fine");
    // The symlink itself is restored as a symlink, and `link/pwned.txt`
    // replaced it with a real directory inside DEST instead of following it.
    let tree = capture(&dest);
    assert!(tree.keys().all(|k| !k.starts_with(b"etc")));
}
