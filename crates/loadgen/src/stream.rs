//! The request stream: what every connection sends, and what must come back.
//!
//! Each connection sends one endless stream of mixed-case ASCII, cut into
//! requests of `--size` bytes: request `k` is bytes `k*size .. (k+1)*size`.
//! The stream is periodic with a prime period (65,521 bytes) that no request
//! size divides, so consecutive requests differ, and it is built so that no
//! two neighbouring bytes are equal. What must come back is the same stream
//! upper-cased. Two consequences keep the client fast and strict:
//!
//! - Any window of the stream up to [`MAX_IO`] bytes is one contiguous slice
//!   of a buffer shared by every connection, so a write is one syscall with
//!   no copying, and checking a read is one `memcmp`.
//! - A server that drops a byte shifts the rest of the stream by one, and
//!   since neighbours always differ the very next byte is caught; one that
//!   repeats, reorders, or forgets to upper-case a byte is caught at it.
//!
//! Connections start at different offsets of the period, so a server that
//! sends one client's bytes to another is caught too.

use std::sync::Arc;

/// The period of the stream: the largest prime below 64 Ki.
pub(crate) const PERIOD: usize = 65_521;
/// The most a single read or write moves.
pub(crate) const MAX_IO: usize = 64 * 1024;

/// The shared stream: `send` is what clients write, `expect` what must come
/// back, both long enough that any `MAX_IO` window is contiguous.
#[derive(Debug)]
pub(crate) struct Stream {
    send: Box<[u8]>,
    expect: Box<[u8]>,
}

/// Where one connection's stream begins, and how far it got.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
    start: usize,
}

impl Stream {
    pub(crate) fn new() -> Arc<Self> {
        // Letters of both cases, digits and punctuation: what a chat line
        // looks like, with lower case for the server to change.
        const ALPHABET: &[u8] =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_!?'()";
        let mut period = Vec::with_capacity(PERIOD);
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        while period.len() < PERIOD {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let byte = ALPHABET[(state % ALPHABET.len() as u64) as usize];
            // No two neighbours equal, upper-cased or not: a dropped byte is
            // then caught at the very next position.
            let upper = byte.to_ascii_uppercase();
            if period
                .last()
                .is_some_and(|&b: &u8| b.to_ascii_uppercase() == upper)
            {
                continue;
            }
            // The period wraps: the last byte must differ from the first too.
            if period.len() == PERIOD - 1 && period[0].to_ascii_uppercase() == upper {
                continue;
            }
            period.push(byte);
        }
        let send: Box<[u8]> = period
            .iter()
            .cycle()
            .take(PERIOD + MAX_IO)
            .copied()
            .collect();
        let expect = send.to_ascii_uppercase().into_boxed_slice();
        Arc::new(Self { send, expect })
    }

    /// The cursor for connection `index`: spread over the period.
    pub(crate) fn cursor(index: usize) -> Cursor {
        Cursor {
            start: index.wrapping_mul(40_503) % PERIOD,
        }
    }

    /// The bytes to write at stream offset `offset`, at most `len` of them.
    pub(crate) fn to_send(&self, cursor: Cursor, offset: u64, len: usize) -> &[u8] {
        let at = position(cursor, offset);
        &self.send[at..at + len.min(MAX_IO)]
    }

    /// Checks bytes received at stream offset `offset`; returns the index of
    /// the first wrong byte, if any.
    pub(crate) fn check(&self, cursor: Cursor, offset: u64, received: &[u8]) -> Option<usize> {
        debug_assert!(received.len() <= MAX_IO);
        let at = position(cursor, offset);
        let expected = &self.expect[at..at + received.len()];
        if expected == received {
            return None;
        }
        expected.iter().zip(received).position(|(e, r)| e != r)
    }

    /// The byte expected at stream offset `offset`, for error reports.
    pub(crate) fn expected_byte(&self, cursor: Cursor, offset: u64) -> u8 {
        self.expect[position(cursor, offset)]
    }
}

fn position(cursor: Cursor, offset: u64) -> usize {
    ((cursor.start as u64 + offset) % PERIOD as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::{MAX_IO, PERIOD, Stream};

    #[test]
    fn neighbours_always_differ_so_a_dropped_byte_is_caught() {
        let stream = Stream::new();
        let cursor = Stream::cursor(3);
        let sent = stream.to_send(cursor, 0, MAX_IO).to_vec();
        for drop_at in [0, 1, 63, 1000, MAX_IO - 2] {
            let mut reply = sent.to_ascii_uppercase();
            reply.remove(drop_at);
            assert_eq!(stream.check(cursor, 0, &reply), Some(drop_at));
        }
        // Across the wrap of the period as well.
        let tail = stream
            .to_send(cursor, (PERIOD - 10) as u64, 20)
            .to_ascii_uppercase();
        assert_eq!(stream.check(cursor, (PERIOD - 10) as u64, &tail), None);
        for w in stream.to_send(cursor, (PERIOD - 10) as u64, 20).windows(2) {
            assert_ne!(w[0].to_ascii_uppercase(), w[1].to_ascii_uppercase());
        }
    }

    #[test]
    fn a_byte_left_lower_case_is_caught() {
        let stream = Stream::new();
        let cursor = Stream::cursor(0);
        let sent = stream.to_send(cursor, 5, 64).to_vec();
        let lower = sent
            .iter()
            .position(u8::is_ascii_lowercase)
            .expect("mixed case");
        let mut reply = sent.to_ascii_uppercase();
        reply[lower] = sent[lower];
        assert_eq!(stream.check(cursor, 5, &reply), Some(lower));
        assert_eq!(stream.check(cursor, 5, &sent.to_ascii_uppercase()), None);
    }

    #[test]
    fn connections_start_apart() {
        let stream = Stream::new();
        let a = stream.to_send(Stream::cursor(0), 0, 64).to_vec();
        let b = stream.to_send(Stream::cursor(1), 0, 64).to_vec();
        assert_ne!(a, b);
    }
}
