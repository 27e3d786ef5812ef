//! `iomodels bench`: one measured run, or the whole matrix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand};
use iomodels_loadgen::{Target, Workload, matrix, measure, raise_fd_limit};
use iomodels_server::Model;

use crate::units::parse_secs;

/// Measure servers: one run (a model, a peer or a running address), or the matrix.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Every model and peer x connection counts x request sizes, with reports and charts.
    Matrix(MatrixArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").args(["model", "addr", "peer"])))]
struct RunArgs {
    /// Start `iomodels serve --model M` on a free port and measure it.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Model::ALL.iter().map(|m| m.name())))]
    model: Option<String>,
    /// Measure a server already listening there (no server figures).
    #[arg(long, value_name = "IP:PORT")]
    addr: Option<SocketAddr>,
    /// Start any server: NAME='COMMAND {port}' ({port} is replaced by a free port).
    #[arg(long, value_name = "NAME=COMMAND", value_parser = Target::peer)]
    peer: Option<Target>,
    /// Connections, all opened before the clock starts.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    conns: u64,
    /// Bytes per request.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    size: u64,
    /// More arguments for `iomodels serve` (with --model), e.g. --server-arg=--workers=4.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Debug, Args)]
struct MatrixArgs {
    /// Models to measure: `all`, `none`, or a comma-separated list.
    #[arg(long, default_value = "all")]
    models: String,
    /// Peers: NAME='COMMAND {port}', repeatable; `shared` adds every server of --peers-dir.
    #[arg(long = "peers", value_name = "NAME=COMMAND|shared")]
    peers: Vec<String>,
    /// Where `--peers shared` finds the peers.
    #[arg(long, value_name = "DIR", default_value = "../shared/peers")]
    peers_dir: PathBuf,
    /// Connection counts.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000",
          value_parser = clap::value_parser!(u64).range(1..))]
    conns: Vec<u64>,
    /// Request sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "64,4096",
          value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    sizes: Vec<u64>,
    /// Where the reports and charts go (default: bench/results/<today>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace the reports already in --out (kept otherwise: results are data).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    load: LoadArgs,
}

/// The load shape, shared by a single run and the matrix.
#[derive(Debug, Args)]
struct LoadArgs {
    /// Client threads, each an event loop over its share of the connections
    /// (1 leaves a core to the server on a 2-core machine).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    threads: u64,
    /// Requests in flight per connection (closed loop); the in-flight cap in open loop.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pipeline: u64,
    /// Open loop: requests per second over all connections; latency counts from each
    /// request's intended send time.
    #[arg(long, value_name = "REQ_PER_S")]
    rate: Option<f64>,
    /// Seconds of load before the measured window.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_secs)]
    warmup: Duration,
    /// Seconds measured.
    #[arg(long, value_name = "SECS", default_value = "4", value_parser = parse_secs)]
    duration: Duration,
    /// A connection owed a reply that receives nothing for this long is counted as timed out.
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_secs)]
    timeout: Duration,
    /// More connections held open that never send: the idle crowd that
    /// select and poll pay for on every wait, and epoll does not.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    silent: u64,
}

impl LoadArgs {
    fn workload(&self, conns: usize, size: usize) -> anyhow::Result<Workload> {
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            bail!("--rate must be a positive number of requests per second");
        }
        if self.duration.is_zero() {
            bail!("--duration must be more than 0");
        }
        Ok(Workload {
            conns,
            size,
            pipeline: self.pipeline as usize,
            rate: self.rate,
            threads: self.threads as usize,
            warmup: self.warmup,
            duration: self.duration,
            timeout: self.timeout,
            silent: self.silent as usize,
        })
    }
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        Some(BenchCommand::Matrix(matrix)) => run_matrix(&matrix),
        None => run_one(&args.run),
    }
}

fn own_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the iomodels binary to start models with")
}

fn run_one(args: &RunArgs) -> anyhow::Result<()> {
    // The three are exclusive (clap checks); with none, the default model.
    let target = match (args.addr, &args.peer) {
        (Some(addr), _) => Target::Addr(addr),
        (_, Some(peer)) => peer.clone(),
        (None, None) => Target::Model {
            name: args
                .model
                .clone()
                .unwrap_or_else(|| Model::DEFAULT.name().into()),
            exe: own_exe()?,
            args: args.server_args.clone(),
        },
    };
    let workload = args
        .load
        .workload(args.conns as usize, args.size as usize)?;
    raise_fd_limit(workload.conns + workload.silent)?;
    let report = measure(&target, &workload)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    if report.errors.server_is_broken() {
        bail!(
            "{} sent wrong or short replies ({} connections with a wrong byte, {} cut short)",
            report.target,
            report.errors.wrong_bytes,
            report.errors.short_replies
        );
    }
    if report.requests == 0 {
        bail!("no request completed in the measured window");
    }
    Ok(())
}

