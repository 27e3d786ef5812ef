//! The deadlock detector's wait-for graph (feature `deadlock-detector`): who holds which `Lock`, who waits for which.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};
use std::thread::{self, ThreadId};

/// One step of a deadlock cycle: a thread, a lock it holds, and the lock it
/// waits for (held by the next thread of the cycle).
///
/// # Examples
///
/// ```
/// use conc::deadlock::WaitEdge;
///
/// let edge = WaitEdge {
///     thread: "A".into(),
///     holds: "fork 1".into(),
///     waits_for: "fork 2".into(),
/// };
/// assert_eq!(edge.to_string(), "thread 'A' holds 'fork 1' and waits for 'fork 2'");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitEdge {
    /// The thread's name, or its `ThreadId` if it has none.
    pub thread: String,
    /// The name of the lock it holds that the previous thread waits for,
    /// or `lock #id` for an unnamed one.
    pub holds: String,
    /// The name of the lock it waits for.
    pub waits_for: String,
}

/// A cycle of threads each waiting for a lock the next one holds, starting
/// with the thread that closed it. Its `Display` reads as a sentence.
///
/// # Examples
///
/// ```
/// use conc::sync::Lock;
///
/// let lock = Lock::named("config", ());
/// let _held = lock.acquire();
/// let deadlock = lock.acquire_checked().unwrap_err();
/// assert_eq!(deadlock.edges().len(), 1);
/// assert!(deadlock.to_string().ends_with("holds 'config' and waits for 'config'"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Deadlock {
    edges: Vec<WaitEdge>,
}

impl Deadlock {
    /// The cycle, one edge per thread, starting with the thread that
    /// closed it; each thread waits for what the next one holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = conc::sync::Lock::named("l", ());
    /// let _held = lock.acquire();
    /// let cycle = lock.acquire_checked().unwrap_err();
    /// let edge = &cycle.edges()[0];
    /// assert_eq!((edge.holds.as_str(), edge.waits_for.as_str()), ("l", "l"));
    /// ```
    pub fn edges(&self) -> &[WaitEdge] {
        &self.edges
    }
}

impl fmt::Display for WaitEdge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "thread '{}' holds '{}' and waits for '{}'",
            self.thread, self.holds, self.waits_for
        )
    }
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, edge) in self.edges.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{edge}")?;
        }
        Ok(())
    }
}

type Handler = Arc<dyn Fn(&Deadlock) + Send + Sync>;

/// `None`: print on stderr.
static HANDLER: parking_lot::RwLock<Option<Handler>> = parking_lot::RwLock::new(None);

/// Sets what [`Lock::acquire`](crate::sync::Lock::acquire) and
/// [`Lock::acquire_timeout`](crate::sync::Lock::acquire_timeout) do with a
/// cycle they find before blocking; by default it is printed on stderr.
/// The handler runs on the thread that closed the cycle, which then blocks.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc::sync::Lock;
///
/// let (tx, rx) = std::sync::mpsc::channel();
/// let tx = std::sync::Mutex::new(tx);
/// conc::deadlock::set_handler(move |cycle| {
///     tx.lock().unwrap().send(cycle.to_string()).unwrap();
/// });
/// let lock = Lock::named("handler demo", ());
/// let _held = lock.acquire();
/// assert!(lock.acquire_timeout(Duration::from_millis(1)).is_none());
/// assert!(rx.recv().unwrap().contains("'handler demo'"));
/// ```
pub fn set_handler(handler: impl Fn(&Deadlock) + Send + Sync + 'static) {
    *HANDLER.write() = Some(Arc::new(handler));
}

/// Hands a cycle found by a blocking acquire to the handler.
pub(crate) fn report(cycle: &Deadlock) {
    // Cloned out so the handler runs without the handler lock held: it may
    // itself set a handler, or take locks.
    let handler = HANDLER.read().clone();
    match handler {
        Some(handler) => handler(cycle),
        None => eprintln!("conc: deadlock: {cycle}"),
    }
}

/// What a blocked thread waits for, with the names a report needs.
struct Waiting {
    thread: String,
    lock: u64,
    lock_name: String,
}

#[derive(Default)]
struct Graph {
    /// Lock id -> the thread holding it.
    holders: HashMap<u64, ThreadId>,
    /// Thread -> the lock it is blocked on.
    waiting: HashMap<ThreadId, Waiting>,
}

static GRAPH: LazyLock<parking_lot::Mutex<Graph>> = LazyLock::new(Default::default);

fn lock_label(id: u64, name: Option<&str>) -> String {
    match name {
        Some(name) => name.to_owned(),
        None => format!("lock #{id}"),
    }
}

/// Records that the current thread is about to block on lock `id`, and
/// returns the cycle it closes, if any. The record stays until
/// [`acquired`] or [`gave_up`].
pub(crate) fn will_wait(id: u64, name: Option<&str>) -> Option<Deadlock> {
    let me = thread::current();
    let waiting = Waiting {
        thread: match me.name() {
            Some(name) => name.to_owned(),
            None => format!("{:?}", me.id()),
        },
        lock: id,
        lock_name: lock_label(id, name),
    };
    let mut graph = GRAPH.lock();
    graph.waiting.insert(me.id(), waiting);
    // Each thread waits for at most one lock and each lock has at most one
    // holder, so the graph out of this thread is a chain: follow it.
    let mut chain = vec![me.id()];
    let mut lock = id;
    loop {
        let holder = *graph.holders.get(&lock)?;
        if holder == me.id() {
            break;
        }
        if chain.contains(&holder) {
            // A cycle this thread only leads into: whoever closed it
            // has reported it already.
            return None;
        }
        lock = graph.waiting.get(&holder)?.lock;
        chain.push(holder);
    }
    let edges = (0..chain.len())
        .map(|i| {
            let this = &graph.waiting[&chain[i]];
            // Each thread holds the lock the one before it waits for.
            let before = &graph.waiting[&chain[(i + chain.len() - 1) % chain.len()]];
            WaitEdge {
                thread: this.thread.clone(),
                holds: before.lock_name.clone(),
                waits_for: this.lock_name.clone(),
            }
        })
        .collect();
    Some(Deadlock { edges })
}

/// The current thread now holds lock `id`, and waits for nothing.
pub(crate) fn acquired(id: u64) {
    let me = thread::current().id();
    let mut graph = GRAPH.lock();
    graph.waiting.remove(&me);
    graph.holders.insert(id, me);
}

/// The current thread stopped waiting without the lock (timeout, or a
/// checked acquire that found a cycle).
pub(crate) fn gave_up() {
    let me = thread::current().id();
    GRAPH.lock().waiting.remove(&me);
}

/// Lock `id` is free again.
pub(crate) fn released(id: u64) {
    GRAPH.lock().holders.remove(&id);
}
