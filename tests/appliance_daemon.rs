//! The appliance daemon (`cairn serve`) as a process, driven through its
//! HTTP API and its simulated board, backing up to a real rsync daemon on
//! loopback; stock duplicity restores what it wrote.

mod common;

use common::servers::{Proc, RSYNC_PASSWORD, Rsyncd, free_port, wait_port};
use common::*;
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASS: (&str, &str) = ("PASSPHRASE", "daemon-test-pass");

/// A `cairn serve` with its configuration directory.
struct Appliance {
    dir: tempfile::TempDir,
    addr: String,
    sim_clock: Option<i64>,
    proc: Option<Proc>,
    /// The dashboard session the API calls carry (a bearer token).
    token: String,
}

/// The dashboard's owner password in these tests.
const OWNER: &str = "owner password 1";

impl Appliance {
    /// An appliance whose configuration is `config` (`{DIR}` stands for
    /// its directory), with a 0600 passphrase file at `{DIR}/pass`.
    fn new(config: &str) -> Appliance {
        let dir = tmpdir();
        let pass = dir.path().join("pass");
        fs::write(&pass, PASS.1).unwrap();
        fs::set_permissions(&pass, fs::Permissions::from_mode(0o600)).unwrap();
        let a = Appliance {
            addr: format!("127.0.0.1:{}", free_port()),
            dir,
            sim_clock: None,
            proc: None,
            token: String::new(),
        };
        // The owner's claim token, as if put on the boot partition.
        fs::write(a.path("claim-token"), "test-claim\n").unwrap();
        a.write_config(config);
        a
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn write_config(&self, text: &str) {
        let text = text.replace("{DIR}", self.dir.path().to_str().unwrap());
        fs::write(self.path("cairn.toml"), text).unwrap();
    }

    fn start(&mut self) {
        let mut cmd = Command::new(cairn());
        cmd.args([
            "--config",
            self.path("cairn.toml").to_str().unwrap(),
            "serve",
        ]);
        cmd.args(["--board", "sim", "--listen", &self.addr]);
        if let Some(t) = self.sim_clock {
            cmd.args(["--sim-clock", &t.to_string()]);
        }
        cmd.env("FTP_PASSWORD", RSYNC_PASSWORD)
            .env("TMPDIR", self.dir.path())
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.path("daemon.log")).unwrap());
        self.proc = Some(Proc::spawn("cairn serve", cmd));
        assert!(
            wait_port(&self.addr, Duration::from_secs(20)),
            "{}",
            self.log()
        );
        self.log_in();
    }

    /// Claims the dashboard with the token the first time, logs in after
    /// (sessions live in memory: a restart ends them).
    fn log_in(&mut self) {
        self.token.clear();
        let (path, body) = if self.path("admin").exists() {
            ("/login", format!("{{\"password\":\"{OWNER}\"}}"))
        } else {
            (
                "/setup/claim",
                format!("{{\"password\":\"{OWNER}\",\"token\":\"test-claim\"}}"),
            )
        };
        let (code, body) = self.post(path, &body);
        assert_eq!(code, 200, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        self.token = v["token"].as_str().unwrap().to_string();
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }

    /// One HTTP/1.1 exchange; (status, body).
    fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.token,
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (code, body.to_string())
    }

    fn get(&self, path: &str) -> Value {
        let (code, body) = self.http("GET", path, "");
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn post(&self, path: &str, body: &str) -> (u16, String) {
        self.http("POST", path, body)
    }

    fn status(&self) -> Value {
        self.get("/api/status")
    }

    fn press(&self, ms: u64) {
        let (code, body) = self.post("/api/board/press", &format!("{{\"ms\":{ms}}}"));
        assert_eq!(code, 204, "{body}");
    }

    fn leds(&self) -> (bool, bool) {
        let b = self.get("/api/board");
        (b["green"].as_bool().unwrap(), b["red"].as_bool().unwrap())
    }

    /// Waits until `n` jobs have finished; returns the newest.
    fn wait_finished(&self, n: usize, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.status();
            // The daemon keeps the last 50; ids count every job.
            let done = s["finished"].as_array().unwrap();
            if done
                .first()
                .is_some_and(|j| j["job"]["id"].as_u64().unwrap() >= n as u64)
            {
                return done[0].clone();
            }
            assert!(
                Instant::now() < deadline,
                "{n} jobs not finished: {s:#}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `f` holds for the status.
    fn wait_for(&self, what: &str, limit: Duration, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.status();
            if f(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "never {what}: {s:#}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill9(&mut self) {
        self.proc.take().unwrap().kill();
    }
}

/// The configuration of one plan backing up `src` to `url`.
fn config(src: &Path, url: &str, extra_top: &str) -> String {
    format!(
        "restore_dir = \"{{DIR}}/restore\"\n{extra_top}\nsource = \"{}\"\ntarget = \"{url}\"\n\
         archive_dir = \"{{DIR}}/cache\"\nvolsize = 1\n\
         [encryption]\npassphrase_file = \"{{DIR}}/pass\"\n\
         [remote]\nnum_retries = 2\nretry_delay = 0\ntimeout = 10\n",
        src.display()
    )
}

/// A source of `mib` MiB of random data in 1 MiB files, plus small ones.
fn source(root: &Path, mib: usize) -> PathBuf {
    let src = root.join("src");
    fs::create_dir_all(src.join("docs")).unwrap();
    for i in 0..mib {
        fs::write(
            src.join(format!("blob{i}")),
            random_bytes(1 << 20, i as u64),
        )
        .unwrap();
    }
    fs::write(src.join("docs/note.txt"), b"remember the milk\n").unwrap();
    src
}

/// An HTTP server on loopback that answers 200 and keeps each request's
/// body: the webhook's receiver.
fn hook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = c.read(&mut chunk).unwrap_or(0);
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len || n == 0 {
                        break body.to_string();
                    }
                } else if n == 0 {
                    break String::new();
                }
            };
            kept.lock().unwrap().push(body);
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

/// Whether `history` (`[ms, green, red]`) shows `led` (1 green, 2 red)
/// turning on and off again.
fn blinked(history: &Value, led: usize) -> bool {
    let states: Vec<bool> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[led].as_bool().unwrap())
        .collect();
    states.windows(3).any(|w| w[0] && !w[1] && w[2])
}

