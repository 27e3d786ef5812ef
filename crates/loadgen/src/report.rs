//! One measurement: run a workload against a target, gather every figure.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::{self, Errors, Milestone, Workload};
use crate::procfs::{self, TreeSample};
use crate::{Error, Target};

/// Everything one run measured. Serialises to the JSON of `iomodels bench --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The target's name.
    pub target: String,
    /// Where it listened.
    pub addr: String,
    /// Connections.
    pub conns: usize,
    /// Silent connections held open beside them.
    pub silent: usize,
    /// Bytes per request.
    pub size: usize,
    /// Requests in flight per connection (the cap, in open loop).
    pub pipeline: usize,
    /// Open-loop rate, if any.
    pub rate: Option<f64>,
    /// Client threads.
    pub threads: usize,
    /// Warm-up asked for, in seconds.
    pub warmup_s: f64,
    /// Window asked for, in seconds.
    pub duration_s: f64,
    /// The measured window, in seconds.
    pub window_s: f64,
    /// Where the window lay on the system's monotonic clock
    /// (`CLOCK_MONOTONIC`, seconds), for counters kept outside the bench.
    pub window_monotonic: [f64; 2],
    /// Requests completed in the window.
    pub requests: u64,
    /// Requests per second.
    pub requests_per_s: f64,
    /// Megabytes (10^6 bytes) per second, each way.
    pub mb_per_s: f64,
    /// Latency percentiles.
    pub latency_us: Latency,
    /// Errors over the run.
    pub errors: Errors,
    /// The first wrong byte, described.
    pub first_wrong: Option<String>,
    /// Connections that completed nothing in the window (a capped model's
    /// waiting clients show up here).
    pub idle_conns: usize,
    /// The server's own figures, when the bench started it.
    pub server: Option<ServerFigures>,
    /// The load threads' CPU per request, in microseconds.
    pub client_cpu_us_per_request: f64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// The slowest request.
    pub max: f64,
}

/// What the server process tree cost during the window.
#[derive(Debug, Clone, Serialize)]
pub struct ServerFigures {
    /// User + system CPU of the server, its threads and its children, per request.
    pub cpu_us_per_request: f64,
    /// Peak resident memory, summed over its processes (sampled every 100 ms).
    pub peak_rss_bytes: u64,
    /// Peak thread count over its processes.
    pub peak_threads: u64,
    /// Peak process count.
    pub peak_processes: u64,
    /// Requests per second as the *kernel* saw the server send them: the
    /// growth of `tcp_info.bytes_sent` over the server's sockets during the
    /// window, divided by the request size. An independent check on
    /// `requests_per_s` (`None` without `ss`).
    pub kernel_requests_per_s: Option<f64>,
}

/// The window starting at `start` and lasting `window`, as seconds of
/// `CLOCK_MONOTONIC` (the clock `Instant` reads on Linux, whose values it
/// does not show).
fn monotonic(start: Option<Instant>, window: Duration) -> [f64; 2] {
    use nix::time::{ClockId, clock_gettime};
    let (Some(start), Ok(now)) = (start, clock_gettime(ClockId::CLOCK_MONOTONIC)) else {
        return [f64::NAN; 2];
    };
    let now_s = now.tv_sec() as f64 + now.tv_nsec() as f64 * 1e-9;
    let begun = now_s - start.elapsed().as_secs_f64();
    [begun, begun + window.as_secs_f64()]
}

