//! The conformance suite: every point of the model contract, run against every model.
//!
//! Each function in `cases` checks one behaviour of `model/mod.rs`'s
//! contract through the real binary; the `conformance!` macro at the bottom
//! stamps out one test per model per case, so `cargo test thread_pool::` runs
//! one model's suite and `cargo test slow_reader` one case for all models.
//! Adding a model is one line in that macro; a test fails if a model in
//! `Model::ALL` is missing from it.

// Test crates export nothing: `pub` here only shares items between modules.
#![allow(unreachable_pub)]

mod harness;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use harness::{
    IO_TIMEOUT, Rng, Server, Subject, pattern, read_checked, replies_within, round_trip, upper,
    write_pattern,
};
use iomodels_server::{Config, Model};
use nix::sys::signal::Signal;

mod cases {
    use super::*;
    use std::thread;

    const MIB: usize = 1 << 20;

    /// The course's exchange, then more messages on the same connection.
    pub fn hello(model: Subject) {
        let server = Server::start(model, &[]);
        let mut client = server.connect();
        for message in [&b"hello"[..], b"Hello, World!", b"x", b"MiXeD 123 {z}"] {
            round_trip(&mut client, message);
        }
    }

    /// Every byte value, several times over: only a-z change.
    pub fn all_byte_values(model: Subject) {
        let server = Server::start(model, &[]);
        let mut client = server.connect();
        let all: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
        round_trip(&mut client, &all);
    }

