//! What to measure: a model the bench starts, an external peer it starts, or
//! a server already running.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::Error;

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A server to measure.
#[derive(Debug, Clone)]
pub enum Target {
    /// `EXE serve --model NAME --addr 127.0.0.1:0 ARGS...`; the port is read
    /// from its ready line.
    Model {
        /// The model's name.
        name: String,
        /// The `iomodels` binary.
        exe: PathBuf,
        /// More `serve` arguments (`--workers 4`, ...).
        args: Vec<String>,
    },
    /// Any server started by a shell command in which `{port}` is replaced
    /// by a free port; ready once that port accepts a connection.
    Peer {
        /// The name it is reported under.
        name: String,
        /// The command, with `{port}` in it.
        command: String,
    },
    /// A server already listening; the bench cannot see its process.
    Addr(SocketAddr),
}

impl Target {
    /// The name the target is reported under.
    pub fn name(&self) -> String {
        match self {
            Self::Model { name, .. } | Self::Peer { name, .. } => name.clone(),
            Self::Addr(addr) => addr.to_string(),
        }
    }

    /// Parses `NAME=COMMAND` (the command must contain `{port}`).
    ///
    /// # Errors
    ///
    /// If there is no `=`, the name is empty, or `{port}` is missing.
    pub fn peer(spec: &str) -> Result<Self, String> {
        let (name, command) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec:?} is not NAME='COMMAND {{port}}'"))?;
        if name.trim().is_empty() {
            return Err(format!("{spec:?} has no name before '='"));
        }
        if !command.contains("{port}") {
            return Err(format!(
                "the command of peer {name:?} has no {{port}} to put the port in"
            ));
        }
        Ok(Self::Peer {
            name: name.trim().to_owned(),
            command: command.to_owned(),
        })
    }

    /// Starts the server (if the bench owns it) and waits until it listens.
    ///
    /// # Errors
    ///
    /// If it cannot be started, exits, or does not listen within a minute.
    pub fn start(&self) -> Result<Server, Error> {
        match self {
            Self::Addr(addr) => Ok(Server {
                addr: *addr,
                child: None,
                name: addr.to_string(),
                term_group: false,
            }),
            Self::Model { name, exe, args } => {
                let mut command = Command::new(exe);
                command
                    .args(["serve", "--model", name, "--addr", "127.0.0.1:0"])
                    .args(args);
                let (child, addr) = spawn_with_ready_line(command, name)?;
                Ok(Server {
                    addr,
                    child: Some(child),
                    name: name.clone(),
                    term_group: false,
                })
            }
            Self::Peer { name, command } => {
                let port = free_port()?;
                let line = command.replace("{port}", &port.to_string());
                let mut shell = Command::new("sh");
                // `exec`: the server itself gets the pid we measure.
                shell.arg("-c").arg(format!("exec {line}"));
                let mut child = spawn_owned(&mut shell, name)?;
                let log = drain(child.stderr.take());
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let deadline = Instant::now() + START_TIMEOUT;
                loop {
                    if TcpStream::connect(addr).is_ok() {
                        break;
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        let log = log.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
                        return Err(Error::Start(
                            name.clone(),
                            format!("exited ({status}) before listening: {log}"),
                        ));
                    }
                    if Instant::now() > deadline {
                        return give_up(&mut child, name, "did not listen within a minute".into());
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                Ok(Server {
                    addr,
                    child: Some(child),
                    name: name.clone(),
                    term_group: true,
                })
            }
        }
    }
}

/// A running server under measurement.
#[derive(Debug)]
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Option<Child>,
    name: String,
    /// Every target runs in a process group of its own, killed whole at
    /// the end so nothing it forked outlives the run. SIGTERM goes to the
    /// whole group for a peer (a shell may stand between us and the server)
    /// and to the process alone for a model, which stops its own children.
    term_group: bool,
}

impl Server {
    /// Its pid, when the bench started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops it with SIGTERM (SIGKILL if it lingers); returns whether it
    /// exited cleanly (status 0, or killed by the SIGTERM we sent: Python
    /// peers do not catch it).
    pub fn stop(mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = if self.term_group {
            killpg(pid, Signal::SIGTERM)
        } else {
            kill(pid, Signal::SIGTERM)
        };
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    // Whatever it left behind in its group.
                    let _ = killpg(pid, Signal::SIGKILL);
                    use std::os::unix::process::ExitStatusExt;
                    return status.success() || status.signal() == Some(Signal::SIGTERM as i32);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    eprintln!(
                        "iomodels: {} did not stop within {STOP_TIMEOUT:?}; killing it",
                        self.name
                    );
                    kill_group(&mut child);
                    return false;
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }
}

/// Spawns `command`, waits for `... listening on ADDR` on its stderr, and
/// keeps draining stderr afterwards so the server never blocks on logging.
fn spawn_with_ready_line(mut command: Command, name: &str) -> Result<(Child, SocketAddr), Error> {
    let mut child = spawn_owned(&mut command, name)?;
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        // Bytes, not `lines()`: a line that is not UTF-8 must not end the
        // reading (and with it our wait for the ready line).
        let mut lines = BufReader::new(stderr).split(b'\n');
        let mut seen = String::new();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line);
            if let Some(addr) = line.split(" listening on ").nth(1) {
                let _ = tx.send(Ok(addr.trim().to_owned()));
                break;
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        let _ = tx.send(Err(seen));
        // Keep reading, so a chatty server never fills the pipe.
        for _ in lines {}
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(Ok(addr)) => match addr.parse() {
            Ok(addr) => Ok((child, addr)),
            Err(_) => give_up(
                &mut child,
                name,
                format!("unreadable ready line address {addr:?}"),
            ),
        },
        Ok(Err(log)) => give_up(
            &mut child,
            name,
            format!("gave no ready line: {}", log.trim()),
        ),
        Err(_) => give_up(&mut child, name, "no ready line within a minute".into()),
    }
}

/// Spawns a target: no stdin or stdout, stderr piped to us, and a process
/// group of its own so that [`kill_group`] reaches everything it forks.
fn spawn_owned(command: &mut Command, name: &str) -> Result<Child, Error> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    command
        .spawn()
        .map_err(|e| Error::Start(name.to_owned(), e.to_string()))
}

/// Kills a target's whole process group and reaps it.
fn kill_group(child: &mut Child) {
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
}

/// A target that did not come up: whatever state it is in, it is not a
/// server we can measure, so it is killed before the error is returned.
fn give_up<T>(child: &mut Child, name: &str, why: String) -> Result<T, Error> {
    kill_group(child);
    Err(Error::Start(name.to_owned(), why))
}

/// Reads a peer's stderr on a thread; its first 4 KiB are kept for errors.
fn drain(stderr: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut stderr) = stderr {
        thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if kept.len() < 4096 {
                    kept.extend_from_slice(&buf[..n]);
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&kept).into_owned());
        });
    }
    rx
}

fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(Error::Io)?;
    Ok(listener.local_addr().map_err(Error::Io)?.port())
}
