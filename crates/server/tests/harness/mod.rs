//! The conformance harness: the real `iomodels` binary, real sockets on 127.0.0.1.
//!
//! Every server runs as its own process (in its own process group, so a
//! failing test leaves no forked children behind), started on port 0; the
//! harness reads the real port from its ready line. Every socket has a
//! generous timeout, so a broken model fails a test instead of hanging it.
//! No assertion depends on how fast the machine is: waits are upper bounds
//! on something that must happen, never measurements.
#![allow(dead_code)] // each test file uses its own part of the harness

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use iomodels_server::Model;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The longest any single socket operation may take before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The `iomodels` binary, built once per test run with the profile of the
/// running tests, so the suite never runs against a stale binary.
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/conformance-<hash> -> target/<profile>/iomodels
        let exe = env::current_exe().expect("the test binary has a path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/");
        let target_dir = profile_dir.parent().expect("target/<profile>");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_owned(),
            Some(name) => name.to_owned(),
            None => panic!("cannot tell the profile from {}", exe.display()),
        };
        let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "iomodels",
                "--bin",
                "iomodels",
                "--profile",
            ])
            .arg(&profile)
            .arg("--target-dir")
            .arg(target_dir)
            .status()
            .expect("cannot run cargo to build the iomodels binary");
        assert!(status.success(), "building the iomodels binary failed");
        profile_dir.join("iomodels")
    })
}

/// What the suite runs: a model, with the flags that pick one of its
/// variants (`epoll --edge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    pub model: &'static Model,
    pub flags: &'static [&'static str],
}

impl Subject {
    pub const fn new(model: &'static Model, flags: &'static [&'static str]) -> Self {
        Self { model, flags }
    }

    /// Its name as a test path: `thread_pool`, `epoll_edge`.
    pub fn ident(&self) -> String {
        let mut ident = self.model.name().replace('-', "_");
        for flag in self.flags {
            ident.push('_');
            ident.push_str(&flag.trim_start_matches('-').replace('-', "_"));
        }
        ident
    }

    /// The model's own capacity (see [`Model::capacity`]).
    pub fn capacity(&self, config: &iomodels_server::Config) -> Option<usize> {
        self.model.capacity(config)
    }
}

impl From<&'static Model> for Subject {
    fn from(model: &'static Model) -> Self {
        Self::new(model, &[])
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.model.name())?;
        self.flags.iter().try_for_each(|flag| write!(f, " {flag}"))
    }
}

