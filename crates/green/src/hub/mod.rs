//! The hub: one per thread, it runs greenlets one at a time and switches only when the running one blocks.
//!
//! Its loop, which runs on the thread's own stack (each greenlet has its
//! own), does three things in turn:
//!
//! 1. **Runs the ready greenlets**, first come first served: each runs
//!    until it blocks, or returns. A greenlet that becomes ready meanwhile
//!    (woken, or `sleep(0)`) waits for the next round, so none can starve
//!    the rest by yielding in a loop.
//! 2. **Polls for I/O**: one `epoll_wait` (through mio) for every socket a
//!    greenlet waits on, with a timeout of "until the next timer" when
//!    nobody is ready. While some greenlet is always ready, the poll comes
//!    every [`EVENT_INTERVAL`] rounds with a zero timeout, as in tokio (and
//!    Go before it): often enough that I/O is not starved, rarely enough
//!    that switching does not pay a syscall each time.
//! 3. **Fires the timers** that are due: sleeps, `spawn_later`, timeouts.
//!
//! A greenlet blocks through one door: it takes a [`Waiter`] (a ticket
//! for this one wait), hands it to whatever will wake it (an [`Event`]'s
//! list, a socket's registration, a timer), and calls [`block`]. A wake
//! counts only if the greenlet is still in the wait its ticket was for, so
//! a timer that outlives its wait, or a second `set`, does nothing.
//!
//! When nothing is ready, no timer is armed, nobody waits on I/O and no
//! thread will hand a result back, no greenlet can ever run again: the
//! main greenlet's wait then panics with "every greenlet is blocked",
//! gevent's `LoopExit`.
//!
//! [`Event`]: crate::Event

pub(crate) mod io;
mod timers;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sys::fiber::{self, Fiber};
use crate::sys::overflow::{self, Running};
use crate::sys::stack::{Region, Slot, page_size};
use timers::Timers;

/// Rounds of ready greenlets between two polls while some greenlet is
/// always ready.
pub(crate) const EVENT_INTERVAL: u32 = 61;

/// Timers the heap holds before it first looks for dead ones.
const MIN_TIMERS_LIMIT: usize = 1024;

/// A greenlet out of the hub to run: its fiber, why it is resumed, and
/// what the overflow handler must know while it runs.
struct Turn {
    task: Task,
    fiber: Box<Fiber>,
    wake: Wake,
    running: Running,
}

/// A greenlet back from running: whether it ended.
struct Ran {
    task: Task,
    fiber: Box<Fiber>,
    done: bool,
}

/// Why a greenlet is resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Its first run.
    Start,
    /// What it waited for happened.
    Woken,
    /// A timer of its wait fired.
    Timer(Cause),
    /// It was killed: its wait ends by unwinding.
    Kill,
    /// Nothing can ever wake anyone (sent to the main greenlet only).
    Stuck,
}

/// Whose deadline a timer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Cause {
    /// The wait's own (a sleep, a `_timeout` call, a socket timeout).
    Own,
    /// The timeout scope with this id ([`crate::with_timeout`]).
    Scope(u64),
}

/// How a [`block`] ended, when it did not unwind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    Woken,
    TimedOut,
    /// The enclosing timeout scope with this id expired.
    Expired(u64),
}

/// A greenlet of one hub: its slot in the table and that slot's generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Task {
    index: u32,
    generation: u32,
}

/// A ticket for one wait of one greenlet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Waiter {
    task: Task,
    token: u64,
}

/// What unwinds a killed greenlet (gevent's `GreenletExit`).
#[derive(Debug)]
pub(crate) struct GreenletExit;

/// What unwinds a greenlet out of a blocking call whose timeout scope
/// expired, up to that scope.
#[derive(Debug)]
pub(crate) struct ScopeExpired(pub(crate) u64);

/// One greenlet's record.
#[derive(Debug)]
struct Entry {
    generation: u32,
    /// `None` while it runs (the loop holds it), or once the slot is free.
    fiber: Option<Box<Fiber>>,
    /// The token of the wait it is in; 0 when it is not waiting.
    waiting: u64,
    /// A kill that found it running or ready, delivered at its next wait.
    kill: bool,
    /// Its open timeout scopes: id and deadline.
    scopes: Vec<(u64, Instant)>,
    name: Box<str>,
    guard: (usize, usize),
}

