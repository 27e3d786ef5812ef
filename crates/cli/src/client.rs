//! The course's client: `msg: ` on a terminal, a line filter in a pipe.
//!
//! The course's client sends a line and prints one `recv(2048)`: a reply
//! longer than 2048 bytes, or split by the network, comes back cut. This one
//! relies on what the server guarantees instead: a reply is exactly as long as
//! the message, so it reads exactly that many bytes.

use std::io::{self, BufRead, BufWriter, ErrorKind, IsTerminal, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;

use anyhow::{Context, bail};

/// Connects to `addr` and talks: interactively when stdin is a terminal,
/// otherwise as a filter from stdin to stdout.
pub(crate) fn run(addr: SocketAddr) -> anyhow::Result<()> {
    let stream = TcpStream::connect(addr).with_context(|| {
        format!("cannot connect to {addr} (is `iomodels serve` running there?)")
    })?;
    // Each message is one small write; don't let Nagle hold it back.
    stream.set_nodelay(true)?;
    if io::stdin().is_terminal() {
        interactive(&stream)
    } else {
        filter(&stream)
    }
}

/// The line without its `\n` or `\r\n`.
fn without_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The course's loop: prompt, read a line, skip it if empty, send it, print
/// the reply. Ctrl-D ends it.
fn interactive(stream: &TcpStream) -> anyhow::Result<()> {
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let mut line = Vec::new();
    loop {
        write!(stdout, "msg: ")?;
        stdout.flush()?;
        line.clear();
        if stdin.read_until(b'\n', &mut line)? == 0 {
            writeln!(stdout)?;
            return Ok(());
        }
        let message = without_newline(&line);
        if message.is_empty() {
            continue;
        }
        // Sent with a newline, so the reply prints as a line of its own.
        let mut frame = Vec::with_capacity(message.len() + 1);
        frame.extend_from_slice(message);
        frame.push(b'\n');
        let mut stream = stream;
        stream
            .write_all(&frame)
            .context("cannot send to the server")?;
        let mut reply = vec![0; frame.len()];
        stream
            .read_exact(&mut reply)
            .context("the server closed the connection")?;
        stdout.write_all(&reply)?;
    }
}

/// Every non-empty line of stdin to the server, every reply byte to stdout.
///
/// Sending and receiving run on two threads, so a long input streams through
/// without either side waiting for the other; at the end of stdin the client
/// half-closes, and the server's EOF after the last reply ends the output.
fn filter(stream: &TcpStream) -> anyhow::Result<()> {
    let writer = stream.try_clone()?;
    let sender = thread::spawn(move || -> io::Result<u64> {
        let mut stdin = io::stdin().lock();
        let mut out = BufWriter::new(&writer);
        let mut line = Vec::new();
        let mut sent = 0;
        loop {
            line.clear();
            if stdin.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if without_newline(&line).is_empty() {
                continue;
            }
            out.write_all(&line)?;
            sent += line.len() as u64;
            // Batch what is already buffered into few writes, but never keep
            // a line waiting when stdin has nothing more for now (`tail -f`).
            if stdin.fill_buf()?.is_empty() {
                out.flush()?;
            }
        }
        out.flush()?;
        writer.shutdown(Shutdown::Write)?;
        Ok(sent)
    });

    let mut stdout = io::stdout().lock();
    // On an error, return without waiting for the sender: it may be blocked
    // on a stdin that never ends (`yes | iomodels client | head -1`).
    let received = match io::copy(&mut &*stream, &mut stdout) {
        Ok(n) => n,
        // The reader of our output went away (`| head`): not an error of ours.
        Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(()),
        Err(e) => return Err(e).context("cannot read from the server"),
    };
    let sent = sender
        .join()
        .map_err(|_| anyhow::anyhow!("the sending thread panicked"))?;
    let sent = sent.context("cannot send to the server")?;
    if received != sent {
        bail!("the server closed the connection after {received} of {sent} bytes");
    }
    Ok(())
}
