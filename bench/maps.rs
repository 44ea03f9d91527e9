//! How much vmscope adds to the kernel's own cost of producing /proc/PID/maps.
//!
//! For a tiny process (`sleep`), a small one (many_maps with 100 mappings) and a huge one
//! (many_maps with 60,000 mappings; `VMSCOPE_BENCH_MAPPINGS` changes it), in one run and
//! interleaved round by round, it times:
//!
//! - (a) `std::fs::read("/proc/PID/maps")`: the kernel's cost, the floor;
//! - (b) `cat /proc/PID/maps > /dev/null` as a process: what a shell user pays;
//! - (c) read + `parse_maps`: vmscope's parser on fresh text;
//! - (d) `vmscope::target::attach(pid)` + `regions()`: what a command pays;
//! - (e) `parse_maps` alone on text already in memory: the parser's own cost per mapping;
//!
//! and prints medians, spreads, ratios to (a), and the peak RSS of a fresh process doing (d)
//! once (`ru_maxrss` from `wait4`, beside the same process doing nothing).
//!
//! `cargo bench --bench maps`; `VMSCOPE_BENCH_ITERS=N` sets the rounds for every target.

mod common;

use common::{Case, ChildGuard, ManyMaps, MaxMapCount, Stats, Table};
use std::hint::black_box;
use std::process::{Command, Stdio};
use std::time::Duration;
use vmscope::regions::Region;
use vmscope::target::linux::maps::parse_maps;

/// Set in the environment of the bench re-run as a child: `regions PID` or `noop`.
const CHILD_ENV: &str = "VMSCOPE_BENCH_MAPS_CHILD";

/// The mappings of the large target; its own ~25 come on top, and a margin for the kernel's.
const LARGE: u64 = 60_000;
const MARGIN: u64 = 1_024;

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child_mode(&spec);
        return;
    }
    let large: u64 = std::env::var("VMSCOPE_BENCH_MAPPINGS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(LARGE);

    println!("vmscope bench: /proc/PID/maps, the kernel's cost against vmscope's");
    println!("machine: {}", common::machine_summary());
    // Declared first so it is dropped last, after the targets are gone.
    let _limit = MaxMapCount::ensure(large + MARGIN);
    println!(
        "size_of::<Region>() = {} bytes",
        std::mem::size_of::<Region>()
    );

    let mut results = Vec::new();
    {
        let sleep = ChildGuard(
            Command::new("sleep")
                .arg("1000")
                .stdin(Stdio::null())
                .spawn()
                .expect("start sleep"),
        );
        results.push(bench_target(
            "sleep 1000 (a tiny process)",
            sleep.pid(),
            common::rounds(101),
        ));
    }
    match ManyMaps::start(100) {
        Ok(small) => results.push(bench_target(
            "many_maps 100",
            small.pid,
            common::rounds(101),
        )),
        Err(e) => println!("\nSKIPPED many_maps 100: {e}"),
    }
    match ManyMaps::start(large) {
        Ok(big) => {
            assert_eq!(big.mappings, large);
            results.push(bench_target(
                &format!("many_maps {large}"),
                big.pid,
                common::rounds(21),
            ))
        }
        Err(e) => println!("\nSKIPPED many_maps {large} (the large target): {e}"),
    }

    println!("\nSummary (medians; ratios are to (a), the kernel's read of the same file)");
    let mut table = Table::new(&[
        "target",
        "lines",
        "(a) read",
        "(b) cat",
        "(c) read+parse",
        "(d) attach+regions",
        "(e) parse ns/line",
        "(d) peak RSS",
    ]);
    for r in &results {
        let a = r.stats[0].median;
        let cell = |i: usize| {
            format!(
                "{} ({})",
                common::fmt_duration(r.stats[i].median),
                common::ratio(r.stats[i].median, a)
            )
        };
        table.row(vec![
            r.label.clone(),
            r.lines.to_string(),
            common::fmt_duration(a),
            cell(1),
            cell(2),
            cell(3),
            format!("{:.0}", per_line_ns(r.stats[4].median, r.lines)),
            r.peak_rss.clone(),
        ]);
    }
    table.print();
}

