//! One load thread: its client connections, and the event loop that sends, reads and checks them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

use super::clock::Clock;
use super::{Errors, LoadResult, Workload, new_histogram};
use crate::stream::{Cursor, MAX_IO, Stream};

/// One connection's state: three counters and the send times of the
/// requests in flight; the bytes themselves live in the shared [`Stream`].
#[derive(Debug)]
struct Client {
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
pub(super) struct Worker {
    poll: Poll,
    conns: Vec<Client>,
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

impl Worker {
    pub(super) fn connect(
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
            conns.push(Client {
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

    pub(super) fn run(
        &mut self,
        workload: &Workload,
        clock: Clock,
        stop: &AtomicBool,
    ) -> LoadResult {
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
        LoadResult {
            window: clock.window_end - clock.window_start,
            window_start: Some(clock.window_start),
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
    use super::open;
    use std::net::{IpAddr, Ipv4Addr, TcpListener};
    use std::time::Duration;

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
