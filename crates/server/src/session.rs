//! The sans-I/O echo session: every byte of every model passes through here.
//!
//! A model owns the socket and decides *when* to read and write; the session
//! decides *what*: where the next read lands, what to upper-case, what is still
//! owed to the client, and when the connection is finished. Because it never
//! touches a socket, one set of property tests proves it correct for every
//! split of reads and writes a kernel can produce, and every model inherits
//! that proof.
//!
//! The rules it enforces:
//! - **Exact bytes.** ASCII `a`-`z` become `A`-`Z`; every other byte is left
//!   alone, exactly like Python's `bytes.upper()`. The mapping is byte by byte,
//!   so it is correct across any chunk boundary and leaves UTF-8 intact.
//! - **Bounded memory.** The buffer has a fixed capacity (64 KiB by default).
//!   When it is full, [`EchoSession::recv_buf`] is empty and
//!   [`EchoSession::wants_recv`] is false: the model must stop reading this
//!   client until it drains. A client that never reads cannot grow the server.
//! - **Short writes.** [`EchoSession::sent`] takes however many bytes the
//!   kernel accepted; the rest stays pending.
//! - **Half-close.** After the client's EOF ([`EchoSession::peer_closed`]) the
//!   session still owes what is pending; [`EchoSession::is_done`] turns true
//!   only once that is flushed, and then the model closes.
//! - **The drain.** [`EchoSession::stop_after`] caps what the session still
//!   takes at what the kernel already holds for the client; once that is
//!   answered the session is done, and [`EchoSession::lingers`] says the
//!   client has not closed its side: the model half-closes, then reads and
//!   throws away ([`EchoSession::discard_buf`]) until the client's EOF, so
//!   that bytes the client sends meanwhile never make the kernel reset the
//!   connection while replies are still on their way.

/// One connection's echo state: a fixed-size buffer of upper-cased bytes owed
/// to the client, and whether the client has finished sending.
///
/// # Examples
///
/// A model's whole job, minus the sockets:
///
/// ```
/// use iomodels_server::EchoSession;
///
/// let mut session = EchoSession::new(16);
/// // A read of 5 bytes lands in the session's buffer...
/// let buf = session.recv_buf();
/// buf[..5].copy_from_slice(b"hello");
/// session.received(5);
/// assert_eq!(session.pending(), b"HELLO");
/// // ...the kernel takes only 3 of them (a short write)...
/// session.sent(3);
/// assert_eq!(session.pending(), b"LO");
/// // ...the client closes its side; the session still owes "LO".
/// session.peer_closed();
/// assert!(!session.is_done());
/// session.sent(2);
/// assert!(session.is_done());
/// ```
#[derive(Debug)]
pub struct EchoSession {
    /// Upper-cased bytes not yet written live in `buf[head..tail]`. Empty
    /// until the first read asks for it ([`has_buffer`](Self::has_buffer)).
    buf: Box<[u8]>,
    /// The buffer's size once it is allocated.
    capacity: usize,
    head: usize,
    tail: usize,
    /// The client sent EOF: read nothing more, flush, then close.
    eof: bool,
    /// Bytes the session still takes before it stops reading, once the
    /// drain has set a limit ([`stop_after`](Self::stop_after)).
    quota: Option<usize>,
}

impl EchoSession {
    /// The default buffer size: enough for a full loopback segment burst, small
    /// enough that 10,000 connections cost 640 MiB at the very worst.
    pub const DEFAULT_CAPACITY: usize = 64 * 1024;

    /// The buffer a lingering close reads into when the client never sent
    /// anything before it.
    const DISCARD: usize = 512;