/// Starts `target`, applies `workload`, stops it, and reports.
///
/// # Errors
///
/// If the target cannot start, no connection can be opened, or a thread
/// cannot start.
pub fn measure(target: &Target, workload: &Workload) -> Result<Report, Error> {
    let server = target.start()?;
    let pid = server.pid();
    let addr = server.addr;

    // Peaks: a sampler over the whole run.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = pid.map(|pid| {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut peak = TreeSample::default();
            while !stop.load(Ordering::Relaxed) {
                if let Some(s) = procfs::sample(pid) {
                    peak.rss_bytes = peak.rss_bytes.max(s.rss_bytes);
                    peak.threads = peak.threads.max(s.threads);
                    peak.processes = peak.processes.max(s.processes);
                }
                thread::sleep(Duration::from_millis(100));
            }
            peak
        })
    });

    let port = addr.port();
    let (mut server_at, mut own_at, mut sent_at) =
        ([None, None], [Duration::ZERO; 2], [None, None]);
    let result = engine::run(addr, workload, |milestone| {
        let slot = match milestone {
            Milestone::Connected => return,
            Milestone::WindowStart => 0,
            Milestone::WindowEnd => 1,
        };
        // The client's clock first, then the server's, then `ss`. Reading
        // 10,000 threads' schedstat, or 10,000 sockets through `ss`, takes a
        // while, and not the same while at both edges: each reading is
        // timed by its midpoint, and divided by the time between them.
        own_at[slot] = procfs::own_threads_cpu("load-");
        server_at[slot] = timed(|| pid.and_then(procfs::tree_cpu));
        sent_at[slot] = timed(|| pid.and_then(|_| procfs::bytes_sent_from_port(port)));
    });
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.and_then(|s| s.join().ok());
    server.stop();
    let result = result?;

    let window = result.window.as_secs_f64();
    let requests = result.requests;
    let requests_per_s = requests as f64 / window;
    // CPU per second over `span` seconds, divided by requests per second: a
    // reading's span may differ a little from the window (see above).
    let us_per_request = |cpu: Duration, span: f64| {
        if requests == 0 {
            f64::NAN
        } else {
            cpu.as_secs_f64() * 1e6 / span / requests_per_s
        }
    };
    let server_figures = match (server_at, peak) {
        ([Some((start, at_start)), Some((end, at_end))], Some(peak)) => Some(ServerFigures {
            cpu_us_per_request: us_per_request(
                end.saturating_sub(start),
                at_end.duration_since(at_start).as_secs_f64(),
            ),
            peak_rss_bytes: peak.rss_bytes,
            peak_threads: peak.threads,
            peak_processes: peak.processes,
            kernel_requests_per_s: match sent_at {
                [Some((a, at_a)), Some((b, at_b))] => Some(
                    b.saturating_sub(a) as f64
                        / workload.size as f64
                        / at_b.duration_since(at_a).as_secs_f64(),
                ),
                _ => None,
            },
        }),
        _ => None,
    };
    let quantile = |q: f64| result.latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(Report {
        target: target.name(),
        addr: addr.to_string(),
        conns: workload.conns,
        silent: workload.silent,
        size: workload.size,
        pipeline: workload.pipeline,
        rate: workload.rate,
        threads: workload.threads,
        warmup_s: workload.warmup.as_secs_f64(),
        duration_s: workload.duration.as_secs_f64(),
        window_s: window,
        window_monotonic: monotonic(result.window_start, result.window),
        requests,
        requests_per_s,
        mb_per_s: (requests * workload.size as u64) as f64 / window / 1e6,
        latency_us: Latency {
            p50: quantile(0.5),
            p90: quantile(0.9),
            p99: quantile(0.99),
            p999: quantile(0.999),
            max: result.latency.max() as f64 / 1000.0,
        },
        errors: result.errors,
        first_wrong: result.first_wrong,
        idle_conns: result.idle_conns,
        server: server_figures,
        client_cpu_us_per_request: us_per_request(own_at[1].saturating_sub(own_at[0]), window),
    })
}

/// Runs `read` and returns its value with the instant halfway through it.
fn timed<T>(read: impl FnOnce() -> Option<T>) -> Option<(T, Instant)> {
    let before = Instant::now();
    let value = read()?;
    Some((value, before + before.elapsed() / 2))
}

/// A latency in the unit that reads best.
pub(crate) fn micros(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} us")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.rate {
            Some(rate) => format!(
                "open loop at {rate:.0} req/s (at most {} in flight per connection)",
                self.pipeline
            ),
            None => format!("closed loop, {} in flight per connection", self.pipeline),
        };
        writeln!(f, "target:      {} at {}", self.target, self.addr)?;
        writeln!(
            f,
            "load:        {} connections, {} B requests, {mode}, {} client thread(s), {:.2} s measured",
            self.conns, self.size, self.threads, self.window_s
        )?;
        if self.silent > 0 {
            writeln!(
                f,
                "silent:      {} more connections held open, sending nothing",
                self.silent
            )?;
        }
        writeln!(
            f,
            "throughput:  {:.0} req/s, {:.2} MB/s each way",
            self.requests_per_s, self.mb_per_s
        )?;
        let l = &self.latency_us;
        writeln!(
            f,
            "latency:     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            micros(l.p50),
            micros(l.p90),
            micros(l.p99),
            micros(l.p999),
            micros(l.max)
        )?;
        let e = &self.errors;
        if e.any() {
            writeln!(
                f,
                "errors:      {} wrong bytes, {} short replies, {} resets, {} timeouts, {} failed connects",
                e.wrong_bytes, e.short_replies, e.resets, e.timeouts, e.connect_failures
            )?;
        } else {
            writeln!(f, "errors:      none (every byte checked)")?;
        }
        if let Some(wrong) = &self.first_wrong {
            writeln!(f, "first wrong: {wrong}")?;
        }
        if self.idle_conns > 0 {
            writeln!(
                f,
                "idle:        {} connections completed nothing in the window",
                self.idle_conns
            )?;
        }
        if let Some(s) = &self.server {
            writeln!(
                f,
                "server:      {:.2} us CPU per request, peak {:.1} MiB RSS, {} threads, {} processes",
                s.cpu_us_per_request,
                s.peak_rss_bytes as f64 / (1 << 20) as f64,
                s.peak_threads,
                s.peak_processes
            )?;
            if let Some(kernel) = s.kernel_requests_per_s {
                let off = (kernel / self.requests_per_s - 1.0) * 100.0;
                writeln!(
                    f,
                    "check:       the kernel saw the server send {kernel:.0} replies/s ({off:+.1}% from the client's count)"
                )?;
            }
        }
        write!(
            f,
            "client:      {:.2} us CPU per request",
            self.client_cpu_us_per_request
        )
    }
}
