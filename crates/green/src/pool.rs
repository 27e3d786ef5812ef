//! A pool of at most `size` running greenlets: `spawn` waits for room (gevent's `pool.Pool`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::greenlet::{Greenlet, spawn};
use crate::hub::{self, Task};
use crate::waitlist::WaitList;

/// At most `size` greenlets of this pool run at once; [`spawn`](Self::spawn)
/// parks the caller while the pool is full. The course's way to bound
/// concurrency: a server that takes at most N clients at a time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// green::run(|| {
///     let pool = green::Pool::new(2);
///     for _ in 0..5 {
///         pool.spawn(|| green::sleep(Duration::from_millis(1)));
///         assert!(pool.running() <= 2);
///     }
///     pool.join();
///     assert_eq!(pool.free_count(), 2);
/// });
/// ```
#[derive(Debug, Clone)]
pub struct Pool {
    inner: Rc<Inner>,
}

#[derive(Debug)]
struct Inner {
    size: usize,
    running: Cell<usize>,
    tasks: RefCell<Vec<Task>>,
    /// Waiting for room.
    room: WaitList,
    /// Waiting for the pool to empty.
    empty: WaitList,
}

impl Pool {
    /// A pool of at most `size` running greenlets (at least 1).
    pub fn new(size: usize) -> Self {
        Self {
            inner: Rc::new(Inner {
                size: size.max(1),
                running: Cell::new(0),
                tasks: RefCell::new(Vec::new()),
                room: WaitList::default(),
                empty: WaitList::default(),
            }),
        }
    }

    /// The bound.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// Greenlets of the pool running now.
    pub fn running(&self) -> usize {
        self.inner.running.get()
    }

    /// How many more could start now.
    pub fn free_count(&self) -> usize {
        self.inner.size - self.inner.running.get()
    }

    /// Waits until a greenlet could start, at most `timeout` (`None`: for
    /// ever); returns [`free_count`](Self::free_count).
    pub fn wait_available(&self, timeout: Option<Duration>) -> usize {
        let deadline = timeout.map(|t| Instant::now() + t);
        while self.free_count() == 0 {
            if !self.inner.room.wait(deadline) {
                break;
            }
        }
        self.free_count()
    }

    /// Waits for room, then starts `f` in a greenlet of the pool.
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
        self.wait_available(None);
        let inner = Rc::clone(&self.inner);
        inner.running.set(inner.running.get() + 1);
        // However the greenlet ends (a panic, a kill, even before it
        // started), the closure drops and the greenlet leaves the pool.
        let leave = Leave(Rc::clone(&inner));
        let greenlet = spawn(move || {
            let _leave = leave;
            f()
        });
        inner.tasks.borrow_mut().push(greenlet.task());
        greenlet
    }

    /// Runs `f` over `items`, at most `size` at a time; the results in the
    /// items' order (gevent's `Pool.map`).
    ///
    /// # Panics
    ///
    /// If a call of `f` panicked, with its message.
    ///
    /// # Examples
    ///
    /// ```
    /// green::run(|| {
    ///     let squares = green::Pool::new(3).map(|x: u32| x * x, 1..=4);
    ///     assert_eq!(squares, [1, 4, 9, 16]);
    /// });
    /// ```
    pub fn map<A: 'static, R: 'static>(
        &self,
        f: impl Fn(A) -> R + 'static,
        items: impl IntoIterator<Item = A>,
    ) -> Vec<R> {
        let f = Rc::new(f);
        let greenlets: Vec<_> = items
            .into_iter()
            .map(|item| {
                let f = Rc::clone(&f);
                self.spawn(move || f(item))
            })
            .collect();
        greenlets
            .into_iter()
            .map(|g| {
                g.into_result()
                    .unwrap_or_else(|e| panic!("green: Pool.map: {e}"))
            })
            .collect()
    }

    /// Waits until every greenlet of the pool has ended.
    pub fn join(&self) {
        while self.running() > 0 {
            self.inner.empty.wait(None);
        }
    }

    /// [`join`](Self::join), waiting at most `timeout`; says whether the
    /// pool is empty.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.running() > 0 {
            if !self.inner.empty.wait(Some(deadline)) {
                break;
            }
        }
        self.running() == 0
    }

    /// Kills every greenlet of the pool and waits until they have ended.
    pub fn kill(&self) {
        let tasks = self.inner.tasks.borrow().clone();
        hub::with(|core| {
            for task in tasks {
                core.kill(task);
            }
        });
        self.join();
    }
}

/// A pool greenlet's exit: frees its place and wakes who waits for it.
struct Leave(Rc<Inner>);

impl Drop for Leave {
    fn drop(&mut self) {
        let inner = &self.0;
        inner.running.set(inner.running.get() - 1);
        hub::try_with(|core| {
            let current = core.current();
            inner.tasks.borrow_mut().retain(|t| *t != current);
        });
        inner.room.notify_one();
        if inner.running.get() == 0 {
            inner.empty.notify_all();
        }
    }
}