    /// 8 MiB written in random chunks while the replies are read in random
    /// chunks at the same time: every byte back, in order, then EOF.
    pub fn eight_mib_in_random_chunks(model: Subject) {
        let server = Server::start(model, &[]);
        let mut client = server.connect();
        let data = pattern(1, 0, 8 * MIB);
        let mut writer = client.try_clone().unwrap();
        let to_send = data.clone();
        let sender = thread::spawn(move || {
            let mut rng = Rng::new(7);
            let mut at = 0;
            while at < to_send.len() {
                let n = rng.upto(64 * 1024).min(to_send.len() - at);
                writer.write_all(&to_send[at..at + n]).unwrap();
                at += n;
            }
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut received = Vec::with_capacity(data.len());
        let mut rng = Rng::new(11);
        let mut buf = vec![0; 64 * 1024];
        loop {
            let want = rng.upto(buf.len());
            match client.read(&mut buf[..want]).unwrap() {
                0 => break,
                n => received.extend_from_slice(&buf[..n]),
            }
        }
        sender.join().unwrap();
        assert_eq!(received.len(), data.len());
        assert!(received == upper(&data), "the 8 MiB came back altered");
    }

    /// Clients at once: 100 for models without a cap; for a capped model,
    /// exactly its capacity, plus one more that waits, unanswered, until a
    /// slot frees, and is then served.
    pub fn concurrent_clients(model: Subject) {
        let server = Server::start(model, &[]);
        match model.capacity(&Config::default()) {
            None => hundred_at_once(&server),
            Some(capacity) => capacity_then_one_more(&server, capacity),
        }
    }

    fn hundred_at_once(server: &Server) {
        const CLIENTS: usize = 100;
        // All connect before any sends: they are truly concurrent.
        let clients: Vec<TcpStream> = (0..CLIENTS).map(|_| server.connect()).collect();
        let start = Arc::new(Barrier::new(CLIENTS));
        let threads: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(i, mut client)| {
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    let mut rng = Rng::new(i as u64 + 1);
                    for k in 0..10 {
                        let len = rng.upto(4096);
                        round_trip(&mut client, &pattern(i as u64, k * 4096, len));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a client saw a wrong reply");
        }
    }

    fn capacity_then_one_more(server: &Server, capacity: usize) {
        let mut held = hold(server, capacity);
        one_more_waits_for_a_slot(server, &mut held);
        // The others are still served.
        for client in &mut held {
            round_trip(client, b"still here");
        }
    }

    /// `n` clients, each answered once and kept open: each holds a slot.
    fn hold(server: &Server, n: usize) -> Vec<TcpStream> {
        (0..n)
            .map(|i| {
                let mut client = server.connect();
                round_trip(&mut client, format!("client {i}").as_bytes());
                client
            })
            .collect()
    }

    /// With every slot held, one more client gets no reply; once a held
    /// client leaves, it is served.
    fn one_more_waits_for_a_slot(server: &Server, held: &mut Vec<TcpStream>) {
        let mut late = server.connect();
        late.write_all(b"late").unwrap();
        assert!(
            !replies_within(&mut late, Duration::from_millis(500)),
            "{} answered a client beyond the {} it was serving",
            server.model,
            held.len()
        );
        drop(held.pop());
        let mut reply = [0; 4];
        late.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"LATE");
    }

    /// The client shuts down its write side: everything it sent comes back,
    /// then EOF. Both for a tiny message and for more than one buffer's worth.
    pub fn half_close(model: Subject) {
        let server = Server::start(model, &[]);
        let mut client = server.connect();
        client.write_all(b"abc").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut all = Vec::new();
        client.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"ABC");

        let mut client = server.connect();
        let mut writer = client.try_clone().unwrap();
        let size = MIB as u64 + 17;
        let sender = thread::spawn(move || {
            assert_eq!(write_pattern(&mut writer, 3, size, 50_000), size);
            writer.shutdown(Shutdown::Write).unwrap();
        });
        assert_eq!(
            read_checked(&mut client, 3),
            size,
            "not every byte came back before EOF"
        );
        sender.join().unwrap();
    }

    /// 300 clients reset the connection mid-stream (SO_LINGER 0), some with
    /// replies in flight; the server keeps serving.
    pub fn resets_mid_stream(model: Subject) {
        let mut server = Server::start(model, &[]);
        for i in 0..300u64 {
            let mut client = server.connect();
            let size = if i % 3 == 0 { 200_000 } else { 10_000 };
            client.write_all(&pattern(i, 0, size)).unwrap();
            if i % 2 == 0 {
                // Take part of the reply first, so the server is mid-write.
                let mut part = [0; 100];
                client.read_exact(&mut part).unwrap();
            }
            socket2::SockRef::from(&client)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(client); // RST
        }
        server.assert_running();
        let mut client = server.connect();
        round_trip(&mut client, b"hello after the resets");
    }

    /// A client sends 64 MiB and reads nothing for seconds: the server's
    /// memory stays bounded by its buffers, then every byte arrives.
    pub fn slow_reader(model: Subject) {
        const TOTAL: u64 = 64 << 20;
        let server = Server::start(model, &[]);
        let mut client = server.connect();
        round_trip(&mut client, b"warm up");
        let before = server.rss_tree();
        let mut writer = client.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let sent = write_pattern(&mut writer, 5, TOTAL, 256 * 1024);
            writer.shutdown(Shutdown::Write).unwrap();
            sent
        });
        thread::sleep(Duration::from_secs(1));
        // A readiness model that kept watching this full client for reading,
        // or watched an idle one for writing, would wake for ever.
        assert_no_spin(&server, "while its client did not read");
        let during = server.rss_tree();
        // An unbounded server would be holding tens of MiB by now.
        assert!(
            during < before + 16 * MIB as u64,
            "{} grew from {before} to {during} bytes while its client did not read",
            server.model
        );
        assert_eq!(read_checked(&mut client, 5), TOTAL);
        assert_eq!(sender.join().unwrap(), TOTAL);
    }

    /// SIGTERM while a client is streaming: the server exits 0 (after the
    /// grace period at the latest), and what the client got is a correct
    /// prefix of its upper-cased stream (`read_checked` checks every byte).
    pub fn sigterm_mid_transfer(model: Subject) {
        let mut server = Server::start(model, &["--grace", "1"]);
        let mut client = server.connect();
        round_trip(&mut client, b"before");
        let mut writer = client.try_clone().unwrap();
        // Far more than can pass before the grace period ends.
        let sender = thread::spawn(move || write_pattern(&mut writer, 9, 64 << 30, 64 * 1024));
        let receiver = thread::spawn(move || {
            // The prefix after "BEFORE": checked against the same stream.
            read_checked(&mut client, 9)
        });
        thread::sleep(Duration::from_millis(300));
        server.signal(Signal::SIGTERM);
        let status = server.wait_exit(IO_TIMEOUT);
        assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
        let received = receiver.join().expect("a byte came back wrong");
        let sent = sender.join().unwrap();
        assert!(received <= sent, "received {received} bytes of {sent} sent");
        assert!(received > 0, "nothing came back during the transfer");
    }

    /// SIGTERM with replies owed: the client still receives every byte it
    /// sent before the signal, then EOF; new clients are refused; the server
    /// exits 0 as soon as its clients are done, long before the grace ends.
    pub fn sigterm_drains_what_was_sent(model: Subject) {
        let mut server = Server::start(model, &["--grace", "30"]);
        let mut client = server.connect();
        round_trip(&mut client, b"before");
        let mut writer = client.try_clone().unwrap();
        let size = 128 * 1024;
        // The whole message is handed to the kernel before the signal.
        thread::spawn(move || write_pattern(&mut writer, 4, size, 16 * 1024))
            .join()
            .unwrap();
        server.signal(Signal::SIGTERM);
        let signaled = Instant::now();
        assert_eq!(read_checked(&mut client, 4), size, "the drain lost replies");

        server.wait_refused("still accepting after SIGTERM");
        drop(client);
        let status = server.wait_exit(IO_TIMEOUT);
        assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
        // A forced stop comes 30 s after the signal at the earliest; 20 s is
        // a bound on a drain that ended on its own, however slow the machine.
        assert!(
            signaled.elapsed() < Duration::from_secs(20),
            "{model} waited for the grace period instead of finishing its client"
        );
    }

    /// SIGTERM while a client that reads nothing keeps the drain from
    /// finishing: new clients are refused while the server still runs (a
    /// listener left open anywhere, in a worker process for instance, would
    /// take them into a queue nobody accepts from).
    pub fn refuses_while_draining(model: Subject) {
        let mut server = Server::start(model, &["--grace", "30"]);
        // A small receive buffer, so the replies it does not read soon fill
        // it, and the server is left owing bytes it cannot write.
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&server.addr.into()).unwrap();
        let mut client: TcpStream = socket.into();
        client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        round_trip(&mut client, b"before");
        let mut writer = client.try_clone().unwrap();
        let sender =
            thread::spawn(move || write_pattern(&mut writer, 8, 4 * MIB as u64, 64 * 1024));
        thread::sleep(Duration::from_secs(1));
        server.signal(Signal::SIGTERM);
        server.wait_refused(&format!("{model} still accepted clients while draining"));
        // Still draining: the client has not read its replies.
        server.assert_running();
        read_checked(&mut client, 8);
        drop(client);
        let _ = sender.join();
        let status = server.wait_exit(IO_TIMEOUT);
        assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    }

    /// With a descriptor limit of 64 and a flood of 200 connections, the
    /// server neither exits nor spins, keeps serving the client it has, and
    /// serves new clients once descriptors free.
    ///
    /// The busy-polling model burns a core by design, so for it "spins"
    /// cannot be told from its normal state: the case checks that it keeps
    /// serving.
    pub fn descriptor_exhaustion(model: Subject) {
        let mut server = Server::start_with_nofile(model, &[], 64);
        let mut first = server.connect();
        round_trip(&mut first, b"first");
        assert_no_spin(&server, "with one idle client");
        let flood: Vec<TcpStream> = (0..200).map(|_| server.connect()).collect();
        thread::sleep(Duration::from_millis(500));
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
    /// client at once; a model whose own capacity is within it makes the
    /// extra client wait. Either way a freed slot serves a new client.
    pub fn max_conns(model: Subject) {
        const LIMIT: usize = 2;
        let server = Server::start(model, &["--max-conns", "2", "--workers", "4"]);
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

    /// After many clients come and go, the server has no zombie children,
    /// and no children left at all but the worker processes it keeps.
    pub fn no_zombies(model: Subject) {
        let server = Server::start(model, &[]);
        for i in 0..60 {
            let mut client = server.connect();
            round_trip(&mut client, format!("client {i}").as_bytes());
        }
        server.live_children(model.model.standing_workers(&Config::default()), None);
    }

    /// Over 2 s, the server uses less than a quarter of a core: any loop that
    /// waits properly uses next to nothing when there is no work, and one
    /// that spins uses all of one (over half of one even on a machine busy
    /// with other tests). Not for the busy-polling model, which spins by
    /// design (its cost is measured, not asserted, in `bench/`).
    pub fn assert_no_spin(server: &Server, when: &str) {
        if server.model == Model::Nonblocking {
            return;
        }
        let busy = server.busy_over(Duration::from_secs(2));
        assert!(
            busy < 0.25,
            "{} used {:.0}% of a core {when}",
            server.model,
            busy * 100.0
        );
    }

    /// 1100 idle clients, more than `select` can watch, and 10 busy ones: the
    /// busy ones are served while the crowd waits, then every idle client
    /// speaks once and is answered. For the models without a cap of their
    /// own but `select`, whose refusal is its own test.
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
        // All write first, then all read: the server has every one of them
        // to serve at once.
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

    /// Lets this test process open `n` descriptors (the soft limit up to
    /// the hard one): the crowd cases hold over a thousand sockets each.
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

    /// The course's own client, as the notes wrote it (only the port differs),
    /// run with Python: it prints `HELLO` for `hello`.
    pub fn course_python_client(model: Subject) {
        let server = Server::start(model, &[]);
        let script = COURSE_CLIENT.replace("1688", &server.addr.port().to_string());
        let mut python = Command::new("python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 is needed for this test");
        python.stdin.take().unwrap().write_all(b"hello\n").unwrap();
        // At the end of its input, `input()` raises EOFError: that is how the
        // course's client ends, so its exit status is not checked.
        let output = python.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("msg:HELLO"),
            "the course client printed {stdout:?}"
        );
    }

    /// The client from the course notes, verbatim but for indentation.
    const COURSE_CLIENT: &str = r#"
import socket
client = socket.socket()
client.connect(("127.0.0.1",1688))
while True:
    msg = input("msg:")
    if not msg:continue
    client.send(msg.encode("utf-8"))
    print(client.recv(2048).decode("utf-8"))
"#;
}

