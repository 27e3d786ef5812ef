//! Cooperative sockets: blocking-style code on many connections at once, timeouts, and timeout scopes around reads.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use green::net::{TcpListener, TcpStream};

/// The same blocking echo loop std would run on a thread, here in a
/// greenlet per connection: 50 clients at once, each answered.
/// A client and the server's end of its connection, both green.
fn connected() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (conn, _) = listener.accept().unwrap();
    (client, conn)
}

#[test]
fn a_greenlet_per_connection_serves_many_at_once() {
    green::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        green::spawn(move || {
            loop {
                let (mut conn, _) = listener.accept().unwrap();
                green::spawn(move || {
                    let mut buf = [0; 1024];
                    loop {
                        let n = conn.read(&mut buf).unwrap();
                        if n == 0 {
                            return;
                        }
                        conn.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
                    }
                });
            }
        });
        // Every client connects and sends before any reads its reply: the
        // server must hold 50 conversations at once.
        let mut clients: Vec<_> = (0..50).map(|_| TcpStream::connect(addr).unwrap()).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(format!("client {i}").as_bytes()).unwrap();
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let want = format!("CLIENT {i}");
            let mut reply = vec![0; want.len()];
            c.read_exact(&mut reply).unwrap();
            assert_eq!(reply, want.as_bytes());
        }
    });
}

/// The last bytes and the peer's FIN announced by one event: the short
/// read of the bytes must not make the next read wait for an edge that
/// will never come.
#[test]
fn eof_announced_with_the_last_bytes_is_not_lost() {
    green::run(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let reader = green::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            let mut got = Vec::new();
            loop {
                let n = (&client).read(&mut buf).unwrap();
                if n == 0 {
                    return got;
                }
                got.extend_from_slice(&buf[..n]);
            }
        });
        // The reader parks on an empty socket; then bytes and FIN land
        // before the hub polls again.
        green::sleep(Duration::ZERO);
        peer.write_all(b"last words").unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        assert!(
            reader.join_timeout(Duration::from_secs(60)),
            "the EOF was lost"
        );
        assert_eq!(reader.get().unwrap(), b"last words");
    });
}

/// Megabytes each way through one connection: writes park on a full send
/// buffer and reads on an empty one, and every byte arrives in order.
#[test]
fn bulk_transfer_with_backpressure() {
    const TOTAL: usize = 8 << 20;
    green::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = green::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = vec![0; 64 * 1024];
            let mut total = 0;
            loop {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                conn.write_all(&buf[..n]).unwrap();
                total += n;
            }
            conn.shutdown(Shutdown::Write).unwrap();
            total
        });
        let client = Rc::new(TcpStream::connect(addr).unwrap());
        let writer = {
            let client = Rc::clone(&client);
            green::spawn(move || {
                let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
                let mut sent = 0;
                while sent < TOTAL {
                    (&*client).write_all(&chunk).unwrap();
                    sent += chunk.len();
                }
                client.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut got = 0usize;
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = (&*client).read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            for (k, b) in buf[..n].iter().enumerate() {
                assert_eq!(
                    *b,
                    ((got + k) % (64 * 1024) % 251) as u8,
                    "byte {}",
                    got + k
                );
            }
            got += n;
        }
        writer.join();
        assert_eq!(got, TOTAL);
        assert_eq!(server.get(), Ok(TOTAL));
    });
}

/// A read timeout fails the read with `WouldBlock`, as std's does, and
/// the stream still works after it.
#[test]
fn a_read_timeout_keeps_the_stream_usable() {
    green::run(|| {
        let (mut client, mut conn) = connected();
        conn.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let mut buf = [0; 4];
        assert_eq!(
            conn.read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        client.write_all(b"late").unwrap();
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
    });
}

/// A timeout scope ends a blocked read with `TimedOut`; no byte was taken,
/// so the connection is still usable, and reads what comes next.
#[test]
fn a_timeout_scope_ends_a_blocked_read() {
    green::run(|| {
        let (mut client, mut conn) = connected();
        let mut buf = [0; 5];
        let read = green::with_timeout(Duration::from_millis(5), || conn.read(&mut buf));
        assert_eq!(read.unwrap().unwrap_err().kind(), ErrorKind::TimedOut);
        client.write_all(b"after").unwrap();
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"after");
    });
}

/// A timeout set while a read waits ends that read (a thread's
/// `SO_RCVTIMEO` would not): how a server's drain reaches parked readers.
#[test]
fn a_timeout_set_while_reading_ends_the_read() {
    green::run(|| {
        let (_client, conn) = connected();
        let conn = Rc::new(conn);
        let reader = {
            let conn = Rc::clone(&conn);
            green::spawn(move || (&*conn).read(&mut [0; 8]).map_err(|e| e.kind()))
        };
        green::sleep(Duration::ZERO); // the reader is parked now
        assert!(!reader.ready());
        conn.set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        assert_eq!(reader.get(), Ok(Err(ErrorKind::WouldBlock)));
    });
}

/// Killing a greenlet parked in `read` ends it; the socket can be read by
/// another greenlet afterwards.
#[test]
fn kill_ends_a_parked_read() {
    green::run(|| {
        let (mut client, conn) = connected();
        let conn = Rc::new(conn);
        let reader = {
            let conn = Rc::clone(&conn);
            green::spawn(move || (&*conn).read(&mut [0; 8]).unwrap())
        };
        green::sleep(Duration::ZERO);
        reader.kill();
        assert_eq!(reader.get(), Err(green::GreenletError::Killed));
        client.write_all(b"x").unwrap();
        let mut byte = [0];
        (&*conn).read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
    });
}

/// Two greenlets reading one socket at once: the second gets an error
/// (gevent's `ConcurrentObjectUseError`), not half the bytes.
#[test]
fn two_readers_of_one_socket_is_an_error() {
    green::run(|| {
        let (_client, conn) = connected();
        let conn = Rc::new(conn);
        let first = {
            let conn = Rc::clone(&conn);
            green::spawn(move || (&*conn).read(&mut [0; 8]).map_err(|e| e.kind()))
        };
        green::sleep(Duration::ZERO);
        let second = (&*conn).read(&mut [0; 8]).unwrap_err();
        assert_eq!(second.kind(), ErrorKind::ResourceBusy);
        first.kill();
    });
}

/// A refused connect fails, and does not hang the hub.
#[test]
fn a_refused_connect_fails() {
    green::run(|| {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        }; // closed: nothing listens there now
        let error = TcpStream::connect(addr).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConnectionRefused);
    });
}

/// The peer's EOF wakes a parked read with 0, and every later read says 0
/// again at once (the EOF stays readable).
#[test]
fn eof_wakes_a_parked_read_and_stays() {
    green::run(|| {
        let (client, mut conn) = connected();
        let closer = green::spawn(move || drop(client));
        assert_eq!(conn.read(&mut [0; 8]).unwrap(), 0);
        closer.join();
        assert_eq!(conn.read(&mut [0; 8]).unwrap(), 0);
        assert_eq!(conn.read(&mut [0; 8]).unwrap(), 0);
    });
}
