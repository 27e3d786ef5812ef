//! The echo itself: exact bytes, any chunking, many clients, half-close, resets, backpressure, and the course's own client.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use iomodels_server::Config;

use super::assert_no_spin;
use crate::harness::{
    Rng, Server, Subject, blocked_writing, pattern, read_checked, replies_within, round_trip,
    tcp_queues, upper, wait_until, write_pattern,
};

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
pub fn hold(server: &Server, n: usize) -> Vec<TcpStream> {
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
pub fn one_more_waits_for_a_slot(server: &Server, held: &mut Vec<TcpStream>) {
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
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let sender = thread::spawn(move || {
        tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
        let sent = write_pattern(&mut writer, 5, TOTAL, 256 * 1024);
        writer.shutdown(Shutdown::Write).unwrap();
        sent
    });
    // Wait for the state under test: the client's sender blocked, the
    // server's replies stuck unacknowledged (the client reads nothing), and
    // the client's bytes left unread on the server's side.
    let tid = tid_rx.recv().unwrap();
    let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
    wait_until(
        "the server to stop reading a client that reads nothing",
        || {
            let server_side = tcp_queues(remote, local);
            blocked_writing(tid)
                && server_side.is_some_and(|(unacked, unread)| unacked > 0 && unread > 0)
        },
    );
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
