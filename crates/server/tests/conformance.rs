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

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use harness::{
    IO_TIMEOUT, Rng, Server, pattern, read_checked, replies_within, round_trip, upper,
    write_pattern,
};
use iomodels_server::{Config, Model};
use nix::sys::signal::Signal;

mod cases {
    use super::*;
    use std::thread;

    const MIB: usize = 1 << 20;

    /// The course's exchange, then more messages on the same connection.
    pub fn hello(model: Model) {
        let server = Server::start(model, &[]);
        let mut client = server.connect();
        for message in [&b"hello"[..], b"Hello, World!", b"x", b"MiXeD 123 {z}"] {
            round_trip(&mut client, message);
        }
    }

    /// Every byte value, several times over: only a-z change.
    pub fn all_byte_values(model: Model) {
        let server = Server::start(model, &[]);
        let mut client = server.connect();
        let all: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
        round_trip(&mut client, &all);
    }

    /// 8 MiB written in random chunks while the replies are read in random
    /// chunks at the same time: every byte back, in order, then EOF.
    pub fn eight_mib_in_random_chunks(model: Model) {
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
    pub fn concurrent_clients(model: Model) {
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
    pub fn half_close(model: Model) {
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
    pub fn resets_mid_stream(model: Model) {
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
    pub fn slow_reader(model: Model) {
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
        thread::sleep(Duration::from_secs(3));
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
    pub fn sigterm_mid_transfer(model: Model) {
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
    pub fn sigterm_drains_what_was_sent(model: Model) {
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

        let refused_by = Instant::now() + IO_TIMEOUT;
        loop {
            match TcpStream::connect(server.addr) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
                Err(e) => panic!("unexpected connect error: {e}"),
                Ok(_) => assert!(Instant::now() < refused_by, "still accepting after SIGTERM"),
            }
            thread::sleep(Duration::from_millis(20));
        }
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

    /// With a descriptor limit of 64 and a flood of 200 connections, the
    /// server neither exits nor spins, keeps serving the client it has, and
    /// serves new clients once descriptors free.
    pub fn descriptor_exhaustion(model: Model) {
        let mut server = Server::start_with_nofile(model, &[], 64);
        let mut first = server.connect();
        round_trip(&mut first, b"first");
        let flood: Vec<TcpStream> = (0..200).map(|_| server.connect()).collect();
        thread::sleep(Duration::from_millis(500));

        let (cpu, wall) = (server.cpu_seconds(), Instant::now());
        thread::sleep(Duration::from_secs(2));
        let busy = (server.cpu_seconds() - cpu) / wall.elapsed().as_secs_f64();
        // A model that retried accept at once would burn a whole core here.
        assert!(
            busy < 0.5,
            "{} used {:.0}% of a core while out of descriptors",
            model,
            busy * 100.0
        );

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
    pub fn max_conns(model: Model) {
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
            // The slot is free once the server has seen the close; retry
            // until then (each refused try is closed at once, as above).
            let deadline = Instant::now() + IO_TIMEOUT;
            loop {
                let mut next = server.connect();
                let _ = next.write_all(b"next");
                let mut reply = [0; 4];
                if next.read_exact(&mut reply).is_ok() {
                    assert_eq!(&reply, b"NEXT");
                    break;
                }
                assert!(Instant::now() < deadline, "{model} never freed the slot");
                thread::sleep(Duration::from_millis(20));
            }
        } else {
            one_more_waits_for_a_slot(&server, &mut held);
        }
    }

    /// After many clients come and go, the server has no zombie children and
    /// no children left at all.
    pub fn no_zombies(model: Model) {
        let server = Server::start(model, &[]);
        for i in 0..60 {
            let mut client = server.connect();
            round_trip(&mut client, format!("client {i}").as_bytes());
        }
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let children = server.children();
            if children.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{model} still has children (pid, state) {children:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The course's own client, as the notes wrote it (only the port differs),
    /// run with Python: it prints `HELLO` for `hello`.
    pub fn course_python_client(model: Model) {
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

/// One module per model, one test per case in each.
macro_rules! conformance {
    ($($module:ident => $model:expr),* $(,)?) => {
        const COVERED: &[Model] = &[$($model),*];
        $(
            mod $module {
                use super::*;
                #[test] fn hello() { cases::hello($model) }
                #[test] fn all_byte_values() { cases::all_byte_values($model) }
                #[test] fn eight_mib_in_random_chunks() { cases::eight_mib_in_random_chunks($model) }
                #[test] fn concurrent_clients() { cases::concurrent_clients($model) }
                #[test] fn half_close() { cases::half_close($model) }
                #[test] fn resets_mid_stream() { cases::resets_mid_stream($model) }
                #[test] fn slow_reader() { cases::slow_reader($model) }
                #[test] fn sigterm_mid_transfer() { cases::sigterm_mid_transfer($model) }
                #[test] fn sigterm_drains_what_was_sent() { cases::sigterm_drains_what_was_sent($model) }
                #[test] fn descriptor_exhaustion() { cases::descriptor_exhaustion($model) }
                #[test] fn max_conns() { cases::max_conns($model) }
                #[test] fn no_zombies() { cases::no_zombies($model) }
                #[test] fn course_python_client() { cases::course_python_client($model) }
            }
        )*
    };
}

conformance! {
    iterative => Model::Iterative,
    thread => Model::Thread,
    thread_pool => Model::ThreadPool,
    fork => Model::Fork,
}

#[test]
fn every_model_is_in_the_suite() {
    for model in Model::ALL {
        assert!(
            COVERED.contains(&model),
            "{model} is missing from conformance!"
        );
    }
}
