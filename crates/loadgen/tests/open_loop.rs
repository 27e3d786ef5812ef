//! Open loop: requests leave on schedule, and a stall is charged to every
//! request it delayed (no coordinated omission).
//!
//! Both assertions only get stronger on a slow machine: a busy machine can
//! send fewer requests than the schedule, never more, and can only add
//! latency, never remove it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use iomodels_loadgen::engine::{self, Workload};

mod toy;

/// An upper-casing echo server that, once, stops answering for `stall`
/// after it has echoed `after` bytes on a connection.
fn stalling_server(after: u64, stall: Duration) -> SocketAddr {
    toy::spawn(move |stream| serve(stream, after, stall))
}

fn serve(mut stream: TcpStream, after: u64, stall: Duration) {
    let mut buf = [0u8; 4096];
    let mut echoed = 0u64;
    let mut stalled = false;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !stalled && echoed >= after {
            stalled = true;
            thread::sleep(stall);
        }
        buf[..n].make_ascii_uppercase();
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
        echoed += n as u64;
    }
}

fn open_loop(addr: SocketAddr, rate: f64, duration: Duration) -> engine::LoadResult {
    let workload = Workload {
        conns: 1,
        size: 64,
        // One in flight: during a stall the due requests must park, which is
        // where a naive client would stamp them late.
        pipeline: 1,
        rate: Some(rate),
        warmup: Duration::from_millis(200),
        duration,
        timeout: Duration::from_secs(5),
        ..Workload::default()
    };
    engine::run(addr, &workload, |_| {}).unwrap()
}

#[test]
fn requests_leave_no_faster_than_the_rate() {
    // A server that never stalls: the schedule alone sets the pace.
    let addr = stalling_server(u64::MAX, Duration::ZERO);
    let result = open_loop(addr, 500.0, Duration::from_secs(1));
    assert!(!result.errors.any(), "{:?}", result.errors);
    let per_second = result.requests as f64 / result.window.as_secs_f64();
    // At most the rate (plus one request either side of the window).
    assert!(
        per_second <= 500.0 * 1.02 + 2.0,
        "{per_second:.0} req/s at a rate of 500"
    );
    assert!(result.requests > 0);
}

#[test]
fn a_stall_is_charged_to_every_request_it_delayed() {
    // At 1000 req/s of 64 B, the server stalls 500 ms once it has echoed
    // 0.3 s worth of requests: inside the window, which starts at 0.2 s.
    let addr = stalling_server(300 * 64, Duration::from_millis(500));
    let result = open_loop(addr, 1000.0, Duration::from_secs(1));
    assert!(!result.errors.any(), "{:?}", result.errors);
    // Requests due during the stall wait up to 500 ms: a closed-loop client
    // would record one slow request; the open loop records hundreds. At
    // least 30% of the window's requests took 100 ms or more.
    let p70 = Duration::from_nanos(result.latency.value_at_quantile(0.70));
    assert!(
        p70 >= Duration::from_millis(100),
        "p70 is {p70:?}: the stall was not charged"
    );
    assert!(Duration::from_nanos(result.latency.max()) >= Duration::from_millis(400));
}
