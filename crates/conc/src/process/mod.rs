//! Python's `multiprocessing.Process` for Rust: child processes started by spawn (re-executing this program) or fork, with Python's names and exit codes.
//!
//! The course's two ways of starting a process map to one type:
//!
//! | Python | conc |
//! |---|---|
//! | `Process(target=f, args=(a,))` | [`Process::new(&F, a)`](Process::new), `F` an [`Entry`] |
//! | a `Process` subclass with `run` | a type with the state, and an entry that calls its `run` (see [`Entry`]) |
//! | `get_context("fork").Process(target=f)` | [`Process::fork(closure)`](Process::fork), or [`StartMethod::Fork`] |
//! | `start`, `join`, `join(timeout)`, `is_alive`, `pid`, `exitcode`, `terminate`, `kill`, `name`, `daemon` | the same names |
//! | `current_process`, `parent_process`, `active_children`, `cpu_count` | the same names |
//!
//! **Spawn**, the default, is safe in any program: the child is a fresh run
//! of this executable (`/proc/self/exe --conc-process FD`), which
//! [`entry_point`] at the top of `main` turns into a run of the named entry
//! function; its arguments come as postcard bytes over a socket inherited
//! as descriptor `FD`, with any descriptors they hold (pipes, shared
//! locks, queues) beside them. **Fork** copies this process and runs a
//! closure in the copy; it is refused with [`ProcessError::Threaded`] when
//! this process has more than one thread, because a forked child of a
//! threaded program holds copies of locks other threads held (the first
//! `malloc` may deadlock), which is what Python 3.12's `DeprecationWarning`
//! about `fork` is about.
//!
//! **Exit codes** are Python's: `None` while running, the exit status once
//! exited (0 normally, 1 after a panic), minus the signal number when a
//! signal killed it (`-15` after [`Process::terminate`], `-9` after
//! [`Process::kill`]). The wait uses a pidfd, so [`Process::join_timeout`]
//! is one `poll`, not a sleep loop.
//!
//! **Daemons**: a daemon child gets `PR_SET_PDEATHSIG(SIGKILL)`, so the
//! kernel kills it when its parent dies, even by `kill -9`. Linux sends
//! that signal when the *thread* that started the child exits, so start
//! daemons from a thread that outlives them (the main thread, normally).
//! At a normal exit, [`crate::thread::run_main`] applies the course's rule
//! as Python's exit function does: it terminates the daemon children and
//! waits for the others.
//!
//! **Zombies and orphans**: a child that has exited stays a zombie until
//! its parent waits for it; `join`, `is_alive`, `exitcode` and
//! [`active_children`] wait for it (reap it), as Python's do. An orphan (a
//! non-daemon child whose parent died) is adopted by init and runs on.
//!
//! Written on nix (fork, waitpid, kill, prctl) and std's `Command` (spawn);
//! the crates that start processes (`procspawn`) offer neither Python's
//! names nor futures, and need a test macro.

mod child;
mod entry;

pub use entry::{Entry, Registered, entry_point};
pub(crate) use entry::{check_registered, lookup};

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Once};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::ipc::Error;
use crate::ipc::wire::{self, Encoded};
use crate::sys::{self, Forked};

/// How a child process is started.
///
/// # Examples
///
/// ```
/// use conc::process::StartMethod;
/// assert_eq!(StartMethod::default(), StartMethod::Spawn);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartMethod {
    /// Re-execute this program, which runs the entry (safe in any program).
    #[default]
    Spawn,
    /// Copy this process (only when it has one thread).
    Fork,
}

/// Why a process could not be started.
///
/// # Examples
///
/// ```
/// use conc::process::{Process, ProcessError};
///
/// let mut p = Process::fork(|| {});
/// let _other_thread = std::thread::spawn(|| std::thread::park());
/// # while conc::process::threads() < 2 { std::thread::yield_now(); }
/// assert!(matches!(p.start(), Err(ProcessError::Threaded { .. })));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// `start` was called on a process already started.
    #[error("process already started")]
    AlreadyStarted,
    /// Fork was asked for in a process with more than one thread.
    #[error(
        "refusing to fork a process with {threads} threads: the child would hold copies of locks other threads held; use the spawn start method"
    )]
    Threaded {
        /// How many threads this process has.
        threads: usize,
    },
    /// The entry is not in the table given to [`entry_point`], or
    /// `entry_point` was not called.
    #[error("{0}")]
    NotRegistered(String),
    /// The arguments could not be sent (they failed to serialize, or the
    /// child went away before reading them).
    #[error("sending the arguments: {0}")]
    Args(Error),
    /// The operating system refused (fork, exec, pidfd).
    #[error("starting the process: {0}")]
    Io(#[from] io::Error),
}