#[test]
fn button_and_leds_from_good_to_failed_and_back_then_a_confirmed_restore() {
    let mut rsyncd = Rsyncd::start();
    let work = tmpdir();
    let src = source(work.path(), 12);
    let (webhook, received) = hook();
    let url = rsyncd.url_pw("pi");
    let mut a = Appliance::new(&format!(
        "{}[notify]\nwebhook = \"{webhook}\"\n",
        config(&src, &url, "")
    ));
    a.start();
    // Never backed up: attention (red), no green.
    let s = a.status();
    assert_eq!(s["health"], "stale", "{s:#}");
    assert_eq!(a.leds(), (false, true));

    // A short press backs up; green blinks while it runs, then stays on.
    a.press(150);
    let job = a.wait_finished(1, Duration::from_secs(120));
    assert_eq!(job["outcome"], "ok", "{job:#}");
    assert_eq!(job["job"]["origin"], "button");
    assert!(
        blinked(&a.get("/api/board")["history"], 1),
        "green did not blink"
    );
    a.wait_for("good", Duration::from_secs(5), |s| s["health"] == "good");
    assert_eq!(a.leds(), (true, false));

    // The target goes away: the next backup fails, red blinks fast.
    rsyncd.kill();
    a.press(150);
    let job = a.wait_finished(2, Duration::from_secs(120));
    assert_eq!(job["outcome"], "failed", "{job:#}");
    let s = a.wait_for("failed", Duration::from_secs(5), |s| {
        s["health"] == "failed"
    });
    assert!(
        s["plans"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("rsync"),
        "{s:#}"
    );
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        blinked(&a.get("/api/board")["history"], 2),
        "red did not blink"
    );

    // Back: good again.
    rsyncd.restart();
    a.press(150);
    assert_eq!(
        a.wait_finished(3, Duration::from_secs(120))["outcome"],
        "ok"
    );
    a.wait_for("good", Duration::from_secs(5), |s| s["health"] == "good");
    assert_eq!(a.leds(), (true, false));
    // The webhook heard each backup start and end, the failure and the
    // recovery, and never the target's password.
    std::thread::sleep(Duration::from_millis(500));
    let events: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for e in ["started", "succeeded", "failed", "recovered"] {
        assert!(
            events.iter().any(|x| x == e),
            "{e} not notified: {events:?}"
        );
    }
    let failed = events.iter().position(|e| e == "failed").unwrap();
    assert!(
        events[failed..].iter().any(|e| e == "recovered"),
        "{events:?}"
    );
    assert!(
        !received
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.contains(RSYNC_PASSWORD))
    );

    // A long press arms a restore (both LEDs alternate), a second confirms.
    a.press(3300);
    a.wait_for("armed", Duration::from_secs(10), |s| {
        s["activity"] == "awaiting_press"
    });
    a.press(150);
    let job = a.wait_finished(4, Duration::from_secs(120));
    assert_eq!(job["job"]["kind"], "restore", "{job:#}");
    assert_eq!(job["outcome"], "ok", "{job:#}");
    let restored: Vec<_> = fs::read_dir(a.path("restore")).unwrap().collect();
    assert_eq!(restored.len(), 1);
    let dest = restored[0].as_ref().unwrap().path();
    assert_same_tree(&capture(&src), &capture(&dest), "button restore");
    // Every gesture is an event in the catalog: 4 short presses, the arming.
    let cat = cairn::catalog::Catalog::open(&a.path("catalog.sqlite")).unwrap();
    let presses = cat
        .events(100)
        .unwrap()
        .into_iter()
        .filter(|e| e.2 == "button")
        .count();
    assert_eq!(presses, 5);
}

