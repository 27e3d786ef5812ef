//! 100,000 greenlets blocked on one `Event` in one process: the RSS each adds, then how long one `set` takes to wake and join them all.
//!
//! Run: `cargo run --release -p green --example event_crowd [N] [STACK_KIB]`
//! (defaults: 100,000 greenlets, the default stack). gevent's side is
//! `python3 bench/python_green.py crowd N`.

use std::rc::Rc;
use std::time::Instant;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in KiB")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(100_000, |a| a.parse().expect("N: a count"));
    let stack = args.next().map_or(green::DEFAULT_STACK_SIZE, |a| {
        a.parse::<usize>().expect("STACK_KIB: a size in KiB") * 1024
    });
    green::Hub::new().stack_size(stack).run(move || {
        let event = Rc::new(green::Event::new());
        // One greenlet first, so the hub's own allocations are not counted.
        let first = {
            let event = Rc::clone(&event);
            green::spawn(move || event.wait())
        };
        green::sleep(std::time::Duration::ZERO);
        let before = rss_kib();
        let greenlets: Vec<_> = (0..n)
            .map(|_| {
                let event = Rc::clone(&event);
                green::spawn(move || event.wait())
            })
            .collect();
        // Every greenlet runs up to its wait.
        green::sleep(std::time::Duration::ZERO);
        let during = rss_kib();
        let start = Instant::now();
        event.set();
        first.join();
        for g in &greenlets {
            g.join();
        }
        let woke = start.elapsed();
        println!(
            "{n} greenlets on {} KiB stacks blocked on one Event: {:.2} KiB RSS each \
             ({} MiB in all); woken and joined in {} ms",
            stack / 1024,
            (during - before) as f64 / n as f64,
            (during - before) / 1024,
            woke.as_millis()
        );
    });
}
