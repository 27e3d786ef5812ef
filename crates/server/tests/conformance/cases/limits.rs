//! Limits: out of descriptors, `--max-conns`, `--idle-timeout`, a crowd of idle clients, and `select`'s bitmaps.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use iomodels_server::Config;
use nix::sys::signal::Signal;

use super::echo::{hold, one_more_waits_for_a_slot};
use super::{assert_no_spin, workers_flag};
use crate::harness::{
    IO_TIMEOUT, Server, Subject, accept_queue, pattern, read_eof, round_trip, wait_until,
};

/// With a descriptor limit of 64 and a flood of 200 connections, the
/// server neither exits nor spins, keeps serving the client it has, and
/// serves new clients once descriptors free.
///
/// The busy poller burns a core by design, so for it "spins" cannot be
/// told from its normal state: the case checks that it keeps serving.
pub fn descriptor_exhaustion(model: Subject) {
    // `--max-conns` above the limit: by default the server derives it from
    // the limit and would refuse the flood before descriptors run out.
    let max_conns = Config::DEFAULT_MAX_CONNS.to_string();
    let mut server = Server::start_with_nofile(model, &["--max-conns", &max_conns], 64);
    let mut first = server.connect();
    round_trip(&mut first, b"first");
    assert_no_spin(&server, "with one idle client");
    const FLOOD: u64 = 200;
    let flood: Vec<TcpStream> = (0..FLOOD).map(|_| server.connect()).collect();
    // The state under test: the server ran out (it says so once); or it
    // took every client anyway (`fork`'s parent closes each socket it hands
    // to a child, so it never runs short); or, capped, it took all it can
    // serve and leaves the rest queued.
    let takes = model.capacity(&Config::default()).map(|c| c as u64 - 1);
    wait_until(&format!("{model} to run out of descriptors"), || {
        let queued = accept_queue(server.addr.port());
        server.log().contains("backing off")
            || queued == 0
            || takes.is_some_and(|takes| queued == FLOOD - takes)
    });
    // A model that retried accept at once would burn a whole core here.
    assert_no_spin(&server, "while out of descriptors");

    server.assert_running();
    round_trip(&mut first, b"still served");
    drop(first);
    drop(flood);
    let mut next = server.connect();
    round_trip(&mut next, b"served again");
}

/// `--max-conns 2`: a model that would accept beyond it closes the extra
/// client at once; a model whose own capacity is within it makes the extra
/// client wait. Either way a freed slot serves a new client.
pub fn max_conns(model: Subject) {
    const LIMIT: usize = 2;
    let mut args = vec!["--max-conns", "2"];
    args.extend(workers_flag(model, "4"));
    let server = Server::start(model, &args);
    let limited = Config {
        max_conns: LIMIT,
        workers: std::num::NonZeroUsize::new(4),
        ..Config::default()
    };
    let unlimited = Config {
        max_conns: usize::MAX,
        ..limited.clone()
    };
    let served = model.capacity(&limited).unwrap_or(LIMIT);
    let accepts_beyond = model.capacity(&unlimited).is_none_or(|c| c > LIMIT);

    let mut held = hold(&server, served);
    if accepts_beyond {
        let mut extra = server.connect();
        let _ = extra.write_all(b"extra");
        let mut byte = [0];
        match extra.read(&mut byte) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("{model} served a client beyond --max-conns: {other:?}"),
        }
        drop(held.pop());
        // Each refused try is closed at once, as above.
        server.served_again(b"next");
    } else {
        one_more_waits_for_a_slot(&server, &mut held);
    }
}

/// `--idle-timeout 1`: a client that goes silent is closed, no sooner than
/// a second after its last byte; so is one that sends but never reads
/// (once its buffers are full it takes no byte); one that keeps talking is
/// not. One client at a time, so that capped models (`iterative`) serve
/// each in turn.
pub fn idle_timeout(model: Subject) {
    const IDLE: Duration = Duration::from_secs(1);
    let server = Server::start(model, &["--idle-timeout", "1"]);

    let mut silent = server.connect();
    // Taken before the request is sent: the server's last activity on this
    // client (reading it, writing the reply) comes after this instant, but
    // may come before the client has read the reply.
    let quiet_since = Instant::now();
    round_trip(&mut silent, b"then silence");
    let mut byte = [0];
    match silent.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("{model} sent a silent client {other:?} instead of closing it"),
    }
    assert!(
        quiet_since.elapsed() >= IDLE,
        "{model} closed a client idle for {:?} only",
        quiet_since.elapsed()
    );
    drop(silent);

    // Sends without reading: each write fails once the server gave up on it.
    let mut hog = server.connect();
    let chunk = pattern(3, 0, 64 * 1024);
    let deadline = Instant::now() + IO_TIMEOUT;
    while hog.write_all(&chunk).is_ok() {
        assert!(
            Instant::now() < deadline,
            "{model} kept a client that took nothing"
        );
    }
    drop(hog);

    // A client that keeps talking for longer than the timeout stays.
    let mut talker = server.connect();
    let started = Instant::now();
    let mut i = 0u64;
    while started.elapsed() < 2 * IDLE {
        round_trip(&mut talker, &pattern(i, 0, 100));
        thread::sleep(IDLE / 20);
        i += 1;
    }
    round_trip(&mut talker, b"still here");
}

