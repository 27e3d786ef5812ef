//! The course's cures for deadlock as API: locks taken in one global order, timeouts, and a detector that names the cycle.
//!
//! A deadlock needs four things at once (Coffman): mutual exclusion, hold
//! and wait, no preemption, and a cycle of threads each waiting for a lock
//! the next one holds. The course cures it by breaking one of the last two:
//!
//! 1. **Give up after a while** ([`Lock::acquire_timeout`]): a thread that
//!    cannot get its second lock in time drops its first and retries, so it
//!    does not hold while waiting for ever.
//! 2. **One global order** ([`acquire_all`], [`acquire_many`]): if every
//!    thread takes locks in the same order, no cycle can form. The order
//!    here is each lock's creation id, so callers can name the locks in
//!    whatever order reads best and get the guards back in that order.
//!
//! And to find the deadlocks that remain, the `deadlock-detector` cargo
//! feature keeps a global wait-for graph: which thread holds which
//! [`Lock`], and which lock each blocked thread waits for. A thread about
//! to block walks the graph from the lock it wants; if the walk comes back
//! to itself, it has closed a cycle, and the cycle is reported with thread
//! and lock names (`Deadlock`'s `Display`):
//!
//! ```text
//! thread 'A' holds 'fork 1' and waits for 'fork 2'; thread 'B' holds 'fork 2' and waits for 'fork 1'
//! ```
//!
//! [`Lock::acquire`] and [`Lock::acquire_timeout`] pass the report to the
//! handler set with `set_handler` (by default, printed on stderr) and then
//! block as the program would have; `Lock::acquire_checked` returns it as
//! an error instead. Only [`Lock`] is tracked: an `RLock`'s re-entry and a
//! semaphore's anonymous permits have no single holder to name.
//!
//! **Written by hand, and why.** parking_lot has a `deadlock_detection`
//! feature, but it finds cycles among its own parked threads from a
//! separate checking thread and reports thread ids and backtraces; it
//! cannot name the locks, which is what the course's exercise (the dining
//! philosophers) is about. The graph here is a `HashMap` behind one global
//! `parking_lot::Mutex`, taken on every acquire and release of a `Lock`:
//! a debugging aid, off by default, where the default build pays nothing.
//!
//! [`Lock`]: crate::sync::Lock
//! [`Lock::acquire`]: crate::sync::Lock::acquire
//! [`Lock::acquire_timeout`]: crate::sync::Lock::acquire_timeout

#[cfg(feature = "deadlock-detector")]
pub(crate) mod detector;

#[cfg(feature = "deadlock-detector")]
pub(crate) use detector::report;
#[cfg(feature = "deadlock-detector")]
pub use detector::{Deadlock, WaitEdge, set_handler};

use crate::sync::{Lock, LockGuard};

/// Takes every lock in `locks`, always in the same global order whatever
/// order they are named in, and returns the guards in the caller's order.
/// Threads that take their locks only this way cannot deadlock on them.
///
/// # Panics
///
/// If the same lock is named twice (it would deadlock on itself).
///
/// # Examples
///
/// The dining philosophers: each needs the fork on their left and on their
/// right. Taken left-then-right by everyone, the five can each hold one
/// fork and wait for ever; taken through `acquire_all`, they cannot.
///
/// ```
/// use conc::deadlock::acquire_all;
/// use conc::sync::Lock;
///
/// let forks: Vec<Lock<u32>> = (0..5).map(|i| Lock::named(format!("fork {i}"), 0)).collect();
/// std::thread::scope(|s| {
///     for p in 0..5 {
///         let (left, right) = (&forks[p], &forks[(p + 1) % 5]);
///         s.spawn(move || {
///             for _ in 0..100 {
///                 // The last philosopher names the forks in the "wrong"
///                 // order, closing the ring: harmless here.
///                 let [mut l, mut r] = acquire_all([left, right]);
///                 *l += 1; // eat: count each fork's uses
///                 *r += 1;
///             }
///         });
///     }
/// });
/// assert!(forks.iter().all(|fork| *fork.acquire() == 200));
/// ```
pub fn acquire_all<'a, T, const N: usize>(locks: [&'a Lock<T>; N]) -> [LockGuard<'a, T>; N] {
    let mut guards: [Option<LockGuard<'a, T>>; N] = std::array::from_fn(|_| None);
    for i in global_order(&locks) {
        guards[i] = Some(locks[i].acquire());
    }
    guards.map(|guard| guard.expect("every lock was taken"))
}

/// As [`acquire_all`], for a number of locks known only at run time.
///
/// # Panics
///
/// If the same lock is named twice.
///
/// # Examples
///
/// ```
/// use conc::deadlock::acquire_many;
/// use conc::sync::Lock;
///
/// let accounts: Vec<Lock<i64>> = (0..4).map(|_| Lock::new(100)).collect();
/// // Move everything into account 0, taking the locks of the chosen accounts.
/// let chosen = [&accounts[3], &accounts[0], &accounts[2]];
/// let mut guards = acquire_many(&chosen);
/// let moved: i64 = guards[1..].iter_mut().map(|g| std::mem::take(&mut **g)).sum();
/// *guards[0] += moved; // guards[0] is accounts[3]: the caller's order
/// drop(guards);
/// assert_eq!(*accounts[3].acquire(), 300);
/// ```
pub fn acquire_many<'a, T>(locks: &[&'a Lock<T>]) -> Vec<LockGuard<'a, T>> {
    let mut guards: Vec<Option<LockGuard<'a, T>>> = locks.iter().map(|_| None).collect();
    for i in global_order(locks) {
        guards[i] = Some(locks[i].acquire());
    }
    guards
        .into_iter()
        .map(|guard| guard.expect("every lock was taken"))
        .collect()
}

/// The positions of `locks`, sorted by lock id: the one order every caller
/// takes them in.
fn global_order<T>(locks: &[&Lock<T>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..locks.len()).collect();
    order.sort_unstable_by_key(|&i| locks[i].id());
    for pair in order.windows(2) {
        assert!(
            locks[pair[0]].id() != locks[pair[1]].id(),
            "acquire_all: the same lock is named twice, and would deadlock on itself"
        );
    }
    order
}
