//! Stopping: SIGTERM drains every client without losing a byte or resetting anyone, refuses new clients meanwhile, and the grace period ends what is left.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};

use nix::sys::signal::Signal;

use crate::harness::{
    IO_TIMEOUT, Rng, Server, Subject, pattern, pattern_byte, read_checked, round_trip, wait_sent,
    wait_until, write_pattern,
};

const MIB: u64 = 1 << 20;

/// A client streaming stream `seed` without pause while reading its replies
/// on another thread, checking every byte.
struct Streaming {
    received: Arc<AtomicU64>,
    /// What the writer sent, or how far it got before a write failed.
    writer: JoinHandle<Result<u64, (u64, std::io::Error)>>,
    /// How the reader ended: bytes before EOF, or the error that ended it.
    reader: JoinHandle<Result<u64, (u64, std::io::Error)>>,
}

impl Streaming {
    /// Starts both halves on `client`. Once the reader sees EOF (or an
    /// error), it tells the writer, which stops and shuts down its side: the client's EOF ends the server's
    /// lingering close.
    fn start(mut client: TcpStream, seed: u64) -> Self {
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
        let (stop_reading, counted) = (Arc::clone(&stop), Arc::clone(&received));
        let reader = thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            let mut offset = 0u64;
            let end = loop {
                match client.read(&mut buf) {
                    Ok(0) => break Ok(offset),
                    Ok(n) => {
                        for (k, &got) in buf[..n].iter().enumerate() {
                            let i = offset + k as u64;
                            let want = pattern_byte(seed, i).to_ascii_uppercase();
                            assert_eq!(got, want, "byte {i} is {got:#04x}, expected {want:#04x}");
                        }
                        offset += n as u64;
                        counted.store(offset, Ordering::Relaxed);
                    }
                    Err(e) => break Err((offset, e)),
                }
            };
            stop_reading.store(true, Ordering::Relaxed);
            end
        });
        Self {
            received,
            writer,
            reader,
        }
    }

    /// Waits until `n` bytes came back: the stream is under way.
    fn wait_received(&self, n: u64, server: &Server) {
        wait_until(&format!("{} to echo {n} bytes", server.model), || {
            self.received.load(Ordering::Relaxed) >= n
        });
    }
}

/// A client streams without pause through SIGTERM, reading its replies all
/// the while: it must end with EOF, never a reset (on either half), having
/// received a correct upper-cased prefix of what it sent; once it closes
/// its side, the server exits 0 at once, long before its grace period.
pub fn streams_through_sigterm(model: Subject) {
    let mut server = Server::start(model, &["--grace", "3600"]);
    let mut client = server.connect();
    round_trip(&mut client, b"before");
    // The stream's offsets count from here: "BEFORE" is read already.
    let streaming = Streaming::start(client, 12);
    streaming.wait_received(MIB, &server);
    server.signal(Signal::SIGTERM);
    let got = (streaming.reader.join())
        .expect("a byte came back wrong")
        .unwrap_or_else(|(at, e)| panic!("{model} reset the client after {at} bytes: {e}"));
    let sent = (streaming.writer.join().unwrap())
        .unwrap_or_else(|(at, e)| panic!("{model} refused the client's bytes after {at}: {e}"));
    assert!(got <= sent, "received {got} bytes of {sent} sent");
    let status = server.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
}

/// SIGTERM while a client streams and never stops: the server exits 0 when
/// its grace period ends, and what the client got is a correct prefix of
/// its upper-cased stream (the reader checks every byte).
pub fn sigterm_mid_transfer(model: Subject) {
    let mut server = Server::start(model, &["--grace", "1"]);
    let mut client = server.connect();
    round_trip(&mut client, b"before");
    let mut writer = client.try_clone().unwrap();
    // Far more than can pass before the grace period ends; stops when the
    // server goes.
    let sender = thread::spawn(move || write_pattern(&mut writer, 9, 64 << 30, 64 * 1024));
    let got = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&got);
    let receiver = thread::spawn(move || {
        // A copy of read_checked that says how far it got as it goes.
        let mut buf = vec![0; 64 * 1024];
        let mut offset = 0u64;
        loop {
            let n = match client.read(&mut buf) {
                Ok(0) => return offset,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return offset,
                Err(e) => panic!("read failed after {offset} bytes: {e}"),
            };
            for (k, &byte) in buf[..n].iter().enumerate() {
                let i = offset + k as u64;
                assert_eq!(byte, pattern_byte(9, i).to_ascii_uppercase(), "byte {i}");
            }
            offset += n as u64;
            counted.store(offset, Ordering::Relaxed);
        }
    });
    wait_until("the transfer to be under way", || {
        got.load(Ordering::Relaxed) > 0
    });
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    let received = receiver.join().expect("a byte came back wrong");
    let sent = sender.join().unwrap();
    assert!(received <= sent, "received {received} bytes of {sent} sent");
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
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "{model} sent {} bytes nobody asked for",
        rest.len()
    );
    drop(client);
    let status = server.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
}
