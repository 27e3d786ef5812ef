//! Named threads with a daemon flag, a registry of live threads, and Python's rule that the program waits for its non-daemon threads (`threading`).
//!
//! In Python, the interpreter does not exit while a non-daemon thread runs,
//! and daemon threads are killed when it does. A Rust process instead exits
//! when `main` returns, killing every thread. [`run_main`] restores the
//! Python rule: it runs your main closure, then waits for every non-daemon
//! thread started through this module, and returns; daemon threads are left
//! running and die when the process exits.
//!
//! Before it waits, `run_main` calls the exit hooks other modules have
//! registered, as CPython's `threading._shutdown` calls what
//! `threading._register_atexit` collected. That is how a module whose
//! non-daemon threads would otherwise wait for ever (the pools', whose
//! workers wait for tasks) gets them to finish and exit, without this
//! module knowing of it.
//!
//! Built on `std::thread::Builder` (the threads themselves) and
//! parking_lot (the registry's lock and condvar). Written by hand: the
//! registry of live threads behind [`current`], [`enumerate`],
//! [`active_count`] and [`main_thread`] (std keeps no such list), the
//! non-daemon count `run_main` waits on, and the list of exit hooks.
//! Threads started with plain `std::thread::spawn` are not registered:
//! [`current`] still names them (Python's "dummy" threads) but
//! [`enumerate`] does not list them.
//!
//! ```
//! use conc::thread::{self, Builder};
//!
//! thread::run_main(|| {
//!     Builder::new().name("worker").spawn(|| println!("finishes")).unwrap();
//!     Builder::new().daemon(true).spawn(|| loop { std::thread::park() }).unwrap();
//! }); // returns once "worker" is done; the daemon is not waited for
//! ```

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::shim::{Condvar, Mutex};

/// A thread's identity as the registry knows it: a cheap snapshot handle.
///
/// # Examples
///
/// ```
/// let t = conc::thread::spawn(|| conc::thread::current());
/// let me = t.thread().clone();
/// assert_eq!(t.join().unwrap(), me);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Thread {
    ident: u64,
    name: Arc<str>,
    daemon: bool,
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread")
            .field("name", &self.name)
            .field("ident", &self.ident)
            .field("daemon", &self.daemon)
            .finish()
    }
}

impl Thread {
    /// The thread's name (`Thread-N` unless one was given).
    ///
    /// # Examples
    ///
    /// ```
    /// let t = conc::thread::Builder::new().name("loader").spawn(|| ()).unwrap();
    /// assert_eq!(t.thread().name(), "loader");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A number unique to the thread for the life of the process (Python's
    /// `ident`); the main thread's is 1.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conc::thread::main_thread().ident(), 1);
    /// ```
    pub fn ident(&self) -> u64 {
        self.ident
    }

    /// Whether the thread is a daemon: [`run_main`] does not wait for it.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = conc::thread::Builder::new().daemon(true).spawn(|| ()).unwrap();
    /// assert!(t.thread().daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// Whether the thread is still running (it is in [`enumerate`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let t = conc::thread::spawn(|| ());
    /// let thread = t.thread().clone();
    /// t.join().unwrap();
    /// assert!(!thread.is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        self.ident == MAIN_IDENT || REGISTRY.live.lock().iter().any(|t| t.ident == self.ident)
    }
}

const MAIN_IDENT: u64 = 1;

/// Every thread started through this module and still running.
struct Registry {
    live: Mutex<Vec<Thread>>,
    /// Notified when a non-daemon thread exits, for `run_main`.
    exited: Condvar,
    main: Thread,
    /// What `run_main` calls before it waits, in the order registered.
    atexit: Mutex<Vec<fn()>>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    live: Mutex::new(Vec::new()),
    exited: Condvar::new(),
    main: Thread {
        ident: MAIN_IDENT,
        name: "MainThread".into(),
        daemon: false,
    },
    atexit: Mutex::new(Vec::new()),
});

/// Has [`run_main`] call `hook` when main's closure returns, before it
/// waits for the non-daemon threads (CPython's `threading._register_atexit`).
/// Hooks run in the order registered, at every `run_main`; one registered
/// twice runs twice, so a module registers its hook once (a `Once`).
pub(crate) fn register_atexit(hook: fn()) {
    REGISTRY.atexit.lock().push(hook);
}