/// Who this process is: [`current_process`]'s answer.
///
/// # Examples
///
/// ```
/// let me = conc::process::current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), std::process::id());
/// assert!(!me.daemon());
/// ```
#[derive(Debug, Clone)]
pub struct CurrentProcess {
    name: String,
    pid: u32,
    daemon: bool,
}

impl CurrentProcess {
    /// Its name (`MainProcess` in a program's first process).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it is a daemon.
    pub fn daemon(&self) -> bool {
        self.daemon
    }
}

/// The process that started this one: [`parent_process`]'s answer.
#[derive(Debug, Clone)]
pub struct ParentProcess {
    name: String,
    pid: u32,
}

impl ParentProcess {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it still runs (this process has not been orphaned).
    pub fn is_alive(&self) -> bool {
        nix::unistd::getppid().as_raw() as u32 == self.pid
    }
}

/// This process's own identity, set once in a child.
struct Identity {
    name: String,
    /// Python's `_identity`: the child numbers from the first process down.
    identity: Vec<u32>,
    daemon: bool,
    parent: Option<(u32, String)>,
}

static CURRENT: LazyLock<Mutex<Identity>> = LazyLock::new(|| {
    Mutex::new(Identity {
        name: "MainProcess".into(),
        identity: Vec::new(),
        daemon: false,
        parent: None,
    })
});

/// How many children this process has numbered (`Process-N`).
static CHILD_COUNT: AtomicU32 = AtomicU32::new(0);

fn set_current(identity: Identity) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = identity;
    CHILD_COUNT.store(0, Ordering::Relaxed);
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// [`set_current`] in a forked child, which frees nothing of the copy of
/// its parent's state: every page it writes is copied from the parent's
/// first, so it leaves the parent's identity and children (their pidfds
/// close at exit) where they are instead of handing them to `free`.
fn set_current_forked(identity: Identity) {
    let mut current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::forget(std::mem::replace(&mut *current, identity));
    drop(current);
    CHILD_COUNT.store(0, Ordering::Relaxed);
    std::mem::forget(std::mem::take(
        &mut *CHILDREN.lock().unwrap_or_else(|e| e.into_inner()),
    ));
}

/// This process's name, pid and daemon flag (Python's `current_process()`).
pub fn current_process() -> CurrentProcess {
    let me = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    CurrentProcess {
        name: me.name.clone(),
        pid: std::process::id(),
        daemon: me.daemon,
    }
}

/// The process that started this one, if conc started it (Python's
/// `parent_process()`, `None` in the first process).
///
/// # Examples
///
/// ```
/// assert!(conc::process::parent_process().is_none());
/// ```
pub fn parent_process() -> Option<ParentProcess> {
    let me = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    me.parent.as_ref().map(|(pid, name)| ParentProcess {
        name: name.clone(),
        pid: *pid,
    })
}

/// How many CPUs this process may run on (Python's `cpu_count()`).
///
/// # Examples
///
/// ```
/// assert!(conc::process::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// How many threads this process has now: procfs gives `/proc/self/task`
/// one link per thread beside its two (`.` and the parent's entry), so one
/// `stat` answers, where reading `/proc/self/status` would have the kernel
/// format some fifty lines; that file is the fallback.
///
/// # Examples
///
/// ```
/// assert!(conc::process::threads() >= 1);
/// ```
pub fn threads() -> usize {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/proc/self/task") {
        Ok(m) if m.nlink() > 2 => (m.nlink() - 2) as usize,
        _ => std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:")?.trim().parse().ok())
            })
            .unwrap_or(usize::MAX),
    }
}

/// A started child: its pid, a pidfd to wait on, and its exit code once
/// reaped. Shared by its `Process` and the registry of children.
struct Child {
    pid: Pid,
    pidfd: OwnedFd,
    name: String,
    daemon: bool,
    /// `Some` once reaped; the lock is held across `waitpid` and `kill`,
    /// so a pid is never signalled after it was reaped (and reused).
    exitcode: Mutex<Option<i32>>,
}

/// What a wait of a child reported, as Python's exit code.
fn exitcode_of(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(-(signal as i32)),
        _ => None,
    }
}

