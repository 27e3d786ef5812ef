//! The load engine: many connections per thread, each thread one mio event loop.
//!
//! The run has three phases on one clock shared by every thread:
//! connections are opened first (not timed), then the warm-up, then the
//! measured window. The window's two instants are fixed on that clock before
//! the load starts, and a request counts only if the worker's clock reading
//! at its completion falls between them: threads starting or stopping late
//! cannot inflate the figure (the mistake of the well-known echo benchmark
//! that divides whatever its threads did by a nominal duration).
//!
//! Closed loop (the default): each connection keeps `pipeline` requests in
//! flight, sending a new one as each reply completes; latency runs from the
//! moment a request is issued. Open loop (`rate`): requests are due on a
//! fixed schedule, and latency runs from when each was *due*, so a server
//! that stalls is charged for every request it delayed, not just the one
//! it was serving (no coordinated omission).
//!
//! The parts: `clock.rs` holds the shared clock and the gate that starts
//! every thread on it; `worker.rs` one thread's client connections and event
//! loop; `sources.rs` the local addresses to connect from.

mod clock;
mod sources;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::Poll;
use serde::Serialize;

use self::clock::{Clock, Gate, sleep_until};
use self::sources::source_addresses;
use self::worker::Worker;
use crate::Error;
use crate::stream::Stream;

/// What load to apply.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Connections, all opened before the clock starts.
    pub conns: usize,
    /// Bytes per request (and per reply).
    pub size: usize,
    /// Closed loop: requests in flight per connection. Open loop: the most a
    /// connection may have in flight before later requests wait (their
    /// latency still counts from when they were due).
    pub pipeline: usize,
    /// Open loop: requests per second over all connections. `None`: closed loop.
    pub rate: Option<f64>,
    /// Client threads; each runs one event loop over its share of connections.
    pub threads: usize,
    /// Load applied before the measured window, not counted.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// A connection with a request in flight and no reply byte for this long
    /// is counted as timed out and closed.
    pub timeout: Duration,
    /// More connections, opened first and held open without sending a byte:
    /// the idle crowd a multiplexing server watches on every wait.
    pub silent: usize,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            conns: 100,
            size: 64,
            pipeline: 1,
            rate: None,
            threads: 1,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(4),
            timeout: Duration::from_secs(2),
            silent: 0,
        }
    }
}

/// The moments the driver of a run may want to act at (read the server's
/// counters, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    /// Every connection is open; warm-up starts.
    Connected,
    /// The measured window is about to start: readings of what the window
    /// costs are taken now, in the last stretch of the warm-up (at most
    /// 200 ms, half the warm-up), so that none of their own work falls
    /// inside the counted window. They are timed by their midpoints, and
    /// the load is the same on both sides of the window's edge.
    WindowStart,
    /// The measured window ends.
    WindowEnd,
}

/// What went wrong during the window, counted.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Errors {
    /// Connections closed because a reply byte was wrong (or extra).
    pub wrong_bytes: u64,
    /// Connections the server closed while replies were owed.
    pub short_replies: u64,
    /// Connections reset or otherwise failed by the network.
    pub resets: u64,
    /// Connections with a reply owed and no byte for `timeout`.
    pub timeouts: u64,
    /// Connections that could not be opened.
    pub connect_failures: u64,
}

impl Errors {
    fn add(&mut self, other: &Self) {
        self.wrong_bytes += other.wrong_bytes;
        self.short_replies += other.short_replies;
        self.resets += other.resets;
        self.timeouts += other.timeouts;
        self.connect_failures += other.connect_failures;
    }

    /// Whether anything at all went wrong.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }

    /// Whether the server sent something it must not have: a wrong byte,
    /// or EOF with replies owed.
    pub fn server_is_broken(&self) -> bool {
        self.wrong_bytes > 0 || self.short_replies > 0
    }
}

/// What a run measured on the client side. Each load thread measures its
/// share, and [`run`] adds the shares up.
#[derive(Debug)]
pub struct LoadResult {
    /// The measured window: the span of the shared clock that completions
    /// were counted in.
    pub window: Duration,
    /// When the window began, on that clock (set by [`run`]).
    pub window_start: Option<Instant>,
    /// Requests completed inside the window.
    pub requests: u64,
    /// Latency of those requests, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Errors over the whole run (warm-up included).
    pub errors: Errors,
    /// The first wrong byte seen, described.
    pub first_wrong: Option<String>,
    /// Connections that completed no request inside the window.
    pub idle_conns: usize,
    /// Connections opened (those that could not be are counted in
    /// [`Errors::connect_failures`]).
    pub opened: usize,
}