/// Calls every hook registered before the call, each outside the lock,
/// so that a hook may start threads or register another (which runs at
/// the next `run_main`). Hooks are only ever added, so indices stay
/// valid; nothing is allocated (a forked child runs this on memory it
/// shares with its parent, where each page written costs a copy).
fn run_atexit_hooks() {
    let registered = REGISTRY.atexit.lock().len();
    for i in 0..registered {
        let hook = REGISTRY.atexit.lock()[i];
        hook();
    }
}

static NEXT_IDENT: AtomicU64 = AtomicU64::new(MAIN_IDENT + 1);
static NEXT_NAME: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's registry entry, once known.
    static CURRENT: RefCell<Option<Thread>> = const { RefCell::new(None) };
}

/// Sets up this thread's slot for [`run_main`] now. A forked child calls
/// `run_main` first thing; were the slot first touched there, every child
/// would register its destructor with the C runtime afresh (a lazy symbol
/// lookup and a dozen page faults on memory it shares with its parent).
pub(crate) fn prepare_fork() {
    CURRENT.with(|_| {});
}

/// Removes a thread from the registry when its closure ends, even by panic.
struct Deregister(Thread);

impl Drop for Deregister {
    fn drop(&mut self) {
        let mut live = REGISTRY.live.lock();
        live.retain(|t| t.ident != self.0.ident);
        if !self.0.daemon {
            REGISTRY.exited.notify_all();
        }
    }
}

/// Configures a thread before starting it: `name` and `daemon`.
///
/// # Examples
///
/// ```
/// let handle = conc::thread::Builder::new()
///     .name("reader")
///     .daemon(false)
///     .spawn(|| 2 + 2)
///     .unwrap();
/// assert_eq!(handle.join().unwrap(), 4);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    daemon: Option<bool>,
}

impl Builder {
    /// A builder with the defaults: name `Thread-N`, daemon flag inherited
    /// from the spawning thread's [`current`] record, as in Python: false
    /// from the main thread (and from `run_main`'s), the parent's flag from
    /// a thread started here, and true from a thread conc did not start
    /// (a pool's, a test harness's), whose record is a `Dummy-N` daemon as
    /// in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = conc::thread::Builder::new().spawn(|| ()).unwrap();
    /// assert!(t.thread().name().starts_with("Thread-"));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the thread (also its std name, shown in panics and debuggers).
    ///
    /// # Examples
    ///
    /// ```
    /// let t = conc::thread::Builder::new().name("x").spawn(|| conc::thread::current()).unwrap();
    /// assert_eq!(t.join().unwrap().name(), "x");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Makes the thread a daemon (or not): [`run_main`] waits only for non-daemons.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = conc::thread::Builder::new().daemon(true).spawn(|| conc::thread::current()).unwrap();
    /// assert!(t.join().unwrap().daemon());
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }

    /// Registers and starts the thread; fails only if the OS will not
    /// start one.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = conc::thread::Builder::new().spawn(|| "hi").unwrap();
    /// assert_eq!(t.join().unwrap(), "hi");
    /// ```
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let name: Arc<str> = match self.name {
            Some(name) => name.into(),
            None => format!("Thread-{}", NEXT_NAME.fetch_add(1, Ordering::Relaxed)).into(),
        };
        // Python's rule, always: the creator's `current_thread().daemon`,
        // which is true for a thread conc did not start (a `Dummy-N`).
        let daemon = self.daemon.unwrap_or_else(|| current().daemon);
        let thread = Thread {
            ident: NEXT_IDENT.fetch_add(1, Ordering::Relaxed),
            name,
            daemon,
        };
        // Registered before it starts, so a `run_main` returning meanwhile
        // cannot miss it.
        REGISTRY.live.lock().push(thread.clone());
        let guard = Deregister(thread.clone());
        let me = thread.clone();
        let inner = std::thread::Builder::new()
            .name(thread.name.to_string())
            .spawn(move || {
                let _guard = guard;
                CURRENT.with(|c| *c.borrow_mut() = Some(me));
                f()
            })?; // on error the closure, and so the guard, is dropped: deregistered
        Ok(JoinHandle { inner, thread })
    }
}

/// Starts a thread with the default [`Builder`].
///
/// # Panics
///
/// If the OS will not start a thread, as `std::thread::spawn`.
///
/// # Examples
///
/// ```
/// let t = conc::thread::spawn(|| 1);
/// assert_eq!(t.join().unwrap(), 1);
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f).expect("failed to spawn thread")
}

/// An owned permission to join a thread started by this module.
///
/// # Examples
///
/// ```
/// let handle = conc::thread::spawn(|| 5);
/// assert_eq!(handle.join().unwrap(), 5);
/// ```
#[derive(Debug)]
pub struct JoinHandle<T> {
    inner: std::thread::JoinHandle<T>,
    thread: Thread,
}

