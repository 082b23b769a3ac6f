//! Real servers for the remote-target tests, started by the tests on
//! loopback: an rsync daemon, an sshd with throwaway keys, moto's S3 server,
//! a fault-injecting TCP proxy and a private Tor network. Every process is
//! started in its own process group with PR_SET_PDEATHSIG, and killed (the
//! whole group) when its guard drops, also when a test panics.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A process (and its process group) that dies with its guard.
pub struct Proc {
    pub child: Child,
    pub what: String,
}

impl Proc {
    /// Starts `cmd` in a new process group that is SIGKILLed if this test
    /// process dies, whatever way.
    pub fn spawn(what: &str, mut cmd: Command) -> Proc {
        unsafe {
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = spawner(cmd)
            .unwrap_or_else(|e| panic!("cannot start {what}: {e} (run scripts/setup-backends)"));
        Proc {
            child,
            what: what.to_string(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` to the whole process group (daemons fork per client).
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(-self.pid(), sig);
        }
    }

    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

type SpawnReq = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);

/// Spawns from one thread that lives as long as the test process:
/// PR_SET_PDEATHSIG fires when the *thread* that forked exits, and test
/// threads (or a helper thread restarting a server) end early.
fn spawner(cmd: Command) -> std::io::Result<Child> {
    static TX: std::sync::OnceLock<Mutex<std::sync::mpsc::Sender<SpawnReq>>> =
        std::sync::OnceLock::new();
    let tx = TX.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnReq>();
        std::thread::spawn(move || {
            for (mut cmd, back) in rx {
                let _ = back.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (back, answer) = std::sync::mpsc::channel();
    tx.lock().unwrap().send((cmd, back)).unwrap();
    answer.recv().unwrap()
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_port(addr: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub fn wait_port_free(addr: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && TcpStream::connect(addr).is_ok() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

pub fn user_name() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn tmpdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("cairn-{tag}-"))
        .tempdir()
        .unwrap()
}

/// Runs `cmd` inside a private mount namespace whose `dir` is a tmpfs of
/// `size_kib`: the disk-full tests. Returns the wrapped command.
pub fn in_small_tmpfs(dir: &Path, size_kib: u64, program: &str, args: &[String]) -> Command {
    let mut script = format!(
        "mount -t tmpfs -o size={size_kib}k cairn-test {} && exec {}",
        shlex::try_quote(&dir.display().to_string()).unwrap(),
        shlex::try_quote(program).unwrap()
    );
    for a in args {
        script.push(' ');
        script.push_str(&shlex::try_quote(a).unwrap());
    }
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    c
}

/// Changes the size of the tmpfs `dir` in `pid`'s mount namespace.
pub fn resize_tmpfs(pid: i32, dir: &Path, size_kib: u64) {
    let st = Command::new("nsenter")
        .args(["--mount", "--target", &pid.to_string(), "mount", "-o"])
        .arg(format!("remount,size={size_kib}k"))
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "remounting the test tmpfs failed");
}

/// `dir` as process `pid` sees it (inside its mount namespace).
pub fn seen_by(pid: i32, dir: &Path) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root")).join(dir.strip_prefix("/").unwrap())
}

// ---------------------------------------------------------------- rsyncd

pub const RSYNC_USER: &str = "alice";
pub const RSYNC_PASSWORD: &str = "Pw-9f3c1e7d";

/// `rsync --daemon` on loopback with module `backup` (auth user alice, a
/// secrets file) whose files live in `module_dir`.
pub struct Rsyncd {
    pub dir: tempfile::TempDir,
    pub module_dir: PathBuf,
    pub addr: String,
    pub port: u16,
    /// KiB of tmpfs behind the module, for the disk-full tests.
    pub tmpfs_kib: Option<u64>,
    pub proc: Option<Proc>,
}

impl Rsyncd {
    pub fn start() -> Rsyncd {
        Self::start_on("127.0.0.1", free_port(), None)
    }

    /// On a chosen address and port (`127.0.0.X:873` for URLs without a port).
    pub fn start_on(ip: &str, port: u16, tmpfs_kib: Option<u64>) -> Rsyncd {
        let dir = tmpdir("rsyncd");
        let module_dir = dir.path().join("module");
        fs::create_dir(&module_dir).unwrap();
        let uid = if is_root() { "uid = 0\ngid = 0\n" } else { "" };
        fs::write(
            dir.path().join("rsyncd.conf"),
            format!(
                "address = {ip}\nport = {port}\nuse chroot = no\n{uid}\
                 pid file = {d}/rsyncd.pid\nlog file = {d}/rsyncd.log\n\
                 [backup]\npath = {m}\nread only = false\nauth users = {RSYNC_USER}\n\
                 secrets file = {d}/secrets\n\
                 [backups]\npath = {m}\nread only = false\nauth users = {RSYNC_USER}\n\
                 secrets file = {d}/secrets\n",
                d = dir.path().display(),
                m = module_dir.display()
            ),
        )
        .unwrap();
        let secrets = dir.path().join("secrets");
        fs::write(&secrets, format!("{RSYNC_USER}:{RSYNC_PASSWORD}\n")).unwrap();
        fs::set_permissions(&secrets, fs::Permissions::from_mode(0o600)).unwrap();
        let mut r = Rsyncd {
            dir,
            module_dir,
            addr: format!("{ip}:{port}"),
            port,
            tmpfs_kib,
            proc: None,
        };
        r.restart();
        r
    }

    pub fn restart(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
        wait_port_free(&self.addr, Duration::from_secs(5));
        let conf = self.dir.path().join("rsyncd.conf");
        let args = vec![
            "--daemon".to_string(),
            "--no-detach".to_string(),
            format!("--config={}", conf.display()),
        ];
        let mut cmd = match self.tmpfs_kib {
            Some(kib) => in_small_tmpfs(&self.module_dir, kib, "rsync", &args),
            None => {
                let mut c = Command::new("rsync");
                c.args(&args);
                c
            }
        };
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        self.proc = Some(Proc::spawn("rsync --daemon", cmd));
        assert!(
            wait_port(&self.addr, Duration::from_secs(10)),
            "rsync daemon did not start on {}",
            self.addr
        );
    }

    /// Kills the daemon and every session it forked.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    pub fn terminate(&mut self) {
        if let Some(p) = &self.proc {
            p.signal(libc::SIGTERM);
        }
        if let Some(mut p) = self.proc.take() {
            std::thread::sleep(Duration::from_millis(300));
            p.kill();
        }
    }

    pub fn pid(&self) -> i32 {
        self.proc.as_ref().expect("running").pid()
    }

    /// The module directory as the daemon sees it.
    pub fn files_dir(&self) -> PathBuf {
        match (self.tmpfs_kib, &self.proc) {
            (Some(_), Some(p)) => seen_by(p.pid(), &self.module_dir),
            _ => self.module_dir.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "rsync://{RSYNC_USER}@{}::backup/{}",
            self.addr,
            path.trim_start_matches('/')
        )
    }

    /// The URL with the password in it (library tests; the CLI tests pass
    /// it in FTP_PASSWORD).
    pub fn url_pw(&self, path: &str) -> String {
        self.url(path)
            .replacen(RSYNC_USER, &format!("{RSYNC_USER}:{RSYNC_PASSWORD}"), 1)
    }
}

// ---------------------------------------------------------------- sshd

/// An sshd on a loopback port with a private config, a throwaway host key
/// and a throwaway user key for the current user.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    pub user_key: PathBuf,
    pub known_hosts: PathBuf,
    /// `dir` holding a tmpfs (disk-full tests), if any.
    pub tmpfs: Option<(PathBuf, u64)>,
    pub proc: Option<Proc>,
}

pub fn keygen(path: &Path, kind: &str) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "cairn-test", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
}

impl Sshd {
    pub fn start() -> Sshd {
        Self::start_with(None)
    }

    pub fn start_with(tmpfs: Option<(PathBuf, u64)>) -> Sshd {
        let dir = tmpdir("sshd");
        let d = dir.path();
        keygen(&d.join("host_key"), "ed25519");
        keygen(&d.join("user_key"), "ed25519");
        fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        let port = free_port();
        let host_pub = fs::read_to_string(d.join("host_key.pub")).unwrap();
        let mut f = host_pub.split_whitespace();
        let (alg, key) = (f.next().unwrap(), f.next().unwrap());
        fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {alg} {key}\n"),
        )
        .unwrap();
        fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
                 PidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
                 StrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n\
                 LogLevel ERROR\nMaxStartups 100\n",
                d = d.display()
            ),
        )
        .unwrap();
        let _ = fs::create_dir_all("/run/sshd");
        let mut s = Sshd {
            port,
            user: user_name(),
            user_key: d.join("user_key"),
            known_hosts: d.join("known_hosts"),
            dir,
            tmpfs,
            proc: None,
        };
        s.restart();
        s
    }

    pub fn restart(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
        let addr = format!("127.0.0.1:{}", self.port);
        wait_port_free(&addr, Duration::from_secs(5));
        let args = vec![
            "-D".to_string(),
            "-e".to_string(),
            "-f".to_string(),
            self.dir.path().join("sshd_config").display().to_string(),
        ];
        let mut cmd = match &self.tmpfs {
            Some((dir, kib)) => in_small_tmpfs(dir, *kib, "/usr/sbin/sshd", &args),
            None => {
                let mut c = Command::new("/usr/sbin/sshd");
                c.args(&args);
                c
            }
        };
        cmd.stdout(Stdio::null())
            .stderr(fs::File::create(self.dir.path().join("sshd.log")).unwrap());
        self.proc = Some(Proc::spawn("sshd", cmd));
        assert!(
            wait_port(&addr, Duration::from_secs(10)),
            "sshd did not start on {addr}: {}",
            fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
        );
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    pub fn pid(&self) -> i32 {
        self.proc.as_ref().expect("running").pid()
    }

    /// ssh options for OpenSSH clients (rsync over ssh).
    pub fn ssh_options(&self) -> Vec<String> {
        vec![
            "-i".into(),
            self.user_key.display().to_string(),
            "-oIdentitiesOnly=yes".into(),
            format!("-oUserKnownHostsFile={}", self.known_hosts.display()),
            "-oGlobalKnownHostsFile=/dev/null".into(),
            "-oStrictHostKeyChecking=yes".into(),
            "-F".into(),
            "/dev/null".into(),
        ]
    }
}

// ---------------------------------------------------------------- S3

pub const S3_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const S3_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

pub fn moto_bin() -> PathBuf {
    let venv = std::env::var("CAIRN_S3_VENV").unwrap_or_else(|_| "/opt/cairn-s3".into());
    PathBuf::from(venv).join("bin/moto_server")
}

/// moto's S3 server on loopback (objects in memory).
pub struct Moto {
    pub port: u16,
    pub endpoint: String,
    pub proc: Option<Proc>,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        let dir = tmpdir("moto");
        let port = free_port();
        let log = dir.path().join("moto.log");
        let mut m = Moto {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            proc: None,
            log,
            _dir: dir,
        };
        m.restart();
        m
    }

    pub fn restart(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
        let addr = format!("127.0.0.1:{}", self.port);
        wait_port_free(&addr, Duration::from_secs(5));
        let mut cmd = Command::new(moto_bin());
        cmd.args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(fs::File::create(&self.log).unwrap());
        self.proc = Some(Proc::spawn("moto_server", cmd));
        assert!(
            wait_port(&addr, Duration::from_secs(30)),
            "moto_server did not start: {}",
            fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Sends one raw HTTP request; returns (status, body).
    pub fn http(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        http_request(&format!("127.0.0.1:{}", self.port), method, path, body)
    }

    pub fn create_bucket(&self, bucket: &str) {
        let (st, body) = self.http("PUT", &format!("/{bucket}"), b"");
        assert_eq!(st, 200, "creating bucket {bucket}: {body}");
    }

    /// Environment for Cairn: credentials and the endpoint.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), S3_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), S3_SECRET.into()),
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ]
    }
}

pub fn http_request(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

// ---------------------------------------------------------------- proxy

/// A TCP proxy in front of a server that can be "crashed": all connections
/// cut and new ones refused, after a number of bytes or on demand, and
/// "restarted". It stands in for a server that dies mid-upload and comes
/// back with its data (moto keeps objects in memory, so a real restart would
/// lose them).
pub struct FaultProxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    /// Cut everything once this many client bytes have passed (0 = never).
    cut_after: Arc<AtomicU64>,
    passed: Arc<AtomicU64>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(backend: &str) -> FaultProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let p = FaultProxy {
            port,
            up: Arc::new(AtomicBool::new(true)),
            cut_after: Arc::new(AtomicU64::new(0)),
            passed: Arc::new(AtomicU64::new(0)),
            conns: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (up, cut, passed, conns, stop) = (
            p.up.clone(),
            p.cut_after.clone(),
            p.passed.clone(),
            p.conns.clone(),
            p.stop.clone(),
        );
        let backend = backend.to_string();
        l.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let c = match l.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                c.set_nonblocking(false).unwrap();
                if !up.load(Ordering::SeqCst) {
                    let _ = c.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(s) = TcpStream::connect(&backend) else {
                    continue;
                };
                conns.lock().unwrap().push(c.try_clone().unwrap());
                conns.lock().unwrap().push(s.try_clone().unwrap());
                let (mut c2, mut s2) = (c.try_clone().unwrap(), s.try_clone().unwrap());
                let (up2, cut2, passed2, conns2) =
                    (up.clone(), cut.clone(), passed.clone(), conns.clone());
                std::thread::spawn(move || {
                    let mut c = c;
                    let mut s = s;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match c.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let total = passed2.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                        let limit = cut2.load(Ordering::SeqCst);
                        if limit > 0 && total >= limit {
                            up2.store(false, Ordering::SeqCst);
                            cut2.store(0, Ordering::SeqCst);
                            for k in conns2.lock().unwrap().drain(..) {
                                let _ = k.shutdown(Shutdown::Both);
                            }
                            break;
                        }
                        if s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s.shutdown(Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s2, &mut c2);
                    let _ = c2.shutdown(Shutdown::Write);
                });
            }
        });
        p
    }

    /// "Crashes" once `bytes` more client bytes have passed.
    pub fn crash_after(&self, bytes: u64) {
        self.cut_after
            .store(self.passed.load(Ordering::SeqCst) + bytes, Ordering::SeqCst);
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    pub fn restart(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    pub fn crash(&self) {
        self.up.store(false, Ordering::SeqCst);
        for k in self.conns.lock().unwrap().drain(..) {
            let _ = k.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.crash();
    }
}

// ---------------------------------------------------------------- SOCKS5

/// A fake Tor SocksPort: accepts CONNECT requests, records (ATYP, host,
/// port), and forwards `*.onion` to `target`, or answers `refuse` if set.
pub struct FakeSocks {
    pub addr: String,
    pub requests: Arc<Mutex<Vec<(u8, String, u16)>>>,
    stop: Arc<AtomicBool>,
}

impl FakeSocks {
    pub fn start(target: &str, refuse: Option<u8>) -> FakeSocks {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        l.set_nonblocking(true).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stop2, target) = (requests.clone(), stop.clone(), target.to_string());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                let reqs = reqs.clone();
                let target = target.clone();
                std::thread::spawn(move || {
                    let mut g = [0u8; 2];
                    if c.read_exact(&mut g).is_err() {
                        return;
                    }
                    let mut methods = vec![0u8; g[1] as usize];
                    c.read_exact(&mut methods).unwrap();
                    c.write_all(&[5, 0]).unwrap();
                    let mut head = [0u8; 4];
                    c.read_exact(&mut head).unwrap();
                    let host = match head[3] {
                        3 => {
                            let mut l = [0u8; 1];
                            c.read_exact(&mut l).unwrap();
                            let mut h = vec![0u8; l[0] as usize];
                            c.read_exact(&mut h).unwrap();
                            String::from_utf8_lossy(&h).into_owned()
                        }
                        1 => {
                            let mut a = [0u8; 4];
                            c.read_exact(&mut a).unwrap();
                            std::net::Ipv4Addr::from(a).to_string()
                        }
                        _ => {
                            let mut a = [0u8; 16];
                            c.read_exact(&mut a).unwrap();
                            std::net::Ipv6Addr::from(a).to_string()
                        }
                    };
                    let mut p = [0u8; 2];
                    c.read_exact(&mut p).unwrap();
                    let port = u16::from_be_bytes(p);
                    reqs.lock().unwrap().push((head[3], host.clone(), port));
                    let code = match refuse {
                        Some(code) => code,
                        None if host.ends_with(".onion") => 0,
                        None => 4,
                    };
                    if code != 0 {
                        let _ = c.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
                        return;
                    }
                    let Ok(s) = TcpStream::connect(&target) else {
                        let _ = c.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
                        return;
                    };
                    c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).unwrap();
                    let (mut c2, mut s2) = (c.try_clone().unwrap(), s.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut s2, &mut c2);
                        let _ = c2.shutdown(Shutdown::Both);
                    });
                    let mut c = c;
                    let mut s = s;
                    let _ = std::io::copy(&mut c, &mut s);
                    let _ = s.shutdown(Shutdown::Write);
                });
            }
        });
        FakeSocks {
            addr,
            requests,
            stop,
        }
    }
}

impl Drop for FakeSocks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------- checks

/// Asserts that every duplicity file in `dir` is a complete OpenPGP
/// message (gpg checks the MDC, so a truncated volume fails): nothing
/// incomplete carries a complete-looking name.
pub fn assert_all_complete(dir: &Path, passphrase: &str) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !e.file_type().unwrap().is_file() {
            continue;
        }
        assert!(
            name.starts_with("duplicity-"),
            "unexpected file {name} at the target"
        );
        if !name.ends_with(".gpg") {
            continue;
        }
        let out = Command::new("gpg")
            .args([
                "--batch",
                "--quiet",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                passphrase,
                "--decrypt",
                "--output",
                "/dev/null",
            ])
            .arg(e.path())
            .env("GNUPGHOME", tmpdir("gnupg").path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} looks complete but does not decrypt: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Writes `n` bytes of incompressible data.
pub fn random_file(path: &Path, n: usize, seed: u64) {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    fs::write(path, v).unwrap();
}

// ---------------------------------------------------------------- Cairn

pub const PASSPHRASE: &str = "remote-targets-pass";

pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `cairn backup --volsize MIB --archive-dir CACHE SRC URL`.
pub fn cairn_backup(
    url: &str,
    src: &Path,
    cache: &Path,
    volsize: u32,
    env: &[(&str, &str)],
) -> std::process::Output {
    let vs = volsize.to_string();
    let mut e = vec![("PASSPHRASE", PASSPHRASE)];
    e.extend_from_slice(env);
    super::run(
        &super::cairn(),
        &super::args(&[
            "backup",
            "--volsize",
            &vs,
            "--archive-dir",
            cache.to_str().unwrap(),
            src.to_str().unwrap(),
            url,
        ]),
        &e,
    )
}

/// `cairn restore --archive-dir CACHE URL DEST`.
pub fn cairn_restore(
    url: &str,
    dest: &Path,
    cache: &Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut e = vec![("PASSPHRASE", PASSPHRASE)];
    e.extend_from_slice(env);
    super::run(
        &super::cairn(),
        &super::args(&[
            "restore",
            "--archive-dir",
            cache.to_str().unwrap(),
            url,
            dest.to_str().unwrap(),
        ]),
        &e,
    )
}

/// Backs up `src` to `url`, changes it, backs up again (incremental),
/// restores into a new directory and compares with the source.
pub fn backup_twice_and_restore(url: &str, env: &[(&str, &str)]) {
    let work = tmpdir("e2e");
    let src = work.path().join("src");
    super::edge::build(&src, 3 << 20);
    let cache = work.path().join("cache");
    let o = cairn_backup(url, &src, &cache, 1, env);
    assert!(
        o.status.success(),
        "full backup to {url} failed:\n{}",
        text(&o)
    );
    super::edge::mutate(&src, 1);
    let o = cairn_backup(url, &src, &cache, 1, env);
    assert!(
        o.status.success(),
        "incremental backup to {url} failed:\n{}",
        text(&o)
    );
    // A fresh cache: everything comes from the target.
    let dest = work.path().join("restored");
    let o = cairn_restore(url, &dest, &work.path().join("cache2"), env);
    assert!(
        o.status.success(),
        "restore from {url} failed:\n{}",
        text(&o)
    );
    super::assert_same_tree(&super::capture(&src), &super::capture(&dest), url);
}

/// Exercises a backend: upload (committed and abandoned), list, open, get,
/// delete, and the errors for missing files.
pub fn exercise_backend(b: &dyn cairn::backend::Backend) {
    use cairn::backend::BackendError;
    let work = tmpdir("exercise");
    let big = work.path().join("big");
    random_file(&big, 3 << 20, 7);
    let big_data = fs::read(&big).unwrap();
    let n1 = "duplicity-full.20261125T000000Z.vol1.difftar.gpg";
    let n2 = "duplicity-full.20261125T000000Z.manifest.gpg";
    assert!(
        b.list().unwrap().is_empty(),
        "{} starts empty",
        b.describe()
    );
    let mut u = b.create(n1).unwrap();
    u.write_all(&big_data).unwrap();
    u.commit().unwrap();
    let mut u = b.create(n2).unwrap();
    u.write_all(b"manifest").unwrap();
    u.commit().unwrap();
    let mut u = b
        .create("duplicity-full.20261125T000000Z.vol2.difftar.gpg")
        .unwrap();
    u.write_all(&big_data[..1000]).unwrap();
    drop(u);
    assert_eq!(
        b.list().unwrap(),
        vec![n2.to_string(), n1.to_string()],
        "an abandoned upload is not listed"
    );
    let mut got = Vec::new();
    b.open(n1).unwrap().read_to_end(&mut got).unwrap();
    assert!(got == big_data, "open() returns what was uploaded");
    let dest = work.path().join("dest");
    b.get(n2, &dest).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), b"manifest");
    assert!(matches!(
        b.get("duplicity-full.20261125T000000Z.vol9.difftar.gpg", &dest),
        Err(BackendError::NotFound { .. })
    ));
    b.delete(&[n1.to_string(), n2.to_string(), "never-there".to_string()])
        .unwrap();
    assert!(b.list().unwrap().is_empty(), "delete removes the files");
}

impl Moto {
    /// moto with IAM authentication switched on: requests must be signed
    /// with the access key created here. Returns (server, key, secret).
    pub fn start_with_auth(bucket: &str) -> (Moto, String, String) {
        let dir = tmpdir("moto-auth");
        let port = free_port();
        let log = dir.path().join("moto.log");
        let mut cmd = Command::new(moto_bin());
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "4")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        let proc = Proc::spawn("moto_server", cmd);
        let addr = format!("127.0.0.1:{port}");
        assert!(
            wait_port(&addr, Duration::from_secs(30)),
            "moto did not start"
        );
        let iam = |body: &str| -> String {
            let mut s = TcpStream::connect(&addr).unwrap();
            write!(
                s,
                "POST / HTTP/1.1\r\nHost: {addr}\r\nAuthorization: AWS4-HMAC-SHA256 \
                 Credential=AKIASETUP/20260101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0\r\nContent-Type: \
                 application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut r = String::new();
            s.read_to_string(&mut r).unwrap();
            r
        };
        let tag = |r: &str, t: &str| -> String {
            let a = r.find(&format!("<{t}>")).unwrap() + t.len() + 2;
            let b = r[a..].find('<').unwrap();
            r[a..a + b].to_string()
        };
        iam("Action=CreateUser&UserName=cairn&Version=2010-05-08");
        let r = iam("Action=CreateAccessKey&UserName=cairn&Version=2010-05-08");
        let (key, secret) = (tag(&r, "AccessKeyId"), tag(&r, "SecretAccessKey"));
        iam(
            "Action=PutUserPolicy&UserName=cairn&PolicyName=all&Version=2010-05-08&PolicyDocument=\
             %7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow\
             %22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D",
        );
        let m = Moto {
            port,
            endpoint: format!("http://{addr}"),
            proc: Some(proc),
            log,
            _dir: dir,
        };
        m.create_bucket(bucket);
        (m, key, secret)
    }
}

// ---------------------------------------------------------------- Tor

/// A private Tor network on 127.0.0.1 made of Debian's `tor` alone: three
/// directory authorities, two relays, an onion service and a client with a
/// SOCKS port (research/tor.md §2). Authorities and relays start first; the
/// onion service and the client once a consensus lists every relay.
pub struct TorNet {
    pub dir: tempfile::TempDir,
    procs: Vec<Proc>,
    /// The client's SocksPort.
    pub socks: String,
    /// The onion service's address.
    pub onion: String,
    /// An arti configuration for this network.
    pub arti_toml: PathBuf,
    pub ready_after: Duration,
}

struct TorNode {
    name: String,
    kind: &'static str,
    dir: PathBuf,
    orport: u16,
    dirport: u16,
    v3ident: String,
    rsa: String,
    ed: String,
}

/// Voting interval (s): C tor's onion-service time period is 24 of them
/// under TestingTorNetwork; arti must be told (hsdir_interval, minutes).
const VOTING: u64 = 20;

impl TorNet {
    /// Starts the network with onion-service ports `(virtual, target)`;
    /// fails with the logs' tails if it is not ready by `deadline`.
    pub fn start(services: &[(u16, String)], deadline: Instant) -> Result<TorNet, String> {
        let t0 = Instant::now();
        let dir = tmpdir("tornet");
        let net = dir.path().to_path_buf();
        let empty = net.join("empty.torrc");
        fs::write(&empty, "").unwrap();
        let mut nodes = Vec::new();
        for (name, kind) in [
            ("auth0", "auth"),
            ("auth1", "auth"),
            ("auth2", "auth"),
            ("relay0", "relay"),
            ("relay1", "relay"),
            ("hs0", "hs"),
            ("client0", "client"),
        ] {
            let d = net.join(name);
            fs::create_dir(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
            nodes.push(TorNode {
                name: name.into(),
                kind,
                dir: d,
                orport: free_port(),
                dirport: free_port(),
                v3ident: String::new(),
                rsa: String::new(),
                ed: String::new(),
            });
        }
        for n in nodes.iter_mut().filter(|n| n.kind == "auth") {
            let keys = n.dir.join("keys");
            fs::create_dir(&keys).unwrap();
            let mut c = Command::new("tor-gencert");
            c.args(["--create-identity-key", "-m", "12", "-a"])
                .arg(format!("127.0.0.1:{}", n.dirport))
                .arg("-i")
                .arg(keys.join("authority_identity_key"))
                .arg("-s")
                .arg(keys.join("authority_signing_key"))
                .arg("-c")
                .arg(keys.join("authority_certificate"))
                .args(["--passphrase-fd", "0"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut ch = c
                .spawn()
                .map_err(|e| format!("tor-gencert: {e} (apt-get install tor)"))?;
            ch.stdin.take().unwrap().write_all(b"\n").unwrap();
            if !ch.wait().unwrap().success() {
                return Err("tor-gencert failed".into());
            }
            let cert = fs::read_to_string(keys.join("authority_certificate")).unwrap();
            n.v3ident = cert
                .lines()
                .find_map(|l| l.strip_prefix("fingerprint "))
                .ok_or("no fingerprint in the authority certificate")?
                .trim()
                .to_string();
            let st = Command::new("tor")
                .args(["--list-fingerprint", "--DataDirectory"])
                .arg(&n.dir)
                .args(["--ORPort", "1", "--Nickname", &n.name, "--DirAuthority"])
                .arg(format!("x 127.0.0.1:1 {}", "F".repeat(40)))
                .arg("--defaults-torrc")
                .arg(&empty)
                .arg("-f")
                .arg(&empty)
                .args(["--Log", "err stderr"])
                .stdout(Stdio::null())
                .status()
                .map_err(|e| format!("tor: {e} (apt-get install tor)"))?;
            if !st.success() {
                return Err("tor --list-fingerprint failed".into());
            }
            n.rsa = fs::read_to_string(n.dir.join("fingerprint"))
                .unwrap()
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_string();
            n.ed = fs::read_to_string(n.dir.join("fingerprint-ed25519"))
                .unwrap()
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_string();
        }
        let dirauth: Vec<String> = nodes
            .iter()
            .filter(|n| n.kind == "auth")
            .map(|n| {
                format!(
                    "DirAuthority {} orport={} no-v2 v3ident={} 127.0.0.1:{} {}",
                    n.name, n.orport, n.v3ident, n.dirport, n.rsa
                )
            })
            .collect();
        let socks_port = free_port();
        for n in &nodes {
            let d = n.dir.display();
            let mut l = vec![
                "TestingTorNetwork 1".to_string(),
                format!("Nickname {}", n.name),
                format!("DataDirectory {d}"),
                format!("PidFile {d}/tor.pid"),
                format!("Log notice file {d}/notice.log"),
                format!("Log info file {d}/info.log"),
                "SafeLogging 0".into(),
                "ShutdownWaitLength 0".into(),
                "Sandbox 0".into(),
                "RunAsDaemon 0".into(),
                "ClientUseIPv6 0".into(),
                "Address 127.0.0.1".into(),
                "PathsNeededToBuildCircuits 0.67".into(),
                "TestingDirAuthVoteExit *".into(),
                "TestingDirAuthVoteHSDir *".into(),
                "TestingDirAuthVoteGuard *".into(),
                "TestingMinExitFlagThreshold 0".into(),
                "V3AuthNIntervalsValid 2".into(),
                "DoSCircuitCreationEnabled 0".into(),
                "DoSConnectionEnabled 0".into(),
                "DoSRefuseSingleHopClientRendezvous 0".into(),
            ];
            l.extend(dirauth.iter().cloned());
            if n.kind == "auth" || n.kind == "relay" {
                l.extend([
                    format!("ORPort 127.0.0.1:{}", n.orport),
                    format!("DirPort 127.0.0.1:{}", n.dirport),
                    "SocksPort 0".into(),
                    "AssumeReachable 1".into(),
                    "ContactInfo test@test.invalid".into(),
                    "ServerDNSDetectHijacking 0".into(),
                    "ServerDNSTestAddresses".into(),
                    format!("ServerDNSResolvConfFile {}", empty.display()),
                    "ServerDNSAllowBrokenConfig 1".into(),
                    "ExitRelay 0".into(),
                    "ExitPolicy reject *:*".into(),
                ]);
            }
            if n.kind == "auth" {
                l.extend([
                    "AuthoritativeDirectory 1".to_string(),
                    "V3AuthoritativeDirectory 1".into(),
                    "AuthDirTestReachability 0".into(),
                    format!("TestingV3AuthInitialVotingInterval {VOTING}"),
                    "TestingV3AuthInitialVoteDelay 4".into(),
                    "TestingV3AuthInitialDistDelay 4".into(),
                    format!("V3AuthVotingInterval {VOTING}"),
                    "V3AuthVoteDelay 4".into(),
                    "V3AuthDistDelay 4".into(),
                ]);
            }
            if n.kind == "hs" {
                let hs = n.dir.join("hs");
                fs::create_dir(&hs).unwrap();
                fs::set_permissions(&hs, fs::Permissions::from_mode(0o700)).unwrap();
                l.push("SocksPort 0".into());
                l.push(format!("HiddenServiceDir {}", hs.display()));
                for (virt, target) in services {
                    l.push(format!("HiddenServicePort {virt} {target}"));
                }
            }
            if n.kind == "client" {
                l.push(format!("SocksPort 127.0.0.1:{socks_port}"));
            }
            fs::write(n.dir.join("torrc"), l.join("\n") + "\n").unwrap();
        }
        let mut tn = TorNet {
            dir,
            procs: Vec::new(),
            socks: format!("127.0.0.1:{socks_port}"),
            onion: String::new(),
            arti_toml: net.join("arti.toml"),
            ready_after: Duration::ZERO,
        };
        let launch = |tn: &mut TorNet, n: &TorNode| {
            let mut c = Command::new("tor");
            c.arg("-f")
                .arg(n.dir.join("torrc"))
                .arg("--defaults-torrc")
                .arg(&empty)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            tn.procs.push(Proc::spawn("tor", c));
        };
        for n in nodes
            .iter()
            .filter(|n| n.kind == "auth" || n.kind == "relay")
        {
            launch(&mut tn, n);
        }
        // Phased launch: the onion service and the client start once a
        // consensus lists every relay as Running.
        let consensus = nodes[0].dir.join("cached-consensus");
        loop {
            let running = fs::read_to_string(&consensus)
                .map(|t| {
                    t.lines()
                        .filter(|l| l.starts_with("s ") && l.contains("Running"))
                        .count()
                })
                .unwrap_or(0);
            if running >= 5 {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no full consensus after {:.0} s; auth0: {}",
                    t0.elapsed().as_secs_f64(),
                    tail(&nodes[0].dir.join("notice.log"))
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        for n in nodes
            .iter()
            .filter(|n| n.kind == "hs" || n.kind == "client")
        {
            launch(&mut tn, n);
        }
        let client_log = nodes[6].dir.join("notice.log");
        let hs_log = nodes[5].dir.join("info.log");
        loop {
            let client = fs::read_to_string(&client_log).unwrap_or_default();
            let hs = fs::read_to_string(&hs_log).unwrap_or_default();
            if client.contains("Bootstrapped 100%")
                && hs.contains("Uploading hidden service descriptor: finished with status 200")
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "private Tor network not ready after {:.0} s; client: {}; onion service: {}",
                    t0.elapsed().as_secs_f64(),
                    tail(&client_log),
                    tail(&nodes[5].dir.join("notice.log"))
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        tn.onion = fs::read_to_string(nodes[5].dir.join("hs/hostname"))
            .unwrap()
            .trim()
            .to_string();
        // arti for this network (research/tor.md §3), plus `cbtdisabled`:
        // on loopback arti learns circuit-build timeouts of ~75 ms, keeps
        // them in its state directory, and later onion-service circuits
        // (slower) then all "time out" in every process sharing that state.
        let auths: Vec<&TorNode> = nodes.iter().filter(|n| n.kind == "auth").collect();
        let mut toml = String::from("[tor_network]\nfallback_caches = [\n");
        for a in &auths {
            toml.push_str(&format!(
                "  {{ rsa_identity = \"{}\", ed_identity = \"{}\", orports = [\"127.0.0.1:{}\"] }},\n",
                a.rsa, a.ed, a.orport
            ));
        }
        toml.push_str("]\n[tor_network.authorities]\nv3idents = [");
        toml.push_str(
            &auths
                .iter()
                .map(|a| format!("\"{}\"", a.v3ident))
                .collect::<Vec<_>>()
                .join(", "),
        );
        toml.push_str(&format!(
            "]\n[path_rules]\nipv4_subnet_family_prefix = 33\nipv6_subnet_family_prefix = 129\n\
             [address_filter]\nallow_onion_addrs = true\nallow_local_addrs = true\n\
             [override_net_params]\nhsdir_interval = {}\ncbtdisabled = 1\n",
            24 * VOTING / 60
        ));
        fs::write(&tn.arti_toml, toml).unwrap();
        tn.ready_after = t0.elapsed();
        Ok(tn)
    }
}

fn tail(p: &Path) -> String {
    let t = fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(4)..].join(" | ")
}

/// Runs `cairn ARGS` under `timeout SECS` (a hard bound for the Tor tier).
pub fn cairn_bounded(secs: u64, a: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let s = secs.to_string();
    let cairn = super::cairn();
    let mut v: Vec<&str> = vec!["--kill-after=5", &s, cairn.to_str().unwrap()];
    v.extend_from_slice(a);
    super::run(Path::new("/usr/bin/timeout"), &super::args(&v), env)
}

/// A server that accepts connections and never says a word: what a hung
/// daemon or a dead network path looks like. Returns its address.
pub fn black_hole() -> (String, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let mut held = Vec::new();
        l.set_nonblocking(true).unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok((c, _)) = l.accept() {
                held.push(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (addr, h)
}
