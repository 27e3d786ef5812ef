//! Processes: no zombies, a killed worker replaced, and the overflow path of signal-driven I/O.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::num::NonZeroUsize;
use std::thread;

use iomodels_server::{Config, Flag};
use nix::sys::signal::Signal;

use crate::harness::{IO_TIMEOUT, Rng, Server, Subject, pattern, round_trip, wait_until};

/// After many clients come and go, the server has no zombie children, and
/// no children left at all but the worker processes it keeps.
pub fn no_zombies(model: Subject) {
    let server = Server::start(model, &[]);
    for i in 0..60 {
        let mut client = server.connect();
        round_trip(&mut client, format!("client {i}").as_bytes());
    }
    server.live_children(model.model.standing_workers(&Config::default()), None);
}

/// With at most 4 signals queued (`ulimit -i 4`), the real-time queue of a
/// signal-driven model overflows under 50 busy clients; the plain SIGIO
/// that replaces the lost signals makes it rescan, and every byte still
/// arrives.
pub fn rescans_when_the_signal_queue_overflows(subject: Subject) {
    let server = Server::start_with_limits(subject, &[], "-i 4");
    let clients: Vec<_> = (0..50u64)
        .map(|i| {
            let mut client = server.connect();
            thread::spawn(move || {
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

/// `kill -9` one of `workers` worker processes: its clients see their
/// connection end, the other workers' clients keep being served, new
/// clients are served, the parent forks a replacement; then SIGTERM stops
/// the server with exit 0 and every worker gone (reaped, not orphaned).
pub fn replaces_a_killed_worker(subject: Subject) {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;

    // Two workers (of each kind, for a model of processes of threads).
    let mut args = vec!["--workers", "2"];
    if subject.model.takes(Flag::Processes) {
        args.extend(["--processes", "2"]);
    }
    let config = Config {
        workers: NonZeroUsize::new(2),
        processes: NonZeroUsize::new(2),
        ..Config::default()
    };
    let workers = subject.model.standing_workers(&config);
    let mut server = Server::start(subject, &args);
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
    wait_until("the log to tell of the replacement", || {
        let log = server.log();
        log.contains("was killed by SIGKILL") && log.contains("starting another")
    });

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
