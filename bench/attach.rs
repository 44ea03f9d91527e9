//! The DESIGN budget "attach + first `regions` on a small process ≥ 10× faster than
//! `gdb -p PID -batch -ex 'info proc mappings'`", measured side by side.
//!
//! Against a small C target (fixtures/many_maps.c with 10 mappings), in one run and interleaved
//! round by round, it times whole processes from spawn to exit:
//!
//! - `true`: the floor, what any fork + exec + wait costs here;
//! - `cat /proc/PID/maps`: the kernel's answer with the smallest possible program;
//! - `vmscope -p PID --batch -ex info`;
//! - `vmscope -p PID --batch -ex 'x/4gx ADDR'` on a page whose contents the target told us;
//! - `vmscope -p PID --batch -ex regions` (reads smaps and classifies: the budget's own command);
//! - `gdb -p PID -batch -ex 'info proc mappings'`.
//!
//! A peer that is missing or fails (gdb absent or unable to ptrace, a vmscope build without
//! `regions`) is skipped, loudly. Every command's output is checked once before timing starts.
//! It prints wall and CPU medians, spreads, peak RSS (the largest of three extra, untimed runs
//! through bench/spawn_rss.c, which reports a child's own `ru_maxrss`) and the ratios
//! gdb / vmscope.
//!
//! `cargo bench --bench attach`; `VMSCOPE_BENCH_ITERS=N` sets the rounds (default 15).

mod common;

use common::{Case, ManyMaps, Table};
use std::ffi::OsStr;
use std::process::{Command, Stdio};

const BUDGET: f64 = 10.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Spawn floor and kernel reference: must work.
    Reference,
    /// vmscope's commands: `info` and `x` must work, later ones may be missing.
    Vmscope { required: bool },
    /// The peer of the budget; skipped when missing.
    Gdb,
}

struct Peer {
    name: String,
    command: Command,
    /// Whether the output of one run is what it should be.
    check: Box<dyn Fn(&str) -> bool>,
    role: Role,
}

fn peer(
    name: impl Into<String>,
    program: impl AsRef<OsStr>,
    args: &[&str],
    role: Role,
    check: impl Fn(&str) -> bool + 'static,
) -> Peer {
    let mut command = Command::new(program);
    command.args(args);
    Peer {
        name: name.into(),
        command,
        check: Box::new(check),
        role,
    }
}

