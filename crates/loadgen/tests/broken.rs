//! The load generator against deliberately broken servers: every defect is
//! caught and counted, and a correct server shows none.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use iomodels_loadgen::engine::{self, Workload};

mod toy;

/// What a toy server does to the byte at each stream position.
#[derive(Debug, Clone, Copy)]
enum Defect {
    None,
    /// Never sends the byte at this position.
    DropsByte(u64),
    /// Sends the first letter at or after this position in the wrong case.
    FlipsCase(u64),
    /// Closes the connection after sending this many bytes.
    HangsUpAfter(u64),
}

/// An upper-casing echo server with one defect, a thread per connection.
fn toy_server(defect: Defect) -> SocketAddr {
    toy::spawn(move |stream| serve(stream, defect))
}

fn serve(mut stream: TcpStream, defect: Defect) {
    let mut buf = [0u8; 4096];
    let mut position = 0u64;
    let mut flipped = false;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n);
        for &byte in &buf[..n] {
            let at = position;
            position += 1;
            let upper = byte.to_ascii_uppercase();
            match defect {
                Defect::DropsByte(p) if at == p => continue,
                Defect::FlipsCase(p) if at >= p && !flipped && upper.is_ascii_alphabetic() => {
                    flipped = true;
                    out.push(upper.to_ascii_lowercase());
                }
                Defect::HangsUpAfter(p) if at >= p => {
                    let _ = stream.write_all(&out);
                    return;
                }
                _ => out.push(upper),
            }
        }
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

fn load(addr: SocketAddr) -> engine::LoadResult {
    let workload = Workload {
        conns: 8,
        size: 64,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(500),
        timeout: Duration::from_millis(300),
        ..Workload::default()
    };
    engine::run(addr, &workload, |_| {}).unwrap()
}

#[test]
fn a_correct_server_shows_no_error() {
    let result = load(toy_server(Defect::None));
    assert!(!result.errors.any(), "{:?}", result.errors);
    assert!(result.requests > 0);
    assert!(result.first_wrong.is_none());
    assert_eq!(result.idle_conns, 0);
}

#[test]
fn a_dropped_byte_is_caught_on_every_connection() {
    let result = load(toy_server(Defect::DropsByte(1000)));
    assert_eq!(result.errors.wrong_bytes, 8, "{:?}", result.errors);
    assert!(result.errors.server_is_broken());
    let wrong = result.first_wrong.expect("described");
    assert!(wrong.contains("byte 1000 of the reply stream"), "{wrong}");
}

#[test]
fn a_flipped_case_is_caught_on_every_connection() {
    let result = load(toy_server(Defect::FlipsCase(500)));
    assert_eq!(result.errors.wrong_bytes, 8, "{:?}", result.errors);
    assert!(result.errors.server_is_broken());
}

#[test]
fn a_hang_up_mid_reply_is_a_short_reply() {
    let result = load(toy_server(Defect::HangsUpAfter(2000)));
    assert_eq!(result.errors.short_replies, 8, "{:?}", result.errors);
    assert_eq!(result.errors.wrong_bytes, 0);
    assert!(result.errors.server_is_broken());
}

#[test]
fn a_silent_server_times_out_and_is_not_counted_as_served() {
    // Accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let held = thread::spawn(move || listener.incoming().take(8).collect::<Vec<_>>());
    let result = load(addr);
    assert_eq!(result.requests, 0);
    assert_eq!(result.errors.timeouts, 8, "{:?}", result.errors);
    assert!(!result.errors.server_is_broken());
    drop(held);
}
