//! How much vmscope adds to the kernel's own cost of producing /proc/PID/maps and smaps.
//!
//! For a tiny process (`sleep`), a small one (many_maps with 100 mappings) and a huge one
//! (many_maps with 60,000 mappings; `VMSCOPE_BENCH_MAPPINGS` changes it), in one run and
//! interleaved round by round, it times the map alone:
//!
//! - (a) `std::fs::read("/proc/PID/maps")`: the kernel's cost, the floor;
//! - (b) `cat /proc/PID/maps > /dev/null` as a process: what a shell user pays;
//! - (c) read + `parse_maps`: vmscope's parser on fresh text;
//! - (d) `vmscope::target::attach(pid)` + `regions()`: what the library pays;
//! - (e) `parse_maps` alone on text already in memory: the parser's own cost per mapping;
//!
//! and the map with usage, the DESIGN budget "`regions` with usage ≤ 1.5× `cat smaps`":
//!
//! - (f) `std::fs::read("/proc/PID/smaps")`;
//! - (g) `cat /proc/PID/smaps > /dev/null`: the budget's reference;
//! - (h) `attach(pid)` + `regions_with_usage()`;
//! - (i) `vmscope -p PID --batch -ex regions > /dev/null`: the whole command (classification,
//!   summary, rendering), with its peak RSS (budget: < 64 MiB on 60,000 mappings; measured on
//!   three extra, untimed runs through bench/spawn_rss.c, as are the other processes' peaks);
//! - (l) `vmscope -p PID --batch --json -ex regions > /dev/null`: the same as JSON, same budgets;
//! - (j) `pmap -XX PID > /dev/null`, when pmap is installed.
//! - (k) `gdb -p PID -batch -ex 'info proc mappings'` (no usage: attach and the map), when gdb is
//!   installed.
//!
//! It prints wall and CPU medians, spreads, ratios to (a) and to (g), and the peak RSS of a
//! fresh process doing (d) once (`ru_maxrss` from `wait4`, beside the same process doing
//! nothing).
//!
//! `cargo bench --bench maps`; `VMSCOPE_BENCH_ITERS=N` sets the rounds for every target.

mod common;

use common::{Case, ChildGuard, ManyMaps, MaxMapCount, Stats, Table};
use std::hint::black_box;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use vmscope::regions::Region;
use vmscope::target::linux::maps::parse_maps;

/// Set in the environment of the bench re-run as a child: `regions PID` or `noop`.
const CHILD_ENV: &str = "VMSCOPE_BENCH_MAPS_CHILD";

/// The mappings of the large target; its own ~25 come on top, and a margin for the kernel's.
const LARGE: u64 = 60_000;
const MARGIN: u64 = 1_024;

