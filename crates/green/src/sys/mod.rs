//! Every `unsafe` block of `green`: the stack mappings, the switch between stacks, and the overflow handler.
//!
//! The rest of the crate is safe code over three small contracts:
//!
//! - [`stack`]: a [`stack::Slot`] is `size` bytes of stack over a guard
//!   page, carved from a region mapped once for many slots. corosensei's
//!   `Stack` trait, which is `unsafe` to implement, is implemented here.
//! - [`fiber`]: a [`fiber::Fiber`] runs a closure on a slot; the closure may
//!   call [`fiber::suspend`] to go back to whoever resumed it, and gets the
//!   value the next `resume` passes.
//! - [`overflow`]: a `SIGSEGV` handler that tells a greenlet's stack
//!   overflow (a touch of its guard page) from any other fault, names the
//!   greenlet, and aborts.

#![allow(unsafe_code)]

pub(crate) mod fiber;
pub(crate) mod overflow;
pub(crate) mod stack;
