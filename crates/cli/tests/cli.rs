//! The `iomodels` command line as a user meets it: usage errors, the models
//! table, the ready line, and the client at a terminal and in a pipe.
// Test crates export nothing: `pub` here only shares items between modules.
#![allow(unreachable_pub)]

#[path = "../../server/tests/harness/mod.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use harness::{Server, bin};
use iomodels_server::Model;

fn iomodels(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs `iomodels client --addr ADDR` with `input` on a pipe.
fn client_filter(server: &Server, input: &[u8]) -> Output {
    let mut child = Command::new(bin())
        .args(["client", "--addr", &server.addr.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Fed from a thread: the replies must be read while the input is written.
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    output
}

#[test]
fn bad_flags_and_values_print_usage_and_exit_2() {
    for args in [
        &["serve", "--bogus"][..],
        &["serve", "--model", "nope"],
        &["serve", "--workers", "0"],
        &["serve", "--max-conns", "-3"],
        &["serve", "--buffer", "0"],
        &["serve", "--grace", "soon"],
        &["serve", "--addr", "localhost"],
        &["serve", "--model", "poll", "--edge"],
        &["serve", "--model", "green", "--green"],
        &["serve", "--model", "hybrid", "--green", "--edge"],
        &["serve", "--model", "prefork", "--processes", "2"],
        &["serve", "--model", "hybrid", "--processes", "0"],
        &["serve", "--model", "iterative", "--workers", "2"],
        &["serve", "--idle-timeout", "0"],
        &["serve", "--idle-timeout", "never"],
        &["client", "--addr", "1688"],
        &["no-such-command"],
        &[],
    ] {
        let output = iomodels(args);
        assert_eq!(output.status.code(), Some(2), "iomodels {args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("Usage:"),
            "iomodels {args:?} printed {stderr:?}"
        );
    }
    let output = iomodels(&["serve", "--model", "nope"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("iterative, thread, thread-pool, fork"),
        "{stderr}"
    );
    // A misplaced flag names the models that take it, from the table.
    let output = iomodels(&["serve", "--model", "poll", "--edge"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--edge is for the models (prefork, epoll, reactors, hybrid), not poll"),
        "{stderr}"
    );
    let output = iomodels(&["serve", "--model", "green", "--green"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--green is for the model (hybrid), not green"),
        "{stderr}"
    );
}

#[test]
fn models_lists_every_model_with_its_file() {
    let output = iomodels(&["models"]);
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    for model in Model::ALL {
        let row = table
            .lines()
            .find(|l| l.starts_with(model.name()))
            .unwrap_or_else(|| {
                panic!("no row for {model} in\n{table}");
            });
        assert!(
            row.contains(model.file()) && row.contains(model.family().name()),
            "{row}"
        );
    }
    // The thread pool's row states its cap: the course's point about pools.
    assert!(table.contains("caps concurrent clients"));
}

#[test]
fn models_json_is_machine_readable() {
    let output = iomodels(&["models", "--json"]);
    assert!(output.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), Model::ALL.len());
    for (row, model) in rows.iter().zip(Model::ALL) {
        assert_eq!(row["name"], model.name());
        assert_eq!(row["file"], model.file());
        assert_eq!(row["default"], *model == Model::DEFAULT);
    }
}

/// A server whose stderr nobody reads any more (the bench that started it
/// died) still stops on SIGTERM. It used to ignore it for ever: logging the
/// signal panicked on the broken pipe and took the signal thread with it.
#[test]
fn sigterm_stops_a_server_whose_stderr_is_gone() {
    use std::io::BufRead;
    let mut server = std::process::Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(server.stderr.take().unwrap());
    let mut ready = String::new();
    stderr.read_line(&mut ready).unwrap();
    assert!(ready.contains(" listening on "), "{ready}");
    drop(stderr);
    let pid = nix::unistd::Pid::from_raw(server.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = harness::exit_within_timeout(
        &mut server,
        "the server ignored SIGTERM once its stderr was gone",
    );
    assert_eq!(status.code(), Some(0));
}

#[test]
fn ready_line_names_the_real_port() {
    let server = Server::start(Model::DEFAULT, &[]);
    assert!(server.addr.ip().is_loopback());
    assert_ne!(server.addr.port(), 0);
    assert!(server.log().contains(&format!(
        "iomodels: {} listening on {}",
        Model::DEFAULT,
        server.addr
    )));
}

#[test]
fn serve_on_a_busy_port_fails_clearly() {
    // The default, and the models whose SO_REUSEPORT would let a second
    // server bind beside the first and take half its clients.
    let server = Server::start(Model::DEFAULT, &[]);
    let shared = Model::ALL.iter().copied().filter(|m| m.reuses_port());
    for model in std::iter::once(Model::DEFAULT).chain(shared) {
        let mut second = std::process::Command::new(bin())
            .args([
                "serve",
                "--model",
                model.name(),
                "--addr",
                &server.addr.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let busy = format!(
            "a second {model} server started on the busy port {}",
            server.addr
        );
        harness::exit_within_timeout(&mut second, &busy);
        let output = second.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{model}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("cannot listen on {}", server.addr)),
            "{model}: {stderr}"
        );
    }
}

#[test]
fn client_in_a_pipe_is_a_filter() {
    let server = Server::start(Model::DEFAULT, &[]);
    let output = client_filter(
        &server,
        b"hello\n\nw\xc3\xb6rld 123\n\xff raw bytes\r\nlast",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Empty lines are skipped, as in the course; everything else is exact.
    assert_eq!(
        output.stdout,
        b"HELLO\nW\xc3\xb6RLD 123\n\xff RAW BYTES\r\nLAST"
    );
}

#[test]
fn client_streams_a_large_input() {
    let server = Server::start(Model::DEFAULT, &[]);
    let line = b"the quick brown fox jumps over the lazy dog\n";
    let input: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * 100_000)
        .collect();
    let output = client_filter(&server, &input);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stdout == input.to_ascii_uppercase(),
        "4 MiB through the client came back altered"
    );
}

#[test]
fn client_at_a_terminal_prompts_like_the_course() {
    let server = Server::start(Model::DEFAULT, &[]);
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut child = Command::new(bin())
        .args(["client", "--addr", &server.addr.to_string()])
        .stdin(Stdio::from(pty.slave))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut terminal = std::fs::File::from(pty.master);
    // A line, an empty line (skipped), another line, then Ctrl-D.
    terminal.write_all(b"hello\n\nbye\n\x04").unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(stdout, "msg: HELLO\nmsg: msg: BYE\nmsg: \n");
}

#[test]
fn client_without_a_server_says_so() {
    // A port that was free a moment ago and has no listener now.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let output = iomodels(&["client", "--addr", &addr.to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot connect to {addr}")),
        "{stderr}"
    );
}

/// The README's table of models is what `iomodels models --markdown`
/// prints, ideas and all: both come from the one table in `model/mod.rs`.
#[test]
fn readme_table_is_what_models_prints() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("the README is at the repository root");
    let output = iomodels(&["models", "--markdown"]);
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    assert_eq!(table.lines().count(), Model::ALL.len() + 2);
    assert!(
        readme.contains(&table),
        "the README's table of models is not what `iomodels models --markdown` prints:\n{table}"
    );
}

#[test]
fn bench_measures_a_model_and_reports_json() {
    let output = iomodels(&[
        "bench",
        "--model",
        "thread",
        "--conns",
        "10",
        "--warmup",
        "0.2",
        "--duration",
        "0.5",
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["target"], "thread");
    assert!(report["requests"].as_u64().unwrap() > 0);
    assert_eq!(report["errors"]["wrong_bytes"], 0);
    assert_eq!(report["idle_conns"], 0);
    let server = &report["server"];
    assert!(server["cpu_us_per_request"].as_f64().unwrap() > 0.0);
    // 10 connection threads, the accept loop, the drain watcher, signals.
    assert!(server["peak_threads"].as_u64().unwrap() >= 11, "{server}");
}

#[test]
fn bench_fails_on_a_server_that_gets_one_letter_wrong() {
    // A server that upper-cases everything but q.
    let script = std::env::temp_dir().join(format!("iomodels-broken-{}.py", std::process::id()));
    std::fs::write(
        &script,
        "import socketserver, sys\n\
         class H(socketserver.BaseRequestHandler):\n\
         \x20   def handle(self):\n\
         \x20       while True:\n\
         \x20           d = self.request.recv(65536)\n\
         \x20           if not d: return\n\
         \x20           self.request.sendall(d.upper().replace(b'Q', b'q'))\n\
         socketserver.ThreadingTCPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n",
    )
    .unwrap();
    let peer = format!("broken=python3 {} {{port}}", script.display());
    let output = iomodels(&[
        "bench",
        "--peer",
        &peer,
        "--conns",
        "4",
        "--warmup",
        "0.1",
        "--duration",
        "0.5",
    ]);
    let _ = std::fs::remove_file(&script);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("4 wrong bytes"), "{stdout}");
    assert!(stdout.contains("('q'), expected 0x51 ('Q')"), "{stdout}");
    assert!(
        stderr.contains("broken sent wrong or short replies"),
        "{stderr}"
    );
}

#[test]
fn serve_raises_its_descriptor_limit_and_derives_max_conns_from_it() {
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    // A soft limit far below the hard one, as many shells start with.
    let server = Server::start_with_limits(Model::DEFAULT, &[], "-S -n 256");
    server.wait_log(&format!(
        "--max-conns {} (descriptor limit {hard}, ",
        iomodels_server::Config::max_conns_for(hard)
    ));
    let soft = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = soft
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        line.split_whitespace().nth(3),
        Some(hard.to_string().as_str()),
        "{line}"
    );
}

#[test]
fn bench_refuses_more_connections_than_descriptors_up_front() {
    // One more connection than the hard limit allows, whatever this machine's limit.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let conns = (hard + 1).to_string();
    let output = iomodels(&["bench", "--model", "thread", "--conns", &conns]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{conns} connections need about")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("the hard limit is {hard}")),
        "{stderr}"
    );
}

#[test]
fn bench_matrix_writes_its_reports() {
    let out = std::env::temp_dir().join(format!("iomodels-cli-matrix-{}", std::process::id()));
    let output = iomodels(&[
        "bench",
        "matrix",
        "--models",
        "thread,fork",
        "--conns",
        "1,4",
        "--sizes",
        "64",
        "--warmup",
        "0.1",
        "--duration",
        "0.3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| thread |") && md.contains("| fork |"), "{md}");
    assert_eq!(
        std::fs::read_to_string(out.join("report.csv"))
            .unwrap()
            .lines()
            .count(),
        5
    );
    assert!(out.join("requests-per-s-64B.svg").exists());
    // Results are data: a second run into the same folder is refused...
    let rerun = |extra: &[&str]| {
        let mut args = vec![
            "bench", "matrix", "--models", "thread", "--conns", "1", "--sizes", "64",
        ];
        args.extend([
            "--warmup",
            "0.1",
            "--duration",
            "0.2",
            "--out",
            out.to_str().unwrap(),
        ]);
        args.extend_from_slice(extra);
        iomodels(&args)
    };
    let again = rerun(&[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a report"));
    assert_eq!(std::fs::read_to_string(out.join("report.md")).unwrap(), md);
    // ...unless asked for.
    let forced = rerun(&["--force"]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    std::fs::remove_dir_all(&out).unwrap();
}