impl Child {
    /// Reaps the child if it has exited; its exit code if so.
    fn poll(&self) -> Option<i32> {
        let mut code = self.exitcode.lock().unwrap_or_else(|e| e.into_inner());
        if code.is_none() {
            *code = match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(status) => exitcode_of(status),
                // Someone else reaped it (SIGCHLD ignored, a foreign
                // waitpid(-1)): it is gone, its status unknown.
                Err(Errno::ECHILD) => Some(UNKNOWN_EXIT),
                Err(_) => None,
            };
        }
        *code
    }

    /// Waits until the child exits or `deadline` passes.
    fn wait(&self, deadline: Option<Instant>) -> Option<i32> {
        loop {
            if let Some(code) = self.poll() {
                return Some(code);
            }
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    // Round up, so a wait does not end a hair early and spin.
                    let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return self.poll(),
            }
        }
    }

    /// Sends `signal` unless the child was already reaped.
    fn signal(&self, signal: Signal) {
        let code = self.exitcode.lock().unwrap_or_else(|e| e.into_inner());
        if code.is_none() {
            let _ = kill(self.pid, signal);
        }
    }
}

/// Drops a reaped child from the registry, so that a program starting
/// thousands of children does not keep their pidfds (and `fork` does not
/// copy an ever larger descriptor table); passes its exit code through.
fn forget_if_reaped(child: &Arc<Child>, code: Option<i32>) -> Option<i32> {
    if code.is_some() {
        CHILDREN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|c| !Arc::ptr_eq(c, child));
    }
    code
}

/// The exit code reported for a child another waiter reaped.
pub const UNKNOWN_EXIT: i32 = 255;

/// Every child started and not yet known to have been reaped, for
/// [`active_children`] and the exit hook.
static CHILDREN: Mutex<Vec<Arc<Child>>> = Mutex::new(Vec::new());

/// Registers the process exit hook with `run_main`, once.
static EXIT_HOOK: Once = Once::new();

/// `run_main`'s exit hook, Python's `_exit_function` for processes:
/// terminate the daemon children, then wait for every child.
fn exit_hook() {
    let children: Vec<_> = CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for child in children.iter().filter(|c| c.daemon) {
        child.signal(Signal::SIGTERM);
    }
    for child in &children {
        child.wait(None);
    }
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|c| c.poll().is_none());
}

/// The children still running, after reaping those that have exited
/// (Python's `active_children()`, which also joins finished children).
///
/// # Examples
///
/// ```
/// let mut p = conc::process::Process::fork(|| {});
/// # if conc::process::threads() == 1 {
/// p.start().unwrap();
/// p.join();
/// # }
/// assert!(conc::process::active_children().is_empty());
/// ```
pub fn active_children() -> Vec<Process> {
    let mut children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    children.retain(|c| c.poll().is_none());
    children
        .iter()
        .map(|c| Process::started(Arc::clone(c)))
        .collect()
}

/// What a process runs.
enum Target {
    /// A registered entry and its encoded arguments (or why they failed).
    Entry {
        entry: &'static dyn Registered,
        args: Result<Encoded, Error>,
    },
    /// A closure, for the fork start method.
    Closure(Box<dyn FnOnce() + Send>),
}

/// A child process: configured, then started, then joined (Python's
/// `multiprocessing.Process`).
///
/// # Examples
///
/// The course's first way, a target function with arguments:
///
/// ```standalone_crate
/// use conc::process::{Entry, Process, entry_point};
///
/// static TASK: Entry<(String, u32)> = Entry::new("task", |(name, n)| {
///     println!("{name} is running, n = {n}");
/// });
///
/// static TABLE: &[&dyn conc::process::Registered] = &[&TASK];
///
/// fn main() {
///     entry_point(TABLE);
///     let mut p = Process::new(&TASK, ("sub".to_string(), 3));
///     p.set_name("p1");
///     p.start().unwrap();
///     assert_eq!(p.join(), 0);
///     assert_eq!(p.exitcode(), Some(0));
/// }
/// ```
pub struct Process {
    name: String,
    identity: Vec<u32>,
    daemon: bool,
    method: StartMethod,
    target: Option<Target>,
    child: Option<Arc<Child>>,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid())
            .field("exitcode", &self.exitcode())
            .finish()
    }
}

