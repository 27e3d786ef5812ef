//! `Value<T>` and `Array<T>`: Python's `multiprocessing.Value` and `Array`, plain data in shared memory behind a robust lock of its own.
//!
//! Python's `Value('i', 0)` is a C `int` in shared memory with a lock
//! beside it; `Array('d', 10)` is ten C doubles. Here the C type is any
//! [`Pod`] type (`u32`, `f64`, `[u8; 16]`, a `#[repr(C)]` struct deriving
//! `bytemuck::Pod`): plain bytes with no pointers, so they mean the same
//! in every process that maps them. Each `Value` or `Array` is one shared
//! object: a robust mutex and, after it, the bytes of the data, which
//! `bytemuck` views as `T` or `[T]` while the lock is held.
//!
//! | Python | conc |
//! |---|---|
//! | `v.value`, `v.value = x` | [`v.get()`](Value::get), [`v.set(x)`](Value::set) (each under the lock) |
//! | `with v.get_lock(): v.value += 1` | `*v.acquire()? += 1` (the guard derefs to `T`) |
//! | `v.get_lock()` | [`v.get_lock()`](Value::get_lock), the same lock as a [`Lock`] |
//! | `a[i]`, `a[i] = x`, `a[:]`, `len(a)` | [`get(i)`](Array::get), [`set(i, x)`](Array::set), [`to_vec()`](Array::to_vec), [`len()`](Array::len) |
//!
//! **The lock is not re-entrant**, where Python's is an `RLock`: a guard's
//! `&mut T` must be the only way to the data, and a second guard on the
//! same thread would alias it. So Python's `with v.get_lock(): v.value
//! += 1`, written literally, is an error here (a `get` while this thread
//! holds the lock panics, saying so, instead of hanging); the guard
//! returned by [`Value::acquire`] is what replaces it.
//!
//! **A dead holder.** [`acquire`](Value::acquire) reports it as
//! [`AcquireError::OwnerDied`], with the guard, to repair the data.
//! `get`, `set` and the array's element calls go on regardless, and leave
//! the news for the next `acquire`.
//!
//! **No `RawValue`.** Python's lock-free `RawValue` is plain memory
//! written by several processes at once; in Rust that is a data race on
//! non-atomic memory, undefined behaviour, so it is not offered. Without
//! a lock, the right tool would be atomics in shared memory.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Error;
use super::sync::{AcquireError, Lock, LockCore, LockState, Wait, check_data, check_tail};
use crate::sys::ShmGuard;

/// One plain value in shared memory, with its lock (Python's
/// `multiprocessing.Value`).
///
/// # Examples
///
/// ```
/// use conc::ipc::Value;
///
/// let counter = Value::new(0u64).unwrap();
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let counter = counter.clone(); // a child process would get it as an argument
///         std::thread::spawn(move || *counter.acquire().unwrap() += 1)
///     })
///     .collect();
/// workers.into_iter().for_each(|w| w.join().unwrap());
/// assert_eq!(counter.get(), 4);
/// ```
pub struct Value<T> {
    core: LockCore,
    _data: PhantomData<T>,
}

/// Proof that this thread holds a [`Value`]'s lock: derefs to the value.
///
/// # Examples
///
/// ```
/// let v = conc::ipc::Value::new(1.5f64).unwrap();
/// let mut guard = v.acquire().unwrap();
/// *guard *= 2.0;
/// assert_eq!(*guard, 3.0);
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<'a, T> {
    held: ShmGuard<'a, LockState>,
    _data: PhantomData<&'a mut T>,
}

/// The result of taking a [`Value`]'s lock.
type ValueTaken<'a, T> = Result<ValueGuard<'a, T>, AcquireError<ValueGuard<'a, T>>>;

impl<T: Pod> Value<T> {
    /// A shared value holding `value`.
    ///
    /// # Errors
    ///
    /// If the system gives no shared memory, or `T` is aligned to more
    /// than 64 bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = conc::ipc::Value::new([0u8; 4]).unwrap();
    /// assert_eq!(v.get(), [0; 4]);
    /// ```
    pub fn new(value: T) -> Result<Self, Error> {
        check_data::<T>(false)?;
        let core = LockCore::new_lock(size_of::<T>(), false)?;
        core.take_quietly("Value::new")
            .tail()
            .copy_from_slice(bytemuck::bytes_of(&value));
        Ok(Self {
            core,
            _data: PhantomData,
        })
    }

