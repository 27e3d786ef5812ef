//! Shared-memory Queue, JoinableQueue and SimpleQueue between processes.