/// What one target's section measured.
struct TargetResult {
    label: String,
    lines: usize,
    /// (a) to (e), in order.
    stats: Vec<Stats>,
    peak_rss: String,
}

fn per_line_ns(d: Duration, lines: usize) -> f64 {
    d.as_nanos() as f64 / lines.max(1) as f64
}

fn bench_target(label: &str, pid: i32, rounds: usize) -> TargetResult {
    let path = format!("/proc/{pid}/maps");
    let text = std::fs::read(&path).expect("read the target's maps");
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    let parsed = parse_maps(&text).expect("vmscope parses the target's maps");
    assert_eq!(parsed.len(), lines, "one region per line");
    let vec_bytes = parsed.capacity() * std::mem::size_of::<Region>();
    drop(parsed);
    println!(
        "\n== {label}: pid {pid}, {lines} lines, {} of maps text; {rounds} rounds ==",
        common::fmt_kib(text.len() as u64 / 1024)
    );

    let mut cases = vec![
        Case::new("(a) std::fs::read(/proc/PID/maps)", || {
            black_box(std::fs::read(&path).expect("read maps"));
        }),
        Case::new("(b) cat /proc/PID/maps > /dev/null", || {
            let status = Command::new("cat")
                .arg(&path)
                .stdout(Stdio::null())
                .status()
                .expect("run cat");
            assert!(status.success(), "cat failed: {status}");
        }),
        Case::new("(c) read + parse_maps", || {
            let text = std::fs::read(&path).expect("read maps");
            black_box(parse_maps(&text).expect("parse maps"));
        }),
        Case::new("(d) attach(pid) + regions()", || {
            let mut target = vmscope::target::attach(pid).expect("attach");
            black_box(target.regions().expect("regions"));
        }),
        Case::new("(e) parse_maps only (text in memory)", || {
            black_box(parse_maps(black_box(&text)).expect("parse maps"));
        }),
    ];
    let stats = common::run_interleaved(rounds, &mut cases);

    let a = stats[0].median;
    let mut table = Table::new(&["case", "median", "min – max", "÷ (a)", "per line"]);
    for (case, s) in cases.iter().zip(&stats) {
        table.row(vec![
            case.name.clone(),
            common::fmt_duration(s.median),
            s.spread(),
            common::ratio(s.median, a),
            format!("{:.0} ns", per_line_ns(s.median, lines)),
        ]);
    }
    table.print();

    let peak_rss = peak_rss(pid);
    println!(
        "the Vec<Region> alone: {} ({} regions × {} bytes)",
        common::fmt_kib(vec_bytes as u64 / 1024),
        lines,
        std::mem::size_of::<Region>()
    );
    TargetResult {
        label: label.to_string(),
        lines,
        stats,
        peak_rss,
    }
}

/// Peak RSS of a fresh copy of this bench doing attach + regions once, beside a copy that does
/// nothing (the floor of the bench binary itself).
fn peak_rss(pid: i32) -> String {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return format!("unmeasured ({e})"),
    };
    let measure = |spec: String| {
        common::run_measured(
            Command::new(&exe)
                .env(CHILD_ENV, spec)
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        )
    };
    match (measure(format!("regions {pid}")), measure("noop".into())) {
        (Ok((_, ok, work)), Ok((_, ok_floor, floor))) => {
            if !ok.success() || !ok_floor.success() {
                println!("peak RSS unmeasured: the child failed ({ok}, {ok_floor})");
                return "unmeasured".into();
            }
            println!(
                "peak RSS of a process doing (d) once: {} (the same process doing nothing: {}; \
                 difference {})",
                common::fmt_kib(work),
                common::fmt_kib(floor),
                common::fmt_kib(work.saturating_sub(floor))
            );
            common::fmt_kib(work)
        }
        (Err(e), _) | (_, Err(e)) => {
            println!("peak RSS unmeasured: {e}");
            "unmeasured".into()
        }
    }
}

/// The bench re-run as a child for [`peak_rss`].
fn child_mode(spec: &str) {
    if spec == "noop" {
        return;
    }
    let pid: i32 = spec
        .strip_prefix("regions ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("bad {CHILD_ENV}: {spec:?}"));
    let mut target = vmscope::target::attach(pid).expect("attach");
    let regions = target.regions().expect("regions");
    println!("{}", regions.len());
}
