//! The upper-casing echo server of the course, under every concurrency and I/O model.
//!
//! Three layers, from the bytes out:
//! - [`EchoSession`]: the sans-I/O session that owns every byte a model moves
//!   (upper-casing, buffering, backpressure, half-close).
//! - [`model`]: one file per model, each showing one I/O strategy behind the
//!   contract written in `model/mod.rs`, and declaring itself as a [`Model`];
//!   [`Model::ALL`] lists them.
//! - [`Config`] and [`Shutdown`]: what every model is told, and how it is
//!   told to stop.
//!
//! # Examples
//!
//! Serve with a thread per connection on a free port, echo once, stop:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use std::time::Duration;
//! use iomodels_server::{Config, Model, Shutdown};
//!
//! let config = Config { addr: "127.0.0.1:0".parse().unwrap(), ..Config::default() };
//! let listener = config.listen().unwrap();
//! let addr = listener.local_addr().unwrap();
//! let shutdown = Shutdown::new(Duration::from_secs(1)).unwrap();
//! let server = {
//!     let shutdown = shutdown.clone();
//!     let thread = Model::named("thread").unwrap();
//!     std::thread::spawn(move || thread.serve(listener, &config, &shutdown))
//! };
//!
//! let mut client = TcpStream::connect(addr).unwrap();
//! client.write_all(b"hello").unwrap();
//! let mut reply = [0; 5];
//! client.read_exact(&mut reply).unwrap();
//! assert_eq!(&reply, b"HELLO");
//!
//! drop(client);
//! shutdown.drain();
//! server.join().unwrap().unwrap();
//! ```
#![deny(unsafe_code)]

mod accept;
mod admission;
mod blocking;
mod config;
mod connection;
mod drain;
mod hub;
mod loops;
pub mod model;
mod readiness;
mod reaper;
mod session;
mod shutdown;
mod supervisor;
mod sys;

pub use config::Config;
pub use model::{Family, Flag, Model, UnknownModel};
pub use session::EchoSession;
pub use shutdown::{Phase, Shutdown};
