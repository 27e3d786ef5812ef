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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

use crate::Error;
use crate::stream::{Cursor, MAX_IO, Stream};

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
pub enum Phase {
    /// Every connection is open; warm-up starts.
    Connected,
    /// The measured window starts.
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

/// What a run measured on the client side.
#[derive(Debug)]
pub struct LoadResult {
    /// The measured window: the span of the shared clock that completions
    /// were counted in.
    pub window: Duration,
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
}

/// Runs `workload` against `addr`, calling `at` at each [`Phase`] from the
/// calling thread.
///
/// # Errors
///
/// If no connection at all could be opened, or a thread could not start.
pub fn run(
    addr: SocketAddr,
    workload: &Workload,
    mut at: impl FnMut(Phase),
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
                        None => Part::default(),
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
    at(Phase::Connected);
    let start = Instant::now();
    let clock_value = Clock {
        start,
        window_start: start + workload.warmup,
        window_end: start + workload.warmup + workload.duration,
    };
    gate.open(Some(clock_value));

    sleep_until(clock_value.window_start);
    at(Phase::WindowStart);
    sleep_until(clock_value.window_end);
    at(Phase::WindowEnd);
    stop.store(true, Ordering::Release);
    // The window the workers counted in: fixed on the shared clock, so a
    // late wake-up of this thread changes nothing.
    let window = clock_value.window_end - clock_value.window_start;

    let mut total = LoadResult {
        window,
        requests: 0,
        latency: new_histogram(),
        errors: Errors::default(),
        first_wrong: None,
        idle_conns: 0,
    };
    let mut opened = 0;
    for handle in handles {
        let part = handle
            .join()
            .map_err(|_| Error::Thread(io::Error::other("a load thread panicked")))?;
        total.requests += part.requests;
        total
            .latency
            .add(&part.latency)
            .expect("histograms share their bounds");
        total.errors.add(&part.errors);
        total.first_wrong = total.first_wrong.or(part.first_wrong);
        total.idle_conns += part.idle_conns;
        opened += part.opened;
    }
    if opened == 0 {
        return Err(Error::NoConnection {
            addr,
            attempts: workload.conns,
        });
    }
    Ok(total)
}

/// Where the threads wait for the clock: a barrier that can also be opened
/// with nothing, to release the threads when the run is called off.
#[derive(Debug, Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    arrived: usize,
    /// `Some(Some(clock))`: go; `Some(None)`: the run is called off.
    opened: Option<Option<Clock>>,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A thread has connected; waits for the gate to open.
    fn arrive_and_wait(&self) -> Option<Clock> {
        let mut state = self.lock();
        state.arrived += 1;
        self.changed.notify_all();
        loop {
            if let Some(opened) = state.opened {
                return opened;
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits until `threads` threads have arrived.
    fn wait_for(&self, threads: usize) {
        let mut state = self.lock();
        while state.arrived < threads {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn open(&self, clock: Option<Clock>) {
        self.lock().opened = Some(clock);
        self.changed.notify_all();
    }
}

/// The phases' instants, the same for every thread.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    window_start: Instant,
    window_end: Instant,
}

fn sleep_until(when: Instant) {
    let now = Instant::now();
    if when > now {
        thread::sleep(when - now);
    }
}

/// Latency histogram: 1 ns to 100 s at 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds")
}

/// The local addresses to connect from. One, unless the connections would
/// run short of ephemeral ports from 127.0.0.1 to one server port: then
/// spread them over 127.0.0.2, .3, ... (the whole of 127/8 is loopback).
fn source_addresses(addr: SocketAddr, conns: usize) -> Result<Vec<IpAddr>, Error> {
    plan_sources(addr, conns, ephemeral_ports())
}

/// [`source_addresses`] for a given number of ephemeral ports.
fn plan_sources(addr: SocketAddr, conns: usize, ports: usize) -> Result<Vec<IpAddr>, Error> {
    // Leave a fifth of the range for everything else on the machine.
    let per_source = (ports * 4 / 5).max(1);
    if conns <= per_source {
        return Ok(Vec::new());
    }
    if !matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback()) {
        return Err(Error::PortsShort {
            conns,
            ports: per_source,
        });
    }
    let sources = conns.div_ceil(per_source);
    Ok((0..sources)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8)))
        .collect())
}

/// How many ephemeral ports the kernel hands out (`ip_local_port_range`).
fn ephemeral_ports() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| {
            let mut it = range
                .split_whitespace()
                .filter_map(|p| p.parse::<usize>().ok());
            Some(it.next_back()? - it.next()? + 1)
        })
        .unwrap_or(28_232)
}