/// Wakes from other threads: `spawn_blocking`'s pool hands results back
/// through this.
#[derive(Debug)]
pub(crate) struct Remote {
    woken: Mutex<Vec<Waiter>>,
    waker: mio::Waker,
}

impl Remote {
    /// Ends `waiter`'s wait from any thread.
    pub(crate) fn wake(&self, waiter: Waiter) {
        self.woken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(waiter);
        // Fails only if the hub's epoll descriptor is gone, when the hub has
        // ended and nobody waits any more.
        let _ = self.waker.wake();
    }
}

/// A hub's state. It lives in a thread-local while the hub runs, and is
/// borrowed for the length of one bookkeeping step, never across a switch.
#[derive(Debug)]
pub(crate) struct Core {
    entries: Vec<Entry>,
    free: Vec<u32>,
    ready: VecDeque<(Task, Wake)>,
    timers: Timers,
    /// When the timer heap is next checked for dead timers.
    timers_limit: usize,
    pub(crate) io: io::Registry,
    remote: Arc<Remote>,
    /// Results still owed by other threads.
    remote_pending: usize,
    current: Option<Task>,
    main: Option<Task>,
    stacks: Vec<Slot>,
    stack_size: usize,
    next_token: u64,
    next_number: u64,
    /// The waiters one poll woke, kept between polls so that a poll does
    /// not allocate.
    polled: Vec<Waiter>,
    live: usize,
    rounds: u32,
}

