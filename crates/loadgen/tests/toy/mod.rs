//! Toy servers for the load generator's own tests: a listener on a free
//! loopback port, a thread per connection running `handler`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

/// Starts a server that hands every connection to `handler` on its own thread.
pub(crate) fn spawn(handler: impl Fn(TcpStream) + Send + Sync + Copy + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || handler(stream));
        }
    });
    addr
}
