//! Shared-memory Value and Array.
