//! The cost of `vmscope regions` inside gdb and lldb through the plugins, against the
//! debuggers' own memory maps (`info proc mappings`, `memory region --all`), on the same process
//! in one run.
//!
//! Two measurements, each on a small target (fixtures/many_maps.c with 10 mappings) and a
//! bigger one (2,000 mappings):
//!
//! 1. **Inside one debugger session** (what a user feels at the prompt): gdb attached once, then
//!    rounds of `info proc mappings` and `vmscope regions` interleaved, each timed from inside
//!    gdb's Python with `gdb.execute(..., to_string=True)`; the plugin's time includes finding
//!    the binary, starting vmscope, its attach, smaps, classification and rendering. The same
//!    with lldb-19 (`memory region --all` against `vmscope regions`), when lldb is installed.
//! 2. **Whole commands** from spawn to exit: `gdb -batch -p PID -ex 'info proc mappings'`
//!    against `gdb -batch -p PID -ex 'source plugin' -ex 'vmscope regions'` and plain
//!    `vmscope -p PID --batch -ex regions`: the startup a one-shot script pays.
//!
//! Note the work differs: vmscope reads smaps (RSS, dirty, swap per region) and classifies every
//! region; gdb's `info proc mappings` prints /proc/PID/maps. Medians and ratios are printed;
//! nothing is asserted on time. `cargo bench --bench plugin`; `VMSCOPE_BENCH_ITERS=N` sets the
//! rounds (default 15).

mod common;

