//! Timeout scopes: every blocking call inside `with_timeout(d, f)` ends once `d` has passed.

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::hub::{self, ScopeExpired};

/// The scope's time ran out before its closure returned (gevent's
/// `Timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the timeout scope expired")]
pub struct Timeout;

/// Runs `f`, making every blocking call inside it end once `duration`
/// has passed (gevent's `with Timeout(d):`).
///
/// Calls that return `io::Result` (the socket calls of [`crate::net`],
/// [`crate::wait_readable`]) then fail with
/// [`io::ErrorKind::TimedOut`](std::io::ErrorKind::TimedOut), and `f`
/// decides what to do; the socket is still usable, as after a read
/// timeout, since no byte was taken. Calls with no error to return
/// (`sleep`, `join`, `Event::wait`, `Lock::acquire`, `Queue::get`, ...)
/// unwind instead, up to this scope, which then returns `Err(Timeout)`:
/// destructors on the way run, as with gevent's exception. Scopes nest;
/// the earliest deadline wins.
///
/// # Errors
///
/// [`Timeout`], if a call without an error path was still blocked when
/// the time ran out.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// green::run(|| {
///     let slow = green::with_timeout(Duration::from_millis(10), || {
///         green::sleep(Duration::from_secs(60));
///     });
///     assert_eq!(slow, Err(green::Timeout));
///     let quick = green::with_timeout(Duration::from_secs(60), || 7);
///     assert_eq!(quick, Ok(7));
/// });
/// ```
pub fn with_timeout<T>(duration: Duration, f: impl FnOnce() -> T) -> Result<T, Timeout> {
    let id = hub::with(|core| core.push_scope(Instant::now() + duration));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    hub::with(|core| core.pop_scope(id));
    match result {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast::<ScopeExpired>() {
            Ok(expired) if expired.0 == id => Err(Timeout),
            Ok(expired) => panic::resume_unwind(expired),
            Err(other) => panic::resume_unwind(other),
        },
    }
}
