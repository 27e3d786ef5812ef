//! The three containers behind the queues: a deque (FIFO), a stack (LIFO) and a stable min-heap (priority).
//!
//! CPython's `queue.py` does the same: `Queue` keeps a `deque`, and its
//! subclasses override `_put`, `_get` and `_qsize` with a list or a
//! `heapq`. Here that seam is the [`Store`] trait, and the locking,
//! waiting and counting around it live once, in `engine.rs`.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// What a queue keeps its items in. Every method is called with the
/// queue's lock held, so none of them needs to be thread-safe.
pub(crate) trait Store {
    /// The type of the items.
    type Item;

    /// A store pre-sized for `maxsize` items (0: unbounded, start small).
    fn with_capacity(maxsize: usize) -> Self;

    /// Adds an item.
    fn push(&mut self, item: Self::Item);

    /// Removes the item the next `get` should return.
    fn pop(&mut self) -> Option<Self::Item>;

    /// How many items are kept.
    fn len(&self) -> usize;
}

/// A cap on the up-front allocation, so that `Queue::new(1 << 40)` does
/// not try to reserve a terabyte: past it the store grows as needed. It is
/// also the largest bound a `Queue` runs on the ring for (`engine.rs`),
/// since the ring allocates every slot up front.
pub(crate) const MAX_PREALLOC: usize = 1024;

/// First in, first out: `Queue`'s `deque`.
pub(crate) struct Fifo<T>(VecDeque<T>);

impl<T> Store for Fifo<T> {
    type Item = T;

    fn with_capacity(maxsize: usize) -> Self {
        Self(VecDeque::with_capacity(maxsize.min(MAX_PREALLOC)))
    }

    fn push(&mut self, item: T) {
        self.0.push_back(item);
    }

    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Last in, first out: `LifoQueue`'s list.
pub(crate) struct Lifo<T>(Vec<T>);

impl<T> Store for Lifo<T> {
    type Item = T;

    fn with_capacity(maxsize: usize) -> Self {
        Self(Vec::with_capacity(maxsize.min(MAX_PREALLOC)))
    }

    fn push(&mut self, item: T) {
        self.0.push(item);
    }

    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Smallest first, and among equal items the one put first: `PriorityQueue`'s
/// heap. Python's `heapq` is not stable (equal priorities come out in no
/// promised order, which is why the docs suggest `(priority, count, item)`
/// tuples); the sequence number here makes that promise for every `T: Ord`.
pub(crate) struct Prio<T> {
    heap: BinaryHeap<Entry<T>>,
    // A u64 cannot wrap: at a billion puts a second it lasts 584 years.
    next_seq: u64,
}

/// One heap entry: the item and when it was put.
struct Entry<T> {
    item: T,
    seq: u64,
}

// `BinaryHeap` pops the greatest entry, so "greatest" here means smallest
// item, then earliest put.
impl<T: Ord> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .item
            .cmp(&self.item)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl<T: Ord> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: Ord> Eq for Entry<T> {}

impl<T: Ord> Store for Prio<T> {
    type Item = T;

    fn with_capacity(maxsize: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(maxsize.min(MAX_PREALLOC)),
            next_seq: 0,
        }
    }

    fn push(&mut self, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { item, seq });
    }

    fn pop(&mut self) -> Option<T> {
        self.heap.pop().map(|entry| entry.item)
    }

    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<S: Store>(mut store: S) -> Vec<S::Item> {
        std::iter::from_fn(|| store.pop()).collect()
    }

    #[test]
    fn orders() {
        let mut fifo = Fifo::with_capacity(0);
        let mut lifo = Lifo::with_capacity(0);
        let mut prio = Prio::with_capacity(0);
        for i in [3, 1, 2] {
            fifo.push(i);
            lifo.push(i);
            prio.push(i);
        }
        assert_eq!(drain(fifo), [3, 1, 2]);
        assert_eq!(drain(lifo), [2, 1, 3]);
        assert_eq!(drain(prio), [1, 2, 3]);
    }

    /// Equal keys come out in put order: compare only the key.
    #[derive(Debug, PartialEq, Eq)]
    struct Job(u8, &'static str);
    impl Ord for Job {
        fn cmp(&self, other: &Self) -> Ordering {
            self.0.cmp(&other.0)
        }
    }
    impl PartialOrd for Job {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }

    #[test]
    fn priority_is_stable() {
        let mut prio = Prio::with_capacity(0);
        for (key, name) in [(2, "a"), (1, "b"), (2, "c"), (1, "d"), (2, "e"), (1, "f")] {
            prio.push(Job(key, name));
        }
        let names: Vec<_> = drain(prio).into_iter().map(|j| j.1).collect();
        assert_eq!(names, ["b", "d", "f", "a", "c", "e"]);
    }
}