thread_local! {
    static CORE: RefCell<Option<Core>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's hub.
///
/// # Panics
///
/// If no hub runs on this thread.
pub(crate) fn with<R>(f: impl FnOnce(&mut Core) -> R) -> R {
    CORE.with(|core| {
        let mut core = core.borrow_mut();
        let core = core
            .as_mut()
            .expect("green: no hub runs on this thread (call this inside green::run)");
        f(core)
    })
}

/// Runs `f` on this thread's hub if one runs and is not mid-step: for
/// destructors, which may run after the hub has gone.
pub(crate) fn try_with(f: impl FnOnce(&mut Core)) {
    let _ = CORE.try_with(|core| {
        if let Ok(mut core) = core.try_borrow_mut()
            && let Some(core) = core.as_mut()
        {
            f(core);
        }
    });
}

/// Whether a hub runs on this thread.
pub(crate) fn running() -> bool {
    CORE.with(|core| core.try_borrow().is_ok_and(|c| c.is_some()))
}

/// The running greenlet's name, for the panic hook; `None` on a hub's own
/// stack, on a thread without a hub, or while the hub is mid-step.
pub(crate) fn current_name() -> Option<String> {
    CORE.try_with(|core| {
        let core = core.try_borrow().ok()?;
        let core = core.as_ref()?;
        let task = core.current?;
        Some(core.entries[task.index as usize].name.to_string())
    })
    .ok()
    .flatten()
}

/// Whether `waiter`'s greenlet lives and is still in that wait: a wake, a
/// timer or a deadline for it counts only then.
fn still_waits(entries: &[Entry], waiter: Waiter) -> bool {
    entries
        .get(waiter.task.index as usize)
        .is_some_and(|e| e.generation == waiter.task.generation && e.waiting == waiter.token)
}

impl Core {
    fn new(stack_size: usize) -> std::io::Result<Self> {
        let io = io::Registry::new()?;
        let waker = mio::Waker::new(io.mio(), io::WAKER)?;
        Ok(Self {
            entries: Vec::new(),
            free: Vec::new(),
            ready: VecDeque::new(),
            timers: Timers::default(),
            timers_limit: MIN_TIMERS_LIMIT,
            io,
            remote: Arc::new(Remote {
                woken: Mutex::new(Vec::new()),
                waker,
            }),
            remote_pending: 0,
            current: None,
            main: None,
            stacks: Vec::new(),
            stack_size,
            next_token: 1,
            next_number: 1,
            polled: Vec::new(),
            live: 0,
            rounds: 0,
        })
    }

    fn entry(&mut self, task: Task) -> Option<&mut Entry> {
        self.entries
            .get_mut(task.index as usize)
            .filter(|e| e.generation == task.generation)
    }

    /// The running greenlet.
    ///
    /// # Panics
    ///
    /// On a hub's own stack.
    pub(crate) fn current(&self) -> Task {
        self.current
            .expect("green: a blocking call outside a greenlet")
    }

    /// A new greenlet, ready at once or (with `at`) when that time comes.
    ///
    /// # Errors
    ///
    /// If no stack can be mapped; `body` comes back with the error, to be
    /// dropped by the caller once the hub is no longer borrowed (its
    /// captures' destructors may use the hub).
    pub(crate) fn spawn<B: FnOnce(Wake) + 'static>(
        &mut self,
        name: Option<Box<str>>,
        at: Option<Instant>,
        body: B,
    ) -> Result<Task, (std::io::Error, B)> {
        let slot = match self.stacks.pop() {
            Some(slot) => slot,
            None => {
                let region = match Region::map(self.stack_size) {
                    Ok(region) => std::rc::Rc::new(region),
                    Err(error) => return Err((error, body)),
                };
                self.stacks.extend(region.slots());
                self.stacks.pop().expect("a region has slots")
            }
        };
        let guard = slot.guard();
        let fiber = Box::new(Fiber::new(slot, body));
        let number = self.next_number;
        self.next_number += 1;
        let name = name.unwrap_or_else(|| format!("Greenlet-{number}").into_boxed_str());
        let index = self.free.pop().unwrap_or_else(|| {
            self.entries.push(Entry {
                generation: 0,
                fiber: None,
                waiting: 0,
                kill: false,
                scopes: Vec::new(),
                name: Box::from(""),
                guard: (0, 0),
            });
            u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 greenlets")
        });
        let entry = &mut self.entries[index as usize];
        entry.fiber = Some(fiber);
        entry.name = name;
        entry.guard = guard;
        entry.kill = false;
        let task = Task {
            index,
            generation: entry.generation,
        };
        self.live += 1;
        match at {
            None => self.ready.push_back((task, Wake::Start)),
            Some(at) => {
                let token = self.token();
                self.entries[index as usize].waiting = token;
                self.arm_timer(at, Waiter { task, token }, Cause::Own);
            }
        }
        Ok(task)
    }

    /// A number never handed out before: a wait's token, or a scope's id.
    fn token(&mut self) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        token
    }

    /// A ticket for the running greenlet's next wait.
    pub(crate) fn waiter(&mut self) -> Waiter {
        let task = self.current();
        let token = self.token();
        self.entries[task.index as usize].waiting = token;
        Waiter { task, token }
    }

    /// Ends `waiter`'s wait, if its greenlet is still in it; says whether
    /// it was.
    pub(crate) fn wake(&mut self, waiter: Waiter) -> bool {
        self.wake_with(waiter, Wake::Woken)
    }

    fn wake_with(&mut self, waiter: Waiter, wake: Wake) -> bool {
        if !still_waits(&self.entries, waiter) {
            return false;
        }
        self.entries[waiter.task.index as usize].waiting = 0;
        self.ready.push_back((waiter.task, wake));
        true
    }

    /// Whether `waiter`'s greenlet is still in that wait.
    pub(crate) fn is_waiting(&self, waiter: Waiter) -> bool {
        still_waits(&self.entries, waiter)
    }

    /// Arms an extra deadline on a wait in progress (a socket timeout set
    /// while a call waits).
    pub(crate) fn add_deadline(&mut self, waiter: Waiter, at: Instant) {
        if self.is_waiting(waiter) {
            self.arm_timer(at, waiter, Cause::Own);
        }
    }

    /// Kills `task`: at once if it waits, else at its next wait.
    pub(crate) fn kill(&mut self, task: Task) {
        let Some(entry) = self.entry(task) else {
            return;
        };
        if entry.waiting != 0 {
            let waiter = Waiter {
                task,
                token: entry.waiting,
            };
            self.wake_with(waiter, Wake::Kill);
        } else {
            entry.kill = true;
        }
    }

    /// The start of a wait: arms its timers, or says it must not wait at all
    /// (a kill is pending).
    fn arm(&mut self, waiter: Waiter, deadline: Option<Instant>) -> bool {
        let entry = &mut self.entries[waiter.task.index as usize];
        if entry.kill {
            entry.kill = false;
            entry.waiting = 0;
            return false;
        }
        if let Some(&(id, at)) = entry.scopes.iter().min_by_key(|(_, at)| *at)
            && deadline.is_none_or(|d| at <= d)
        {
            self.arm_timer(at, waiter, Cause::Scope(id));
            return true;
        }
        if let Some(at) = deadline {
            self.arm_timer(at, waiter, Cause::Own);
        }
        true
    }

    /// Arms a timer, first dropping the dead ones (their waits ended some
    /// other way) if they have come to outnumber the rest: a socket read
    /// with a timeout that returns data leaves its timer behind, and a
    /// busy connection would otherwise pile up one per read until the
    /// timeout's length had passed. Amortized, a constant per arm.
    fn arm_timer(&mut self, at: Instant, waiter: Waiter, cause: Cause) {
        if self.timers.len() >= self.timers_limit {
            let entries = &self.entries;
            self.timers.retain(|&w| still_waits(entries, w));
            self.timers_limit = (2 * self.timers.len()).max(MIN_TIMERS_LIMIT);
        }
        self.timers.arm(at, waiter, cause);
    }

    /// Takes a kill that came while the running greenlet ran: it must not
    /// wait any more.
    fn take_kill(&mut self) -> bool {
        let task = self.current();
        std::mem::take(&mut self.entries[task.index as usize].kill)
    }

    /// Opens a timeout scope on the running greenlet.
    pub(crate) fn push_scope(&mut self, at: Instant) -> u64 {
        let task = self.current();
        let id = self.token();
        self.entries[task.index as usize].scopes.push((id, at));
        id
    }

    /// Closes the timeout scope `id` of the running greenlet.
    pub(crate) fn pop_scope(&mut self, id: u64) {
        let task = self.current();
        self.entries[task.index as usize]
            .scopes
            .retain(|(scope, _)| *scope != id);
    }

    /// A handle for waking this hub's greenlets from other threads; the
    /// caller owes one [`Remote::wake`].
    pub(crate) fn remote(&mut self) -> Arc<Remote> {
        self.remote_pending += 1;
        Arc::clone(&self.remote)
    }

    /// `task`'s name, while it lives.
    pub(crate) fn name(&mut self, task: Task) -> Option<String> {
        self.entry(task).map(|e| e.name.to_string())
    }

    /// Takes `task` out to run it.
    fn enter(&mut self, task: Task, wake: &mut Wake) -> Option<(Box<Fiber>, Running)> {
        let size = self.stack_size;
        let entry = self.entry(task)?;
        let fiber = entry.fiber.take()?;
        if std::mem::take(&mut entry.kill) {
            // Killed while it was ready: its wait ends by unwinding (or,
            // killed before it ever ran, it starts by ending).
            *wake = Wake::Kill;
        }
        let running = Running {
            guard: entry.guard,
            size,
            name: entry.name.as_ptr(),
            name_len: entry.name.len(),
        };
        self.current = Some(task);
        Some((fiber, running))
    }

    /// Puts back the greenlet that just ran, if one did, then takes out
    /// the next ready one that still lives, popping at most `budget`
    /// entries: the ready greenlets of this round, not those it wakes.
    fn next_turn(&mut self, ran: Option<Ran>, budget: &mut usize) -> Option<Turn> {
        if let Some(Ran { task, fiber, done }) = ran {
            self.leave(task, fiber, done);
        }
        while *budget > 0 {
            *budget -= 1;
            let (task, mut wake) = self.ready.pop_front()?;
            if let Some((fiber, running)) = self.enter(task, &mut wake) {
                return Some(Turn {
                    task,
                    fiber,
                    wake,
                    running,
                });
            }
        }
        None
    }

    /// Puts `task` back after it ran, or frees it if it ended.
    fn leave(&mut self, task: Task, fiber: Box<Fiber>, done: bool) {
        self.current = None;
        let index = task.index as usize;
        if done {
            self.stacks.push(fiber.into_slot());
            let entry = &mut self.entries[index];
            entry.generation = entry.generation.wrapping_add(1);
            entry.waiting = 0;
            entry.scopes.clear();
            self.free.push(task.index);
            self.live -= 1;
        } else {
            self.entries[index].fiber = Some(fiber);
        }
    }

    /// Step 2 and 3 of the loop: polls (if it is time) and fires timers.
    fn wait_for_events(&mut self) -> std::io::Result<()> {
        let busy = !self.ready.is_empty();
        if busy {
            self.rounds += 1;
            if self.rounds < EVENT_INTERVAL {
                self.fire_timers();
                return Ok(());
            }
        }
        self.rounds = 0;
        let timeout = if busy {
            Some(Duration::ZERO)
        } else {
            self.timers
                .next()
                .map(|at| at.saturating_duration_since(Instant::now()))
        };
        if timeout.is_none() && !self.io.anyone_waiting() && self.remote_pending == 0 {
            self.stuck();
            return Ok(());
        }
        let mut woken = std::mem::take(&mut self.polled);
        let remote = self.io.poll(timeout, |w| woken.push(w));
        for waiter in woken.drain(..) {
            self.wake(waiter);
        }
        self.polled = woken;
        let remote = remote?;
        if remote {
            let woken =
                std::mem::take(&mut *self.remote.woken.lock().unwrap_or_else(|e| e.into_inner()));
            self.remote_pending -= woken.len();
            for waiter in woken {
                self.wake(waiter);
            }
        }
        self.fire_timers();
        Ok(())
    }

    fn fire_timers(&mut self) {
        if self.timers.is_empty() {
            return;
        }
        let now = Instant::now();
        while let Some((waiter, cause)) = self.timers.pop_due(now) {
            self.wake_with(waiter, Wake::Timer(cause));
        }
    }

    /// Nobody can ever run again: the main greenlet hears of it.
    fn stuck(&mut self) {
        if let Some(main) = self.main
            && let Some(entry) = self.entry(main)
        {
            let waiter = Waiter {
                task: main,
                token: entry.waiting,
            };
            self.wake_with(waiter, Wake::Stuck);
        }
    }
}

