//! Stopping: SIGTERM drains every client without losing a byte or resetting anyone, refuses new clients meanwhile, and the grace period ends what is left.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};

use nix::sys::signal::Signal;

use crate::harness::{
    IO_TIMEOUT, Rng, Server, Subject, pattern, read_checked, read_checked_to_end, read_eof,
    round_trip, wait_sent, wait_until, write_pattern,
};

const MIB: u64 = 1 << 20;

/// A client streaming stream `seed` without pause while reading its replies
/// on another thread, checking every byte.
struct Streaming {
    received: Arc<AtomicU64>,
    /// What the writer sent, or how far it got before a write failed.
    writer: JoinHandle<Result<u64, (u64, io::Error)>>,
    /// How the reader ended: bytes before EOF, or the error that ended it.
    reader: JoinHandle<Result<u64, (u64, io::Error)>>,
}

/// When the streaming client stops writing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// Once its reader has seen EOF: it then shuts down its side, and the
    /// client's EOF ends the server's lingering close.
    ReaderEnds,
    /// Never, until a write fails: the server must end it.
    WriteFails,
}

impl Streaming {
    fn start(mut client: TcpStream, seed: u64, until: Until) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let mut writer = client.try_clone().unwrap();
        let stop_writing = Arc::clone(&stop);
        let writer = thread::spawn(move || {
            let mut rng = Rng::new(seed);
            let mut offset = 0u64;
            while !stop_writing.load(Ordering::Relaxed) {
                let len = rng.upto(16 * 1024);
                if let Err(e) = writer.write_all(&pattern(seed, offset, len)) {
                    return Err((offset, e));
                }
                offset += len as u64;
            }
            let _ = writer.shutdown(Shutdown::Write);
            Ok(offset)
        });
        let counted = Arc::clone(&received);
        let reader = thread::spawn(move || {
            let end = read_checked_to_end(&mut client, seed, &counted);
            if until == Until::ReaderEnds {
                stop.store(true, Ordering::Relaxed);
            }
            end
        });
        Self {
            received,
            writer,
            reader,
        }
    }

    /// How the reader ended, waited for at most [`IO_TIMEOUT`]: a server
    /// that went on answering for ever would keep it reading for ever.
    fn reader_end(
        reader: JoinHandle<Result<u64, (u64, io::Error)>>,
        server: &Server,
    ) -> Result<u64, (u64, io::Error)> {
        wait_until(
            &format!("{} to end the client's stream", server.model),
            || reader.is_finished(),
        );
        reader.join().expect("a byte came back wrong")
    }

    /// Waits until `n` bytes came back: the stream is under way.
    fn wait_received(&self, n: u64, server: &Server) {
        wait_until(&format!("{} to echo {n} bytes", server.model), || {
            self.received.load(Ordering::Relaxed) >= n
        });
    }
}

/// Starts `model` with a grace period of `grace` seconds and a client
/// streaming to it (see [`Streaming`]), and sends SIGTERM once a MiB came
/// back: the stream is under way.
fn sigterm_while_streaming(model: Subject, grace: &str, until: Until) -> (Server, Streaming) {
    let server = Server::start(model, &["--grace", grace]);
    let mut client = server.connect();
    round_trip(&mut client, b"before");
    // The stream's offsets count from here: "BEFORE" is read already.
    let streaming = Streaming::start(client, 12, until);
    streaming.wait_received(MIB, &server);
    server.signal(Signal::SIGTERM);
    (server, streaming)
}

/// A client streams without pause through SIGTERM, reading its replies all
/// the while: it must end with EOF, never a reset (on either half), having
/// received a correct upper-cased prefix of what it sent; once it closes
/// its side, the server exits 0 at once, long before its grace period.
pub fn streams_through_sigterm(model: Subject) {
    let (mut server, streaming) = sigterm_while_streaming(model, "3600", Until::ReaderEnds);
    let got = Streaming::reader_end(streaming.reader, &server)
        .unwrap_or_else(|(at, e)| panic!("{model} reset the client after {at} bytes: {e}"));
    let sent = (streaming.writer.join().unwrap())
        .unwrap_or_else(|(at, e)| panic!("{model} refused the client's bytes after {at}: {e}"));
    assert!(got <= sent, "received {got} bytes of {sent} sent");
    let status = server.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
}

/// SIGTERM while a client streams and never stops: the server exits 0 when
/// its grace period ends, and what the client got is a correct prefix of
/// its upper-cased stream (the reader checks every byte), however the
/// forced stop ended it.
pub fn sigterm_mid_transfer(model: Subject) {
    let (mut server, streaming) = sigterm_while_streaming(model, "1", Until::WriteFails);
    let status = server.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    let got = Streaming::reader_end(streaming.reader, &server);
    let sent = streaming.writer.join().unwrap();
    let (got, sent) = (
        got.unwrap_or_else(|(n, _)| n),
        sent.unwrap_or_else(|(n, _)| n),
    );
    assert!(got <= sent, "received {got} bytes of {sent} sent");
}

/// SIGTERM with replies owed: once every byte the client sent is in the
/// server's kernel, it gets all of them back, then EOF; new clients are
/// refused; and once it closes, the server exits 0 at once, long before
/// its grace period.
pub fn sigterm_drains_what_was_sent(model: Subject) {
    let mut server = Server::start(model, &["--grace", "3600"]);
    let mut client = server.connect();
    round_trip(&mut client, b"before");
    let mut writer = client.try_clone().unwrap();
    let size = 128 * 1024;
    thread::spawn(move || write_pattern(&mut writer, 4, size, 16 * 1024))
        .join()
        .unwrap();
    // Every byte acknowledged: the server holds it, read or not.
    wait_sent(&client);
    server.signal(Signal::SIGTERM);
    assert_eq!(read_checked(&mut client, 4), size, "the drain lost replies");

    server.wait_refused("still accepting after SIGTERM");
    drop(client);
    // Within the harness's bound, where the grace period is an hour: the
    // drain ended on its own.
    let status = server.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
}

/// SIGTERM while a client is still connected, so the drain cannot finish
/// (the server lingers until the client's EOF): new clients are refused
/// while the server still runs. A listener left open anywhere, in a worker
/// process for instance, would take them into a queue nobody accepts from.
pub fn refuses_while_draining(model: Subject) {
    let mut server = Server::start(model, &["--grace", "3600"]);
    let mut client = server.connect();
    round_trip(&mut client, b"before");
    server.signal(Signal::SIGTERM);
    server.wait_refused(&format!("{model} still accepted clients while draining"));
    // Still draining: the client has not closed its side.
    server.assert_running();
    read_eof(&mut client, model);
    drop(client);
    let status = server.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
}