    /// A session whose buffer holds at most `capacity` bytes (at least 1).
    /// The buffer is allocated by the first [`recv_buf`](Self::recv_buf) (or
    /// [`discard_buf`](Self::discard_buf)), so a connection that never sends
    /// never holds one.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let session = EchoSession::new(EchoSession::DEFAULT_CAPACITY);
    /// assert_eq!(session.capacity(), 64 * 1024);
    /// assert!(session.wants_recv());
    /// ```
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: Box::default(),
            capacity: capacity.max(1),
            head: 0,
            tail: 0,
            eof: false,
            quota: None,
        }
    }

    /// How many bytes the buffer holds at most.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// assert_eq!(EchoSession::new(4096).capacity(), 4096);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the session has a buffer yet: none before the first
    /// [`recv_buf`](Self::recv_buf) (or [`discard_buf`](Self::discard_buf),
    /// which takes only a small one when there was none). A blocking model waits for a silent
    /// client's first byte without one (`peek`), so that an idle client
    /// costs no buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(4096);
    /// assert!(!session.has_buffer() && session.wants_recv());
    /// assert_eq!(session.recv_buf().len(), 4096);
    /// assert!(session.has_buffer());
    /// ```
    pub fn has_buffer(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Gives the session its whole buffer, if it has less (none, or the
    /// small one a lingering close took).
    fn allocate(&mut self) {
        if self.buf.len() < self.capacity {
            debug_assert_eq!(
                self.head, self.tail,
                "nothing is owed from a smaller buffer"
            );
            self.buf = vec![0; self.capacity].into_boxed_slice();
        }
    }

    /// Makes the session fresh for a new connection, keeping its buffer, so a
    /// model that serves clients one after another allocates once.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(8);
    /// session.recv_buf()[0] = b'x';
    /// session.received(1);
    /// session.peer_closed();
    /// session.reset();
    /// assert!(session.pending().is_empty() && session.wants_recv());
    /// ```
    pub fn reset(&mut self) {
        self.head = 0;
        self.tail = 0;
        self.eof = false;
        self.quota = None;
    }

    /// Where the next read should land: the free space of the buffer.
    ///
    /// Empty when the buffer is full (backpressure: stop reading until
    /// [`sent`](Self::sent) frees room), after [`peer_closed`](Self::peer_closed),
    /// and once the drain's quota is used up; never longer than the quota.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(4);
    /// session.recv_buf().copy_from_slice(b"abcd");
    /// session.received(4);
    /// assert!(session.recv_buf().is_empty()); // full: stop reading
    /// session.sent(4);
    /// assert_eq!(session.recv_buf().len(), 4); // drained: read again
    /// ```
    pub fn recv_buf(&mut self) -> &mut [u8] {
        if self.eof || self.quota == Some(0) {
            return &mut [];
        }
        self.allocate();
        if self.head == self.tail {
            // Nothing pending: start again at the front, for free.
            self.head = 0;
            self.tail = 0;
        } else if self.tail == self.buf.len() && self.head > 0 {
            // Pending bytes sit at the end with room before them: move them
            // down. This happens only after a short write, and copies at most
            // what the kernel refused to take.
            self.buf.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
        let end = self.quota.map_or(self.buf.len(), |quota| {
            (self.tail + quota).min(self.buf.len())
        });
        &mut self.buf[self.tail..end]
    }

    /// Records that a read put `n` bytes at the start of
    /// [`recv_buf`](Self::recv_buf), and upper-cases them.
    ///
    /// # Panics
    ///
    /// If `n` is larger than the free space of the buffer: that is a bug in
    /// the model, never an I/O condition. (It may exceed the drain's quota:
    /// a read handed to the kernel before the drain began may bring more,
    /// and what was read is answered.)
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(32);
    /// let input = "héllo wörld 123\n".as_bytes();
    /// session.recv_buf()[..input.len()].copy_from_slice(input);
    /// session.received(input.len());
    /// // Only ASCII a-z changes; the UTF-8 bytes of é and ö are untouched.
    /// assert_eq!(session.pending(), "HéLLO WöRLD 123\n".as_bytes());
    /// ```
    pub fn received(&mut self, n: usize) {
        assert!(
            !self.eof && n <= self.buf.len() - self.tail,
            "received({n}) is more than the {} bytes recv_buf offered",
            if self.eof {
                0
            } else {
                self.buf.len() - self.tail
            }
        );
        self.buf[self.tail..self.tail + n].make_ascii_uppercase();
        self.tail += n;
        if let Some(quota) = &mut self.quota {
            *quota = quota.saturating_sub(n);
        }
    }

    /// The upper-cased bytes still owed to the client, oldest first.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(8);
    /// assert!(session.pending().is_empty());
    /// session.recv_buf()[..2].copy_from_slice(b"ok");
    /// session.received(2);
    /// assert_eq!(session.pending(), b"OK");
    /// ```
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.head..self.tail]
    }

    /// Records that a write took the first `n` bytes of
    /// [`pending`](Self::pending); `n` may be less than all of them.
    ///
    /// # Panics
    ///
    /// If `n` is more than is pending (a bug in the model).
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(8);
    /// session.recv_buf()[..3].copy_from_slice(b"abc");
    /// session.received(3);
    /// session.sent(1);
    /// assert_eq!(session.pending(), b"BC");
    /// ```
    pub fn sent(&mut self, n: usize) {
        assert!(
            n <= self.tail - self.head,
            "sent({n}) is more than the {} bytes pending",
            self.tail - self.head
        );
        self.head += n;
    }

    /// Records the client's EOF: nothing more will be read; what is pending is
    /// still owed.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(8);
    /// session.peer_closed();
    /// assert!(!session.wants_recv());
    /// assert!(session.is_done()); // nothing was pending
    /// ```
    pub fn peer_closed(&mut self) {
        self.eof = true;
    }

    /// Whether the model should read from the client now: it has not sent EOF
    /// and there is room for what it sends.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(1);
    /// assert!(session.wants_recv());
    /// session.recv_buf()[0] = b'a';
    /// session.received(1);
    /// assert!(!session.wants_recv()); // full
    /// ```
    pub fn wants_recv(&self) -> bool {
        !self.eof && self.quota != Some(0) && self.tail - self.head < self.capacity
    }

    /// Whether the model should write to the client now: bytes are pending.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(8);
    /// assert!(!session.wants_send());
    /// session.recv_buf()[0] = b'a';
    /// session.received(1);
    /// assert!(session.wants_send());
    /// ```
    pub fn wants_send(&self) -> bool {
        self.head < self.tail
    }

    /// Whether the connection is finished: the client sent EOF (or the drain's
    /// quota is used up) and everything owed to it has been written. The
    /// model shuts down its side, and closes, after a lingering close if
    /// [`lingers`](Self::lingers).
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(8);
    /// session.recv_buf()[0] = b'a';
    /// session.received(1);
    /// session.peer_closed();
    /// assert!(!session.is_done()); // still owes "A"
    /// session.sent(1);
    /// assert!(session.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        (self.eof || self.quota == Some(0)) && self.head == self.tail
    }

    /// The drain: take at most `queued` more bytes (what the kernel holds
    /// for this client when the drain begins, `SIOCINQ`), answer them, and
    /// then be done. A second call can only lower the limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(16);
    /// session.stop_after(3);
    /// assert_eq!(session.recv_buf().len(), 3);
    /// session.recv_buf().copy_from_slice(b"abc");
    /// session.received(3);
    /// assert!(!session.wants_recv());
    /// session.sent(3);
    /// assert!(session.is_done() && session.lingers());
    /// ```
    pub fn stop_after(&mut self, queued: usize) {
        self.quota = Some(self.quota.map_or(queued, |quota| quota.min(queued)));
    }

    /// Whether a finished session's client may still be sending: the drain
    /// ended it, not the client's EOF. The model then half-closes and reads
    /// into [`discard_buf`](Self::discard_buf) until EOF (or the end of the
    /// grace period) before it closes: closing a socket with unread bytes,
    /// or receiving bytes on one shut for reading, makes the kernel send a
    /// reset, which throws away the replies still on their way.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(8);
    /// session.peer_closed();
    /// assert!(session.is_done() && !session.lingers()); // the client closed
    /// ```
    pub fn lingers(&self) -> bool {
        self.is_done() && !self.eof
    }

    /// Where to read what a lingering client still sends, to throw it away:
    /// the whole buffer, which owes nothing once the session is done.
    ///
    /// # Examples
    ///
    /// ```
    /// use iomodels_server::EchoSession;
    ///
    /// let mut session = EchoSession::new(8);
    /// session.stop_after(0);
    /// assert!(session.lingers());
    /// assert_eq!(session.discard_buf().len(), 8);
    /// ```
    pub fn discard_buf(&mut self) -> &mut [u8] {
        if self.buf.is_empty() {
            // A client that never sent a byte before the drain: bytes thrown
            // away need no room to be answered from, and a drain of many
            // idle clients should not allocate a whole buffer for each.
            self.buf = vec![0; self.capacity.min(Self::DISCARD)].into_boxed_slice();
        }
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        // Never what is owed, should a model call it too early.
        let free = self.tail;
        &mut self.buf[free..]
    }
}