    /// The value, read under the lock (Python's `v.value`).
    ///
    /// # Panics
    ///
    /// If this thread holds the value's lock (a guard, or `get_lock`'s):
    /// read through the guard instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = conc::ipc::Value::new(7i32).unwrap();
    /// assert_eq!(v.get(), 7);
    /// ```
    pub fn get(&self) -> T {
        *bytemuck::from_bytes(self.core.take_quietly("Value::get").tail_ref())
    }

    /// Replaces the value, under the lock (Python's `v.value = x`).
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = conc::ipc::Value::new(7i32).unwrap();
    /// v.set(8);
    /// assert_eq!(v.get(), 8);
    /// ```
    pub fn set(&self, value: T) {
        self.core
            .take_quietly("Value::set")
            .tail()
            .copy_from_slice(bytemuck::bytes_of(&value));
    }

    fn take(&self, wait: Wait) -> ValueTaken<'_, T> {
        let wrap = |held| ValueGuard {
            held,
            _data: PhantomData,
        };
        self.core.take(wait).map(wrap).map_err(|e| e.map(wrap))
    }

    /// Takes the lock, waiting while another thread or process holds it;
    /// the guard derefs to the value. Errors as [`Lock::acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// use conc::ipc::{AcquireError, Value};
    ///
    /// let tickets = Value::new(10u32).unwrap();
    /// let mut left = tickets.acquire().unwrap();
    /// *left -= 1; // a read and a write, as one step
    /// assert!(matches!(tickets.acquire(), Err(AcquireError::Deadlock)));
    /// drop(left);
    /// assert_eq!(tickets.get(), 9);
    /// ```
    pub fn acquire(&self) -> ValueTaken<'_, T> {
        self.take(Wait::Forever)
    }

    /// As [`acquire`](Self::acquire), waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let v = conc::ipc::Value::new(0u8).unwrap();
    /// *v.acquire_timeout(Duration::from_millis(5)).unwrap() = 1;
    /// assert_eq!(v.get(), 1);
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> ValueTaken<'_, T> {
        self.take(Wait::Until(crate::shim::deadline(timeout)))
    }

    /// Takes the lock if it is free now.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = conc::ipc::Value::new(0u8).unwrap();
    /// let held = v.try_acquire().unwrap();
    /// assert!(v.try_acquire().is_err());
    /// drop(held);
    /// ```
    pub fn try_acquire(&self) -> ValueTaken<'_, T> {
        self.take(Wait::No)
    }

    /// The lock guarding the value, as a [`Lock`] (Python's
    /// `v.get_lock()`): to hand to code that wants a lock. While this
    /// thread holds it, `get` and `set` panic: use [`acquire`](Self::acquire)
    /// to reach the value under the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = conc::ipc::Value::new(0u8).unwrap();
    /// let lock = v.get_lock();
    /// let held = lock.acquire().unwrap();
    /// assert!(v.try_acquire().is_err(), "the same lock");
    /// drop(held);
    /// ```
    pub fn get_lock(&self) -> Lock {
        Lock::from_core(self.core.clone())
    }
}

impl<T: Pod> ValueGuard<'_, T> {
    /// Releases the lock; the same as dropping the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = conc::ipc::Value::new(0u8).unwrap();
    /// v.acquire().unwrap().release();
    /// assert_eq!(v.get(), 0);
    /// ```
    pub fn release(self) {
        drop(self);
    }
}

impl<T: Pod> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        bytemuck::from_bytes(self.held.tail_ref())
    }
}

impl<T: Pod> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        bytemuck::from_bytes_mut(self.held.tail())
    }
}