use common::{Case, ManyMaps, Table};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn main() {
    println!(
        "vmscope bench: `vmscope regions` through the gdb/lldb plugins vs the debuggers' own maps"
    );
    println!("machine: {}", common::machine_summary());
    let vmscope = vmscope_binary();
    let rounds = common::rounds(15);
    let gdb = common::on_path("gdb");
    let lldb = ["lldb-19", "lldb"].into_iter().find(|l| {
        Command::new(l)
            .args(["--no-lldbinit", "-b", "-o", "script import lldb"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !gdb {
        println!("!!!!!!!! gdb NOT FOUND: the gdb cases are SKIPPED");
    }
    if lldb.is_none() {
        println!("!!!!!!!! lldb with Python NOT FOUND (apt-get install lldb-19 python3-lldb-19):");
        println!("!!!!!!!! the lldb cases are SKIPPED");
    }
    for n in [10u64, 2000] {
        let _limit = common::MaxMapCount::ensure(n + 1000);
        let target = ManyMaps::start(n).unwrap_or_else(|e| panic!("cannot start the target: {e}"));
        let lines = std::fs::read_to_string(format!("/proc/{}/maps", target.pid))
            .map(|s| s.lines().count())
            .unwrap_or(0);
        println!();
        println!(
            "== target: many_maps {n}, pid {}, {lines} lines of maps ==",
            target.pid
        );
        if gdb {
            in_gdb_session(&vmscope, target.pid, rounds);
        }
        if let Some(lldb) = lldb {
            in_lldb_session(lldb, &vmscope, target.pid, rounds);
        }
        whole_commands(&vmscope, target.pid, rounds, gdb);
    }
}

/// Per-command medians, in seconds, printed by a timing script run inside the debugger.
fn parse_timings(out: &str, names: &[&str]) -> Option<Vec<Vec<Duration>>> {
    let line = out.lines().find_map(|l| l.strip_prefix("BENCH "))?;
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    names
        .iter()
        .map(|n| {
            v[n].as_array().map(|xs| {
                xs.iter()
                    .filter_map(|x| x.as_f64())
                    .map(Duration::from_secs_f64)
                    .collect()
            })
        })
        .collect()
}

fn print_session(label: &str, peer: &str, ours: &str, samples: Vec<Vec<Duration>>) {
    let stats: Vec<common::Stats> = samples.into_iter().map(common::Stats::of).collect();
    let mut table = Table::new(&["inside one session", "median", "min – max", "÷ peer"]);
    for (name, s) in [peer, ours].iter().zip(&stats) {
        table.row(vec![
            format!("{label}: {name}"),
            common::fmt_duration(s.median),
            s.spread(),
            common::ratio(s.median, stats[0].median),
        ]);
    }
    table.print();
}

/// The timing script both debuggers run: interleaved rounds of two commands, output captured.
fn timing_script(run: &str, peer: &str, ours: &str, rounds: usize) -> String {
    format!(
        "import json, time\n\
         def _t(c):\n    s = time.perf_counter(); {run}; return time.perf_counter() - s\n\
         _r = {{'peer': [], 'ours': []}}\n\
         _t({peer:?}); _t({ours:?})\n\
         for _ in range({rounds}):\n    _r['peer'].append(_t({peer:?})); _r['ours'].append(_t({ours:?}))\n\
         print('BENCH ' + json.dumps(_r))\n"
    )
}

fn in_gdb_session(vmscope: &Path, pid: i32, rounds: usize) {
    let plugin = common::crate_dir().join("plugins/gdb/vmscope.py");
    let script = std::env::temp_dir().join(format!("vmscope-bench-gdb-{}.py", std::process::id()));
    let body = timing_script(
        "gdb.execute(c, to_string=True)",
        "info proc mappings",
        "vmscope regions",
        rounds,
    );
    std::fs::write(&script, format!("import gdb\n{body}")).expect("write the timing script");
    // Check once that the plugin answers, then time.
    let check = Command::new("gdb")
        .args(["-nx", "-q", "-batch", "-p", &pid.to_string()])
        .args(["-ex", &format!("source {}", plugin.display())])
        .args(["-ex", "vmscope regions --summary"])
        .env("VMSCOPE", vmscope)
        .stdin(Stdio::null())
        .output()
        .expect("run gdb");
    let text = String::from_utf8_lossy(&check.stdout);
    if !text.contains("KIND") {
        println!(
            "!!!!!!!! the gdb plugin did not answer; gdb session case SKIPPED:\n{text}{}",
            String::from_utf8_lossy(&check.stderr)
        );
        return;
    }
    let out = Command::new("gdb")
        .args(["-nx", "-q", "-batch", "-p", &pid.to_string()])
        .args(["-ex", &format!("source {}", plugin.display())])
        .args(["-ex", &format!("source {}", script.display())])
        .env("VMSCOPE", vmscope)
        .stdin(Stdio::null())
        .output()
        .expect("run gdb");
    let _ = std::fs::remove_file(&script);
    match parse_timings(&String::from_utf8_lossy(&out.stdout), &["peer", "ours"]) {
        Some(samples) => print_session("gdb", "info proc mappings", "vmscope regions", samples),
        None => println!(
            "!!!!!!!! gdb timing failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn in_lldb_session(lldb: &str, vmscope: &Path, pid: i32, rounds: usize) {
    let plugin = common::crate_dir().join("plugins/lldb/vmscope.py");
    let script = std::env::temp_dir().join(format!("vmscope_bench_lldb_{}.py", std::process::id()));
    let body = timing_script(
        "_ret = lldb.SBCommandReturnObject(); lldb.debugger.GetCommandInterpreter().HandleCommand(c, _ret)",
        "memory region --all",
        "vmscope regions",
        rounds,
    );
    std::fs::write(&script, format!("import lldb\n{body}")).expect("write the timing script");
    let out = Command::new(lldb)
        .args(["--no-lldbinit", "-b", "-p", &pid.to_string()])
        .args(["-o", &format!("command script import {}", plugin.display())])
        .args([
            "-o",
            &format!(
                "script exec(open({:?}).read())",
                script.display().to_string()
            ),
        ])
        .env("VMSCOPE", vmscope)
        .stdin(Stdio::null())
        .output()
        .expect("run lldb");
    let _ = std::fs::remove_file(&script);
    match parse_timings(&String::from_utf8_lossy(&out.stdout), &["peer", "ours"]) {
        Some(samples) => print_session("lldb", "memory region --all", "vmscope regions", samples),
        None => println!(
            "!!!!!!!! lldb timing failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn whole_commands(vmscope: &Path, pid: i32, rounds: usize, gdb: bool) {
    let pid_s = pid.to_string();
    let plugin = format!(
        "source {}",
        common::crate_dir().join("plugins/gdb/vmscope.py").display()
    );
    let mut commands: Vec<(String, Command)> = Vec::new();
    let mut c = Command::new(vmscope);
    c.args(["-p", &pid_s, "--batch", "-ex", "regions"]);
    commands.push(("vmscope -p PID --batch -ex regions".into(), c));
    if gdb {
        let mut c = Command::new("gdb");
        c.args(["-nx", "-batch", "-p", &pid_s, "-ex", "info proc mappings"]);
        commands.push(("gdb -batch -p PID -ex 'info proc mappings'".into(), c));
        let mut c = Command::new("gdb");
        c.args([
            "-nx",
            "-batch",
            "-p",
            &pid_s,
            "-ex",
            &plugin,
            "-ex",
            "vmscope regions",
        ])
        .env("VMSCOPE", vmscope);
        commands.push(("gdb -batch -p PID -ex 'vmscope regions' (plugin)".into(), c));
    }
    for (name, c) in commands.iter_mut() {
        if let Err(e) = common::run_checked(c) {
            panic!("{name}: {e}");
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }
    let mut cases: Vec<Case<'_>> = commands
        .iter_mut()
        .map(|(name, c)| {
            let label = name.clone();
            Case::new(name.clone(), move || {
                let (_, status, _) =
                    common::run_measured(c).unwrap_or_else(|e| panic!("{label}: {e}"));
                assert!(status.success(), "{label}: {status}");
            })
        })
        .collect();
    let stats = common::run_interleaved(rounds, &mut cases);
    let peer = if gdb {
        stats[1].median
    } else {
        stats[0].median
    };
    let mut table = Table::new(&[
        "whole command (spawn to exit)",
        "median",
        "min – max",
        "gdb info proc mappings ÷ this",
    ]);
    for (case, s) in cases.iter().zip(&stats) {
        table.row(vec![
            case.name.clone(),
            common::fmt_duration(s.median),
            s.spread(),
            if gdb {
                common::ratio(peer, s.median)
            } else {
                "—".into()
            },
        ]);
    }
    table.print();
}

/// The release vmscope binary this bench was built with (cargo builds the crate's binaries
/// before its benches), built with `cargo build --release` if missing.
fn vmscope_binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_vmscope"));
    if !bin.is_file() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--bin", "vmscope"])
            .current_dir(common::crate_dir())
            .status()
            .expect("run cargo build --release");
        assert!(status.success(), "cargo build --release failed");
    }
    bin
}