/// `--idle-timeout 1` while a drained client lingers: a client that keeps
/// sending after its EOF (a byte every 50 ms, for twice the timeout) is
/// not idle, and is not reset; once it closes, the server exits 0.
pub fn lingers_past_the_idle_timeout(model: Subject) {
    const IDLE: Duration = Duration::from_secs(1);
    let mut server = Server::start(model, &["--idle-timeout", "1", "--grace", "3600"]);
    let mut client = server.connect();
    round_trip(&mut client, b"before");
    server.signal(Signal::SIGTERM);
    read_eof(&mut client, model);
    let started = Instant::now();
    while started.elapsed() < 2 * IDLE {
        client
            .write_all(b"x")
            .unwrap_or_else(|e| panic!("{model} reset a lingering client that still sent: {e}"));
        thread::sleep(IDLE / 20);
    }
    drop(client);
    let status = server.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
}

/// The forced stop comes at the end of the grace period whatever else the
/// loop waits for: here an idle timeout far longer than the harness's
/// bound, beside a client that keeps its drained connection open.
pub fn forced_stop_with_an_idle_timeout(model: Subject) {
    let mut server = Server::start(model, &["--idle-timeout", "1000", "--grace", "1"]);
    let mut client = server.connect();
    round_trip(&mut client, b"then silence");
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    drop(client);
}

/// 1100 idle clients, more than `select` can watch, and 10 busy ones: the
/// busy ones are served while the crowd waits, then every idle client
/// speaks once and is answered.
pub fn idle_crowd(model: Subject) {
    const IDLE: usize = 1100;
    raise_nofile(4 * IDLE as u64);
    let server = Server::start(model, &[]);
    let mut crowd: Vec<TcpStream> = (0..IDLE).map(|_| server.connect()).collect();
    let busy: Vec<_> = (0..10u64)
        .map(|i| {
            let mut client = server.connect();
            thread::spawn(move || {
                for k in 0..20 {
                    round_trip(&mut client, &pattern(i, k * 1000, 1000));
                }
            })
        })
        .collect();
    for client in busy {
        client.join().expect("a busy client was not served");
    }
    // All write first, then all read: the server has every one of them to
    // serve at once.
    for (i, client) in crowd.iter_mut().enumerate() {
        client.write_all(format!("idle {i}").as_bytes()).unwrap();
    }
    for (i, client) in crowd.iter_mut().enumerate() {
        let mut reply = vec![0; format!("idle {i}").len()];
        client
            .read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("{model} did not answer idle client {i}: {e}"));
        assert_eq!(reply, format!("IDLE {i}").as_bytes());
    }
}

/// A model that cannot watch every descriptor (`select`, whose bitmaps stop
/// at FD_SETSIZE) refuses a client past its limit, and only it: with 1100
/// clients, those past it are closed (one log line each) while the rest are
/// served, and the server serves again once they leave.
pub fn refuses_clients_past_its_watch_limit(model: Subject) {
    const CLIENTS: usize = 1100;
    raise_nofile(4 * CLIENTS as u64);
    let mut server = Server::start(model, &[]);
    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| server.connect()).collect();
    for client in &mut clients {
        // A refused client may already be closed: its write can fail.
        let _ = client.write_all(b"ping");
    }
    let (mut served, mut refused) = (0, 0);
    for (i, client) in clients.iter_mut().enumerate() {
        let mut reply = [0; 4];
        match client.read_exact(&mut reply) {
            Ok(()) => {
                assert_eq!(&reply, b"PING", "client {i}");
                served += 1;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                ) =>
            {
                refused += 1;
            }
            Err(e) => panic!("client {i}: {e}"),
        }
    }
    server.assert_running();
    assert!(
        served > 1000 && refused > 0,
        "{served} served, {refused} refused"
    );
    // The log is read from the server's stderr on another thread: a line
    // may still be on its way when its client has seen the close.
    let logged = || server.log().matches("past FD_SETSIZE").count();
    wait_until("one log line per refused client", || logged() >= refused);
    assert_eq!(logged(), refused, "one log line per refused client");
    drop(clients);
    // Descriptors are freed as the server sees the closes.
    server.served_again(b"again");
}

/// Lets this test process open `n` descriptors (the soft limit up to the
/// hard one): the crowd cases hold over a thousand sockets each.
pub fn raise_nofile(n: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        hard >= n,
        "this test needs {n} descriptors; the hard limit (ulimit -Hn) is {hard}"
    );
    if soft < n {
        setrlimit(Resource::RLIMIT_NOFILE, n.max(soft), hard).unwrap();
    }
}