/// A fixed number of plain values in shared memory, with one lock
/// (Python's `multiprocessing.Array`).
///
/// # Examples
///
/// ```
/// use conc::ipc::Array;
///
/// let hits = Array::<u32>::zeroed(3).unwrap();
/// let workers: Vec<_> = (0..3)
///     .map(|i| {
///         let hits = hits.clone();
///         std::thread::spawn(move || hits.acquire().unwrap()[i] += 1)
///     })
///     .collect();
/// workers.into_iter().for_each(|w| w.join().unwrap());
/// assert_eq!(hits.to_vec(), [1, 1, 1]);
/// ```
pub struct Array<T> {
    core: LockCore,
    len: usize,
    _data: PhantomData<T>,
}

/// Proof that this thread holds an [`Array`]'s lock: derefs to `[T]`.
///
/// # Examples
///
/// ```
/// let a = conc::ipc::Array::new(&[3u8, 1, 2]).unwrap();
/// let mut guard = a.acquire().unwrap();
/// guard.sort();
/// assert_eq!(*guard, [1, 2, 3]);
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T> {
    held: ShmGuard<'a, LockState>,
    _data: PhantomData<&'a mut [T]>,
}

/// The result of taking an [`Array`]'s lock.
type ArrayTaken<'a, T> = Result<ArrayGuard<'a, T>, AcquireError<ArrayGuard<'a, T>>>;

impl<T: Pod> Array<T> {
    /// A shared array holding a copy of `values` (Python's
    /// `Array('i', [1, 2, 3])`).
    ///
    /// # Errors
    ///
    /// If the system gives no shared memory, or `T` is zero-sized or
    /// aligned to more than 64 bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = conc::ipc::Array::new(&[1i64, 2, 3]).unwrap();
    /// assert_eq!(a.to_vec(), [1, 2, 3]);
    /// ```
    pub fn new(values: &[T]) -> Result<Self, Error> {
        let array = Self::zeroed(values.len())?;
        array
            .core
            .take_quietly("Array::new")
            .tail()
            .copy_from_slice(bytemuck::cast_slice(values));
        Ok(array)
    }

