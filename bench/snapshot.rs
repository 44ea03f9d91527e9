//! Saving, comparing and drawing the memory map of a 60,000-mapping process, beside the tools a
//! user would reach for instead, in one run and interleaved round by round:
//!
//! - `cat /proc/PID/smaps > /dev/null`: the kernel's own cost of the usage figures, the floor;
//! - `pmap -XX PID > FILE`: the usual way to save a map with its usage;
//! - `pmap -XX PID > FILE2 && diff FILE FILE2`: the usual way to see what changed (a line diff,
//!   which knows nothing of regions, kinds or sizes);
//! - `vmscope -p PID --batch -ex 'snapshot save FILE'`;
//! - `vmscope -p PID --batch -ex 'diff FILE'` (the saved snapshot against now);
//! - `vmscope --snapshot FILE --batch --json -ex regions` (a snapshot opened offline);
//! - `vmscope -p PID --batch -ex layout`;
//! - `vmscope -p PID --batch --json -ex regions` (for reference: the map without saving it);
//!
//! and prints medians, spreads, ratios to `cat smaps`, the snapshot's size against pmap's, and
//! the peak RSS of each process (`ru_maxrss`).
//!
//! `cargo bench --bench snapshot`; `VMSCOPE_BENCH_ITERS=N` sets the rounds (default 7),
//! `VMSCOPE_BENCH_MAPPINGS=N` the target's mappings (default 60,000).

mod common;

use common::{Case, ManyMaps, MaxMapCount, Table};
use std::cell::RefCell;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const LARGE: u64 = 60_000;
const MARGIN: u64 = 1_024;

fn sh(script: String) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

fn main() {
    let n: u64 = std::env::var("VMSCOPE_BENCH_MAPPINGS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(LARGE);
    println!("vmscope bench: snapshot, diff and layout against cat smaps, pmap -XX and diff(1)");
    println!("machine: {}", common::machine_summary());
    let _limit = MaxMapCount::ensure(n + MARGIN);
    let target = ManyMaps::start(n).unwrap_or_else(|e| panic!("{e}"));
    let pid = target.pid;
    println!(
        "target: many_maps with {} mappings (pid {pid})",
        target.mappings
    );

    let vmscope = PathBuf::from(env!("CARGO_BIN_EXE_vmscope"));
    let vm = vmscope.display().to_string();
    let dir = std::env::temp_dir().join(format!("vmscope-bench-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let snap = dir.join("base.json").display().to_string();
    let snap_tmp = dir.join("timed.json").display().to_string();
    let pmap_base = dir.join("base.pmap").display().to_string();
    let pmap_tmp = dir.join("timed.pmap").display().to_string();
    let pmap_now = dir.join("now.pmap").display().to_string();
    let have_pmap = common::on_path("pmap");

    // The baselines the comparisons start from, and a check that every command works.
    let preflight = [
        format!("{vm} -p {pid} --batch -ex 'snapshot save {snap}'"),
        format!("pmap -XX {pid} > {pmap_base}"),
    ];
    for script in &preflight {
        if script.starts_with("pmap") && !have_pmap {
            continue;
        }
        common::run_checked(&mut sh(script.clone())).unwrap_or_else(|e| panic!("{e}"));
    }

    let mut commands: Vec<(String, Command)> = vec![
        (
            "cat /proc/PID/smaps".into(),
            sh(format!("cat /proc/{pid}/smaps > /dev/null")),
        ),
        (
            "vmscope snapshot save FILE".into(),
            sh(format!(
                "{vm} -p {pid} --batch -ex 'snapshot save {snap_tmp}' > /dev/null"
            )),
        ),
        (
            "vmscope diff FILE (vs now)".into(),
            sh(format!(
                "{vm} -p {pid} --batch -ex 'diff {snap}' > /dev/null"
            )),
        ),
        (
            "vmscope --snapshot FILE regions --json".into(),
            sh(format!(
                "{vm} --snapshot {snap} --batch --json -ex regions > /dev/null"
            )),
        ),
        (
            "vmscope layout".into(),
            sh(format!("{vm} -p {pid} --batch -ex layout > /dev/null")),
        ),
        (
            "vmscope regions --json".into(),
            sh(format!(
                "{vm} -p {pid} --batch --json -ex regions > /dev/null"
            )),
        ),
    ];
    if have_pmap {
        commands.insert(
            1,
            (
                "pmap -XX PID > FILE".into(),
                sh(format!("pmap -XX {pid} > {pmap_tmp}")),
            ),
        );
        commands.insert(
            2,
            (
                "pmap -XX > FILE2; diff FILE FILE2".into(),
                // diff exits 1 when the files differ: that is an answer, not a failure.
                sh(format!(
                    "pmap -XX {pid} > {pmap_now}; diff {pmap_base} {pmap_now} > /dev/null; \
                     [ $? -le 1 ]"
                )),
            ),
        );
    } else {
        println!("!!!!!!!! pmap is not installed: its rows are SKIPPED");
    }

    let rounds = common::rounds(7);
    println!("{rounds} rounds, each command once per round, interleaved");
    let rss: Vec<RefCell<Vec<u64>>> = commands.iter().map(|_| RefCell::default()).collect();
    let mut cases: Vec<Case<'_>> = commands
        .iter_mut()
        .zip(&rss)
        .map(|((name, command), rss)| {
            command.stdin(Stdio::null()).stderr(Stdio::null());
            let name = name.clone();
            Case::new(name.clone(), move || {
                let (_, status, max_rss) = common::run_measured(command)
                    .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
                assert!(status.success(), "{name} failed: {status}");
                rss.borrow_mut().push(max_rss);
            })
        })
        .collect();
    let stats = common::run_interleaved(rounds, &mut cases);
    let floor = stats[0].median;
    let mut table = Table::new(&["command", "median", "min – max", "÷ cat smaps", "peak RSS"]);
    for ((case, s), rss) in cases.iter().zip(&stats).zip(&rss) {
        let peak = rss.borrow().iter().copied().max().unwrap_or(0);
        table.row(vec![
            case.name.clone(),
            common::fmt_duration(s.median),
            s.spread(),
            common::ratio(s.median, floor),
            common::fmt_kib(peak),
        ]);
    }
    table.print();
    let size = |p: &str| std::fs::metadata(p).map_or(0, |m| m.len() / 1024);
    println!(
        "files: vmscope snapshot {}, pmap -XX {}",
        common::fmt_kib(size(&snap)),
        if have_pmap {
            common::fmt_kib(size(&pmap_base))
        } else {
            "—".into()
        }
    );
    drop(cases);
    drop(target);
    let _ = std::fs::remove_dir_all(&dir);
}