impl LoadResult {
    /// Nothing measured yet, over `window`.
    fn empty(window: Duration) -> Self {
        Self {
            window,
            window_start: None,
            requests: 0,
            latency: new_histogram(),
            errors: Errors::default(),
            first_wrong: None,
            idle_conns: 0,
            opened: 0,
        }
    }

    /// Adds what another thread measured over the same window; the first
    /// wrong byte stays the first one seen.
    fn add(&mut self, other: Self) {
        self.requests += other.requests;
        self.latency
            .add(&other.latency)
            .expect("histograms share their bounds");
        self.errors.add(&other.errors);
        self.first_wrong = self.first_wrong.take().or(other.first_wrong);
        self.idle_conns += other.idle_conns;
        self.opened += other.opened;
    }
}

/// Runs `workload` against `addr`, calling `at` at each [`Milestone`] from the
/// calling thread.
///
/// # Errors
///
/// If no connection at all could be opened, or a thread could not start.
pub fn run(
    addr: SocketAddr,
    workload: &Workload,
    mut at: impl FnMut(Milestone),
) -> Result<LoadResult, Error> {
    // Opened first, held to the end of the run, never used.
    let _silent = (0..workload.silent)
        .map(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)))
        .collect::<io::Result<Vec<_>>>()
        .map_err(Error::Silent)?;
    let stream = Stream::new();
    let threads = workload.threads.clamp(1, workload.conns.max(1));
    let sources = source_addresses(addr, workload.conns)?;
    // Each thread connects its share, then waits at the gate; the driver
    // opens it with the clock once all have arrived, or with nothing if one
    // of them could not be started (so none is left waiting).
    let gate = Arc::new(Gate::default());
    // The load goes on past the window's end until the driver has taken its
    // readings: a reading taken a little late (scanning 10,000 threads'
    // schedstat takes a while) then still spans a window of full load, the
    // same length as the one counted. It also keeps the sockets, and the
    // kernel's counters in them, alive until then.
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let spawned = Poll::new().and_then(|poll| {
            let indices: Vec<usize> = (t..workload.conns).step_by(threads).collect();
            let (stream, workload, sources) =
                (Arc::clone(&stream), workload.clone(), sources.clone());
            let (gate, stop) = (Arc::clone(&gate), Arc::clone(&stop));
            thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn(move || {
                    let mut worker =
                        Worker::connect(poll, addr, &indices, &sources, stream, &workload);
                    match gate.arrive_and_wait() {
                        Some(clock) => worker.run(&workload, clock, &stop),
                        None => LoadResult::empty(Duration::ZERO),
                    }
                })
        });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                gate.open(None);
                for handle in handles {
                    let _ = handle.join();
                }
                return Err(Error::Thread(error));
            }
        }
    }
    gate.wait_for(threads);
    at(Milestone::Connected);
    let start = Instant::now();
    let clock_value = Clock {
        start,
        window_start: start + workload.warmup,
        window_end: start + workload.warmup + workload.duration,
    };
    gate.open(Some(clock_value));

    sleep_until(clock_value.window_start - READING_LEAD.min(workload.warmup / 2));
    at(Milestone::WindowStart);
    sleep_until(clock_value.window_end);
    at(Milestone::WindowEnd);
    stop.store(true, Ordering::Release);
    // The window the workers counted in: fixed on the shared clock, so a
    // late wake-up of this thread changes nothing.
    let window = clock_value.window_end - clock_value.window_start;

    let mut total = LoadResult::empty(window);
    total.window_start = Some(clock_value.window_start);
    for handle in handles {
        let part = handle
            .join()
            .map_err(|_| Error::Thread(io::Error::other("a load thread panicked")))?;
        total.add(part);
    }
    if total.opened == 0 {
        return Err(Error::NoConnection {
            addr,
            attempts: workload.conns,
        });
    }
    Ok(total)
}

/// How long before the window the driver takes its first readings (see
/// [`Milestone::WindowStart`]); at most half the warm-up.
const READING_LEAD: Duration = Duration::from_millis(200);

/// Latency histogram: 1 ns to 100 s at 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds")
}