/// One connection's state: three counters and the send times of the
/// requests in flight; the bytes themselves live in the shared [`Stream`].
#[derive(Debug)]
struct Conn {
    /// The connection's number over the whole run, all threads counted.
    index: usize,
    /// Whether it was opened at all (a failed connect is counted as such,
    /// not also as idle).
    opened: bool,
    socket: Option<TcpStream>,
    cursor: Cursor,
    /// Stream bytes written so far.
    sent: u64,
    /// Stream bytes received and checked so far.
    received: u64,
    /// Requests issued (allowed onto the wire) so far.
    issued: u64,
    /// When each request in flight was issued (closed loop) or due (open loop).
    issued_at: VecDeque<Instant>,
    /// Open loop: a request that came due while the connection was at its
    /// in-flight cap, waiting for a reply to free a place. Its latency still
    /// counts from this instant.
    parked: Option<Instant>,
    /// The last time a reply byte arrived, or a request was issued to an
    /// idle connection: what `timeout` is measured from.
    last_progress: Instant,
    completed_in_window: u64,
}

/// One thread's connections and event loop.
struct Worker {
    poll: Poll,
    conns: Vec<Conn>,
    stream: Arc<Stream>,
    size: u64,
    pipeline: usize,
    /// Open loop: the time between two requests on one connection.
    interval: Option<Duration>,
    /// Open loop: when each connection's next request is due, soonest first.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    latency: Histogram<u64>,
    requests: u64,
    errors: Errors,
    first_wrong: Option<String>,
    scratch: Box<[u8]>,
}

/// What one thread hands back.
struct Part {
    requests: u64,
    latency: Histogram<u64>,
    errors: Errors,
    first_wrong: Option<String>,
    idle_conns: usize,
    opened: usize,
}

impl Default for Part {
    fn default() -> Self {
        Self {
            requests: 0,
            latency: new_histogram(),
            errors: Errors::default(),
            first_wrong: None,
            idle_conns: 0,
            opened: 0,
        }
    }
}

