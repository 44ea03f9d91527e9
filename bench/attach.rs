//! The DESIGN budget "attach + first command on a small process ≥ 10× faster than
//! `gdb -p PID -batch -ex 'info proc mappings'`", measured side by side.
//!
//! Against a small C target (fixtures/many_maps.c with 10 mappings), in one run and interleaved
//! round by round, it times whole processes from spawn to exit:
//!
//! - `true`: the floor, what any fork + exec + wait costs here;
//! - `cat /proc/PID/maps`: the kernel's answer with the smallest possible program;
//! - `vmscope -p PID --batch -ex info`;
//! - `vmscope -p PID --batch -ex 'x/4gx ADDR'` on a page whose contents the target told us;
//! - `gdb -p PID -batch -ex 'info proc mappings'` (skipped, loudly, when gdb is missing or
//!   cannot attach);
//!
//! and prints medians, spreads, peak RSS (`ru_maxrss` of each process) and the ratios
//! gdb / vmscope. Every command's output is checked once before timing starts.
//!
//! `cargo bench --bench attach`; `VMSCOPE_BENCH_ITERS=N` sets the rounds (default 15).

mod common;

use common::{Case, ManyMaps, Table};
use std::cell::RefCell;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const BUDGET: f64 = 10.0;

fn main() {
    println!("vmscope bench: attach + first command, vmscope against gdb");
    println!("machine: {}", common::machine_summary());
    let vmscope = vmscope_binary();
    let target = ManyMaps::start(10).unwrap_or_else(|e| panic!("cannot start the target: {e}"));
    let pid = target.pid.to_string();
    let maps = format!("/proc/{pid}/maps");
    let x_cmd = format!("x/4gx {:#x}", target.first_page);
    println!(
        "target: many_maps 10, pid {pid}, {} lines of maps; vmscope: {}",
        std::fs::read_to_string(&maps)
            .map(|s| s.lines().count())
            .unwrap_or(0),
        vmscope.display()
    );

    // Each command, and a check of its output run once before timing.
    type Check = Box<dyn Fn(&str) -> bool>;
    let mut commands: Vec<(String, Command, Check)> = Vec::new();
    let cmd = |program: &std::ffi::OsStr, args: &[&str]| {
        let mut c = Command::new(program);
        c.args(args);
        c
    };
    commands.push((
        "true (spawn floor)".into(),
        cmd("true".as_ref(), &[]),
        Box::new(|_| true),
    ));
    commands.push((
        "cat /proc/PID/maps".into(),
        cmd("cat".as_ref(), &[&maps]),
        Box::new(|out| out.contains("r-xp")),
    ));
    let pid_line = pid.clone();
    commands.push((
        "vmscope -p PID --batch -ex info".into(),
        cmd(vmscope.as_os_str(), &["-p", &pid, "--batch", "-ex", "info"]),
        Box::new(move |out| out.contains(&pid_line)),
    ));
    let value = format!("{:#018x}", target.first_value);
    commands.push((
        format!("vmscope -p PID --batch -ex '{x_cmd}'"),
        cmd(vmscope.as_os_str(), &["-p", &pid, "--batch", "-ex", &x_cmd]),
        Box::new(move |out| out.contains(&value)),
    ));
    let gdb_index = commands.len();
    let mut have_gdb = false;
    if common::on_path("gdb") {
        let page = format!("{:#x}", target.first_page);
        commands.push((
            "gdb -p PID -batch -ex 'info proc mappings'".into(),
            cmd(
                "gdb".as_ref(),
                &["-p", &pid, "-batch", "-ex", "info proc mappings"],
            ),
            Box::new(move |out| out.contains(&page)),
        ));
        have_gdb = true;
    } else {
        println!();
        println!("!!!!!!!! gdb NOT FOUND on PATH: the gdb peer is SKIPPED and the ≥10× budget");
        println!("!!!!!!!! is NOT CHECKED. Install gdb to compare.");
    }

    // Preflight: every command must succeed and print what it should.
    let mut i = 0;
    while i < commands.len() {
        let (name, command, check) = &mut commands[i];
        match common::run_checked(command) {
            Ok(out) if check(&out) => i += 1,
            result => {
                let why = match result {
                    Ok(out) => format!("unexpected output:\n{out}"),
                    Err(e) => e,
                };
                if i == gdb_index {
                    println!();
                    println!("!!!!!!!! gdb cannot do its part here; the gdb peer is SKIPPED:");
                    println!("{why}");
                    println!("!!!!!!!! (ptrace_scope? `sysctl kernel.yama.ptrace_scope`)");
                    commands.truncate(gdb_index);
                    have_gdb = false;
                } else {
                    panic!("{name}: {why}");
                }
            }
        }
    }
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    assert!(
        matches!(state, Some("S" | "R")),
        "the target should be running after the preflight, its state is {state:?}"
    );

    let rounds = common::rounds(15);
    println!("{rounds} rounds, each command once per round, interleaved");
    let rss: Vec<RefCell<Vec<u64>>> = commands.iter().map(|_| RefCell::default()).collect();
    let mut cases: Vec<Case<'_>> = commands
        .iter_mut()
        .zip(&rss)
        .map(|((name, command, _), rss)| {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
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
    let gdb = have_gdb.then(|| stats[gdb_index].median);
    let mut table = Table::new(&[
        "command",
        "median",
        "min – max",
        "− spawn floor",
        "peak RSS",
        "gdb ÷ this",
    ]);
    for ((case, s), rss) in cases.iter().zip(&stats).zip(&rss) {
        let rss = rss.borrow();
        let peak = rss.iter().copied().max().unwrap_or(0);
        table.row(vec![
            case.name.clone(),
            common::fmt_duration(s.median),
            s.spread(),
            common::fmt_duration(s.median.saturating_sub(floor)),
            common::fmt_kib(peak),
            gdb.map_or("—".into(), |g| common::ratio(g, s.median)),
        ]);
    }
    table.print();

    println!();
    match gdb {
        Some(g) => {
            for (k, name) in [(2, "info"), (3, "x/4gx")] {
                let r = g.as_secs_f64() / stats[k].median.as_secs_f64();
                println!(
                    "budget (≥ {BUDGET}× faster than gdb): vmscope {name}: {r:.1}× — {}",
                    if r >= BUDGET { "met" } else { "NOT MET" }
                );
            }
            println!(
                "(DESIGN names `regions` as the first command; it does not exist yet, so `info` \
                 and `x` stand in)"
            );
        }
        None => println!("gdb SKIPPED: the budget is NOT CHECKED"),
    }
    drop(cases);
    drop(target);
}

/// The release vmscope binary this bench was built with (cargo builds the crate's binaries
/// before its benches, into target/release), built with `cargo build --release` if missing.
fn vmscope_binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_vmscope"));
    if !bin.is_file() {
        println!("{} is missing: cargo build --release", bin.display());
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--bin", "vmscope"])
            .current_dir(common::crate_dir())
            .status()
            .expect("run cargo build --release");
        assert!(status.success(), "cargo build --release failed");
    }
    bin
}