/// Waits for `child` to exit, at most [`IO_TIMEOUT`]; past that kills it and
/// fails with `why`: for tests whose failure is a process that never ends.
pub fn exit_within_timeout(child: &mut Child, why: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > IO_TIMEOUT {
            let _ = child.kill();
            panic!("{why}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A running `iomodels serve`; killed, with its process group, when dropped.
pub struct Server {
    child: Child,
    pub model: Subject,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// `iomodels serve --model MODEL --addr 127.0.0.1:0 ARGS...`
    pub fn start(model: impl Into<Subject>, args: &[&str]) -> Self {
        Self::spawn(model.into(), args, None)
    }

    /// The same, with the descriptor limit (`ulimit -n`) set to `nofile`.
    pub fn start_with_nofile(model: impl Into<Subject>, args: &[&str], nofile: u32) -> Self {
        Self::start_with_limits(model, args, &format!("-n {nofile}"))
    }

    /// The same, with bash's `ulimit` flags `limits` (`-i 8`: at most 8
    /// signals queued).
    pub fn start_with_limits(model: impl Into<Subject>, args: &[&str], limits: &str) -> Self {
        Self::spawn(model.into(), args, Some(limits))
    }

    fn spawn(model: Subject, args: &[&str], limits: Option<&str>) -> Self {
        let mut serve_args = vec![
            "serve",
            "--model",
            model.model.name(),
            "--addr",
            "127.0.0.1:0",
        ];
        serve_args.extend_from_slice(model.flags);
        serve_args.extend_from_slice(args);
        let mut command = match limits {
            None => Command::new(bin()),
            Some(limits) => {
                // The shell sets the limits, then becomes the server: same
                // pid. bash, because dash's ulimit lacks some (-i).
                let mut sh = Command::new("bash");
                sh.arg("-c")
                    .arg(format!("ulimit {limits} && exec \"$0\" \"$@\""))
                    .arg(bin());
                sh
            }
        };
        command
            .args(&serve_args)
            .env("IOMODELS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().expect("cannot start iomodels serve");

        // Read stderr on a thread: the ready line comes back on a channel, and
        // everything is kept for the failure message of a test.
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        let kept = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Kept before the ready line is announced, so a test that
                // looks at the log right after start finds the line in it.
                {
                    let mut kept = kept.lock().unwrap();
                    kept.push_str(&line);
                    kept.push('\n');
                }
                if let Some(addr) = line.split(" listening on ").nth(1) {
                    let _ = ready_tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = match ready_rx.recv_timeout(IO_TIMEOUT) {
            Ok(addr) => addr.parse().expect("the ready line carries IP:PORT"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{model} never said it was listening; log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Self {
            child,
            model,
            addr,
            log,
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).expect("pids fit in i32"))
    }

    /// A client socket with the harness's timeouts.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap_or_else(|e| {
            panic!(
                "cannot connect to {} ({}): {e}; log:\n{}",
                self.model,
                self.addr,
                self.log()
            )
        });
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("the server is still there to signal");
    }

    /// Waits for the server to exit, at most `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < within,
                "{} did not exit within {within:?}; log:\n{}",
                self.model,
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The share of one core the server's process tree used over `span`.
    pub fn busy_over(&self, span: Duration) -> f64 {
        let (cpu, wall) = (self.cpu_seconds(), Instant::now());
        thread::sleep(span);
        (self.cpu_seconds() - cpu) / wall.elapsed().as_secs_f64()
    }

    /// Connects, sends `message` and expects it back upper-cased, retrying
    /// (at most [`IO_TIMEOUT`]) while the server closes each try: it frees a
    /// slot only once it has seen a client leave.
    pub fn served_again(&self, message: &[u8]) {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let mut client = self.connect();
            let _ = client.write_all(message);
            let mut reply = vec![0; message.len()];
            if client.read_exact(&mut reply).is_ok() {
                assert_eq!(reply, upper(message));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} never served again",
                self.model
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most [`IO_TIMEOUT`]) until the server's log holds `text`:
    /// lines are read on another thread, so one may still be on its way.
    pub fn wait_log(&self, text: &str) {
        wait_until(&format!("{} to log {text:?}", self.model), || {
            self.log().contains(text)
        });
    }

    /// Waits (at most [`IO_TIMEOUT`]) until a connect is refused, polling;
    /// fails with `why` if the server keeps accepting. A connect reset
    /// half-way is no answer yet: with several listeners on the port
    /// (`SO_REUSEPORT`), one may close while this connect is in its queue.
    pub fn wait_refused(&self, why: &str) {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            match TcpStream::connect(self.addr) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => return,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                Err(e) => panic!("unexpected connect error: {e}"),
                Ok(_) => {}
            }
            assert!(Instant::now() < deadline, "{why}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most [`IO_TIMEOUT`]) until the server has exactly `n` live
    /// (not zombie) children, none of them `gone`, and returns their pids.
    pub fn live_children(&self, n: usize, gone: Option<i32>) -> Vec<i32> {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let children = self.children();
            if children.len() == n
                && children
                    .iter()
                    .all(|&(pid, state)| state != 'Z' && Some(pid) != gone)
            {
                return children.into_iter().map(|(pid, _)| pid).collect();
            }
            assert!(
                Instant::now() < deadline,
                "{} has children (pid, state) {children:?}, not {n} live workers",
                self.model
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics unless the server is still running.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}); log:\n{}", self.model, self.log());
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Resident memory of the server and all its child processes, in bytes.
    pub fn rss_tree(&self) -> u64 {
        let pid = self.pid().as_raw();
        rss(pid)
            + children(pid)
                .into_iter()
                .map(|(child, _)| rss(child))
                .sum::<u64>()
    }

    /// CPU time (user + system, all threads) the server and its child
    /// processes have used, in seconds, the reaped ones included: a worker
    /// process that spins counts, even one that has since exited.
    pub fn cpu_seconds(&self) -> f64 {
        let pid = self.pid().as_raw();
        let ticks = cpu_ticks(pid).expect("the server is running")
            + children(pid)
                .into_iter()
                .filter_map(|(child, _)| cpu_ticks(child))
                .sum::<u64>();
        let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .unwrap()
            .expect("CLK_TCK is defined");
        ticks as f64 / per_second as f64
    }

    /// The server's child processes, with their state letter (`Z` = zombie).
    pub fn children(&self) -> Vec<(i32, char)> {
        children(self.pid().as_raw())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The whole group: the server and any child it forked.
        let _ = killpg(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// User plus system clock ticks of process `pid`, with those of its
/// children already reaped (`cutime`, `cstime`), if it still exists.
fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which ends with the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    fields[11..15].iter().map(|f| f.parse::<u64>().ok()).sum()
}

fn rss(pid: i32) -> u64 {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Every process whose parent is `parent`, with its state.
fn children(parent: i32) -> Vec<(i32, char)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut fields = stat[close + 2..].split(' ');
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(parent) {
            found.push((pid, state));
        }
    }
    found
}

/// Polls `done` (every 5 ms, at most [`IO_TIMEOUT`]) until it holds; fails
/// with "waited for `what`" if it never does. How a case reaches its
/// precondition: by watching the state it needs, never by sleeping.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "waited {IO_TIMEOUT:?} for {what}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// The kernel's send and receive queues, in bytes, of the TCP socket bound
/// to `local` and connected to `remote` (from /proc/net/tcp): what it has
/// sent and not yet had acknowledged, and what it holds unread.
pub fn tcp_queues(local: SocketAddr, remote: SocketAddr) -> Option<(u64, u64)> {
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if port(fields[1])? != local.port() || port(fields[2])? != remote.port() {
            return None;
        }
        let (tx, rx) = fields[4].split_once(':')?;
        Some((
            u64::from_str_radix(tx, 16).ok()?,
            u64::from_str_radix(rx, 16).ok()?,
        ))
    })
}

/// How many connections wait in the accept queues of every listener on
/// `port` (from /proc/net/tcp: a listening socket's receive queue).
pub fn accept_queue(port: u16) -> u64 {
    let table = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = u16::from_str_radix(fields[1].rsplit(':').next()?, 16).ok()?;
            // State 0A is LISTEN.
            (local == port && fields[3] == "0A").then(|| fields[4].split_once(':'))?
        })
        .filter_map(|(_, rx)| u64::from_str_radix(rx, 16).ok())
        .sum()
}

/// Waits until everything `client` wrote has reached the server's kernel
/// (acknowledged: its send queue is empty).
pub fn wait_sent(client: &TcpStream) {
    let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
    wait_until("the client's bytes to reach the server", || {
        tcp_queues(local, remote).is_some_and(|(unacked, _)| unacked == 0)
    });
}

/// Whether thread `tid` of this process is blocked in a `write` or `send`
/// (from /proc: the system call it sleeps in).
pub fn blocked_writing(tid: i32) -> bool {
    let Ok(syscall) = fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else {
        return false;
    };
    let number = syscall
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<i64>().ok());
    matches!(number, Some(n) if n == libc::SYS_write || n == libc::SYS_sendto)
}

