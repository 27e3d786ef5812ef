//! The benchmark matrix: every target x connection count x request size,
//! written out as JSON, CSV, Markdown tables and SVG charts.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use serde::Serialize;

use crate::report::micros;
use crate::{Report, Target, Workload, measure};

/// One cell of the matrix: a report, or why there is none.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The target's name.
    pub target: String,
    /// Connections.
    pub conns: usize,
    /// Bytes per request.
    pub size: usize,
    /// The measurement, if the cell ran.
    pub report: Option<Report>,
    /// Why it did not, if it did not.
    pub error: Option<String>,
}

/// Runs every cell, one fresh server per cell, with a progress bar on a
/// terminal. A target that fails to start fails its cells, not the matrix.
pub fn run(targets: &[Target], conns: &[usize], sizes: &[usize], base: &Workload) -> Vec<Cell> {
    let total = targets.len() * conns.len() * sizes.len();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut cells = Vec::with_capacity(total);
    for &size in sizes {
        for target in targets {
            for &c in conns {
                bar.set_message(format!("{} x {c} conns x {size} B", target.name()));
                let workload = Workload {
                    conns: c,
                    size,
                    ..base.clone()
                };
                let (report, error) = match measure(target, &workload) {
                    Ok(report) => (Some(report), None),
                    Err(e) => {
                        bar.println(format!(
                            "iomodels: {} at {c} conns, {size} B: {e}",
                            target.name()
                        ));
                        (None, Some(e.to_string()))
                    }
                };
                cells.push(Cell {
                    target: target.name(),
                    conns: c,
                    size,
                    report,
                    error,
                });
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    cells
}

/// Writes `report.json`, `report.csv`, `report.md` and the charts into `out`.
///
/// # Errors
///
/// If a file cannot be written.
pub fn write(cells: &[Cell], base: &Workload, out: &Path) -> io::Result<()> {
    fs::create_dir_all(out)?;
    fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(cells)?,
    )?;
    fs::write(out.join("report.csv"), csv(cells))?;
    fs::write(out.join("report.md"), markdown(cells, base))?;
    for size in sizes(cells) {
        let cells: Vec<&Cell> = cells.iter().filter(|c| c.size == size).collect();
        chart(
            &cells,
            &out.join(format!("requests-per-s-{size}B.svg")),
            Figure::Throughput,
            size,
        )?;
        chart(
            &cells,
            &out.join(format!("p99-{size}B.svg")),
            Figure::P99,
            size,
        )?;
        chart(
            &cells,
            &out.join(format!("cpu-per-request-{size}B.svg")),
            Figure::Cpu,
            size,
        )?;
    }
    Ok(())
}

fn sizes(cells: &[Cell]) -> Vec<usize> {
    let mut sizes: Vec<usize> = cells.iter().map(|c| c.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

fn in_order<T: PartialEq + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

fn csv(cells: &[Cell]) -> String {
    let mut out = String::from(
        "target,conns,size,requests_per_s,mb_per_s,p50_us,p90_us,p99_us,p999_us,max_us,\
         wrong_bytes,short_replies,resets,timeouts,connect_failures,idle_conns,\
         server_cpu_us_per_request,server_peak_rss_bytes,server_peak_threads,server_peak_processes,\
         server_kernel_requests_per_s,client_cpu_us_per_request,error\n",
    );
    for cell in cells {
        let _ = write!(out, "{},{},{},", cell.target, cell.conns, cell.size);
        match &cell.report {
            Some(r) => {
                let l = &r.latency_us;
                let e = &r.errors;
                let _ = write!(
                    out,
                    "{:.1},{:.3},{:.1},{:.1},{:.1},{:.1},{:.1},{},{},{},{},{},{},",
                    r.requests_per_s,
                    r.mb_per_s,
                    l.p50,
                    l.p90,
                    l.p99,
                    l.p999,
                    l.max,
                    e.wrong_bytes,
                    e.short_replies,
                    e.resets,
                    e.timeouts,
                    e.connect_failures,
                    r.idle_conns
                );
                match &r.server {
                    Some(s) => {
                        let _ = write!(
                            out,
                            "{:.3},{},{},{},{},",
                            s.cpu_us_per_request,
                            s.peak_rss_bytes,
                            s.peak_threads,
                            s.peak_processes,
                            s.kernel_requests_per_s
                                .map_or(String::new(), |k| format!("{k:.1}"))
                        );
                    }
                    None => out.push_str(",,,,,"),
                }
                let _ = writeln!(out, "{:.3},", r.client_cpu_us_per_request);
            }
            None => {
                let error = cell
                    .error
                    .as_deref()
                    .unwrap_or("")
                    .replace(['"', '\n'], "'");
                let _ = writeln!(out, ",,,,,,,,,,,,,,,,,,,\"{error}\"");
            }
        }
    }
    out
}

fn markdown(cells: &[Cell], base: &Workload) -> String {
    let targets = in_order(cells.iter().map(|c| c.target.clone()));
    let conns = {
        let mut c = in_order(cells.iter().map(|c| c.conns));
        c.sort_unstable();
        c
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Benchmark matrix\n\nClosed loop, {} request(s) in flight per connection, {} client thread(s), \
         {:.1} s warm-up, {:.1} s measured per cell; a fresh server per cell; every reply byte checked.\n",
        base.pipeline,
        base.threads,
        base.warmup.as_secs_f64(),
        base.duration.as_secs_f64()
    );
    if base.silent > 0 {
        let _ = writeln!(
            out,
            "Each cell also holds {} silent connections open: the idle crowd.\n",
            base.silent
        );
    }
    type Pick = fn(&Report) -> Option<String>;
    let tables: [(&str, Pick); 3] = [
        ("Requests per second (thousands)", |r| {
            Some(format!("{:.1}k", r.requests_per_s / 1000.0))
        }),
        ("p99 latency", |r| Some(micros(r.latency_us.p99))),
        ("Server CPU per request (us)", |r| {
            r.server
                .as_ref()
                .map(|s| format!("{:.2}", s.cpu_us_per_request))
        }),
    ];
    for size in sizes(cells) {
        let _ = writeln!(out, "## {size}-byte requests\n");
        for (title, pick) in tables {
            let _ = writeln!(out, "### {title}\n");
            let _ = write!(out, "| target |");
            for c in &conns {
                let _ = write!(out, " {c} conns |");
            }
            let _ = write!(out, "\n|---|");
            for _ in &conns {
                out.push_str("---:|");
            }
            out.push('\n');
            for target in &targets {
                let _ = write!(out, "| {target} |");
                for &c in &conns {
                    let cell = cells
                        .iter()
                        .find(|x| x.size == size && x.conns == c && &x.target == target);
                    let text = match cell.and_then(|x| x.report.as_ref()) {
                        Some(r) => {
                            let mut text = pick(r).unwrap_or_else(|| "-".into());
                            if r.errors.any() || r.idle_conns > 0 {
                                text.push_str(" \u{2020}");
                            }
                            text
                        }
                        None if cell.is_some() => "failed".into(),
                        None => String::new(),
                    };
                    let _ = write!(out, " {text} |");
                }
                out.push('\n');
            }
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "\u{2020} the cell had errors (resets, timeouts, short or wrong replies) or connections that \
         completed nothing in the window; see report.csv.\n"
    );
    let failed: Vec<&Cell> = cells.iter().filter(|c| c.report.is_none()).collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "## Cells that did not run\n");
        for cell in failed {
            let _ = writeln!(
                out,
                "- {} at {} conns, {} B: {}",
                cell.target,
                cell.conns,
                cell.size,
                cell.error.as_deref().unwrap_or("?")
            );
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum Figure {
    Throughput,
    P99,
    Cpu,
}

impl Figure {
    fn value(self, report: &Report) -> Option<f64> {
        let value = match self {
            Self::Throughput => report.requests_per_s / 1000.0,
            Self::P99 => report.latency_us.p99,
            Self::Cpu => report.server.as_ref()?.cpu_us_per_request,
        };
        (value.is_finite() && value > 0.0).then_some(value)
    }

    fn caption(self, size: usize) -> String {
        match self {
            Self::Throughput => format!("Requests per second, {size}-byte requests (thousands)"),
            Self::P99 => format!("p99 latency, {size}-byte requests (microseconds, log scale)"),
            Self::Cpu => format!("Server CPU per request, {size}-byte requests (microseconds)"),
        }
    }
}

/// One chart: a line per target over the connection counts (log scale).
fn chart(cells: &[&Cell], path: &Path, figure: Figure, size: usize) -> io::Result<()> {
    let targets = in_order(cells.iter().map(|c| c.target.clone()));
    let series: Vec<(String, Vec<(f64, f64)>)> = targets
        .into_iter()
        .map(|target| {
            let mut points: Vec<(f64, f64)> = cells
                .iter()
                .filter(|c| c.target == target)
                .filter_map(|c| Some((c.conns as f64, figure.value(c.report.as_ref()?)?)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (target, points)
        })
        .collect();
    let all: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    if all.is_empty() {
        return Ok(());
    }
    let mut conns: Vec<f64> = all.iter().map(|p| p.0).collect();
    conns.sort_by(f64::total_cmp);
    conns.dedup();
    let x_range = (conns[0] / 1.6..conns[conns.len() - 1] * 1.6)
        .log_scale()
        .with_key_points(conns);
    let y_max = all.iter().map(|p| p.1).fold(0.0, f64::max) * 1.15;
    let y_min = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);

    let root = SVGBackend::new(path, (1000, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(io::Error::other)?;
    // The legend gets its own panel, so it never hides a line.
    let (plot_area, legend_area) = root.split_horizontally(820);
    legend(&legend_area, &series).map_err(io::Error::other)?;
    let mut builder = ChartBuilder::on(&plot_area);
    builder
        .caption(figure.caption(size), ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64);
    let drawn = match figure {
        // Latency spans orders of magnitude: log scale.
        Figure::P99 => plot(
            builder.build_cartesian_2d(x_range, (y_min / 1.5..y_max * 1.5).log_scale()),
            &series,
        ),
        Figure::Throughput | Figure::Cpu => {
            plot(builder.build_cartesian_2d(x_range, 0.0..y_max), &series)
        }
    };
    drawn.map_err(io::Error::other)?;
    root.present().map_err(io::Error::other)
}

/// Draws the mesh and one line with dots per series.
fn plot<'a, DB, X, Y, E>(
    chart: Result<ChartContext<'a, DB, Cartesian2d<X, Y>>, E>,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    E: std::fmt::Display,
{
    let mut chart = chart.map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("connections")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if *y >= 10.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            }
        })
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (_, points)) in series.iter().enumerate() {
        let style = Palette99::pick(i).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.clone(), style))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, style.filled())))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The legend, one row per series in the same colours as [`plot`].
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), String> {
    for (i, (name, _)) in series.iter().enumerate() {
        let y = 60 + 24 * i as i32;
        let style = Palette99::pick(i).stroke_width(2);
        area.draw(&PathElement::new(vec![(8, y), (30, y)], style))
            .map_err(|e| e.to_string())?;
        area.draw(&Circle::new((19, y), 3, style.filled()))
            .map_err(|e| e.to_string())?;
        area.draw(&Text::new(name.as_str(), (38, y - 7), ("sans-serif", 14)))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Cell, write};
    use crate::engine::{Errors, Workload};
    use crate::{Latency, Report, ServerFigures};

    fn report(target: &str, conns: usize, size: usize, rps: f64) -> Report {
        Report {
            target: target.into(),
            addr: "127.0.0.1:1".into(),
            conns,
            silent: 0,
            size,
            pipeline: 1,
            rate: None,
            threads: 1,
            warmup_s: 1.0,
            duration_s: 4.0,
            window_s: 4.0,
            window_monotonic: [100.0, 104.0],
            requests: (rps * 4.0) as u64,
            requests_per_s: rps,
            mb_per_s: rps * size as f64 / 1e6,
            latency_us: Latency {
                p50: 10.0,
                p90: 20.0,
                p99: 30.0,
                p999: 40.0,
                max: 50.0,
            },
            errors: Errors::default(),
            first_wrong: None,
            idle_conns: 0,
            server: Some(ServerFigures {
                cpu_us_per_request: 9.5,
                peak_rss_bytes: 1 << 20,
                peak_threads: 3,
                peak_processes: 1,
                kernel_requests_per_s: Some(rps),
            }),
            client_cpu_us_per_request: 8.0,
        }
    }

    #[test]
    fn writes_every_report_and_chart() {
        let mut cells = Vec::new();
        for (target, base) in [("thread", 50_000.0), ("tokio-echo", 90_000.0)] {
            for (i, conns) in [1, 10, 100].into_iter().enumerate() {
                let rps = base * (i + 1) as f64;
                cells.push(Cell {
                    target: target.into(),
                    conns,
                    size: 64,
                    report: Some(report(target, conns, 64, rps)),
                    error: None,
                });
            }
        }
        cells.push(Cell {
            target: "missing".into(),
            conns: 1,
            size: 64,
            report: None,
            error: Some("did not start".into()),
        });
        let dir = std::env::temp_dir().join(format!("iomodels-matrix-{}", std::process::id()));
        write(&cells, &Workload::default(), &dir).unwrap();

        let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
        assert!(md.contains("| thread | 50.0k | 100.0k | 150.0k |"), "{md}");
        assert!(md.contains("| missing | failed |"), "{md}");
        assert!(
            md.contains("- missing at 1 conns, 64 B: did not start"),
            "{md}"
        );
        let csv = std::fs::read_to_string(dir.join("report.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + cells.len());
        assert!(csv.lines().last().unwrap().ends_with("\"did not start\""));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(json.as_array().unwrap().len(), cells.len());
        for chart in [
            "requests-per-s-64B.svg",
            "p99-64B.svg",
            "cpu-per-request-64B.svg",
        ] {
            let svg = std::fs::read_to_string(dir.join(chart)).unwrap();
            assert!(
                svg.starts_with("<svg") && svg.contains("tokio-echo"),
                "{chart}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