fn run_matrix(args: &MatrixArgs) -> anyhow::Result<()> {
    let mut targets = Vec::new();
    let exe = own_exe()?;
    let names: Vec<String> = match args.models.as_str() {
        "all" => Model::ALL.iter().map(|m| m.name().to_owned()).collect(),
        "none" => Vec::new(),
        list => list.split(',').map(|s| s.trim().to_owned()).collect(),
    };
    for name in names {
        let model = Model::named(&name)?;
        targets.push(Target::Model {
            name: model.name().into(),
            exe: exe.clone(),
            args: Vec::new(),
        });
    }
    for peer in &args.peers {
        if peer == "shared" {
            targets.extend(shared_peers(&args.peers_dir)?);
        } else {
            targets.push(Target::peer(peer).map_err(anyhow::Error::msg)?);
        }
    }
    if targets.is_empty() {
        bail!("nothing to measure: give --models or --peers");
    }
    let conns: Vec<usize> = args.conns.iter().map(|&c| c as usize).collect();
    let sizes: Vec<usize> = args.sizes.iter().map(|&b| b as usize).collect();
    let max_conns = conns.iter().copied().max().unwrap_or(1);
    raise_fd_limit(max_conns + args.load.silent as usize)?;
    let base = args.load.workload(1, 1)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("bench/results").join(today()));
    if out.join("report.json").exists() && !args.force {
        bail!(
            "{} already holds a report: give another --out, or --force to replace it",
            out.display()
        );
    }
    eprintln!(
        "iomodels: {} targets x {} connection counts x {} sizes, {:.0} s per cell; reports in {}",
        targets.len(),
        args.conns.len(),
        args.sizes.len(),
        (base.warmup + base.duration).as_secs_f64() + 0.5,
        out.display()
    );
    let cells = matrix::run(&targets, &conns, &sizes, &base);
    matrix::write(&cells, &base, &out)
        .with_context(|| format!("cannot write to {}", out.display()))?;
    eprintln!(
        "iomodels: wrote report.json, report.csv, report.md and charts to {}",
        out.display()
    );
    // A peer's wrong replies are a finding about the peer (the lecture's
    // servers are kept with their defects); a model's are a bug here.
    let models: Vec<String> = targets
        .iter()
        .filter(|t| matches!(t, Target::Model { .. }))
        .map(Target::name)
        .collect();
    let (ours, theirs): (Vec<String>, Vec<String>) = cells
        .iter()
        .filter_map(|c| c.report.as_ref())
        .filter(|r| r.errors.server_is_broken())
        .map(|r| {
            (
                models.contains(&r.target),
                format!("{} at {} conns, {} B", r.target, r.conns, r.size),
            )
        })
        .fold(
            (Vec::new(), Vec::new()),
            |(mut ours, mut theirs), (is_ours, cell)| {
                if is_ours {
                    ours.push(cell)
                } else {
                    theirs.push(cell)
                }
                (ours, theirs)
            },
        );
    if !theirs.is_empty() {
        eprintln!(
            "iomodels: peers sent wrong or short replies (see report.csv): {}",
            theirs.join("; ")
        );
    }
    if !ours.is_empty() {
        bail!("models sent wrong or short replies: {}", ours.join("; "));
    }
    Ok(())
}

/// The servers of `../shared/peers` (see its README), with tokio-echo built
/// into our own target directory (the shared folder is read-only).
fn shared_peers(dir: &Path) -> anyhow::Result<Vec<Target>> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("no peers folder at {}", dir.display()))?;
    let target_dir = Path::new("target/peers").canonicalize().or_else(|_| {
        std::fs::create_dir_all("target/peers")?;
        Path::new("target/peers").canonicalize()
    })?;
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--quiet", "--release", "--manifest-path"])
        .arg(dir.join("tokio-echo/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .context("cannot run cargo to build the tokio-echo peer")?;
    if !status.success() {
        bail!("building the tokio-echo peer failed");
    }
    let py =
        |file: &str, extra: &str| format!("python3 {} {{port}}{extra}", dir.join(file).display());
    let specs = [
        (
            "tokio-echo".to_owned(),
            format!(
                "{} {{port}}",
                target_dir.join("release/tokio-echo").display()
            ),
        ),
        ("uvloop".to_owned(), py("asyncio_echo.py", " uvloop")),
        ("asyncio".to_owned(), py("asyncio_echo.py", " asyncio")),
        ("seed-gevent".to_owned(), py("seed_gevent.py", "")),
        ("seed-select".to_owned(), py("seed_select.py", "")),
        ("seed-nonblocking".to_owned(), py("seed_nonblocking.py", "")),
    ];
    Ok(specs
        .into_iter()
        .map(|(name, command)| Target::Peer { name, command })
        .collect())
}

/// Today's date (UTC) as YYYY-MM-DD.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