/// The running greenlet's wait: suspends it until `waiter` is woken, a
/// deadline passes or it is killed. A kill unwinds from here with
/// [`GreenletExit`], so the greenlet's destructors run.
pub(crate) fn block(waiter: Waiter, deadline: Option<Instant>) -> Blocked {
    if !with(|core| core.arm(waiter, deadline)) {
        std::panic::resume_unwind(Box::new(GreenletExit));
    }
    woken(fiber::suspend())
}

/// What a wait's wake means for the greenlet that was in it (a kill that
/// came while it was ready arrives as [`Wake::Kill`]: see `Core::enter`).
fn woken(wake: Wake) -> Blocked {
    match wake {
        Wake::Woken | Wake::Start => Blocked::Woken,
        Wake::Timer(Cause::Own) => Blocked::TimedOut,
        Wake::Timer(Cause::Scope(id)) => Blocked::Expired(id),
        Wake::Kill => std::panic::resume_unwind(Box::new(GreenletExit)),
        Wake::Stuck => panic!(
            "green: every greenlet is blocked and nothing can wake them (this wait would last for ever)"
        ),
    }
}

/// [`block`] for waits with no error path (sleep, events, locks, joins):
/// an expired timeout scope unwinds to the scope. Says whether it was
/// woken (`false`: its own deadline passed).
pub(crate) fn wait(waiter: Waiter, deadline: Option<Instant>) -> bool {
    match block(waiter, deadline) {
        Blocked::Woken => true,
        Blocked::TimedOut => false,
        Blocked::Expired(id) => std::panic::resume_unwind(Box::new(ScopeExpired(id))),
    }
}