impl Process {
    /// A process that will run `entry(args)`, by the spawn start method
    /// unless [`set_method`](Self::set_method) says otherwise. The
    /// arguments are encoded now; an error doing so is reported by
    /// [`start`](Self::start).
    pub fn new<A: serde::Serialize, R>(entry: &'static Entry<A, R>, args: A) -> Self
    where
        Entry<A, R>: Registered,
    {
        let args = wire::encode(&args);
        Self::with_target(Target::Entry { entry, args }, StartMethod::Spawn)
    }

    /// A process that will run `f` in a forked copy of this one. `start`
    /// refuses when this process has more than one thread.
    pub fn fork(f: impl FnOnce() + Send + 'static) -> Self {
        Self::with_target(Target::Closure(Box::new(f)), StartMethod::Fork)
    }

    /// Numbered and named now, as Python's are, by its parent:
    /// `Process-N`, `Process-N:M` in a child's child.
    fn with_target(target: Target, method: StartMethod) -> Self {
        let (mut identity, daemon) = {
            let me = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
            (me.identity.clone(), me.daemon)
        };
        identity.push(CHILD_COUNT.fetch_add(1, Ordering::Relaxed) + 1);
        let parts: Vec<_> = identity.iter().map(u32::to_string).collect();
        let name = format!("Process-{}", parts.join(":"));
        Self {
            name,
            identity,
            daemon,
            method,
            target: Some(target),
            child: None,
        }
    }

    fn started(child: Arc<Child>) -> Self {
        Self {
            name: child.name.clone(),
            identity: Vec::new(),
            daemon: child.daemon,
            method: StartMethod::Spawn,
            target: None,
            child: Some(child),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames it; before `start`, this is the name the child sees.
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Whether it is a daemon (default: the current process's flag).
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// Makes it a daemon or not; only before `start` (Python raises after).
    pub fn set_daemon(&mut self, daemon: bool) {
        if self.target.is_some() {
            self.daemon = daemon;
        }
    }

    /// Starts an entry by `method` instead of spawn.
    pub fn set_method(&mut self, method: StartMethod) {
        self.method = method;
    }

    /// Its pid once started.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid.as_raw() as u32)
    }

    /// Python's exit code: `None` until it has exited (this reaps it if it
    /// has), else its exit status, or minus the signal that killed it.
    pub fn exitcode(&self) -> Option<i32> {
        let child = self.child.as_ref()?;
        forget_if_reaped(child, child.poll())
    }

    /// Whether it was started and has not exited.
    pub fn is_alive(&self) -> bool {
        self.child.is_some() && self.exitcode().is_none()
    }

    /// Waits until it exits; its exit code. A process never started
    /// reports [`UNKNOWN_EXIT`] at once.
    pub fn join(&self) -> i32 {
        self.child.as_ref().map_or(UNKNOWN_EXIT, |c| {
            forget_if_reaped(c, c.wait(None)).unwrap_or(UNKNOWN_EXIT)
        })
    }

    /// Waits at most `timeout`; its exit code if it exited.
    pub fn join_timeout(&self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now().checked_add(timeout);
        let child = self.child.as_ref()?;
        forget_if_reaped(child, child.wait(deadline))
    }

    /// Sends SIGTERM (Python's `terminate`).
    pub fn terminate(&self) {
        if let Some(c) = &self.child {
            c.signal(Signal::SIGTERM);
        }
    }

    /// Sends SIGKILL (Python's `kill`).
    pub fn kill(&self) {
        if let Some(c) = &self.child {
            c.signal(Signal::SIGKILL);
        }
    }

    /// Starts it.
    pub fn start(&mut self) -> Result<(), ProcessError> {
        let target = self.target.take().ok_or(ProcessError::AlreadyStarted)?;
        let (name, daemon) = (self.name.clone(), self.daemon);
        let identity = std::mem::take(&mut self.identity);
        let pid = match (target, self.method) {
            (Target::Closure(f), _) => fork_child(&name, &identity, daemon, f)?,
            (Target::Entry { entry, args }, StartMethod::Fork) => {
                let args = args.map_err(ProcessError::Args)?;
                let run = move || {
                    if let Err(e) = entry.call_encoded(&args.bytes, args.fds) {
                        panic!("entry {:?}: {e}", entry.name());
                    }
                };
                fork_child(&name, &identity, daemon, Box::new(run))?
            }
            (Target::Entry { entry, args }, StartMethod::Spawn) => {
                entry::check_registered(entry.name()).map_err(ProcessError::NotRegistered)?;
                let args = args.map_err(ProcessError::Args)?;
                spawn_child(entry.name(), &name, identity, daemon, args)?.0
            }
        };
        self.child = Some(register(pid, name, daemon)?);
        Ok(())
    }
}

/// Records a started child for `join`, [`active_children`] and the exit hook.
fn register(pid: Pid, name: String, daemon: bool) -> io::Result<Arc<Child>> {
    let child = Arc::new(Child {
        pidfd: sys::pidfd_open(pid)?,
        pid,
        name,
        daemon,
        exitcode: Mutex::new(None),
    });
    EXIT_HOOK.call_once(|| crate::thread::register_atexit(exit_hook));
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::clone(&child));
    Ok(child)
}

/// Starts a conc built-in entry (a manager's server) as a registered
/// daemon child named `{kind}-N`, numbered as a `Process` is (Python's
/// `SyncManager-1`): the started process and the parent's end of its boot
/// socket, which the entry keeps to talk to its parent.
pub(crate) fn start_builtin(
    entry: &str,
    kind: &str,
    args: Encoded,
) -> Result<(Process, UnixStream), ProcessError> {
    // A program whose main does not call entry_point would run its whole
    // main again in the child (which may start another child, and so on).
    if !entry::entry_point_called() {
        return Err(ProcessError::NotRegistered(entry::NO_ENTRY_POINT.into()));
    }
    let mut identity = CURRENT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .identity
        .clone();
    identity.push(CHILD_COUNT.fetch_add(1, Ordering::Relaxed) + 1);
    let parts: Vec<_> = identity.iter().map(u32::to_string).collect();
    let name = format!("{kind}-{}", parts.join(":"));
    let (pid, boot) = spawn_child(entry, &name, identity, true, args)?;
    let child = register(pid, name, true)?;
    Ok((Process::started(child), boot))
}

/// The entry a conc built-in child runs (a pool worker, a manager): it
/// keeps its boot socket to talk to its parent, and returns the exit status.
pub(crate) fn builtin(name: &str) -> Option<entry::Builtin> {
    match name {
        crate::ipc::manager::ENTRY => Some(crate::ipc::manager::serve),
        crate::pool::WORKER_ENTRY => Some(crate::pool::worker_main),
        _ => None,
    }
}

/// Starts `EXE --conc-process FD` running `entry` and sends it its boot
/// message; the child's pid and the parent's end of the boot socket.
pub(crate) fn spawn_child(
    entry: &str,
    name: &str,
    identity: Vec<u32>,
    daemon: bool,
    args: Encoded,
) -> Result<(Pid, UnixStream), ProcessError> {
    let (ours, theirs) = UnixStream::pair()?;
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new("/proc/self/exe");
    if let Some(arg0) = std::env::args_os().next() {
        command.arg0(arg0);
    } else {
        command.arg0(exe);
    }
    let fd = theirs.as_raw_fd();
    command.arg(entry::CHILD_FLAG).arg(fd.to_string());
    sys::prepare_child(&mut command, fd, daemon.then_some(Signal::SIGKILL));
    let child = command.spawn()?;
    drop(theirs);
    let pid = Pid::from_raw(child.id() as i32);
    let me = current_process();
    let boot = entry::Boot {
        entry: entry.to_string(),
        name: name.to_string(),
        identity,
        daemon,
        parent_pid: me.pid,
        parent_name: me.name,
        args: args.bytes,
    };
    let sent = wire::encode(&boot).and_then(|b| wire::send_frame(&ours, &b.bytes, &args.fds));
    if let Err(e) = sent {
        // Not a zombie left behind: the registry reaps it.
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(ProcessError::Args(e));
    }
    Ok((pid, ours))
}

/// Forks a child that becomes `name` and runs `f`; the child's pid.
///
/// The child's whole life is spent on memory it shares with its parent,
/// where each page it first writes costs a fault and a copy, and the
/// parent pays the same for each page it writes while the child lives: so
/// what the child needs is built before the fork, and the child allocates
/// and frees as little as it can.
fn fork_child(
    name: &str,
    identity: &[u32],
    daemon: bool,
    f: Box<dyn FnOnce() + Send>,
) -> Result<Pid, ProcessError> {
    let n = threads();
    if n != 1 {
        return Err(ProcessError::Threaded { threads: n });
    }
    // What is buffered now would be written twice, by both processes
    // (stderr is unbuffered).
    let _ = io::stdout().flush();
    crate::thread::prepare_fork();
    let parent = current_process();
    let parent_pid = parent.pid;
    let child = Identity {
        name: name.to_string(),
        identity: identity.to_vec(),
        daemon,
        parent: Some((parent.pid, parent.name)),
    };
    match sys::fork_single_threaded()? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            if daemon
                && (nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err()
                    || nix::unistd::getppid().as_raw() as u32 != parent_pid)
            {
                sys::exit_now(1);
            }
            set_current_forked(child);
            let result = panic::catch_unwind(AssertUnwindSafe(|| crate::thread::run_main(f)));
            let _ = io::stdout().flush();
            sys::exit_now(if result.is_ok() { 0 } else { 1 });
        }
    }
}
