//! `ProcessPool`: worker processes that run registered entries and hand back the same `Future` as `ThreadPool` (Python's `ProcessPoolExecutor`).
//!
//! Each worker is a spawned child running conc's built-in worker entry,
//! and each has a *feeder*, a thread of this process that owns the
//! worker's socket: it takes tasks from the pool's queue (a crossbeam
//! channel), sends up to `WINDOW` (16) of them ahead, reads the results in
//! order and completes their futures, so callbacks run in the parent, as
//! the course says (进程池, 都是在父进程中回调). Sending ahead hides the
//! round trip: a worker finds its next task already in its socket when it
//! finishes one, and a feeder reads several results with one `recvmsg`.
//!
//! **A worker that dies** mid-task (killed, or `abort`ed) fails the future
//! of the task it was running with [`FutureError::WorkerDied`] naming its
//! exit code; the tasks sent to it but not yet begun go to its
//! replacement, and the pool goes on. Python's `ProcessPoolExecutor`
//! instead breaks the whole pool (`BrokenProcessPool`), because its
//! workers share one call queue and it cannot tell which task a dead
//! worker held; a feeder per worker knows exactly that (the oldest task
//! sent and not answered), so failing only that task loses nothing else.
//! **`max_tasks_per_child`** retires a worker after that many tasks and
//! starts a fresh one.
//!
//! Workers are daemon children: the kernel kills them when their feeder
//! thread exits, so a pool dropped, or a parent killed, leaves none.

use std::collections::VecDeque;
use std::fmt;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Future, FutureError};
use crate::ipc::Error;
use crate::ipc::wire::{self, FrameReader};
use crate::process::{self, Entry, Process, Registered};
use crate::shim::Mutex;

/// The built-in entry every worker runs.
pub(crate) const WORKER_ENTRY: &str = "conc.pool.worker";

/// How many tasks a feeder sends its worker ahead of the results.
pub(crate) const WINDOW: usize = 16;

/// What a feeder sends its worker.
#[derive(Serialize, Deserialize)]
enum Request {
    /// Run `entry` once.
    Call { entry: String, args: Vec<u8> },
    /// Run `entry` on each of a chunk of arguments (`map`).
    Chunk { entry: String, args: Vec<Vec<u8>> },
}

/// What a worker answers, in the order of the requests.
#[derive(Serialize, Deserialize)]
enum Reply {
    Call(Result<Vec<u8>, String>),
    Chunk(Vec<Result<Vec<u8>, String>>),
}

/// A worker's start: the initializer to run first, by name, with its arguments.
#[derive(Serialize, Deserialize)]
struct WorkerArgs {
    initializer: Option<(String, Vec<u8>)>,
}

/// How a finished request reaches its future: decodes the reply for `R`.
type Complete = Box<dyn FnOnce(Result<Reply, FutureError>) + Send>;

/// A task in the pool's queue.
struct Task {
    request: Vec<u8>,
    /// Marks the future running, or says it was cancelled (then skipped).
    start: Box<dyn Fn() -> bool + Send>,
    /// Cancels the future (`shutdown` with `cancel_futures`).
    cancel: Box<dyn Fn() + Send>,
    complete: Complete,
}

impl Task {
    /// The task that sends `request` and completes `future` with what
    /// `outcome` makes of the reply (or of the worker's death).
    fn new<T: Send + 'static>(
        request: Vec<u8>,
        future: &Future<T>,
        outcome: impl FnOnce(Result<Reply, FutureError>) -> Result<T, FutureError> + Send + 'static,
    ) -> Self {
        let (f1, f2, f3) = (future.clone(), future.clone(), future.clone());
        Task {
            request,
            start: Box::new(move || f1.set_running_or_notify_cancel()),
            cancel: Box::new(move || {
                f3.cancel();
            }),
            complete: Box::new(move |reply| finish(&f2, outcome(reply))),
        }
    }
}

/// A reply of the wrong kind: a worker out of step with its feeder.
fn out_of_turn() -> FutureError {
    FutureError::Panicked("a worker answered out of turn".into())
}