impl<T> JoinHandle<T> {
    /// The registry entry of the thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = conc::thread::Builder::new().name("n").spawn(|| ()).unwrap();
    /// assert_eq!(handle.thread().name(), "n");
    /// ```
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// Waits for the thread; `Err` holds its panic payload, as std's.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = conc::thread::spawn(|| panic!("no"));
    /// assert!(handle.join().is_err());
    /// ```
    pub fn join(self) -> std::thread::Result<T> {
        self.inner.join()
    }

    /// Whether the thread's closure has returned.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = conc::thread::spawn(|| ());
    /// while !handle.is_finished() { std::thread::yield_now() }
    /// handle.join().unwrap();
    /// ```
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

/// The calling thread's entry: its registered record, [`main_thread`] in
/// `run_main`'s thread (or std's "main" thread), else an unregistered
/// `Dummy-N` daemon record, as Python names foreign threads.
///
/// # Examples
///
/// ```
/// let t = conc::thread::Builder::new().name("me").spawn(conc::thread::current).unwrap();
/// assert_eq!(t.join().unwrap().name(), "me");
/// ```
pub fn current() -> Thread {
    CURRENT.with(|c| {
        let mut current = c.borrow_mut();
        current
            .get_or_insert_with(|| {
                if std::thread::current().name() == Some("main") {
                    REGISTRY.main.clone()
                } else {
                    let ident = NEXT_IDENT.fetch_add(1, Ordering::Relaxed);
                    Thread {
                        ident,
                        name: format!("Dummy-{ident}").into(),
                        daemon: true,
                    }
                }
            })
            .clone()
    })
}

/// The live threads: the main thread and every thread started through this
/// module that has not finished.
///
/// # Examples
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// let t = conc::thread::Builder::new()
///     .name("listed")
///     .spawn(move || { let _ = rx.recv(); })
///     .unwrap();
/// assert!(conc::thread::enumerate().iter().any(|x| x.name() == "listed"));
/// drop(tx);
/// t.join().unwrap();
/// ```
pub fn enumerate() -> Vec<Thread> {
    let live = REGISTRY.live.lock();
    let mut all = Vec::with_capacity(live.len() + 1);
    all.push(REGISTRY.main.clone());
    all.extend(live.iter().cloned());
    all
}

/// How many threads [`enumerate`] would list.
///
/// # Examples
///
/// ```
/// assert!(conc::thread::active_count() >= 1); // the main thread
/// ```
pub fn active_count() -> usize {
    REGISTRY.live.lock().len() + 1
}

/// The main thread's entry: `MainThread`, ident 1, not a daemon.
///
/// # Examples
///
/// ```
/// let main = conc::thread::main_thread();
/// assert_eq!(main.name(), "MainThread");
/// assert!(!main.daemon());
/// ```
pub fn main_thread() -> Thread {
    REGISTRY.main.clone()
}

/// Runs `main` as the program's main thread, then waits for every
/// non-daemon thread started through this module, and returns `main`'s
/// value; daemon threads are not waited for and die when the process exits.
/// Before it waits, it calls the registered exit hooks, such as the pools'
/// (which closes every pool still alive to new tasks, so its workers finish
/// what is queued and exit). If `main` panics, the panic is resumed after
/// the wait, as Python still waits for its threads after an uncaught
/// exception in the main thread.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let done = Arc::new(AtomicBool::new(false));
/// let flag = Arc::clone(&done);
/// conc::thread::run_main(move || {
///     conc::thread::spawn(move || flag.store(true, Ordering::SeqCst));
/// });
/// assert!(done.load(Ordering::SeqCst)); // the non-daemon was waited for
/// ```
pub fn run_main<R>(main: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|c| c.borrow_mut().replace(REGISTRY.main.clone()));
    // A registered thread calling us must not wait for itself.
    let me = previous.as_ref().map(Thread::ident);
    let result = panic::catch_unwind(AssertUnwindSafe(main));
    // Threads that wait for work (a pool's workers) would keep us waiting
    // for ever: their modules' hooks tell them to finish and exit.
    run_atexit_hooks();
    let mut live = REGISTRY.live.lock();
    while live.iter().any(|t| !t.daemon && Some(t.ident) != me) {
        REGISTRY.exited.wait(&mut live);
    }
    drop(live);
    CURRENT.with(|c| *c.borrow_mut() = previous);
    match result {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    }
}