    /// A shared array of `len` zeroes (Python's `Array('i', 10)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = conc::ipc::Array::<f32>::zeroed(2).unwrap();
    /// assert_eq!(a.to_vec(), [0.0, 0.0]);
    /// ```
    pub fn zeroed(len: usize) -> Result<Self, Error> {
        check_data::<T>(true)?;
        let bytes = len.checked_mul(size_of::<T>()).ok_or_else(|| {
            Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "shared array too large",
            ))
        })?;
        Ok(Self {
            core: LockCore::new_lock(bytes, false)?,
            len,
            _data: PhantomData,
        })
    }

    /// How many elements it has (fixed; no lock needed).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conc::ipc::Array::<u8>::zeroed(5).unwrap().len(), 5);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(conc::ipc::Array::<u8>::zeroed(0).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`, read under the lock; `None` past the end.
    ///
    /// # Panics
    ///
    /// If this thread holds the array's lock (as [`Value::get`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = conc::ipc::Array::new(&[10u16, 20]).unwrap();
    /// assert_eq!(a.get(1), Some(20));
    /// assert_eq!(a.get(2), None);
    /// ```
    pub fn get(&self, i: usize) -> Option<T> {
        let held = self.core.take_quietly("Array::get");
        bytemuck::cast_slice::<u8, T>(held.tail_ref())
            .get(i)
            .copied()
    }

    /// Sets element `i` under the lock; past the end, hands `value` back.
    ///
    /// # Panics
    ///
    /// If this thread holds the array's lock (as [`Value::get`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = conc::ipc::Array::<u16>::zeroed(2).unwrap();
    /// assert_eq!(a.set(0, 5), Ok(()));
    /// assert_eq!(a.set(2, 6), Err(6), "past the end");
    /// assert_eq!(a.to_vec(), [5, 0]);
    /// ```
    pub fn set(&self, i: usize, value: T) -> Result<(), T> {
        let mut held = self.core.take_quietly("Array::set");
        match bytemuck::cast_slice_mut::<u8, T>(held.tail()).get_mut(i) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(value),
        }
    }

    /// A copy of every element, read under the lock at once (Python's `a[:]`).
    ///
    /// # Panics
    ///
    /// If this thread holds the array's lock (as [`Value::get`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = conc::ipc::Array::new(&[1u8, 2]).unwrap();
    /// assert_eq!(a.to_vec(), vec![1, 2]);
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        let held = self.core.take_quietly("Array::to_vec");
        bytemuck::cast_slice(held.tail_ref()).to_vec()
    }

    fn take(&self, wait: Wait) -> ArrayTaken<'_, T> {
        let wrap = |held| ArrayGuard {
            held,
            _data: PhantomData,
        };
        self.core.take(wait).map(wrap).map_err(|e| e.map(wrap))
    }

    /// Takes the lock, waiting while another thread or process holds it;
    /// the guard derefs to the elements. Errors as [`Lock::acquire`].
    ///
    /// # Examples
    ///
    /// ```
    /// let a = conc::ipc::Array::new(&[1u32, 2]).unwrap();
    /// a.acquire().unwrap().iter_mut().for_each(|x| *x *= 10);
    /// assert_eq!(a.to_vec(), [10, 20]);
    /// ```
    pub fn acquire(&self) -> ArrayTaken<'_, T> {
        self.take(Wait::Forever)
    }

    /// As [`acquire`](Self::acquire), waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let a = conc::ipc::Array::new(&[0u8]).unwrap();
    /// a.acquire_timeout(Duration::from_millis(5)).unwrap()[0] = 1;
    /// assert_eq!(a.get(0), Some(1));
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> ArrayTaken<'_, T> {
        self.take(Wait::Until(crate::shim::deadline(timeout)))
    }

    /// Takes the lock if it is free now.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = conc::ipc::Array::new(&[0u8]).unwrap();
    /// let held = a.try_acquire().unwrap();
    /// assert!(a.try_acquire().is_err());
    /// drop(held);
    /// ```
    pub fn try_acquire(&self) -> ArrayTaken<'_, T> {
        self.take(Wait::No)
    }

    /// The lock guarding the array, as a [`Lock`] (Python's
    /// `a.get_lock()`); see [`Value::get_lock`].
    ///
    /// # Examples
    ///
    /// ```
    /// let a = conc::ipc::Array::new(&[0u8]).unwrap();
    /// let lock = a.get_lock();
    /// let held = lock.acquire().unwrap();
    /// assert!(a.try_acquire().is_err(), "the same lock");
    /// drop(held);
    /// ```
    pub fn get_lock(&self) -> Lock {
        Lock::from_core(self.core.clone())
    }
}

impl<T: Pod> ArrayGuard<'_, T> {
    /// Releases the lock; the same as dropping the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = conc::ipc::Array::new(&[0u8]).unwrap();
    /// a.acquire().unwrap().release();
    /// assert_eq!(a.get(0), Some(0));
    /// ```
    pub fn release(self) {
        drop(self);
    }
}

impl<T: Pod> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        bytemuck::cast_slice(self.held.tail_ref())
    }
}

impl<T: Pod> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        bytemuck::cast_slice_mut(self.held.tail())
    }
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            _data: PhantomData,
        }
    }
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            len: self.len,
            _data: PhantomData,
        }
    }
}

/// A value travels as its shared memory's descriptor (see `wire.rs`).
impl<T: Pod> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let core = LockCore::deserialize(deserializer)?;
        Ok(Self {
            core: check_tail(core, size_of::<T>())?,
            _data: PhantomData,
        })
    }
}

/// An array travels as its shared memory's descriptor; its length is the
/// mapping's.
impl<T: Pod> Serialize for Array<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        check_data::<T>(true).map_err(serde::de::Error::custom)?;
        let core = LockCore::deserialize(deserializer)?;
        let bytes = core.shm().tail_len();
        let len = bytes / size_of::<T>();
        Ok(Self {
            core: check_tail(core, len * size_of::<T>())?,
            len,
            _data: PhantomData,
        })
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Value");
        match self.core.try_quietly() {
            Some(held) => d.field("value", bytemuck::from_bytes::<T>(held.tail_ref())),
            None => d.field("value", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Array");
        match self.core.try_quietly() {
            Some(held) => d.field("values", &bytemuck::cast_slice::<u8, T>(held.tail_ref())),
            None => d.field("values", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
