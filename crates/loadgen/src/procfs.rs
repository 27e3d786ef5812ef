//! What a server process tree costs, read from `/proc`, and what it sent,
//! read from the kernel's TCP counters.
//!
//! A server is a process and everything it forked: the fork model's children
//! serve the clients, so they count. One scan of `/proc/*/stat` per sample
//! finds the tree (by parent pid) and gives, for each process, its CPU time,
//! threads and resident memory. The cost of a sample does not grow with the
//! server's thread count, so sampling a 1000-thread server costs the client
//! no more than sampling a single-threaded one. CPU time sums `utime + stime`
//! of every live process plus `cutime + cstime` (children already reaped,
//! whose time the kernel has folded into their parent).

use std::collections::HashMap;
use std::fs;
use std::process::Command;
use std::time::Duration;

/// One reading of a process tree.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TreeSample {
    /// User + system CPU time of the tree, reaped children included.
    pub cpu: Duration,
    /// Resident memory, summed over the tree.
    pub rss_bytes: u64,
    /// Threads, summed over the tree.
    pub threads: u64,
    /// Processes in the tree.
    pub processes: u64,
}

/// Reads the tree rooted at `root` now; `None` once `root` has exited.
pub fn sample(root: u32) -> Option<TreeSample> {
    let stats = all_stats();
    stats.get(&root)?;
    let mut by_parent: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, stat) in &stats {
        by_parent.entry(stat.ppid).or_default().push(pid);
    }
    let (ticks, page) = (clock_ticks(), page_size());
    let mut total = TreeSample::default();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        let Some(stat) = stats.get(&pid) else {
            continue;
        };
        total.cpu += Duration::from_secs_f64(stat.cpu_ticks as f64 / ticks);
        total.threads += stat.threads;
        total.processes += 1;
        total.rss_bytes += stat.rss_pages * page;
        todo.extend(by_parent.get(&pid).into_iter().flatten());
    }
    Some(total)
}

/// The calling process's own CPU time (all its threads).
pub fn own_cpu() -> Duration {
    read_stat(std::process::id()).map_or(Duration::ZERO, |s| {
        Duration::from_secs_f64(s.cpu_ticks as f64 / clock_ticks())
    })
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
    ppid: u32,
    cpu_ticks: u64,
    threads: u64,
    rss_pages: u64,
}

fn all_stats() -> HashMap<u32, Stat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'. Counting from there (0-based): state 0, ppid 1, utime
    // 11, stime 12, cutime 13, cstime 14, num_threads 17, rss 21 (pages).
    let fields: Vec<&str> = text.get(text.rfind(')')? + 2..)?.split(' ').collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let ppid = u32::try_from(field(1)?).ok()?;
    // A zombie's times already belong to its parent's cutime once reaped.
    if fields.first() == Some(&"Z") {
        return Some(Stat {
            ppid,
            cpu_ticks: 0,
            threads: 0,
            rss_pages: 0,
        });
    }
    Some(Stat {
        ppid,
        cpu_ticks: field(11)? + field(12)? + field(13)? + field(14)?,
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
    use super::{own_cpu, sample};

    #[test]
    fn this_process_samples_itself() {
        let me = sample(std::process::id()).expect("we are alive");
        assert!(me.processes >= 1 && me.threads >= 1 && me.rss_bytes > 0);
        // Burn a little CPU; the reading must not go backwards.
        let before = own_cpu();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(own_cpu() >= before);
    }

    #[test]
    fn a_missing_process_samples_as_none() {
        assert_eq!(sample(u32::MAX - 1), None);
    }
}