/// DESIGN.md budgets for `regions` on the large target.
const REGIONS_BUDGET: f64 = 1.5;
const RSS_BUDGET_KIB: u64 = 64 * 1024;

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child_mode(&spec);
        return;
    }
    let large: u64 = std::env::var("VMSCOPE_BENCH_MAPPINGS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(LARGE);

    println!("vmscope bench: /proc/PID/maps and smaps, the kernel's cost against vmscope's");
    println!("machine: {}", common::machine_summary());
    // Declared first so it is dropped last, after the targets are gone.
    let _limit = MaxMapCount::ensure(large + MARGIN);
    let vmscope = common::vmscope_binary();
    let pmap = common::on_path("pmap");
    if !pmap {
        println!("!!!!!!!! pmap NOT FOUND on PATH: the pmap -XX peer is SKIPPED");
    }
    println!(
        "size_of::<Region>() = {} bytes",
        std::mem::size_of::<Region>()
    );
    let gdb = common::on_path("gdb");
    if !gdb {
        println!("!!!!!!!! gdb NOT FOUND on PATH: the gdb `info proc mappings` peer is SKIPPED");
    }
    let env = Env {
        vmscope: &vmscope,
        pmap,
        gdb,
    };

    let mut results = Vec::new();
    {
        let mut sleep = Command::new("sleep");
        sleep.arg("1000").stdin(Stdio::null());
        // SAFETY: prctl is async-signal-safe; the hook touches no memory of this process.
        unsafe {
            sleep.pre_exec(|| {
                // Die with the bench even if it is killed before its guards run.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let sleep = ChildGuard(sleep.spawn().expect("start sleep"));
        wait_asleep(sleep.pid());
        results.push(bench_target(
            &env,
            "sleep 1000 (tiny)",
            sleep.pid(),
            common::rounds(51),
        ));
    }
    match ManyMaps::start(100) {
        Ok(small) => results.push(bench_target(
            &env,
            "many_maps 100",
            small.pid,
            common::rounds(51),
        )),
        Err(e) => println!("\n!!!!!!!! SKIPPED many_maps 100: {e}"),
    }
    match ManyMaps::start(large) {
        Ok(big) => {
            assert_eq!(big.mappings, large);
            let r = bench_target(
                &env,
                &format!("many_maps {large}"),
                big.pid,
                common::rounds(15),
            );
            budgets(&r);
            results.push(r);
        }
        Err(e) => println!("\n!!!!!!!! SKIPPED many_maps {large} (the large target): {e}"),
    }

    println!("\nSummary: the map alone (wall medians; ratios to (a), the kernel's read of maps)");
    let mut table = Table::new(&[
        "target",
        "lines",
        "(a) read",
        "(b) cat",
        "(c) read+parse",
        "(d) attach+regions",
        "(e) parse/line",
        "(d) peak RSS",
    ]);
    for r in &results {
        let a = r.maps[0].median;
        let cell = |s: &Stats| {
            format!(
                "{} ({})",
                common::fmt_duration(s.median),
                common::ratio(s.median, a)
            )
        };
        table.row(vec![
            r.label.clone(),
            r.lines.to_string(),
            common::fmt_duration(a),
            cell(&r.maps[1]),
            cell(&r.maps[2]),
            cell(&r.maps[3]),
            per_line(r.maps[4].median, r.lines),
            r.child_rss.clone(),
        ]);
    }
    table.print();

    println!("\nSummary: with usage (wall medians; ratios to (g), `cat smaps`)");
    let mut table = Table::new(&[
        "target",
        "(f) read smaps",
        "(g) cat smaps",
        "(h) attach+usage",
        "(i) vmscope regions",
        "(l) regions --json",
        "(j) pmap -XX",
        "(k) gdb mappings",
        "(i) peak RSS",
    ]);
    for r in &results {
        let g = r.usage[1].stats.median;
        let cell = |name: &str| {
            r.usage
                .iter()
                .find(|u| u.name.starts_with(name))
                .map_or("skipped".into(), |u| {
                    format!(
                        "{} ({})",
                        common::fmt_duration(u.stats.median),
                        common::ratio(u.stats.median, g)
                    )
                })
        };
        table.row(vec![
            r.label.clone(),
            cell("(f)"),
            common::fmt_duration(g),
            cell("(h)"),
            cell("(i)"),
            cell("(l)"),
            cell("(j)"),
            cell("(k)"),
            r.usage
                .iter()
                .find(|u| u.name.starts_with("(i)"))
                .and_then(|u| u.peak_rss_kib)
                .map_or("—".into(), common::fmt_kib),
        ]);
    }
    table.print();
}

/// Waits until a just-started `sleep` has exec'd, loaded its libraries and gone to sleep, so its
/// map is the one it keeps.
fn wait_asleep(pid: i32) {
    let start = std::time::Instant::now();
    loop {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        if comm.trim() == "sleep" && state == Some("S") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sleep {pid} did not settle: comm {comm:?}, state {state:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What every target's section needs.
struct Env<'a> {
    vmscope: &'a Path,
    pmap: bool,
    gdb: bool,
}

/// What one target's section measured.
struct TargetResult {
    label: String,
    lines: usize,
    /// (a) to (e), in order.
    maps: Vec<Stats>,
    /// (f) to (j), those that ran.
    usage: Vec<UsageResult>,
    /// Peak RSS of a fresh process doing (d).
    child_rss: String,
}

struct UsageResult {
    name: String,
    stats: Stats,
    /// The peak RSS, for the cases that are processes.
    peak_rss_kib: Option<u64>,
}

fn per_line(d: Duration, lines: usize) -> String {
    format!("{:.0} ns", d.as_nanos() as f64 / lines.max(1) as f64)
}

fn bench_target(env: &Env<'_>, label: &str, pid: i32, rounds: usize) -> TargetResult {
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

    // The map alone.
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
    let maps = common::run_interleaved(rounds, &mut cases);
    let a = maps[0].median;
    let mut table = Table::new(&["case", "median", "min – max", "CPU", "÷ (a)", "per line"]);
    for (case, s) in cases.iter().zip(&maps) {
        table.row(vec![
            case.name.clone(),
            common::fmt_duration(s.median),
            s.spread(),
            s.cpu_text(),
            common::ratio(s.median, a),
            per_line(s.median, lines),
        ]);
    }
    drop(cases);
    table.print();
    let child_rss = peak_rss(pid);
    println!(
        "the Vec<Region> alone: {} ({lines} regions × {} bytes)",
        common::fmt_kib(vec_bytes as u64 / 1024),
        std::mem::size_of::<Region>()
    );

    let usage = bench_usage(env, pid, lines, rounds);
    TargetResult {
        label: label.to_string(),
        lines,
        maps,
        usage,
        child_rss,
    }
}

/// (f) to (j) for one target.
fn bench_usage(env: &Env<'_>, pid: i32, lines: usize, rounds: usize) -> Vec<UsageResult> {
    let smaps = format!("/proc/{pid}/smaps");
    let pid_text = pid.to_string();
    let mut processes: Vec<(&str, Command)> = Vec::new();
    let mut cat = Command::new("cat");
    cat.arg(&smaps);
    processes.push(("(g) cat /proc/PID/smaps > /dev/null", cat));
    let mut regions = Command::new(env.vmscope);
    regions.args(["-p", &pid_text, "--batch", "-ex", "regions"]);
    let regions_ok = match common::run_checked(&mut regions) {
        Ok(out) if out.lines().count() >= lines => true,
        Ok(out) => {
            println!(
                "!!!!!!!! SKIPPED (i): `vmscope regions` printed {} lines for {lines} mappings",
                out.lines().count()
            );
            false
        }
        Err(e) => {
            println!("!!!!!!!! SKIPPED (i) `vmscope regions`: {e}");
            false
        }
    };
    if regions_ok {
        processes.push((
            "(i) vmscope -p PID --batch -ex regions > /dev/null",
            regions,
        ));
    }
    let mut json = Command::new(env.vmscope);
    json.args(["-p", &pid_text, "--batch", "--json", "-ex", "regions"]);
    match common::run_checked(&mut json) {
        Ok(out) if out.matches("\"start\":").count() >= lines => processes.push((
            "(l) vmscope -p PID --batch --json -ex regions > /dev/null",
            json,
        )),
        Ok(out) => println!(
            "!!!!!!!! SKIPPED (l): `vmscope --json regions` gave {} rows for {lines} mappings",
            out.matches("\"start\":").count()
        ),
        Err(e) => println!("!!!!!!!! SKIPPED (l) `vmscope --json regions`: {e}"),
    }
    if env.pmap {
        let mut pmap = Command::new("pmap");
        pmap.args(["-XX", &pid_text]);
        processes.push(("(j) pmap -XX PID > /dev/null", pmap));
    }
    if env.gdb {
        let mut gdb = Command::new("gdb");
        gdb.args([
            "-nx",
            "-p",
            &pid_text,
            "-batch",
            "-ex",
            "info proc mappings",
        ]);
        processes.push(("(k) gdb -p PID -batch -ex 'info proc mappings'", gdb));
    }
    for (_, c) in &mut processes {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }

    let mut cases = vec![Case::new("(f) std::fs::read(/proc/PID/smaps)", || {
        black_box(std::fs::read(&smaps).expect("read smaps"));
    })];
    let mut names = vec!["(f) std::fs::read(/proc/PID/smaps)".to_string()];
    let mut process_cases: Vec<Case<'_>> = processes
        .iter_mut()
        .map(|(name, command)| {
            let name = name.to_string();
            Case::new(name.clone(), move || {
                let m = common::run_measured_usage(command)
                    .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
                assert!(m.status.success(), "{name} failed: {}", m.status);
            })
        })
        .collect();
    // (g) stays second: it is the reference of the ratios.
    let cat_case = process_cases.remove(0);
    names.push(cat_case.name.clone());
    cases.push(cat_case);
    names.push("(h) attach(pid) + regions_with_usage()".into());
    cases.push(Case::new("(h) attach(pid) + regions_with_usage()", || {
        let mut target = vmscope::target::attach(pid).expect("attach");
        black_box(target.regions_with_usage().expect("regions with usage"));
    }));
    for case in process_cases {
        names.push(case.name.clone());
        cases.push(case);
    }
    let stats = common::run_interleaved(rounds, &mut cases);
    drop(cases);

    let g = stats[1].median;
    let mut table = Table::new(&[
        "case",
        "median",
        "min – max",
        "CPU",
        "÷ (g)",
        "per line",
        "peak RSS",
    ]);
    // Peak RSS of the processes, from untimed runs through the spawn_rss helper.
    let peak_of = |name: &str| -> Option<u64> {
        let (_, command) = processes.iter().find(|(n, _)| *n == name)?;
        let mut peak = 0;
        for _ in 0..3 {
            match common::exact_peak_rss(command) {
                Ok((kib, _)) => peak = peak.max(kib),
                Err(e) => {
                    println!("peak RSS of {name} unmeasured: {e}");
                    return None;
                }
            }
        }
        Some(peak)
    };
    let mut out = Vec::new();
    for (name, s) in names.into_iter().zip(stats) {
        let peak = peak_of(&name);
        table.row(vec![
            name.clone(),
            common::fmt_duration(s.median),
            s.spread(),
            s.cpu_text(),
            common::ratio(s.median, g),
            per_line(s.median, lines),
            peak.map_or("—".into(), common::fmt_kib),
        ]);
        out.push(UsageResult {
            name,
            stats: s,
            peak_rss_kib: peak,
        });
    }
    table.print();
    out
}

/// The DESIGN budgets checked on the large target (printed, never asserted), for the table (i)
/// and the JSON (l).
fn budgets(r: &TargetResult) {
    for (case, what) in [("(i)", "regions"), ("(l)", "regions --json")] {
        let Some(regions) = r.usage.iter().find(|u| u.name.starts_with(case)) else {
            println!("budgets NOT CHECKED for `{what}`: it did not run");
            continue;
        };
        let cat = &r.usage[1].stats;
        let wall = regions.stats.median.as_secs_f64() / cat.median.as_secs_f64();
        let cpu = match (regions.stats.cpu, cat.cpu) {
            (Some(v), Some(c)) if !c.is_zero() => {
                format!(", CPU {:.2}×", v.as_secs_f64() / c.as_secs_f64())
            }
            _ => String::new(),
        };
        println!(
            "budget `{what}` ≤ {REGIONS_BUDGET}× `cat smaps` on {} lines: {wall:.2}× wall{cpu} — {}",
            r.lines,
            if wall <= REGIONS_BUDGET {
                "met"
            } else {
                "NOT MET"
            }
        );
        match regions.peak_rss_kib {
            Some(peak) => println!(
                "budget vmscope RSS < {} on {} lines: `{what}` peaked at {} — {}",
                common::fmt_kib(RSS_BUDGET_KIB),
                r.lines,
                common::fmt_kib(peak),
                if peak < RSS_BUDGET_KIB {
                    "met"
                } else {
                    "NOT MET"
                }
            ),
            None => println!("budget vmscope RSS NOT CHECKED for `{what}`: not measured"),
        }
    }
}

/// Peak RSS of a fresh copy of this bench doing attach + regions once, beside a copy that does
/// nothing (the floor of the bench binary itself). Each copy reports its own `VmHWM`, which
/// starts afresh at exec (`ru_maxrss` would carry some of this process's memory).
fn peak_rss(pid: i32) -> String {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return format!("unmeasured ({e})"),
    };
    let measure = |spec: String| -> Result<u64, String> {
        let out = common::run_checked(Command::new(&exe).env(CHILD_ENV, spec))?;
        out.lines()
            .last()
            .and_then(|l| l.strip_prefix("peak_rss_kib "))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("the child printed {out:?}"))
    };
    match (measure(format!("regions {pid}")), measure("noop".into())) {
        (Ok(work), Ok(floor)) => {
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

/// The bench re-run as a child for [`peak_rss`]: does the work, then prints its own peak RSS.
fn child_mode(spec: &str) {
    if spec != "noop" {
        let pid: i32 = spec
            .strip_prefix("regions ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad {CHILD_ENV}: {spec:?}"));
        let mut target = vmscope::target::attach(pid).expect("attach");
        let regions = target.regions().expect("regions");
        println!("{} regions", regions.len());
    }
    let peak = common::own_peak_rss_kib().expect("VmHWM in /proc/self/status");
    println!("peak_rss_kib {peak}");
}