impl Worker {
    fn connect(
        poll: Poll,
        addr: SocketAddr,
        indices: &[usize],
        sources: &[IpAddr],
        stream: Arc<Stream>,
        workload: &Workload,
    ) -> Self {
        let mut errors = Errors::default();
        let now = Instant::now();
        let mut conns = Vec::with_capacity(indices.len());
        for &index in indices {
            let source = (!sources.is_empty()).then(|| sources[index % sources.len()]);
            let socket = match open(addr, source, workload.timeout.max(Duration::from_secs(5))) {
                Ok(socket) => {
                    let mut socket = TcpStream::from_std(socket);
                    let token = Token(conns.len());
                    match poll.registry().register(
                        &mut socket,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        Ok(()) => Some(socket),
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            };
            if socket.is_none() {
                errors.connect_failures += 1;
            }
            conns.push(Conn {
                index,
                opened: socket.is_some(),
                socket,
                cursor: Stream::cursor(index),
                sent: 0,
                received: 0,
                issued: 0,
                issued_at: VecDeque::with_capacity(workload.pipeline),
                parked: None,
                last_progress: now,
                completed_in_window: 0,
            });
        }
        Self {
            poll,
            conns,
            stream,
            size: workload.size as u64,
            pipeline: workload.pipeline.max(1),
            // Each connection's share of the total rate.
            interval: workload
                .rate
                .map(|rate| Duration::from_secs_f64(workload.conns.max(1) as f64 / rate.max(1e-9))),
            due: BinaryHeap::new(),
            latency: new_histogram(),
            requests: 0,
            errors,
            first_wrong: None,
            scratch: vec![0; MAX_IO].into_boxed_slice(),
        }
    }

    fn run(&mut self, workload: &Workload, clock: Clock, stop: &AtomicBool) -> Part {
        let opened = self.conns.iter().filter(|c| c.socket.is_some()).count();
        let now = Instant::now();
        let total = workload.conns.max(1);
        for i in 0..self.conns.len() {
            match self.interval {
                None => {
                    for _ in 0..self.pipeline {
                        self.issue(i, now);
                    }
                    self.flush(i);
                }
                // Open loop: first requests staggered over one interval, so
                // the connections do not all fire at once.
                Some(interval) => {
                    let first =
                        clock.start + interval.mul_f64(self.conns[i].index as f64 / total as f64);
                    self.due.push(Reverse((first, i)));
                }
            }
        }

        let mut events = Events::with_capacity(1024);
        let mut next_timeout_check = now + Duration::from_millis(100);
        loop {
            let now = Instant::now();
            // Past the window, load goes on (uncounted) until the driver
            // has its readings.
            let past_window = now >= clock.window_end;
            if past_window && stop.load(Ordering::Acquire) {
                break;
            }
            self.issue_due(now);
            if now >= next_timeout_check {
                self.check_timeouts(now, workload.timeout);
                next_timeout_check = now + Duration::from_millis(100);
            }
            let until_edge = if past_window {
                Duration::from_millis(5)
            } else {
                clock.window_end - now
            };
            let mut wait = until_edge.min(next_timeout_check - now);
            if let Some(&Reverse((when, _))) = self.due.peek() {
                wait = wait.min(when.saturating_duration_since(now));
            }
            // epoll (and so mio) rounds a timeout up to whole milliseconds:
            // round down instead, and poll without blocking for the last
            // one, so a request due in 50 us does not leave 1 ms late.
            let wait = if wait < Duration::from_millis(1) {
                Duration::ZERO
            } else {
                Duration::from_millis(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
            };
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            let now = Instant::now();
            for event in &events {
                let i = event.token().0;
                let closing = event.is_read_closed() || event.is_error();
                if event.is_readable() || closing {
                    self.read(i, now, &clock, closing);
                }
                if event.is_writable() {
                    self.flush(i);
                }
            }
        }
        let idle_conns = self
            .conns
            .iter()
            .filter(|c| c.opened && c.completed_in_window == 0)
            .count();
        Part {
            requests: self.requests,
            latency: std::mem::replace(&mut self.latency, new_histogram()),
            errors: std::mem::take(&mut self.errors),
            first_wrong: self.first_wrong.take(),
            idle_conns,
            opened,
        }
    }

    /// Open loop: issues the request due at `when` (and charged from then),
    /// sends it, and schedules the connection's next one.
    fn issue_scheduled(&mut self, i: usize, when: Instant, interval: Duration) {
        self.issue(i, when);
        self.flush(i);
        self.due.push(Reverse((when + interval, i)));
    }

    /// Open loop: issues every request that has come due by `now`, each
    /// stamped with the instant it was due.
    fn issue_due(&mut self, now: Instant) {
        let Some(interval) = self.interval else {
            return;
        };
        while let Some(&Reverse((when, i))) = self.due.peek() {
            if when > now {
                break;
            }
            self.due.pop();
            if self.conns[i].socket.is_none() {
                continue;
            }
            if self.conns[i].issued_at.len() < self.pipeline {
                self.issue_scheduled(i, when, interval);
            } else {
                // At the cap: parked until a reply frees a place (see `read`).
                self.conns[i].parked = Some(when);
            }
        }
    }

    /// Allows one more request onto connection `i`, stamped `at`.
    fn issue(&mut self, i: usize, at: Instant) {
        let conn = &mut self.conns[i];
        if conn.socket.is_none() {
            return;
        }
        if conn.issued_at.is_empty() {
            conn.last_progress = at.max(conn.last_progress);
        }
        conn.issued += 1;
        conn.issued_at.push_back(at);
    }

    /// Writes what has been issued and not yet sent, until the socket is full.
    fn flush(&mut self, i: usize) {
        let size = self.size;
        let conn = &mut self.conns[i];
        let Some(socket) = conn.socket.as_mut() else {
            return;
        };
        while conn.sent < conn.issued * size {
            let want = (conn.issued * size - conn.sent) as usize;
            match socket.write(self.stream.to_send(conn.cursor, conn.sent, want)) {
                Ok(0) => return self.fail(i, Failure::Reset),
                Ok(n) => conn.sent += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.fail(i, Failure::Reset),
            }
        }
    }

    /// Reads and checks everything available on connection `i`; records each
    /// completed request; in closed loop, issues its successor. `closing`:
    /// the peer has hung up (EPOLLRDHUP), so read on to the EOF.
    fn read(&mut self, i: usize, now: Instant, clock: &Clock, closing: bool) {
        loop {
            let conn = &mut self.conns[i];
            let Some(socket) = conn.socket.as_mut() else {
                return;
            };
            let n = match socket.read(&mut self.scratch) {
                Ok(0) => {
                    let failure = if conn.received < conn.sent || !conn.issued_at.is_empty() {
                        Failure::Short
                    } else {
                        Failure::Reset
                    };
                    return self.fail(i, failure);
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return self.fail(i, Failure::Reset),
            };
            let got = &self.scratch[..n];
            // More back than was sent: the server made bytes up.
            let extra = (conn.received + n as u64).saturating_sub(conn.sent) as usize;
            let checked = &got[..n - extra];
            if let Some(k) = self
                .stream
                .check(conn.cursor, conn.received, checked)
                .or((extra > 0).then_some(n - extra))
            {
                let at = conn.received + k as u64;
                let expected = self.stream.expected_byte(conn.cursor, at);
                let description = format!(
                    "connection {i}: byte {at} of the reply stream is {:#04x} ({:?}), expected {:#04x} ({:?})",
                    got[k], got[k] as char, expected, expected as char
                );
                self.first_wrong.get_or_insert(description);
                return self.fail(i, Failure::Wrong);
            }
            let before = conn.received / self.size;
            conn.received += n as u64;
            conn.last_progress = now;
            let completed = conn.received / self.size - before;
            let in_window = now >= clock.window_start && now < clock.window_end;
            for _ in 0..completed {
                let issued_at = conn
                    .issued_at
                    .pop_front()
                    .expect("a reply for an issued request");
                if in_window {
                    let nanos =
                        u64::try_from(now.duration_since(issued_at).as_nanos()).unwrap_or(u64::MAX);
                    self.latency.saturating_record(nanos.max(1));
                    self.requests += 1;
                    conn.completed_in_window += 1;
                }
            }
            // A short read drained the socket; under edge-triggered epoll,
            // bytes arriving later raise a new edge. Skipping the read that
            // would only say EAGAIN saves a syscall per request. Not so for
            // a FIN that came with the last bytes: no new edge will announce
            // it, so when the peer has hung up, read on to the EOF.
            let drained = n < self.scratch.len() && !closing;
            if completed > 0 {
                self.after_completions(i, completed);
            }
            if drained {
                return;
            }
        }
    }

    /// Closed loop: each reply makes room for the next request. Open loop: a
    /// parked request takes the freed place, charged from when it was due,
    /// and the schedule resumes after it.
    fn after_completions(&mut self, i: usize, completed: u64) {
        match self.interval {
            // Stamped now, not at the batch's start: a request goes out when
            // issued, which may be well into a batch of 1024 events.
            None => {
                let at = Instant::now();
                for _ in 0..completed {
                    self.issue(i, at);
                }
                self.flush(i);
            }
            Some(interval) => {
                if let Some(when) = self.conns[i].parked.take() {
                    self.issue_scheduled(i, when, interval);
                }
            }
        }
    }

    fn check_timeouts(&mut self, now: Instant, timeout: Duration) {
        for i in 0..self.conns.len() {
            let conn = &self.conns[i];
            if conn.socket.is_some()
                && !conn.issued_at.is_empty()
                && now.duration_since(conn.last_progress) > timeout
            {
                self.fail(i, Failure::Timeout);
            }
        }
    }

    /// Counts a failure and closes the connection: after a wrong byte or a
    /// reset the stream cannot be trusted, so it is not reused.
    fn fail(&mut self, i: usize, failure: Failure) {
        let conn = &mut self.conns[i];
        if let Some(mut socket) = conn.socket.take() {
            let _ = self.poll.registry().deregister(&mut socket);
        }
        conn.issued_at.clear();
        match failure {
            Failure::Wrong => self.errors.wrong_bytes += 1,
            Failure::Short => self.errors.short_replies += 1,
            Failure::Reset => self.errors.resets += 1,
            Failure::Timeout => self.errors.timeouts += 1,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Failure {
    Wrong,
    Short,
    Reset,
    Timeout,
}

/// Opens one connection (blocking, so it is complete before the clock
/// starts), from `source` when given, then makes it non-blocking. A server
/// whose queue is full leaves the SYN unanswered; `timeout` bounds the wait.
fn open(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> io::Result<std::net::TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(source) = source {
        socket.bind(&SocketAddr::new(source, 0).into())?;
    }
    socket.connect_timeout(&addr.into(), timeout)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::{open, plan_sources};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
    use std::time::Duration;

    #[test]
    fn few_connections_need_no_extra_source() {
        let addr: SocketAddr = "127.0.0.1:1688".parse().unwrap();
        assert!(plan_sources(addr, 10_000, 28_232).unwrap().is_empty());
    }

    #[test]
    fn many_connections_spread_over_loopback_sources() {
        let addr: SocketAddr = "127.0.0.1:1688".parse().unwrap();
        let sources = plan_sources(addr, 50_000, 28_232).unwrap();
        // 80% of 28,232 ports per source: 3 sources for 50,000.
        assert_eq!(sources.len(), 3);
        assert_eq!(sources[0], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    }

    #[test]
    fn a_remote_target_cannot_be_spread() {
        let addr: SocketAddr = "192.0.2.1:1688".parse().unwrap();
        assert!(plan_sources(addr, 50_000, 28_232).is_err());
    }

    #[test]
    fn a_connection_can_come_from_another_loopback_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
        let stream = open(
            listener.local_addr().unwrap(),
            Some(source),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(stream.local_addr().unwrap().ip(), source);
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), source);
    }
}
