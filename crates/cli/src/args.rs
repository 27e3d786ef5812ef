//! The command line: raw arguments checked and turned into a [`Config`] before any use.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};
use iomodels_server::{Config, Model};

/// Build, run and measure every concurrency and I/O model of the course.
#[derive(Debug, Parser)]
#[command(name = "iomodels", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// Parses the command line; on a bad flag or value prints the error and
    /// the usage of the command it was meant for, and exits with 2.
    ///
    /// Clap prints the usage for some errors (an unknown flag) but not for
    /// others (a bad value); this makes every usage error show it.
    pub(crate) fn parse_or_exit() -> Self {
        let error = match Self::try_parse().and_then(Self::check) {
            Ok(cli) => return cli,
            Err(error) => error,
        };
        if matches!(
            error.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        ) {
            error.exit();
        }
        let rendered = error.render().to_string();
        eprint!("{rendered}");
        if !rendered.contains("Usage:") {
            let mut command = Self::command();
            command.build();
            let name = std::env::args().nth(1).unwrap_or_default();
            let usage = match command.find_subcommand_mut(&name) {
                Some(sub) => sub.render_usage(),
                None => command.render_usage(),
            };
            eprintln!("\n{usage}");
        }
        std::process::exit(2);
    }

    /// What clap cannot check alone: flags that mean nothing to the model
    /// chosen are refused rather than silently ignored.
    fn check(self) -> Result<Self, clap::Error> {
        let Command::Serve(args) = &self.command else {
            return Ok(self);
        };
        let misplaced = if args.edge && !args.model.takes_edge() {
            Some("--edge is for the epoll models (epoll, reactors, prefork, hybrid)")
        } else if args.processes.is_some() && !args.model.takes_processes() {
            Some("--processes is for the hybrid model")
        } else {
            None
        };
        if let Some(why) = misplaced {
            let message = format!("{why}, not {}", args.model);
            let mut command = Self::command();
            command.build();
            let serve = command
                .find_subcommand_mut("serve")
                .expect("serve is a subcommand");
            return Err(serve.error(ErrorKind::ArgumentConflict, message));
        }
        Ok(self)
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the upper-casing echo server under one model.
    Serve(ServeArgs),
    /// List every model: name, I/O family, source file and idea.
    Models {
        /// Print JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Measure servers: throughput, latency, server CPU and memory; `bench matrix` for all.
    Bench(Box<crate::bench::BenchArgs>),
    /// The course's client: a `msg: ` prompt on a terminal, a line filter in a pipe.
    Client {
        /// The server to talk to.
        #[arg(long, default_value_t = Config::DEFAULT_ADDR, value_name = "IP:PORT")]
        addr: SocketAddr,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The concurrency and I/O model (see `iomodels models`).
    #[arg(
        long,
        default_value_t = Model::DEFAULT,
        value_parser = PossibleValuesParser::new(Model::ALL.map(Model::name))
            .map(|name| name.parse::<Model>().expect("clap only passes listed names")),
    )]
    pub(crate) model: Model,
    /// Where to listen; port 0 picks a free one (the ready line says which).
    #[arg(long, default_value_t = Config::DEFAULT_ADDR, value_name = "IP:PORT")]
    addr: SocketAddr,
    /// Threads or processes, for the models that have a fixed number of them.
    #[arg(long, value_name = "N")]
    workers: Option<NonZeroUsize>,
    /// Processes of `--model hybrid`, each with `--workers` reactor threads.
    #[arg(long, value_name = "P")]
    processes: Option<NonZeroUsize>,
    /// Clients served at once; one more is accepted and closed at once.
    #[arg(long, value_name = "N", default_value_t = NonZeroUsize::new(Config::DEFAULT_MAX_CONNS).unwrap())]
    max_conns: NonZeroUsize,
    /// Per-connection buffer: the most the server holds for a client that
    /// does not read. Takes a suffix: 4096, 64K, 1M (binary units).
    #[arg(long, value_name = "BYTES", default_value = "64K", value_parser = parse_bytes)]
    buffer: usize,
    /// How long a stopping server (SIGINT, SIGTERM) keeps serving its clients.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_secs)]
    grace: Duration,
    /// Length of the kernel's queue of connections waiting to be accepted.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    backlog: u32,
    /// Edge-triggered epoll, for the epoll models (epoll, reactors, prefork,
    /// hybrid); level-triggered without it.
    #[arg(long)]
    edge: bool,
}

impl ServeArgs {
    pub(crate) fn config(&self) -> Config {
        Config {
            addr: self.addr,
            backlog: self.backlog,
            workers: self.workers,
            processes: self.processes,
            max_conns: self.max_conns.get(),
            buffer: self.buffer,
            grace: self.grace,
            edge: self.edge,
        }
    }
}

/// The largest `--buffer`: a GiB per connection is already absurd.
const MAX_BUFFER: usize = 1 << 30;

/// Parses a byte count with an optional binary suffix: `512`, `64K`, `64KiB`, `1M`.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, suffix) = lower.split_at(digits_end);
    let unit: usize = match suffix.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit {other:?}: use a number of bytes, or K, M, G"
            ));
        }
    };
    let count: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count like 65536 or 64K"))?;
    match count.checked_mul(unit) {
        Some(0) => Err("the buffer must hold at least 1 byte".into()),
        Some(bytes) if bytes <= MAX_BUFFER => Ok(bytes),
        _ => Err(format!("{text} is more than the 1G a connection may hold")),
    }
}

/// Parses a non-negative number of seconds, fractions allowed: `5`, `0.5`.
pub(crate) fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{text:?} is not a non-negative, finite number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::{parse_bytes, parse_secs};
    use std::time::Duration;

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(65536));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("1m"), Ok(1 << 20));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("2G").is_err());
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("-1").is_err());
    }

    #[test]
    fn seconds_may_be_fractions_but_not_negative() {
        assert_eq!(parse_secs("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_secs("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("soon").is_err());
        assert!(parse_secs("inf").is_err());
    }
}
