//! A FIFO queue between greenlets, bounded or not, with `conc::queue::Queue`'s names and errors (gevent's `queue.Queue`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use conc::queue::{GetError, PutError, ShutDown};

use crate::waitlist::WaitList;

/// A queue of at most `maxsize` items (0: unbounded); a full queue parks
/// `put`, an empty one parks `get`. `!Send`: share it between greenlets
/// with `Rc`.
///
/// # Examples
///
/// The course's producer and consumer, as greenlets:
///
/// ```
/// use std::rc::Rc;
///
/// green::run(|| {
///     let q = Rc::new(green::Queue::new(2));
///     let producer = {
///         let q = Rc::clone(&q);
///         green::spawn(move || {
///             for dish in 0..5 {
///                 q.put(dish).unwrap(); // parks while two wait uneaten
///             }
///         })
///     };
///     let eaten: Vec<i32> = (0..5).map(|_| q.get().unwrap()).collect();
///     producer.join();
///     assert_eq!(eaten, [0, 1, 2, 3, 4]);
/// });
/// ```
#[derive(Debug)]
pub struct Queue<T> {
    items: RefCell<VecDeque<T>>,
    maxsize: usize,
    shut: Cell<bool>,
    getters: WaitList,
    putters: WaitList,
}

impl<T> Queue<T> {
    /// A queue of at most `maxsize` items; 0 for no bound.
    pub fn new(maxsize: usize) -> Self {
        Self {
            items: RefCell::new(VecDeque::new()),
            maxsize,
            shut: Cell::new(false),
            getters: WaitList::default(),
            putters: WaitList::default(),
        }
    }

    /// The bound given to [`new`](Self::new).
    pub fn maxsize(&self) -> usize {
        self.maxsize
    }

    /// Items in the queue now.
    pub fn qsize(&self) -> usize {
        self.items.borrow().len()
    }

    /// Whether it holds no item.
    pub fn empty(&self) -> bool {
        self.items.borrow().is_empty()
    }

    /// Whether a `put` would wait.
    pub fn full(&self) -> bool {
        self.maxsize > 0 && self.qsize() >= self.maxsize
    }

    /// Puts `item`, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`ShutDown`], with the item, once the queue is shut down.
    pub fn put(&self, item: T) -> Result<(), ShutDown<T>> {
        self.put_until(item, None)
            .map_err(|e| ShutDown(e.into_inner()))
    }

    /// [`put`](Self::put), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`PutError::Timeout`] with the item if the queue stayed full, or
    /// [`PutError::ShutDown`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// green::run(|| {
    ///     let q = green::Queue::new(1);
    ///     q.put(1).unwrap();
    ///     let full = q.put_timeout(2, Duration::from_millis(1)).unwrap_err();
    ///     assert_eq!(full.into_inner(), 2); // handed back, not lost
    /// });
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_until(item, Some(Instant::now() + timeout))
    }

    /// Puts `item` if there is room now.
    ///
    /// # Errors
    ///
    /// [`PutError::Full`] with the item, or [`PutError::ShutDown`].
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        if self.shut.get() {
            return Err(PutError::ShutDown(item));
        }
        if self.full() {
            return Err(PutError::Full(item));
        }
        self.items.borrow_mut().push_back(item);
        self.getters.notify_one();
        Ok(())
    }

    fn put_until(&self, mut item: T, deadline: Option<Instant>) -> Result<(), PutError<T>> {
        loop {
            match self.put_nowait(item) {
                Err(PutError::Full(back)) => item = back,
                other => return other,
            }
            if !self.putters.wait(deadline) {
                return self.put_nowait(item).map_err(|e| match e {
                    PutError::Full(item) => PutError::Timeout(item),
                    other => other,
                });
            }
        }
    }

    /// Takes the oldest item, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`ShutDown`] once the queue is shut down and empty.
    pub fn get(&self) -> Result<T, ShutDown> {
        self.get_until(None).map_err(|_| ShutDown(()))
    }

    /// [`get`](Self::get), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`GetError::Timeout`] if it stayed empty, or [`GetError::ShutDown`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_until(Some(Instant::now() + timeout))
    }

    /// Takes the oldest item if there is one.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`], or [`GetError::ShutDown`] once shut down and
    /// empty.
    pub fn get_nowait(&self) -> Result<T, GetError> {
        let item = self.items.borrow_mut().pop_front();
        match item {
            Some(item) => {
                self.putters.notify_one();
                Ok(item)
            }
            None if self.shut.get() => Err(GetError::ShutDown),
            None => Err(GetError::Empty),
        }
    }

    fn get_until(&self, deadline: Option<Instant>) -> Result<T, GetError> {
        loop {
            match self.get_nowait() {
                Err(GetError::Empty) => {}
                other => return other,
            }
            if !self.getters.wait(deadline) {
                return self.get_nowait().map_err(|e| match e {
                    GetError::Empty => GetError::Timeout,
                    other => other,
                });
            }
        }
    }

    /// Shuts the queue down (Python 3.13's `shutdown`): `put` fails from
    /// now on and `get` fails once the queue is empty; with `immediate`,
    /// the items still queued are taken out and returned. Every waiter
    /// wakes.
    pub fn shutdown(&self, immediate: bool) -> Vec<T> {
        self.shut.set(true);
        let left = if immediate {
            self.items.borrow_mut().drain(..).collect()
        } else {
            Vec::new()
        };
        self.getters.notify_all();
        self.putters.notify_all();
        left
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.shut.get()
    }
}