/// Why the pool did not take a task.
///
/// # Examples
///
/// ```
/// use conc::pool::{ProcessPool, ProcessPoolError};
/// use conc::process::Entry;
///
/// static UNLISTED: Entry<u8, u8> = Entry::new("unlisted", |x| x);
/// let pool = ProcessPool::new(1);
/// assert!(matches!(pool.submit(&UNLISTED, 1), Err(ProcessPoolError::NotRegistered(_))));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ProcessPoolError {
    /// The pool was shut down.
    #[error("cannot submit: the pool is shut down")]
    Shutdown,
    /// The entry is not in `entry_point`'s table (the worker could not run it).
    #[error("{0}")]
    NotRegistered(String),
    /// The arguments could not be encoded.
    #[error(transparent)]
    Encode(Error),
}

/// Configures a [`ProcessPool`].
///
/// # Examples
///
/// ```
/// let pool = conc::pool::ProcessPool::builder().max_workers(2).max_tasks_per_child(100).build();
/// assert_eq!(pool.max_workers(), 2);
/// ```
#[derive(Default)]
pub struct ProcessPoolBuilder {
    max_workers: Option<usize>,
    max_tasks_per_child: Option<usize>,
    initializer: Option<(&'static str, Vec<u8>)>,
}

impl fmt::Debug for ProcessPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolBuilder")
            .field("max_workers", &self.max_workers)
            .finish()
    }
}

impl ProcessPoolBuilder {
    /// How many worker processes (default [`process::cpu_count`]).
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n.max(1));
        self
    }

    /// Replaces a worker after it has run `n` tasks.
    pub fn max_tasks_per_child(mut self, n: usize) -> Self {
        self.max_tasks_per_child = Some(n.max(1));
        self
    }

    /// Runs `entry(args)` in each worker before its first task (Python's
    /// `initializer` and `initargs`). A worker whose initializer panics
    /// exits; its tasks go to its replacement, whose initializer runs again.
    pub fn initializer<A: Serialize>(mut self, entry: &'static Entry<A, ()>, args: A) -> Self
    where
        Entry<A, ()>: Registered,
    {
        let mut bytes = Vec::new();
        // An initializer whose arguments cannot be encoded runs with none:
        // reported when it fails to decode them, in each worker.
        let _ = wire::encode_plain(&args, &mut bytes);
        self.initializer = Some((entry.name(), bytes));
        self
    }

    /// The pool. Its workers start now.
    pub fn build(self) -> ProcessPool {
        let max_workers = self.max_workers.unwrap_or_else(process::cpu_count);
        let (sender, tasks) = crossbeam_channel::unbounded();
        let config = Arc::new(Config {
            max_tasks_per_child: self.max_tasks_per_child,
            initializer: self.initializer.map(|(n, a)| (n.to_string(), a)),
        });
        let feeders = (0..max_workers)
            .map(|i| {
                let (tasks, config) = (tasks.clone(), Arc::clone(&config));
                std::thread::Builder::new()
                    .name(format!("ProcessPool-feeder-{i}"))
                    .spawn(move || feed(&tasks, &config))
                    .expect("spawning a ProcessPool feeder thread")
            })
            .collect();
        ProcessPool {
            sender: Mutex::new(Some(sender)),
            tasks,
            feeders: Mutex::new(feeders),
            max_workers,
        }
    }
}

/// What every feeder needs to start its worker.
struct Config {
    max_tasks_per_child: Option<usize>,
    initializer: Option<(String, Vec<u8>)>,
}