fn main() {
    println!("vmscope bench: attach + first command, vmscope against gdb");
    println!("machine: {}", common::machine_summary());
    let vmscope = common::vmscope_binary();
    let target = ManyMaps::start(10).unwrap_or_else(|e| panic!("cannot start the target: {e}"));
    let pid = target.pid.to_string();
    let maps = format!("/proc/{pid}/maps");
    let page = format!("{:#x}", target.first_page);
    let x_cmd = format!("x/4gx {page}");
    println!(
        "target: many_maps 10, pid {pid}, {} lines of maps; vmscope: {}",
        std::fs::read_to_string(&maps).map_or(0, |s| s.lines().count()),
        vmscope.display()
    );

    let mut peers = vec![
        peer("true (spawn floor)", "true", &[], Role::Reference, |_| true),
        peer(
            "cat /proc/PID/maps",
            "cat",
            &[&maps],
            Role::Reference,
            |out| out.contains("r-xp"),
        ),
    ];
    let pid_text = pid.clone();
    peers.push(peer(
        "vmscope -p PID --batch -ex info",
        &vmscope,
        &["-p", &pid, "--batch", "-ex", "info"],
        Role::Vmscope { required: true },
        move |out| out.contains(&pid_text),
    ));
    let value = format!("{:#018x}", target.first_value);
    peers.push(peer(
        format!("vmscope -p PID --batch -ex '{x_cmd}'"),
        &vmscope,
        &["-p", &pid, "--batch", "-ex", &x_cmd],
        Role::Vmscope { required: true },
        move |out| out.contains(&value),
    ));
    let page_text = page.trim_start_matches("0x").to_string();
    peers.push(peer(
        "vmscope -p PID --batch -ex regions",
        &vmscope,
        &["-p", &pid, "--batch", "-ex", "regions"],
        Role::Vmscope { required: false },
        move |out| out.contains(&page_text),
    ));
    if common::on_path("gdb") {
        let page = page.clone();
        peers.push(peer(
            "gdb -p PID -batch -ex 'info proc mappings'",
            "gdb",
            &["-p", &pid, "-batch", "-ex", "info proc mappings"],
            Role::Gdb,
            move |out| out.contains(&page),
        ));
    } else {
        println!();
        println!("!!!!!!!! gdb NOT FOUND on PATH: the gdb peer is SKIPPED and the ≥10× budget");
        println!("!!!!!!!! is NOT CHECKED. Install gdb to compare.");
    }

    // Preflight: each command once, its output checked.
    peers.retain_mut(|p| {
        let why = match common::run_checked(&mut p.command) {
            Ok(out) if (p.check)(&out) => return true,
            Ok(out) => format!("unexpected output:\n{out}"),
            Err(e) => e,
        };
        match p.role {
            Role::Reference | Role::Vmscope { required: true } => panic!("{}: {why}", p.name),
            Role::Vmscope { required: false } => {
                println!("\n!!!!!!!! SKIPPED `{}`: {why}", p.name);
            }
            Role::Gdb => {
                println!("\n!!!!!!!! gdb cannot do its part here; the gdb peer is SKIPPED:");
                println!("{why}");
                println!("!!!!!!!! (ptrace_scope? `sysctl kernel.yama.ptrace_scope`)");
            }
        }
        false
    });
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
    let mut cases: Vec<Case<'_>> = peers
        .iter_mut()
        .map(|p| {
            let command = &mut p.command;
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let name = p.name.clone();
            Case::new(p.name.clone(), move || {
                let m = common::run_measured_usage(command)
                    .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
                assert!(m.status.success(), "{name} failed: {}", m.status);
            })
        })
        .collect();
    let stats = common::run_interleaved(rounds, &mut cases);
    drop(cases);

    let floor = stats[0].median;
    let gdb = peers
        .iter()
        .position(|p| p.role == Role::Gdb)
        .map(|i| stats[i]);
    let mut table = Table::new(&[
        "command",
        "median",
        "min – max",
        "CPU",
        "− spawn floor",
        "peak RSS",
        "gdb ÷ this",
    ]);
    for (p, s) in peers.iter().zip(&stats) {
        let peak = common::exact_peak_rss_text(&p.command, 3);
        table.row(vec![
            p.name.clone(),
            common::fmt_duration(s.median),
            s.spread(),
            s.cpu_text(),
            common::fmt_duration(s.median.saturating_sub(floor)),
            peak,
            gdb.map_or("—".into(), |g| common::ratio(g.median, s.median)),
        ]);
    }
    table.print();

    println!();
    let Some(gdb) = gdb else {
        println!("gdb SKIPPED: the ≥ {BUDGET}× budget is NOT CHECKED");
        return;
    };
    for (p, s) in peers.iter().zip(&stats) {
        if !matches!(p.role, Role::Vmscope { .. }) {
            continue;
        }
        let wall = gdb.median.as_secs_f64() / s.median.as_secs_f64();
        let cpu = match (gdb.cpu, s.cpu) {
            (Some(g), Some(v)) if !v.is_zero() => {
                format!(", CPU {:.0}×", g.as_secs_f64() / v.as_secs_f64())
            }
            _ => String::new(),
        };
        println!(
            "budget (≥ {BUDGET}× faster than gdb): {}: {wall:.0}× wall{cpu} — {}",
            p.name,
            if wall >= BUDGET { "met" } else { "NOT MET" }
        );
    }
    drop(target);
}