/// What the server must send back: Python's `bytes.upper()`.
pub fn upper(bytes: &[u8]) -> Vec<u8> {
    bytes.to_ascii_uppercase()
}

/// A deterministic stream of bytes covering all 256 values: byte `i` of
/// stream `seed`. Lets a test check gigabytes without keeping them.
pub fn pattern_byte(seed: u64, i: u64) -> u8 {
    let x = (i ^ seed.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8
}

/// `len` bytes of stream `seed` from offset `from`.
pub fn pattern(seed: u64, from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64)
        .map(|i| pattern_byte(seed, i))
        .collect()
}

/// A small xorshift generator for chunk sizes: deterministic per seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1)
    }
    /// A number in `1..=max`.
    pub fn upto(&mut self, max: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % max as u64) as usize + 1
    }
}

/// Sends `message` and checks that exactly its upper-cased form comes back.
pub fn round_trip(stream: &mut TcpStream, message: &[u8]) {
    stream.write_all(message).expect("send");
    let mut reply = vec![0; message.len()];
    stream.read_exact(&mut reply).expect("reply");
    assert_eq!(
        reply,
        upper(message),
        "wrong reply to {} bytes",
        message.len()
    );
}

/// Reads until the server's EOF, which must come with no byte before it:
/// every request was answered already.
pub fn read_eof(stream: &mut TcpStream, who: impl std::fmt::Display) {
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "{who} sent {} bytes nobody asked for",
        rest.len()
    );
}