/// Lets every other ready greenlet run once, then goes on (`sleep(0)`).
pub(crate) fn yield_now() {
    // One visit to the hub: a pending kill ends it here; else a ticket,
    // woken at once to the back of the ready queue. No timer: the wait
    // ends within the round (a scope that expired meanwhile is seen by the
    // next wait that blocks).
    let killed = with(|core| {
        if core.take_kill() {
            return true;
        }
        let waiter = core.waiter();
        core.wake(waiter);
        false
    });
    if killed {
        std::panic::resume_unwind(Box::new(GreenletExit));
    }
    if let Blocked::Expired(id) = woken(fiber::suspend()) {
        std::panic::resume_unwind(Box::new(ScopeExpired(id)));
    }
}

/// Runs a greenlet taken out by [`Core::next_turn`] until it blocks or
/// ends; returns what goes back to the hub.
fn resume(turn: Turn) -> Ran {
    let Turn {
        task,
        mut fiber,
        wake,
        running,
    } = turn;
    overflow::set_running(Some(running));
    let done = fiber.resume(wake);
    overflow::set_running(None);
    Ran { task, fiber, done }
}

/// The default stack of a greenlet.
pub const DEFAULT_STACK_SIZE: usize = 128 * 1024;

/// Runs a hub on this thread until `main` (run as its first greenlet)
/// ends; then kills the greenlets still alive, lets them unwind, and
/// returns `main`'s value, or resumes its panic.
pub(crate) fn run<T: 'static>(stack_size: usize, main: impl FnOnce() -> T + 'static) -> T {
    assert!(
        !fiber::inside() && !running(),
        "green: a hub already runs on this thread"
    );
    let page = page_size();
    let stack_size = stack_size.max(4 * page).div_ceil(page) * page;
    let _alt = overflow::prepare_thread().expect("green: cannot set up the overflow handler");
    crate::greenlet::install_panic_hook();
    let core = Core::new(stack_size).expect("green: cannot create the hub's epoll instance");
    CORE.with(|c| *c.borrow_mut() = Some(core));
    let main = crate::greenlet::spawn_named_main(main);
    with(|core| core.main = Some(main.task()));
    run_until(|| main.ready());
    // The end of `run`: every other greenlet is killed and unwinds.
    let others: Vec<Task> = with(|core| {
        (0..core.entries.len())
            .filter_map(|i| {
                let e = &core.entries[i];
                e.fiber.as_ref().map(|_| Task {
                    index: i as u32,
                    generation: e.generation,
                })
            })
            .collect()
    });
    with(|core| {
        core.main = None;
        for task in others {
            core.kill(task);
        }
    });
    run_until(|| with(|core| core.ready.is_empty()));
    // What is still alive waits, in a destructor, for something that can no
    // longer come. Unwinding it again would run its code with no hub, so it
    // is left as it is: its stack and what it holds stay allocated.
    let core = CORE.with(|c| c.borrow_mut().take());
    if let Some(mut core) = core {
        for entry in &mut core.entries {
            if let Some(fiber) = entry.fiber.take() {
                std::mem::forget(fiber);
            }
        }
    }
    main.into_main_result()
}

