//! `iomodels`: run, list and talk to the course's echo server under every model.

mod args;
mod bench;
mod client;
mod units;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use iomodels_server::{Config, Model, Shutdown};
use serde::Serialize;
use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command, ServeArgs};

fn main() -> ExitCode {
    // A bad flag or value: the usage is printed and the exit code is 2.
    let cli = Cli::parse_or_exit();
    init_logging();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("iomodels: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(&args),
        Command::Models { json, markdown } => models(json, markdown),
        Command::Bench(args) => bench::run(*args),
        Command::Client { addr } => client::run(addr),
    }
}

/// Logs go to stderr, at `info` unless `IOMODELS_LOG` says otherwise
/// (`IOMODELS_LOG=debug` shows every connection that ends in an error).
fn init_logging() {
    let filter = EnvFilter::try_from_env("IOMODELS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(false)
        // By default a log line that cannot be written is reported with
        // `eprintln!`, which panics when stderr is a pipe nobody reads (a
        // bench that died, a closed terminal): the thread that logged would
        // die, and with the signal thread went the server's SIGTERM.
        .log_internal_errors(false)
        .init();
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    // Every client costs a descriptor: take all the limit allows, as a
    // server on a machine sized for C10K should.
    let fd_limit = Config::raise_fd_limit().context("cannot read the descriptor limit")?;
    let config = args.config(fd_limit);
    let model = args.model;
    // Said before anything listens: a script waiting for the ready line
    // must not see one from a server that cannot serve.
    model.preflight()?;
    let listener = model
        .listen(&config)
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;
    // Signals are taken before the ready line, so a SIGTERM sent the moment
    // it appears is already a graceful stop.
    let shutdown = Shutdown::new(config.grace).context("cannot set up the shutdown handle")?;
    shutdown
        .stop_on_signals()
        .context("cannot take SIGINT and SIGTERM")?;
    // Scripts and `iomodels bench` wait for this exact line; with port 0 it
    // carries the port the kernel picked.
    eprintln!("iomodels: {model} listening on {addr}");
    say_capacity(model, &config, fd_limit);
    model
        .serve(listener, &config, &shutdown)
        .with_context(|| format!("the {model} server failed"))?;
    tracing::info!("stopped");
    Ok(())
}

/// Says, after the ready line, how many clients the server takes at once
/// and what bounds them: `--max-conns`, the model's design, or the
/// descriptors.
fn say_capacity(model: &Model, config: &Config, fd_limit: u64) {
    let fds = Config::max_conns_for(fd_limit);
    let why = if let Some(n) = model.capacity(config).filter(|&n| n < config.max_conns) {
        format!("; {n} at a time is what the {model} model's design allows")
    } else if let Some(limit) = model.watch_limit().filter(|&l| l < config.max_conns) {
        format!("; {model} refuses a client whose descriptor is {limit} or more")
    } else if config.max_conns > fds {
        format!("; past about {fds} the descriptors run out, and each new client is closed at once")
    } else {
        String::new()
    };
    eprintln!(
        "iomodels: --max-conns {} (descriptor limit {fd_limit}, {} kept for the server){why}",
        config.max_conns,
        Config::FD_RESERVE,
    );
}

/// One row of `iomodels models --json`.
#[derive(Serialize)]
struct ModelRow {
    name: &'static str,
    family: &'static str,
    file: &'static str,
    idea: &'static str,
    default: bool,
}

fn models(json: bool, markdown: bool) -> anyhow::Result<()> {
    let rows: Vec<ModelRow> = Model::ALL
        .iter()
        .map(|m| ModelRow {
            name: m.name(),
            family: m.family().name(),
            file: m.file(),
            idea: m.idea(),
            default: *m == Model::DEFAULT,
        })
        .collect();
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    if markdown {
        // The README's table, which a test holds to this output.
        writeln!(out, "| model | family | file | idea |")?;
        writeln!(out, "|---|---|---|---|")?;
        for row in &rows {
            let star = if row.default { " *" } else { "" };
            let short = row.file.trim_start_matches("crates/server/src/");
            writeln!(
                out,
                "| `{}`{star} | {} | [{short}]({}) | {} |",
                row.name, row.family, row.file, row.idea
            )?;
        }
        return Ok(());
    }
    let name_width = rows
        .iter()
        .map(|r| r.name.len() + 2)
        .max()
        .unwrap_or(0)
        .max(5);
    let family_width = rows
        .iter()
        .map(|r| r.family.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let file_width = rows.iter().map(|r| r.file.len()).max().unwrap_or(0);
    writeln!(
        out,
        "{:name_width$}  {:family_width$}  {:file_width$}  IDEA",
        "MODEL", "FAMILY", "FILE"
    )?;
    for row in &rows {
        let name = if row.default {
            format!("{} *", row.name)
        } else {
            row.name.to_owned()
        };
        writeln!(
            out,
            "{name:name_width$}  {:family_width$}  {:file_width$}  {}",
            row.family, row.file, row.idea
        )?;
    }
    writeln!(out, "\n* the default of `iomodels serve`")?;
    Ok(())
}