/// A pool of worker processes running registered entries.
///
/// # Examples
///
/// ```standalone_crate
/// use conc::pool::ProcessPool;
/// use conc::process::{Entry, entry_point};
///
/// static SQUARE: Entry<u64, u64> = Entry::new("square", |x| x * x);
///
/// static TABLE: &[&dyn conc::process::Registered] = &[&SQUARE];
///
/// fn main() {
///     entry_point(TABLE);
///     let pool = ProcessPool::new(2);
///     let future = pool.submit(&SQUARE, 7).unwrap();
///     future.add_done_callback(|f| assert_eq!(f.result(), Ok(49))); // runs in this process
///     assert_eq!(future.result(), Ok(49));
///     let squares: Vec<_> = pool.map(&SQUARE, 1..=4, 2).unwrap().map(Result::unwrap).collect();
///     assert_eq!(squares, [1, 4, 9, 16]);
/// }
/// ```
pub struct ProcessPool {
    sender: Mutex<Option<Sender<Task>>>,
    /// The queue's other end, for `shutdown(cancel_futures)` to drain.
    tasks: Receiver<Task>,
    feeders: Mutex<Vec<JoinHandle<()>>>,
    max_workers: usize,
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("max_workers", &self.max_workers)
            .finish()
    }
}

impl ProcessPool {
    /// A pool of `max_workers` worker processes.
    pub fn new(max_workers: usize) -> Self {
        Self::builder().max_workers(max_workers).build()
    }

    /// A builder, for `max_tasks_per_child` and an initializer.
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::default()
    }

    /// How many workers it runs.
    pub fn max_workers(&self) -> usize {
        self.max_workers
    }

    fn enqueue(&self, task: Task) -> Result<(), ProcessPoolError> {
        let sender = self.sender.lock();
        let sender = sender.as_ref().ok_or(ProcessPoolError::Shutdown)?;
        sender.send(task).map_err(|_| ProcessPoolError::Shutdown)
    }

    /// Runs `entry(args)` in a worker; its future (Python's `submit`).
    pub fn submit<A, R>(
        &self,
        entry: &'static Entry<A, R>,
        args: A,
    ) -> Result<Future<R>, ProcessPoolError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
        Entry<A, R>: Registered,
    {
        process::check_registered(entry.name()).map_err(ProcessPoolError::NotRegistered)?;
        let mut bytes = Vec::new();
        wire::encode_plain(&args, &mut bytes).map_err(ProcessPoolError::Encode)?;
        let request = encode_request(&Request::Call {
            entry: entry.name().into(),
            args: bytes,
        })?;
        let future = Future::new();
        self.enqueue(Task::new(request, &future, |reply| match reply? {
            Reply::Call(Ok(bytes)) => decode::<R>(&bytes),
            Reply::Call(Err(panic)) => Err(FutureError::Panicked(panic)),
            Reply::Chunk(_) => Err(out_of_turn()),
        }))?;
        Ok(future)
    }

    /// Runs `entry` on every item of `args`, `chunksize` items per trip to
    /// a worker; the results in input order (Python's `map`). All tasks
    /// are queued at once; dropping the iterator cancels those not begun.
    pub fn map<A, R>(
        &self,
        entry: &'static Entry<A, R>,
        args: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<ProcessMap<R>, ProcessPoolError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
        Entry<A, R>: Registered,
    {
        process::check_registered(entry.name()).map_err(ProcessPoolError::NotRegistered)?;
        let chunksize = chunksize.max(1);
        let mut chunks = VecDeque::new();
        let mut args = args.into_iter().peekable();
        while args.peek().is_some() {
            let mut encoded = Vec::with_capacity(chunksize);
            for a in args.by_ref().take(chunksize) {
                let mut bytes = Vec::new();
                wire::encode_plain(&a, &mut bytes).map_err(ProcessPoolError::Encode)?;
                encoded.push(bytes);
            }
            let n = encoded.len();
            let request = encode_request(&Request::Chunk {
                entry: entry.name().into(),
                args: encoded,
            })?;
            let future = Future::new();
            self.enqueue(Task::new(request, &future, move |reply| {
                Ok(match reply {
                    Ok(Reply::Chunk(results)) => results
                        .into_iter()
                        .map(|r| {
                            r.map_err(FutureError::Panicked)
                                .and_then(|b| decode::<R>(&b))
                        })
                        .collect(),
                    Ok(Reply::Call(_)) => (0..n).map(|_| Err(out_of_turn())).collect(),
                    Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
                })
            }))?;
            chunks.push_back(future);
        }
        Ok(ProcessMap {
            chunks,
            current: VecDeque::new(),
        })
    }

    /// Stops taking tasks; with `wait`, returns when every queued task is
    /// done and the workers have exited; with `cancel_futures`, cancels
    /// the tasks not yet sent to a worker (Python's `shutdown`).
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        drop(self.sender.lock().take());
        if cancel_futures {
            // Feeders skip a cancelled task; those a feeder already took
            // (sent to its worker) run.
            while let Ok(task) = self.tasks.try_recv() {
                (task.cancel)();
            }
        }
        if wait {
            let feeders = std::mem::take(&mut *self.feeders.lock());
            for feeder in feeders {
                let _ = feeder.join();
            }
        }
    }
}