/// Whether the peer answers within `wait`: used only to check that a
/// client is *not* served while the server is full (a reply can never
/// arrive then, however slow the machine).
pub fn replies_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0];
    let replied = match stream.peek(&mut byte) {
        Ok(_) => true,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("unexpected error while waiting for a reply: {e}"),
    };
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    replied
}

/// Reads until EOF, checking every byte against `upper(pattern(seed))` from
/// offset 0 on; returns how many arrived. Stops quietly on a reset.
pub fn read_checked(stream: &mut TcpStream, seed: u64) -> u64 {
    match read_checked_to_end(stream, seed, &AtomicU64::new(0)) {
        Ok(n) => n,
        Err((n, e)) if e.kind() == ErrorKind::ConnectionReset => n,
        Err((n, e)) => panic!("read failed after {n} bytes: {e}"),
    }
}

/// Reads until EOF, checking every byte against `upper(pattern(seed))` from
/// offset 0 on (a wrong byte panics) and keeping `progress` up to date:
/// how many arrived before EOF, or before the error that ended the stream.
pub fn read_checked_to_end(
    stream: &mut TcpStream,
    seed: u64,
    progress: &AtomicU64,
) -> Result<u64, (u64, std::io::Error)> {
    let mut buf = vec![0; 64 * 1024];
    let mut offset = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(offset),
            Ok(n) => n,
            Err(e) => return Err((offset, e)),
        };
        for (k, &got) in buf[..n].iter().enumerate() {
            let i = offset + k as u64;
            let want = pattern_byte(seed, i).to_ascii_uppercase();
            assert_eq!(got, want, "byte {i} is {got:#04x}, expected {want:#04x}");
        }
        offset += n as u64;
        progress.store(offset, Ordering::Relaxed);
    }
}

/// Writes stream `seed` in chunks of random sizes up to `max_chunk`, `total`
/// bytes or until the server stops taking them. Returns an upper bound on
/// what was sent: all of it, or up to the end of the chunk that failed.
pub fn write_pattern(stream: &mut TcpStream, seed: u64, total: u64, max_chunk: usize) -> u64 {
    let mut rng = Rng::new(seed);
    let mut offset = 0u64;
    while offset < total {
        let len = rng.upto(max_chunk).min((total - offset) as usize);
        let result = stream.write_all(&pattern(seed, offset, len));
        offset += len as u64;
        if result.is_err() {
            break;
        }
    }
    offset
}