#[cfg(test)]
mod tests {
    use super::EchoSession;
    use proptest::prelude::*;

    /// What Python's `bytes.upper()` returns: the reference the session must match.
    fn python_upper(input: &[u8]) -> Vec<u8> {
        input
            .iter()
            .map(|&b| if b.is_ascii_lowercase() { b - 32 } else { b })
            .collect()
    }

    #[test]
    fn every_byte_value_maps_like_python_bytes_upper() {
        let all: Vec<u8> = (0..=255).collect();
        let mut session = EchoSession::new(256);
        session.recv_buf().copy_from_slice(&all);
        session.received(256);
        assert_eq!(session.pending(), python_upper(&all).as_slice());
        // Spot checks that pin the reference itself.
        assert_eq!(session.pending()[usize::from(b'a')], b'A');
        assert_eq!(session.pending()[usize::from(b'z')], b'Z');
        assert_eq!(session.pending()[usize::from(b'{')], b'{');
        assert_eq!(session.pending()[0xe9], 0xe9);
    }

    #[test]
    fn full_buffer_stops_reads_until_drained() {
        let mut session = EchoSession::new(4);
        session.recv_buf().copy_from_slice(b"abcd");
        session.received(4);
        assert!(!session.wants_recv());
        assert!(session.recv_buf().is_empty());
        session.sent(1);
        // Room at the front comes back by compaction, keeping order.
        assert_eq!(session.recv_buf().len(), 1);
        session.recv_buf()[0] = b'e';
        session.received(1);
        assert_eq!(session.pending(), b"BCDE");
    }