/// Whether `subject` can run on this machine. Only `uring` may not (a kernel
/// too old, io_uring disabled, too little locked memory): its tests then pass
/// without running, and say why on the terminal, past the test harness's
/// capture, so a CI log shows every one of them.
fn runs(subject: Subject) -> bool {
    if subject.model != Model::Uring {
        return true;
    }
    match iomodels_server::model::uring::probe() {
        Ok(()) => true,
        Err(why) => {
            let _ = writeln!(io::stderr(), "SKIPPED {subject}: {why}");
            false
        }
    }
}

/// One module per model, one test per case in each.
///
/// A model marked `crowd` also takes `idle_crowd`: every model that serves
/// any number of clients at once, apart from `select`.
macro_rules! conformance {
    ($($module:ident => $model:expr $(, $crowd:ident)?;)*) => {
        /// Each subject, and whether it takes `idle_crowd`.
        const COVERED: &[(Subject, bool)] = &[$(($model, $module::CROWD)),*];
        $(
            mod $module {
                use super::*;
                const MODEL: Subject = $model;
                pub const CROWD: bool = false $(|| { stringify!($crowd); true })?;
                $(
                    #[test] fn idle_crowd() { stringify!($crowd); if runs(MODEL) { cases::idle_crowd(MODEL) } }
                )?
                #[test] fn hello() { if runs(MODEL) { cases::hello(MODEL) } }
                #[test] fn all_byte_values() { if runs(MODEL) { cases::all_byte_values(MODEL) } }
                #[test] fn eight_mib_in_random_chunks() { if runs(MODEL) { cases::eight_mib_in_random_chunks(MODEL) } }
                #[test] fn concurrent_clients() { if runs(MODEL) { cases::concurrent_clients(MODEL) } }
                #[test] fn half_close() { if runs(MODEL) { cases::half_close(MODEL) } }
                #[test] fn resets_mid_stream() { if runs(MODEL) { cases::resets_mid_stream(MODEL) } }
                #[test] fn slow_reader() { if runs(MODEL) { cases::slow_reader(MODEL) } }
                #[test] fn sigterm_mid_transfer() { if runs(MODEL) { cases::sigterm_mid_transfer(MODEL) } }
                #[test] fn sigterm_drains_what_was_sent() { if runs(MODEL) { cases::sigterm_drains_what_was_sent(MODEL) } }
                #[test] fn refuses_while_draining() { if runs(MODEL) { cases::refuses_while_draining(MODEL) } }
                #[test] fn descriptor_exhaustion() { if runs(MODEL) { cases::descriptor_exhaustion(MODEL) } }
                #[test] fn max_conns() { if runs(MODEL) { cases::max_conns(MODEL) } }
                #[test] fn no_zombies() { if runs(MODEL) { cases::no_zombies(MODEL) } }
                #[test] fn course_python_client() { if runs(MODEL) { cases::course_python_client(MODEL) } }
            }
        )*
    };
}

