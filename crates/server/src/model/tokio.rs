//! tokio: a task per connection on tokio's multi-thread runtime, written with async/await.
//!
//! **The idea.** Write each connection as the blocking loop of `thread`
//! (read, upper-case through the session, write it all back, repeat), but
//! put `.await` where a blocking call would park a thread. The compiler
//! turns each `async fn` into a state machine whose states are its `.await`
//! points; a task is one such machine on the heap. tokio's runtime drives
//! them: its I/O driver waits in epoll (edge-triggered) and wakes the task
//! whose socket became ready, and each of `--workers` threads (one per core
//! by default) runs a queue of woken tasks; a worker whose queue is empty
//! steals half of a busy one's. So the code reads like `thread` and the
//! server waits like `epoll`, on every core.
//!
//! **Its cost.** Per message, the same `recv` and `send` as `epoll`, plus
//! the runtime's bookkeeping: an atomic wake and a queue push per ready
//! socket, a share of an `epoll_wait`, and, when workers run out of work,
//! the futex that parks one and the one that wakes it again, which a
//! single-threaded loop never pays. Per connection: a task (the state
//! machine of `echo`, on the heap) and the session's buffer, no thread stack.
//! On 2 cores it used 1.05x the `tokio-echo` peer's server CPU per request
//! at 100 connections, over 5 alternated rounds in which the two swapped
//! places (`bench/results/2026-11-27/completion-costs.md`): the same thing,
//! within this machine's noise.
//!
//! **When to pick it.** It is the mainstream Rust answer for network
//! servers: many connections, each with logic that is easiest to write as
//! sequential code (a protocol with states, timeouts, calls to other
//! services), spread over all cores without sharding anything by hand.
//!
//! **How it fails.** Scheduling is cooperative: a task runs until it reaches
//! an `.await` that is not ready. One that computes for long, or calls
//! something that blocks (`std::fs`, `thread::sleep`, a lock held across
//! I/O, a DNS lookup), holds its worker thread, and every task queued there
//! waits; stealing helps only while other workers are idle. Production code
//! moves such work to `spawn_blocking` or a pool of its own.
//!
//! **Against the `tokio-echo` peer.** The same runtime and the same loop, so
//! this should cost the same per message. What the peer leaves out is what
//! the contract asks for: `--max-conns`, a back-off when descriptors run out
//! (the peer's `accept().await.unwrap()` panics and takes the server down),
//! an explicit half-close, an idle timeout, and a drain on SIGTERM that
//! loses nothing, which costs one more branch in the `select!` around each
//! read.

use std::future::Future;
use std::io;
use std::net::TcpListener;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Builder;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::accept::{AcceptError, Backoff};
use crate::config::cores;
use crate::drain::{self, Left};
use crate::{Config, EchoSession, Family, Flag, Model, Phase, Shutdown};

/// `--model tokio`.
pub const MODEL: Model = Model::new(
    "tokio",
    Family::Multiplexing,
    file!(),
    "a task per connection on tokio's multi-thread runtime, written with \
     async/await: the mainstream Rust answer",
    serve,
)
.taking(&[Flag::Workers]);

/// Serves on `listener` with a task per connection on a runtime of
/// `--workers` threads (one per core by default), until the drain is over.
///
/// # Errors
///
/// If the runtime cannot start, or the listener breaks.
pub fn serve(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    // Built by hand rather than with `#[tokio::main]`: the worker count is a
    // flag, and the runtime lives only as long as this call.
    let runtime = Builder::new_multi_thread()
        .worker_threads(config.workers_or(cores()))
        .thread_name("tokio-worker")
        .enable_all()
        .build()?;
    let served = runtime.block_on(run(listener, config, shutdown));
    // No task is left to wait for: the forced stop aborted them.
    runtime.shutdown_background();
    served
}

/// The server's three phases: accept until the drain, then wait for the
/// connections to finish (or for the forced stop), then close what is left.
async fn run(listener: TcpListener, config: &Config, shutdown: &Shutdown) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let mut phase = watch_phase(shutdown)?;
    // Every live connection, so the drain can wait for them and the forced
    // stop can close them.
    let mut conns = JoinSet::new();
    let mut backoff = Backoff::default();

    loop {
        let accepted = tokio::select! {
            // The drain first: once it began, no client is admitted, even
            // one already queued.
            biased;
            _ = phase.wait_for(|&p| p >= Phase::Draining) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                backoff.reset();
                // Forget the connections that ended, then count the rest. A
                // task can end only by returning: it never panics on I/O.
                while conns.try_join_next().is_some() {}
                if conns.len() >= config.max_conns {
                    // Dropped: closed at once, so the client learns right away.
                    tracing::debug!("at --max-conns {}: closing a new client", config.max_conns);
                    continue;
                }
                // What `accept::prepare` does for std sockets: a reply must
                // not wait for an ACK (Nagle). Failing costs only latency.
                let _ = stream.set_nodelay(true);
                let (buffer, idle) = (config.buffer, config.idle_limit());
                conns.spawn(connection(stream, buffer, idle, phase.clone()));
            }
            Err(error) => match AcceptError::classify(&error) {
                AcceptError::ClientGone => {}
                // Out of descriptors, the client stays queued and accept
                // would fail again at once: sleep instead, while the workers
                // go on serving the connected clients, one of which may
                // leave and free a descriptor.
                AcceptError::Exhausted => {
                    let pause = backoff.pause(&error);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = phase.wait_for(|&p| p >= Phase::Draining) => break,
                    }
                }
                AcceptError::ListenerDown => return Err(error),
            },
        }
    }

    // Closing the listener refuses new clients (and resets the queued ones);
    // the connections heard of the drain through their own `phase`.
    drop(listener);
    tokio::select! {
        () = async { while conns.join_next().await.is_some() {} } => {}
        _ = phase.wait_for(|&p| p == Phase::Forced) => {
            drain::log_forced(Left::Connections(conns.len()));
        }
    }
    // After a forced stop, aborts what is left, which drops (closes) its socket.
    conns.shutdown().await;
    Ok(())
}