#[test]
fn killed_mid_backup_the_next_start_resumes_and_duplicity_restores() {
    let rsyncd = Rsyncd::start();
    let work = tmpdir();
    let src = source(work.path(), 24);
    let url = rsyncd.url("pi");
    let mut a = Appliance::new(&config(&src, &url, ""));
    a.start();
    let (code, body) = a.post("/api/jobs", r#"{"kind":"backup"}"#);
    assert_eq!(code, 202, "{body}");
    a.wait_for("3 volumes stored", Duration::from_secs(120), |s| {
        s["running"]["progress"]["volumes"].as_u64().unwrap_or(0) >= 3
    });
    a.kill9();
    a.start();
    let job = a.wait_finished(1, Duration::from_secs(120));
    assert_eq!(job["job"]["origin"], "resume", "{job:#}");
    assert_eq!(job["outcome"], "ok", "{job:#}");
    let dest = work.path().join("restored");
    ok(
        &dup3(),
        &args(&["restore", &url, dest.to_str().unwrap()]),
        &[PASS, ("FTP_PASSWORD", RSYNC_PASSWORD)],
    );
    assert_same_tree(&capture(&src), &capture(&dest), "duplicity restore");
}

#[test]
fn a_bad_config_keeps_it_up_and_sigterm_stops_a_backup_within_10_s() {
    let rsyncd = Rsyncd::start();
    let work = tmpdir();
    let src = source(work.path(), 24);
    let good = config(&src, &rsyncd.url("pi"), "");
    let mut a = Appliance::new(&good.replace("volsize = 1", "volsize = 1\nschedul = \"@daily\""));
    a.start();
    let s = a.status();
    assert_eq!(s["health"], "config_error", "{s:#}");
    assert_eq!(s["config_error"]["line"], 7, "{s:#}");
    assert!(
        s["config_error"]["message"]
            .as_str()
            .unwrap()
            .contains("schedul"),
        "{s:#}"
    );
    assert_eq!(a.leds(), (false, true));
    // Fixed on disk: picked up without a restart.
    a.write_config(&good);
    let s = a.wait_for("configured", Duration::from_secs(5), |s| {
        s["config_error"].is_null()
    });
    assert_eq!(s["plans"][0]["schedule"], "5 3 * * 2", "{s:#}");
    // The passphrase never shows.
    assert!(!a.http("GET", "/api/status", "").1.contains(PASS.1));

    a.post("/api/jobs", r#"{"kind":"backup"}"#);
    a.wait_for("2 volumes stored", Duration::from_secs(120), |s| {
        s["running"]["progress"]["volumes"].as_u64().unwrap_or(0) >= 2
    });
    let p = a.proc.as_mut().unwrap();
    let asked = Instant::now();
    p.signal(libc::SIGTERM);
    let code = loop {
        if let Some(st) = p.child.try_wait().unwrap() {
            break st.code();
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0), "{}", a.log());
    a.proc = None;
    a.start();
    let job = a.wait_finished(1, Duration::from_secs(120));
    assert_eq!(
        (job["job"]["origin"].as_str(), job["outcome"].as_str()),
        (Some("resume"), Some("ok")),
        "{job:#}"
    );
}

/// Tuesdays at 03:05 for three years, with the seed's policy: an
/// incremental each week, a full when the chain's full is older than two
/// months, the 12 newest chains kept. To a local disk (156 backups; the
/// rsync daemon is the other tests' target).
#[test]
fn the_seed_policy_over_three_simulated_years() {
    let work = tmpdir();
    let src = source(work.path(), 0);
    let url = file_url(&work.path().join("usb-disk"));
    let start = 1_704_067_200; // 2024-01-01, a Monday
    // The check reads a 26th of the volumes a week (each read costs gpg's
    // S2K, 65 MB of SHA-1): the default, 8 weeks, is 3 times the reads.
    let mut a = Appliance::new(&config(&src, &url, "verify_within = \"26W\""));
    a.sim_clock = Some(start);
    a.start();
    let weeks = 156;
    for week in 0..weeks {
        let s = a.status();
        let next = s["plans"][0]["next_run"].as_i64().expect("a next run");
        fs::write(src.join("docs/week.txt"), format!("week {week}\n")).unwrap();
        let (code, body) = a.post("/api/clock", &format!("{{\"now\":{}}}", next + 60));
        assert_eq!(code, 204, "{body}");
        let job = a.wait_finished(week + 1, Duration::from_secs(60));
        assert_eq!(job["outcome"], "ok", "week {week}: {job:#}");
    }
    let cat = cairn::catalog::Catalog::open(&a.path("catalog.sqlite")).unwrap();
    let sets = cat.sets(&url).unwrap();
    let fulls: Vec<_> = sets.iter().filter(|s| s.full).map(|s| s.end_time).collect();
    assert_eq!(fulls.len(), 12, "chains kept");
    // A full every 9th Tuesday (the first one older than 60 days).
    for w in fulls.windows(2) {
        assert!((w[1] - w[0] - 63 * 86400).abs() <= 3600, "{fulls:?}");
    }
    // Stock duplicity sees the same sets.
    let out = ok(
        &dup3(),
        &args(&["collection-status", &url]),
        &[PASS, ("FTP_PASSWORD", RSYNC_PASSWORD)],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let dup_sets = text
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("Full ") || l.trim_start().starts_with("Incremental ")
        })
        .count();
    assert_eq!(dup_sets, sets.len(), "{text}");
    // The rotating check has read every stored volume within 26 weeks.
    let metrics = a.http("GET", "/metrics", "").1;
    let coverage = metrics
        .lines()
        .find(|l| l.starts_with("cairn_verify_coverage_ratio"))
        .unwrap();
    assert!(coverage.ends_with(" 1"), "{coverage}");
    assert_eq!(text.matches("Full ").count(), 12, "{text}");
}

/// A volume rotted at the target: the rotating check after the next
/// backup names it, and the LEDs ask for attention.
#[test]
fn the_rotating_check_finds_a_rotted_volume() {
    let work = tmpdir();
    let src = source(work.path(), 3);
    let disk = work.path().join("usb-disk");
    let mut a = Appliance::new(&config(&src, &file_url(&disk), "verify_within = \"1D\""));
    a.start();
    a.post("/api/jobs", r#"{"kind":"backup"}"#);
    let job = a.wait_finished(1, Duration::from_secs(60));
    // The first check reads every volume (1 day is less than a week).
    let msg = job["message"].as_str().unwrap();
    let counts = msg
        .split("checked ")
        .nth(1)
        .unwrap()
        .split(" volume")
        .next()
        .unwrap();
    let (n, of) = counts.split_once(" of ").unwrap();
    assert_eq!(n, of, "{msg}");
    a.wait_for("good", Duration::from_secs(5), |s| s["health"] == "good");
    let metrics = a.http("GET", "/metrics", "").1;
    assert!(
        metrics.contains("cairn_verify_coverage_ratio{plan=\"main\""),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("cairn_verify_coverage_ratio") && l.ends_with(" 1")),
        "{metrics}"
    );

    let vol2 = fs::read_dir(&disk)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".vol2.difftar"))
        .unwrap();
    let mut bytes = fs::read(&vol2).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&vol2, bytes).unwrap();

    fs::write(src.join("docs/note.txt"), b"and the eggs\n").unwrap();
    a.post("/api/jobs", r#"{"kind":"backup"}"#);
    let job = a.wait_finished(2, Duration::from_secs(60));
    assert_eq!(job["outcome"], "ok", "{job:#}");
    let s = a.wait_for("problem", Duration::from_secs(5), |s| {
        s["health"] == "problem"
    });
    let problem = s["plans"][0]["problem"].as_str().unwrap();
    assert!(problem.contains(".vol2.difftar"), "{problem}");
    assert_eq!(a.leds(), (false, true));
}