    #[test]
    fn eof_offers_no_more_room_but_keeps_pending() {
        let mut session = EchoSession::new(8);
        session.recv_buf()[..2].copy_from_slice(b"hi");
        session.received(2);
        session.peer_closed();
        assert!(session.recv_buf().is_empty());
        assert!(!session.wants_recv());
        assert_eq!(session.pending(), b"HI");
        assert!(!session.is_done());
        session.sent(2);
        assert!(session.is_done());
    }

    #[test]
    fn a_silent_client_costs_a_small_discard_buffer_at_most() {
        let mut session = EchoSession::new(64 * 1024);
        session.stop_after(0);
        assert!(session.is_done() && session.lingers());
        assert_eq!(session.discard_buf().len(), EchoSession::DISCARD);
        // Served again after a reset, it reads into its whole buffer.
        session.reset();
        assert_eq!(session.recv_buf().len(), 64 * 1024);
    }

    #[test]
    #[should_panic(expected = "more than the 4 bytes recv_buf offered")]
    fn receiving_more_than_offered_is_a_model_bug() {
        let mut session = EchoSession::new(4);
        assert_eq!(session.recv_buf().len(), 4);
        session.received(5);
    }

    #[test]
    #[should_panic(expected = "more than the 0 bytes pending")]
    fn sending_more_than_pending_is_a_model_bug() {
        let mut session = EchoSession::new(4);
        session.sent(1);
    }

    #[test]
    fn the_drain_caps_what_is_taken_and_reset_lifts_it() {
        let mut session = EchoSession::new(8);
        session.recv_buf()[..2].copy_from_slice(b"ab");
        session.received(2);
        session.stop_after(3);
        session.stop_after(5); // a later, higher limit changes nothing
        assert_eq!(session.recv_buf().len(), 3);
        // A read lent out before the drain may bring more: it is answered.
        session.received(4);
        assert!(!session.wants_recv() && session.recv_buf().is_empty());
        assert!(!session.is_done());
        session.sent(6);
        assert!(session.is_done() && session.lingers());
        session.reset();
        assert!(session.wants_recv() && !session.is_done());
        assert_eq!(session.recv_buf().len(), 8);
    }

