//! The appliance daemon's footprint: `cairn serve` idle (RSS, CPU over
//! 20 s), a full backup of the benchmark tree (618 MB; `--quick`: a tenth)
//! queued through its API (time, peak RSS), and its RSS once idle again,
//! against the goals of a Pi Zero 2 W with 512 MB: idle under 30 MB, no CPU
//! between jobs, under 96 MB during the backup. Exits 1 if a goal is missed.
//! `just bench-appliance [--quick]`.

mod common;

use common::{Table, bench_args, bench_tree, machine, verdict};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IDLE_RSS_MB: f64 = 30.0;
const BACKUP_RSS_MB: f64 = 96.0;

fn main() {
    let Some(argv) = bench_args("appliance: a benchmark; run it with `just bench-appliance`")
    else {
        return;
    };
    let quick = argv.iter().any(|a| a == "--quick");
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench");
    let tree = bench_tree(&base, quick);
    let work = base.join("appliance");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let mut daemon = Daemon::start(&work, &tree);
    let (cores, load) = machine();
    let mut t = Table::default();
    t.line("| measure | value | goal | |".into());
    t.line("|---|---|---|---|".into());
    let idle = daemon.vm("VmHWM");
    let ticks = daemon.cpu_ticks_over(Duration::from_secs(20));
    let started = Instant::now();
    daemon.backup();
    let secs = started.elapsed().as_secs_f64();
    let peak = daemon.vm("VmHWM");
    let after = daemon.vm("VmRSS");
    let rows = [
        ("idle, peak RSS", format!("{idle:.1} MB"), IDLE_RSS_MB, idle),
        (
            "idle, CPU time over 20 s",
            format!("{ticks} ticks"),
            0.5,
            ticks as f64,
        ),
        (
            "full backup, peak RSS",
            format!("{peak:.1} MB"),
            BACKUP_RSS_MB,
            peak,
        ),
        (
            "idle after the backup, RSS",
            format!("{after:.1} MB"),
            IDLE_RSS_MB,
            after,
        ),
    ];
    let mut ok = true;
    for (what, value, goal, measured) in rows {
        ok &= measured < goal;
        t.line(format!(
            "| {what} | {value} | < {goal} | {} |",
            verdict(measured < goal)
        ));
    }
    t.line(format!(
        "| full backup through `POST /api/jobs`, wall time | {secs:.1} s | | |"
    ));
    daemon.stop();
    t.write(
        &base.join("appliance-results.md"),
        &format!(
            "cairn serve, {} tree, {cores} cores, load {}",
            tree.display(),
            load.trim()
        ),
    );
    let _ = fs::remove_dir_all(&work);
    if !ok {
        std::process::exit(1);
    }
}

/// `cairn serve` on loopback with a simulated board, backing up `tree`.
struct Daemon {
    child: Child,
    addr: String,
    /// The dashboard session (claimed with a boot-partition token).
    token: String,
}

impl Daemon {
    fn start(work: &Path, tree: &Path) -> Daemon {
        let pass = work.join("pass");
        fs::write(&pass, "bench").unwrap();
        fs::set_permissions(&pass, fs::Permissions::from_mode(0o600)).unwrap();
        let conf = work.join("cairn.toml");
        let toml = format!(
            "source = \"{}\"\ntarget = \"file://{}\"\n[encryption]\npassphrase_file = \"{}\"\n",
            tree.display(),
            work.join("target").display(),
            pass.display()
        );
        fs::write(&conf, toml).unwrap();
        fs::write(work.join("claim-token"), "bench-claim").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("--config")
            .arg(&conf)
            .args(["serve", "--board", "sim", "--listen", &addr])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut d = Daemon {
            child,
            addr,
            token: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&d.addr).is_err() {
            assert!(Instant::now() < deadline, "cairn serve did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = d.http(
            "POST",
            "/setup/claim",
            r#"{"password":"bench password","token":"bench-claim"}"#,
        );
        let body = text.split_once("\r\n\r\n").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        d.token = v["token"].as_str().expect("claimed").to_string();
        std::thread::sleep(Duration::from_secs(2));
        d
    }

    /// A line of /proc/PID/status, in MB.
    fn vm(&self, key: &str) -> f64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap();
        kb / 1024.0
    }

    /// User + system clock ticks the daemon spends over `d`.
    fn cpu_ticks_over(&self, d: Duration) -> u64 {
        let ticks = || {
            let stat = fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = after.split_whitespace().collect();
            f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
        };
        let before = ticks();
        std::thread::sleep(d);
        ticks() - before
    }

    fn http(&self, method: &str, path: &str, body: &str) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
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
        text
    }

    /// Queues a backup and waits for it to finish successfully.
    fn backup(&self) {
        self.http("POST", "/api/jobs", r#"{"kind":"backup"}"#);
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let text = self.http("GET", "/api/status", "");
            let body = text.split_once("\r\n\r\n").unwrap().1;
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            if let Some(j) = v["finished"].as_array().and_then(|f| f.first()) {
                assert_eq!(j["outcome"], "ok", "{j}");
                return;
            }
        }
    }

    fn stop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