impl Drop for ProcessPool {
    /// Python's `with` block: `shutdown(wait=True)`.
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

fn encode_request(request: &Request) -> Result<Vec<u8>, ProcessPoolError> {
    let mut bytes = Vec::new();
    wire::encode_plain(request, &mut bytes).map_err(ProcessPoolError::Encode)?;
    Ok(bytes)
}

fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<R, FutureError> {
    wire::decode(bytes, Vec::new())
        .map_err(|e| FutureError::Panicked(format!("the result could not be decoded: {e}")))
}

fn finish<R>(future: &Future<R>, outcome: Result<R, FutureError>) {
    match outcome {
        Ok(value) => {
            let _ = future.set_result(value);
        }
        Err(e) => {
            future.set_error(e);
        }
    }
}

/// The iterator of [`ProcessPool::map`]: results in input order.
pub struct ProcessMap<R> {
    chunks: VecDeque<Future<Vec<Result<R, FutureError>>>>,
    current: VecDeque<Result<R, FutureError>>,
}

impl<R> fmt::Debug for ProcessMap<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessMap")
            .field("chunks_left", &self.chunks.len())
            .finish()
    }
}

impl<R> Iterator for ProcessMap<R> {
    type Item = Result<R, FutureError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.current.pop_front() {
                return Some(r);
            }
            let chunk = self.chunks.pop_front()?;
            match chunk.into_result() {
                Ok(results) => self.current = results.into(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<R> Drop for ProcessMap<R> {
    fn drop(&mut self) {
        for chunk in &self.chunks {
            chunk.cancel();
        }
    }
}

/// A running worker process, as its feeder sees it.
struct Worker {
    process: Process,
    sock: UnixStream,
    reader: FrameReader,
    /// Tasks it has been sent.
    sent: usize,
}

impl Worker {
    fn start(config: &Config) -> Result<Self, String> {
        let args = WorkerArgs {
            initializer: config.initializer.clone(),
        };
        let encoded = wire::encode(&args).map_err(|e| e.to_string())?;
        let (process, sock) = process::start_builtin(WORKER_ENTRY, "ProcessPoolWorker", encoded)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            process,
            sock,
            reader: FrameReader::default(),
            sent: 0,
        })
    }

    /// Waits for the worker to exit (its socket closed) and reports how.
    fn reap(self) -> String {
        drop(self.sock);
        match self.process.join() {
            code if code < 0 => format!("killed by signal {} (exit code {code})", -code),
            code => format!("exit code {code}"),
        }
    }
}

/// A feeder thread's loop: keep one worker busy with tasks from `tasks`,
/// replace it when it dies or has done its share, exit when the pool's
/// queue is closed and drained.
fn feed(tasks: &Receiver<Task>, config: &Config) {
    // Tasks sent to a worker that died before beginning them.
    let mut retry: VecDeque<Task> = VecDeque::new();
    let mut inflight: VecDeque<Task> = VecDeque::new();
    let mut worker: Option<Worker> = None;
    let mut closed = false;
    loop {
        // Top up the worker's window.
        let quota = config.max_tasks_per_child.unwrap_or(usize::MAX);
        while inflight.len() < WINDOW && worker.as_ref().is_none_or(|w| w.sent < quota) {
            let (task, begun) = if let Some(t) = retry.pop_front() {
                (t, true)
            } else if closed {
                break;
            } else if inflight.is_empty() {
                match tasks.recv() {
                    Ok(t) => (t, false),
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            } else {
                match tasks.try_recv() {
                    Ok(t) => (t, false),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            };
            // Marked running when first sent (a retried task already was).
            if !begun && !(task.start)() {
                continue; // cancelled before it began
            }
            let w = match worker.as_mut() {
                Some(w) => w,
                None => match Worker::start(config) {
                    Ok(w) => worker.insert(w),
                    Err(why) => {
                        (task.complete)(Err(FutureError::WorkerDied(format!(
                            "the worker could not start: {why}"
                        ))));
                        continue;
                    }
                },
            };
            w.sent += 1;
            if wire::send_frame(&w.sock, &task.request, &[]).is_err() {
                // It died; its read below reports how, and this task goes
                // to the replacement with the others not begun.
                inflight.push_back(task);
                break;
            }
            inflight.push_back(task);
        }
        let Some(w) = worker.as_mut() else {
            if closed && retry.is_empty() {
                return;
            }
            continue;
        };
        if inflight.is_empty() {
            // Nothing sent: the queue is closed (or this worker did its share).
            let w = worker.take().expect("a worker");
            w.reap();
            if closed && retry.is_empty() {
                return;
            }
            continue;
        }
        match w
            .reader
            .recv(&w.sock)
            .and_then(|f| wire::decode::<Reply>(&f.bytes, Vec::new()))
        {
            Ok(reply) => {
                let task = inflight.pop_front().expect("a reply answers a task sent");
                (task.complete)(Ok(reply));
                if inflight.is_empty() && w.sent >= quota {
                    worker.take().expect("a worker").reap();
                }
            }
            Err(_) => {
                // The worker is gone: the oldest task sent was running.
                let how = worker.take().expect("a worker").reap();
                if let Some(task) = inflight.pop_front() {
                    (task.complete)(Err(FutureError::WorkerDied(how)));
                }
                retry.extend(inflight.drain(..));
            }
        }
    }
}

/// The worker process's main: run the initializer, then answer requests
/// until the feeder closes the socket.
pub(crate) fn worker_main(
    sock: UnixStream,
    mut reader: FrameReader,
    args: Vec<u8>,
    _fds: Vec<OwnedFd>,
) -> i32 {
    let Ok(args) = wire::decode::<WorkerArgs>(&args, Vec::new()) else {
        eprintln!("conc: a pool worker got arguments it could not read");
        return 2;
    };
    if let Some((name, init_args)) = args.initializer {
        let Some(init) = process::lookup(&name) else {
            eprintln!("conc: the initializer {name:?} is not registered");
            return 2;
        };
        if panic::catch_unwind(AssertUnwindSafe(|| {
            init.call_encoded(&init_args, Vec::new())
        }))
        .is_err()
        {
            return 1;
        }
    }
    let run = |entry: &str, bytes: &[u8]| -> Result<Vec<u8>, String> {
        let target = process::lookup(entry)
            .ok_or_else(|| format!("no entry called {entry:?} is registered"))?;
        match panic::catch_unwind(AssertUnwindSafe(|| target.call_encoded(bytes, Vec::new()))) {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(e.to_string()),
            Err(payload) => Err(super::future::panic_message(payload)),
        }
    };
    loop {
        let Ok(frame) = reader.recv(&sock) else {
            return 0;
        };
        let reply = match wire::decode::<Request>(&frame.bytes, Vec::new()) {
            Ok(Request::Call { entry, args }) => Reply::Call(run(&entry, &args)),
            Ok(Request::Chunk { entry, args }) => {
                Reply::Chunk(args.iter().map(|a| run(&entry, a)).collect())
            }
            Err(e) => Reply::Call(Err(e.to_string())),
        };
        let mut out = Vec::new();
        if wire::encode_plain(&reply, &mut out).is_err()
            || wire::send_frame(&sock, &out, &[]).is_err()
        {
            return 0;
        }
    }
}