    #[test]
    fn zero_capacity_is_raised_to_one() {
        assert_eq!(EchoSession::new(0).capacity(), 1);
    }

    /// One step a model can take: read up to `n` bytes, or write up to `n`.
    #[derive(Debug, Clone)]
    enum Step {
        Recv(usize),
        Send(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1usize..5000).prop_map(Step::Recv),
            (1usize..5000).prop_map(Step::Send)
        ]
    }

    proptest! {
        /// Any interleaving of short reads and short writes, at any buffer
        /// size, yields exactly the upper-cased input, in order, and the
        /// buffer never holds more than its capacity.
        #[test]
        fn any_split_of_reads_and_writes_yields_the_upper_cased_input(
            input in proptest::collection::vec(any::<u8>(), 0..40_000),
            capacity in 1usize..8192,
            steps in proptest::collection::vec(step(), 1..200),
        ) {
            let mut session = EchoSession::new(capacity);
            let mut output = Vec::with_capacity(input.len());
            let mut fed = 0;
            // Cycle through the random steps until the connection is done;
            // once the input is exhausted the client sends EOF.
            for step in steps.iter().cycle() {
                if session.is_done() {
                    break;
                }
                if fed == input.len() && !session.is_done() && session.wants_recv() {
                    session.peer_closed();
                }
                match *step {
                    Step::Recv(n) if session.wants_recv() => {
                        let buf = session.recv_buf();
                        let n = n.min(buf.len()).min(input.len() - fed);
                        buf[..n].copy_from_slice(&input[fed..fed + n]);
                        session.received(n);
                        fed += n;
                    }
                    Step::Send(n) if session.wants_send() => {
                        let n = n.min(session.pending().len());
                        output.extend_from_slice(&session.pending()[..n]);
                        session.sent(n);
                    }
                    // The step does not apply now (full, or nothing pending):
                    // take the other one whole, so the run always progresses.
                    _ if session.wants_send() => {
                        output.extend_from_slice(session.pending());
                        let n = session.pending().len();
                        session.sent(n);
                    }
                    _ if session.wants_recv() => {
                        let buf = session.recv_buf();
                        let n = buf.len().min(input.len() - fed);
                        buf[..n].copy_from_slice(&input[fed..fed + n]);
                        session.received(n);
                        fed += n;
                    }
                    // Neither is wanted only once the session is done: the
                    // loop ends at its next turn.
                    _ => {}
                }
                prop_assert!(session.pending().len() <= capacity);
            }
            prop_assert_eq!(output, python_upper(&input));
        }

        /// The drain at any point, with any quota: exactly what was read
        /// before it plus the quota comes back, then the session is done
        /// and lingers (the client never sent EOF).
        #[test]
        fn a_drain_answers_what_was_read_and_its_quota(
            input in proptest::collection::vec(any::<u8>(), 1..20_000),
            capacity in 1usize..4096,
            drain_at in 0usize..20_000,
            quota in 0usize..20_000,
            chunk in 1usize..3000,
        ) {
            let mut session = EchoSession::new(capacity);
            let (mut output, mut fed, mut drained) = (Vec::new(), 0, None);
            while !session.is_done() {
                if drained.is_none() && fed >= drain_at.min(input.len()) {
                    session.stop_after(quota);
                    drained = Some(fed);
                }
                if session.wants_recv() && fed < input.len() {
                    let buf = session.recv_buf();
                    let n = chunk.min(buf.len()).min(input.len() - fed);
                    buf[..n].copy_from_slice(&input[fed..fed + n]);
                    session.received(n);
                    fed += n;
                } else if session.wants_send() {
                    let n = chunk.min(session.pending().len());
                    output.extend_from_slice(&session.pending()[..n]);
                    session.sent(n);
                } else {
                    // Everything was read before the quota ran out: EOF.
                    session.peer_closed();
                }
                prop_assert!(session.pending().len() <= capacity);
            }
            let drained = drained.unwrap_or(fed);
            let answered = input.len().min(drained + quota);
            prop_assert_eq!(output, python_upper(&input[..answered]));
            // The quota ran out before the input did: the client never
            // said EOF, so the model must linger.
            prop_assert_eq!(session.lingers(), drained + quota <= input.len());
        }
    }
}
