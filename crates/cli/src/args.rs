//! The command line: raw arguments checked and turned into a [`Config`] before any use.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};
use iomodels_server::{Config, Flag, Model};

use crate::units::{parse_bytes, parse_secs};

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
        let given = [
            (Flag::Workers, args.workers.is_some()),
            (Flag::Processes, args.processes.is_some()),
            (Flag::Edge, args.edge),
            (Flag::Green, args.green),
        ];
        let misplaced = given
            .into_iter()
            .find(|&(flag, given)| given && !args.model.takes(flag));
        if let Some((flag, _)) = misplaced {
            // Which models take it, from the table.
            let takers: Vec<&str> = (Model::ALL.iter())
                .filter(|m| m.takes(flag))
                .map(|m| m.name())
                .collect();
            let message = format!(
                "{} is for {} ({}), not {}",
                flag.name(),
                if takers.len() == 1 {
                    "the model"
                } else {
                    "the models"
                },
                takers.join(", "),
                args.model
            );
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
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// Print the table as Markdown, as the README shows it.
        #[arg(long)]
        markdown: bool,
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
        value_parser = PossibleValuesParser::new(Model::ALL.iter().map(|m| m.name()))
            .map(|name| Model::named(&name).expect("clap only passes listed names")),
    )]
    pub(crate) model: &'static Model,
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
    /// [default: the descriptor limit, raised to its hard limit, less 256
    /// kept for the server itself]
    #[arg(long, value_name = "N")]
    max_conns: Option<NonZeroUsize>,
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
    /// Green hubs (a greenlet per client) instead of epoll loops in the
    /// threads of `--model hybrid`: processes + threads + coroutines.
    #[arg(long, conflicts_with = "edge")]
    green: bool,
    /// Close a connection that has neither sent nor taken a byte for this
    /// long (off by default, as in the course).
    #[arg(long, value_name = "SECS", value_parser = parse_positive_secs)]
    idle_timeout: Option<Duration>,
}

impl ServeArgs {
    /// The server's configuration in a process whose descriptor limit is
    /// `fd_limit` (which sets the default `--max-conns`).
    pub(crate) fn config(&self, fd_limit: u64) -> Config {
        Config {
            addr: self.addr,
            backlog: self.backlog,
            workers: self.workers,
            processes: self.processes,
            max_conns: self
                .max_conns
                .map_or_else(|| Config::max_conns_for(fd_limit), NonZeroUsize::get),
            buffer: self.buffer,
            grace: self.grace,
            edge: self.edge,
            green: self.green,
            idle_timeout: self.idle_timeout,
        }
    }
}

/// A number of seconds above zero: an idle timeout of 0 would close every
/// client at once.
fn parse_positive_secs(text: &str) -> Result<Duration, String> {
    match parse_secs(text)? {
        Duration::ZERO => Err("the idle timeout must be more than 0 seconds".into()),
        secs => Ok(secs),
    }
}