/// Runs the loop until `done` says so, checked after each round.
fn run_until(mut done: impl FnMut() -> bool) {
    let mut budget = with(|core| core.ready.len());
    loop {
        // One visit to the hub between two greenlets: the one that ran
        // goes back, the next comes out.
        let mut ran = None;
        while let Some(turn) = with(|core| core.next_turn(ran.take(), &mut budget)) {
            ran = Some(resume(turn));
        }
        if done() {
            return;
        }
        // The events, then the next round's budget: who is ready now.
        let step = with(|core| {
            if core.main.is_some() || !core.ready.is_empty() {
                core.wait_for_events()?;
            }
            // (Ending, with nobody ready: no more waiting for I/O or timers.)
            Ok::<_, std::io::Error>(core.ready.len())
        });
        match step {
            Ok(ready) => budget = ready,
            Err(e) => panic!("green: the hub's poll failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{MIN_TIMERS_LIMIT, wait, with};

    /// Waits with a far deadline that end another way (a busy socket with
    /// a read timeout) leave dead timers behind; the heap sweeps them out
    /// instead of growing with every wait.
    #[test]
    fn dead_timers_do_not_pile_up() {
        let most = crate::run(|| {
            let far = Instant::now() + Duration::from_secs(3600);
            let mut most = 0;
            for _ in 0..20 * MIN_TIMERS_LIMIT {
                let waiter = with(|core| {
                    let waiter = core.waiter();
                    core.wake(waiter);
                    waiter
                });
                assert!(wait(waiter, Some(far)), "woken, not timed out");
                most = most.max(with(|core| core.timers.len()));
            }
            most
        });
        assert!(
            most <= 2 * MIN_TIMERS_LIMIT,
            "{most} timers for one live wait"
        );
    }
}
