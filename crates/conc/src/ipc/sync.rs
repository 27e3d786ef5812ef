//! Cross-process Lock, RLock, Semaphore, Event, Condition and Barrier, and the shared file lock.