conformance! {
    iterative => Subject::new(Model::Iterative, &[]);
    thread => Subject::new(Model::Thread, &[]), crowd;
    thread_pool => Subject::new(Model::ThreadPool, &[]);
    fork => Subject::new(Model::Fork, &[]), crowd;
    prefork => Subject::new(Model::Prefork, &[]), crowd;
    nonblocking => Subject::new(Model::Nonblocking, &[]), crowd;
    select => Subject::new(Model::Select, &[]);
    poll => Subject::new(Model::Poll, &[]), crowd;
    epoll => Subject::new(Model::Epoll, &[]), crowd;
    epoll_edge => Subject::new(Model::Epoll, &["--edge"]), crowd;
    reactors => Subject::new(Model::Reactors, &[]), crowd;
    hybrid => Subject::new(Model::Hybrid, &[]), crowd;
    sigio => Subject::new(Model::Sigio, &[]), crowd;
    uring => Subject::new(Model::Uring, &[]), crowd;
    tokio => Subject::new(Model::Tokio, &[]), crowd;
}

#[test]
fn every_model_is_in_the_suite() {
    for model in Model::ALL {
        assert!(
            COVERED.iter().any(|(s, _)| s.model == model),
            "{model} is missing from conformance!"
        );
    }
    for &(subject, crowd) in COVERED {
        let uncapped = subject.capacity(&Config::default()).is_none();
        assert_eq!(
            crowd,
            uncapped && subject != Model::Select,
            "{subject} is marked crowd wrongly in conformance!"
        );
    }
}