/// A plan with a further target: the set is encoded once, copied to the
/// USB disk, and stock duplicity restores it from each.
#[test]
fn two_targets_both_receive_the_set_and_duplicity_restores_from_each() {
    let rsyncd = Rsyncd::start();
    let work = tmpdir();
    let src = source(work.path(), 4);
    let url = rsyncd.url("pi");
    let usb = file_url(&work.path().join("usb-disk"));
    let mut a = Appliance::new(&config(&src, &url, &format!("replicas = [\"{usb}\"]")));
    a.start();
    for n in 1..=2 {
        fs::write(src.join("docs/note.txt"), format!("version {n}\n")).unwrap();
        a.post("/api/jobs", r#"{"kind":"backup"}"#);
        assert_eq!(
            a.wait_finished(n, Duration::from_secs(120))["outcome"],
            "ok"
        );
    }
    let s = a.status();
    let replica = &s["plans"][0]["replicas"][0];
    assert_eq!(replica["last_ok"], true, "{s:#}");
    assert_eq!(s["health"], "good", "{s:#}");
    for (name, target) in [("primary", &url), ("replica", &usb)] {
        let dest = work.path().join(format!("restored-{name}"));
        ok(
            &dup3(),
            &args(&["restore", target, dest.to_str().unwrap()]),
            &[PASS, ("FTP_PASSWORD", RSYNC_PASSWORD)],
        );
        assert_same_tree(&capture(&src), &capture(&dest), name);
    }
    // A catalog rebuilt from the primary keeps the plan's run log.
    a.post("/api/jobs", r#"{"kind":"rebuild"}"#);
    let job = a.wait_finished(3, Duration::from_secs(60));
    assert_eq!(job["outcome"], "ok", "{job:#}");
    assert!(
        job["message"]
            .as_str()
            .unwrap()
            .contains("2 set(s) indexed"),
        "{job:#}"
    );
    let cat = cairn::catalog::Catalog::open(&a.path("catalog.sqlite")).unwrap();
    assert_eq!(cat.sets(&url).unwrap().len(), 2);
    let (last, success) = cat.last_plan_run("main", "backup").unwrap();
    assert_eq!(last.unwrap().outcome, "ok");
    assert!(success.is_some());
    // The further target's state survives a restart.
    a.kill9();
    a.start();
    let s = a.status();
    assert_eq!(s["plans"][0]["replicas"][0]["last_ok"], true, "{s:#}");
    assert!(
        s["plans"][0]["replicas"][0]["last_success"].is_i64(),
        "{s:#}"
    );
    // The copy holds exactly the target's files.
    let listed = |dir: &Path| {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        listed(&rsyncd.module_dir.join("pi")),
        listed(&work.path().join("usb-disk"))
    );
}

/// A Pi boots without a real-time clock: until network time sets it,
/// backups wait rather than stamp a set 1970.
#[test]
fn backups_wait_for_a_clock_that_network_time_has_not_set() {
    let work = tmpdir();
    let src = source(work.path(), 0);
    let mut a = Appliance::new(&config(&src, &file_url(&work.path().join("t")), ""));
    a.sim_clock = Some(86_400);
    a.start();
    let s = a.status();
    assert_eq!(s["clock_ok"], false, "{s:#}");
    assert_eq!(s["health"], "stale", "{s:#}");
    let (code, body) = a.post("/api/jobs", r#"{"kind":"backup"}"#);
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("clock"), "{body}");
    // NTP: the clock jumps to 2024. The slots missed since the start run
    // once, stamped with the right date.
    a.post("/api/clock", r#"{"now":1717200000}"#);
    let job = a.wait_finished(1, Duration::from_secs(60));
    assert_eq!(job["outcome"], "ok", "{job:#}");
    assert_eq!(job["job"]["origin"], "schedule", "{job:#}");
    let times = backup_times(&work.path().join("t"));
    assert_eq!(times, vec!["20240601T000000Z".to_string()]);
    // A backup asked for now is the next second's set: the simulated clock
    // moves a second per job, so no two sets are stamped alike.
    let (code, body) = a.post("/api/jobs", r#"{"kind":"backup"}"#);
    assert_eq!(code, 202, "{body}");
    assert_eq!(a.wait_finished(2, Duration::from_secs(60))["outcome"], "ok");
    assert_eq!(backup_times(&work.path().join("t")).len(), 2);
}