/// Turns `shutdown`'s phases into a watch every task can wait on.
///
/// [`Shutdown`] wakes a blocked thread, not a future, so the drain thread
/// (`crate::drain::watch`) tells the watch. A watch rather than a
/// `Notify`: a task busy writing when the phase changes still sees it on
/// its next turn, where a `Notify` wakes only the ones waiting at that
/// instant.
fn watch_phase(shutdown: &Shutdown) -> io::Result<watch::Receiver<Phase>> {
    let (tell, phase) = watch::channel(Phase::Running);
    let told = tell.clone();
    drain::watch(
        shutdown,
        move || {
            tell.send_replace(Phase::Draining);
        },
        move || {
            told.send_replace(Phase::Forced);
            // The runtime counts, and logs, what the forced stop closes.
            Left::Connections(0)
        },
    )?;
    Ok(phase)
}

/// One connection's task: [`echo`], with how it ended logged. A client's
/// reset is its own business, worth a debug line and no more.
async fn connection(
    stream: TcpStream,
    buffer: usize,
    idle: Option<Duration>,
    phase: watch::Receiver<Phase>,
) {
    if let Err(error) = echo(stream, buffer, idle, phase).await {
        tracing::debug!("connection ended: {error}");
    }
}

/// Echoes one connection to its end: the blocking loop of `thread`, with
/// `.await` where it would block, and the drain as one more thing to wait for.
async fn echo(
    mut stream: TcpStream,
    buffer: usize,
    idle: Option<Duration>,
    mut phase: watch::Receiver<Phase>,
) -> io::Result<()> {
    // Allocated here, by the worker that runs the task.
    let mut session = EchoSession::new(buffer);
    // One future for the task's whole life, not one per read: it registers
    // with the watch once, and each read only checks on it.
    let drain_began = async move {
        // An error means the server is gone; the drain is as good an answer.
        let _ = phase.wait_for(|&p| p >= Phase::Draining).await;
    };
    tokio::pin!(drain_began);
    let mut draining = false;
    loop {
        // Everything pending was written before this read (below), so the
        // buffer is empty and the session wants to receive: a client that
        // does not read its replies is not read either (backpressure).
        debug_assert!(session.wants_recv());
        tokio::select! {
            // Drain first: a client that keeps sending must not keep the
            // read branch ready for ever and starve it.
            biased;
            () = &mut drain_began, if !draining => {
                draining = true;
                // Answer what the kernel holds for this client, and no more.
                session.stop_after(drain::queued(&stream));
            }
            // tokio's `read` is cancel-safe: when the drain wins, no byte
            // was taken from the socket.
            read = within(idle, stream.read(session.recv_buf())) => match read? {
                0 => session.peer_closed(),
                n => session.received(n),
            },
        }
        // The session upper-cased what came in; all of it goes back before
        // the next read, a write at a time, each within the idle timeout.
        while session.wants_send() {
            match within(idle, stream.write(session.pending())).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => session.sent(n),
            }
        }
        if session.is_done() {
            // Half-close: the client has every reply; say EOF back.
            let _ = stream.shutdown().await;
            // Then the lingering close, for a client the drain cut off: what
            // it still sends is thrown away until its EOF (or the forced
            // stop, which aborts this task).
            while session.lingers() {
                if within(idle, stream.read(session.discard_buf())).await? == 0 {
                    break;
                }
            }
            return Ok(());
        }
    }
}

/// `io`, failing with `TimedOut` if it does not finish within `idle`: a
/// connection that neither sends nor takes a byte for that long is closed.
async fn within<T>(
    idle: Option<Duration>,
    io: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match idle {
        None => io.await,
        Some(limit) => tokio::time::timeout(limit, io).await.map_err(|_| {
            io::Error::new(io::ErrorKind::TimedOut, format!("idle for {limit:?}"))
        })?,
    }
}
