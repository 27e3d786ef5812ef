//! What a server process tree costs, read from `/proc`, and what it sent,
//! read from the kernel's TCP counters.
//!
//! A server is a process and everything it forked: the fork model's children
//! serve the clients, so they count. One scan of `/proc/*/stat` per sample
//! finds the tree (by parent pid) and gives, for each process, its threads
//! and resident memory; the cost of a sample does not grow with the server's
//! thread count, so sampling a 1000-thread server every 100 ms costs the
//! client no more than sampling a single-threaded one.
//!
//! CPU time is read only at the window's two edges, and precisely: the
//! nanoseconds each task spent on a CPU (`/proc/PID/task/TID/schedstat`),
//! summed over every thread of every process in the tree, plus `cutime +
//! cstime` for children already reaped. Not `utime + stime` of `stat`: those
//! are scaled from timer-tick samples, and a process that only ever runs in
//! bursts shorter than a tick (each of the fork model's 1000 children, at 40
//! requests a second) is never caught running and shows 0.

use std::collections::HashMap;
use std::fs;
use std::process::Command;
use std::time::Duration;

/// One reading of a process tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeSample {
    /// Resident memory, summed over the tree.
    pub rss_bytes: u64,
    /// Threads, summed over the tree.
    pub threads: u64,
    /// Processes in the tree.
    pub processes: u64,
}

/// Reads the tree rooted at `root` now; `None` once `root` has exited.
pub fn sample(root: u32) -> Option<TreeSample> {
    let page = page_size();
    let mut total = TreeSample::default();
    for stat in tree(root)? {
        total.threads += stat.threads;
        total.processes += 1;
        total.rss_bytes += stat.rss_pages * page;
    }
    Some(total)
}

/// CPU time used so far by the tree rooted at `root`: every thread of every
/// process, reaped children included; `None` once `root` has exited.
pub fn tree_cpu(root: u32) -> Option<Duration> {
    let ticks = clock_ticks();
    let mut total = Duration::ZERO;
    for stat in tree(root)? {
        total += process_cpu(stat.pid);
        total += Duration::from_secs_f64(stat.reaped_ticks as f64 / ticks);
    }
    Some(total)
}

/// CPU time of this process's threads whose name starts with `prefix`
/// (`""` for all of them): the load threads' cost, without the driver's own
/// readings of the server or the memory sampler.
pub fn own_threads_cpu(prefix: &str) -> Duration {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter(|task| {
            fs::read_to_string(task.path().join("comm")).is_ok_and(|name| name.starts_with(prefix))
        })
        .filter_map(|task| fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// Bytes sent so far by every established TCP socket on local port `port`
/// (the kernel's `tcp_info.bytes_sent`, through `ss`): what a server has
/// written to its clients, counted by the kernel rather than by the client.
/// `None` when `ss` (iproute2) is not there.
pub fn bytes_sent_from_port(port: u16) -> Option<u64> {
    let output = Command::new("ss")
        .args(["-tinH", "state", "established"])
        .arg(format!("( sport = :{port} )"))
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Some(
        text.split_whitespace()
            .filter_map(|field| field.strip_prefix("bytes_sent:"))
            .filter_map(|n| n.parse::<u64>().ok())
            .sum(),
    )
}

#[derive(Debug, Clone, Copy)]
struct Stat {
    pid: u32,
    ppid: u32,
    /// `cutime + cstime`: CPU of children already reaped, in clock ticks.
    reaped_ticks: u64,
    threads: u64,
    rss_pages: u64,
}

/// Every process in the tree rooted at `root`, found by parent pid.
fn tree(root: u32) -> Option<Vec<Stat>> {
    let stats: HashMap<u32, Stat> = fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect();
    stats.get(&root)?;
    let mut by_parent: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, stat) in &stats {
        by_parent.entry(stat.ppid).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        let Some(&stat) = stats.get(&pid) else {
            continue;
        };
        found.push(stat);
        todo.extend(by_parent.get(&pid).into_iter().flatten());
    }
    Some(found)
}

/// Nanoseconds on a CPU, summed over the threads of `pid` (schedstat).
fn process_cpu(pid: u32) -> Duration {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'. Counting from there (0-based): state 0, ppid 1, cutime
    // 13, cstime 14, num_threads 17, rss 21 (pages).
    let fields: Vec<&str> = text.get(text.rfind(')')? + 2..)?.split(' ').collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        pid,
        ppid: u32::try_from(field(1)?).ok()?,
        reaped_ticks: field(13)? + field(14)?,
        threads: field(17)?,
        rss_pages: field(21)?,
    })
}

fn clock_ticks() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as u64)
}

#[cfg(test)]
mod tests {
    use super::{own_threads_cpu, sample, tree_cpu};
    use std::time::Duration;

    #[test]
    fn this_process_samples_itself() {
        let me = sample(std::process::id()).expect("we are alive");
        assert!(me.processes >= 1 && me.threads >= 1 && me.rss_bytes > 0);
        // Burn a little CPU on a thread of our own; its reading must grow.
        // (Not the sum over every thread: another test's thread that exits
        // meanwhile takes its time out of that sum.)
        let burner = std::thread::Builder::new().name("procfs-burner".into());
        let grew = burner
            .spawn(|| {
                let before = own_threads_cpu("procfs-burner");
                let mut x = 0u64;
                for i in 0..20_000_000u64 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                }
                own_threads_cpu("procfs-burner") > before
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(grew);
        assert_eq!(own_threads_cpu("no thread is called this"), Duration::ZERO);
        assert!(tree_cpu(std::process::id()).expect("we are alive") > Duration::ZERO);
    }

    #[test]
    fn a_missing_process_samples_as_none() {
        assert_eq!(sample(u32::MAX - 1), None);
        assert_eq!(tree_cpu(u32::MAX - 1), None);
    }
}