/// `select` refuses a client whose descriptor it cannot watch, and only it:
/// with 1100 clients, those past FD_SETSIZE are closed (one log line each)
/// while the rest are served, and the server serves again once they leave.
#[test]
fn select_refuses_clients_past_fd_setsize() {
    const CLIENTS: usize = 1100;
    cases::raise_nofile(4 * CLIENTS as u64);
    let mut server = Server::start(Model::Select, &[]);
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
    let deadline = Instant::now() + IO_TIMEOUT;
    while logged() < refused && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(logged(), refused, "one log line per refused client");
    drop(clients);
    // Descriptors are freed as the server sees the closes.
    server.served_again(b"again");
}

/// With at most 4 signals queued (`ulimit -i 4`), the real-time queue of
/// `sigio` overflows under 50 busy clients; the plain SIGIO that replaces
/// the lost signals makes it rescan, and every byte still arrives.
#[test]
fn sigio_rescans_when_the_signal_queue_overflows() {
    let server = Server::start_with_limits(Model::Sigio, &[], "-i 4");
    let clients: Vec<_> = (0..50u64)
        .map(|i| {
            let mut client = server.connect();
            std::thread::spawn(move || {
                let mut rng = Rng::new(i + 1);
                for k in 0..40 {
                    let len = 1 + rng.upto(8192);
                    round_trip(&mut client, &pattern(i, k * 8192, len));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client saw a wrong reply");
    }
    assert!(
        server.log().contains("signal queue is full"),
        "the queue never overflowed, so the rescan went untested; log:\n{}",
        server.log()
    );
}

/// `prefork`: a worker killed with SIGKILL costs only its own clients; see
/// [`worker_crash`].
#[test]
fn prefork_replaces_a_killed_worker() {
    worker_crash(Subject::new(Model::Prefork, &["--workers", "2"]), 2);
}

/// `hybrid`: the same, for a process of two threads.
#[test]
fn hybrid_replaces_a_killed_worker() {
    worker_crash(
        Subject::new(Model::Hybrid, &["--processes", "2", "--workers", "2"]),
        2,
    );
}

/// `kill -9` one of `workers` worker processes: its clients see their
/// connection end, the other workers' clients keep being served, new
/// clients are served, the parent forks a replacement; then SIGTERM stops
/// the server with exit 0 and every worker gone (reaped, not orphaned).
fn worker_crash(subject: Subject, workers: usize) {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;

    let mut server = Server::start(subject, &[]);
    let pids = server.live_children(workers, None);
    // Clients until two workers hold some: the kernel spreads them over the
    // workers' listeners by a hash of the client's port.
    let mut clients: Vec<(TcpStream, i32)> = Vec::new();
    for i in 0..200 {
        let mut client = server.connect();
        round_trip(&mut client, format!("client {i}").as_bytes());
        let owner = owner(&server, &client, &pids);
        clients.push((client, owner));
        let two_owners = clients.iter().any(|&(_, o)| o != clients[0].1);
        if two_owners && clients.len() >= 10 {
            break;
        }
    }
    let victim = clients[0].1;
    assert!(
        clients.iter().any(|&(_, o)| o != victim),
        "200 clients all went to one worker"
    );

    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    for (i, (client, owner)) in clients.iter_mut().enumerate() {
        if *owner == victim {
            let mut byte = [0];
            match client.read(&mut byte) {
                Ok(0) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                other => panic!("client {i} of the killed worker read {other:?}"),
            }
        } else {
            round_trip(client, format!("still served {i}").as_bytes());
        }
    }
    let replaced = server.live_children(workers, Some(victim));
    let newcomer = *replaced
        .iter()
        .find(|pid| !pids.contains(pid))
        .expect("a new worker");
    // New clients are served, by the replacement too: the kernel spreads
    // them over the listeners, the dead worker's included.
    server.served_again(b"a new client");
    let mut served_by_newcomer = false;
    for i in 0..200 {
        let mut client = server.connect();
        round_trip(&mut client, format!("new client {i}").as_bytes());
        if owner(&server, &client, &replaced) == newcomer {
            served_by_newcomer = true;
            break;
        }
    }
    assert!(
        served_by_newcomer,
        "the replacement served none of 200 clients"
    );
    for (i, (client, owner)) in clients.iter_mut().enumerate() {
        if *owner != victim {
            round_trip(
                client,
                format!("served after the replacement {i}").as_bytes(),
            );
        }
    }
    // The log is read on another thread: the line may still be on its way.
    let deadline = Instant::now() + IO_TIMEOUT;
    let told =
        |log: String| log.contains("was killed by SIGKILL") && log.contains("starting another");
    while !told(server.log()) {
        assert!(Instant::now() < deadline, "log:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }

    drop(clients);
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(IO_TIMEOUT);
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    for pid in replaced {
        // Reaped by the parent: no such process. An orphan would live on.
        assert_eq!(
            kill(Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH),
            "worker {pid} outlived its parent"
        );
    }
}

/// Which of `workers` holds the server side of `client`'s connection: its
/// socket's inode, from /proc/net/tcp, among each worker's descriptors.
fn owner(server: &Server, client: &TcpStream, workers: &[i32]) -> i32 {
    let (server_port, client_port) = (server.addr.port(), client.local_addr().unwrap().port());
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap(), 16).unwrap();
    let inode = table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|f| port(f[1]) == server_port && port(f[2]) == client_port)
        .map(|f| f[9].to_owned())
        .expect("the server side of the connection is in /proc/net/tcp");
    let link = format!("socket:[{inode}]");
    *workers
        .iter()
        .find(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_str() == Some(&link)))
        })
        .expect("a worker holds the connection")
}
