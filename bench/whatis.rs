//! The DESIGN budget for symbols: `whatis` on 1,000 addresses of a binary with at least 10 MB of
//! DWARF takes at most 1.2× what the gimli `addr2line` CLI takes, is at least 5× faster than
//! gdb, and a first `whatis` after attach answers in under 100 ms.
//!
//! The binary is vmscope's own debug build (target/debug/vmscope, ~40 MB of DWARF; built into
//! target/bench-whatis when missing), copied aside and run idle (its REPL waiting on a pipe) as
//! the target. 1,000 addresses are picked evenly over its functions (the middle of each), and
//! in one run, interleaved round by round (every other round in reverse order, so no case always
//! follows the cache-evicting gdb), whole processes are timed from spawn to exit:
//!
//! - `vmscope -p PID --batch -ex 'whatis -f FILE'`: region, kind, section, symbol, source line,
//!   inlined frames, value and pointer chain for each runtime address;
//! - the gimli `addr2line -f -i -C -e BIN` CLI (`cargo install addr2line --features bin`; found
//!   as `gimli-addr2line` on PATH, `$VMSCOPE_GIMLI_ADDR2LINE`, or a `addr2line` that says it is
//!   version 0.x), addresses on stdin;
//! - GNU `addr2line -f -i -C -e BIN`, addresses on stdin;
//! - `gdb -nx -batch -x CMDS BIN` with `info symbol ADDR` and `info line *ADDR` per address;
//! - `vmscope -p PID --batch -ex 'whatis ADDR'`: attach and a first whatis, DWARF not yet loaded.
//!
//! Before timing, vmscope's source lines are checked against gimli's for every address. Medians,
//! spreads, CPU time (user + system, from wait4) and the ratios are printed. A missing peer is
//! skipped with a loud note.
//!
//! `cargo bench --bench whatis`; `VMSCOPE_BENCH_ITERS=N` sets the rounds (default 5).

mod common;

use common::{Case, ChildGuard, Table};
use object::{Object, ObjectSection, ObjectSymbol};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

const ADDRESSES: usize = 1000;
const MIN_DWARF: u64 = 10_000_000;

fn main() {
    println!(
        "vmscope bench: whatis on {ADDRESSES} addresses against gimli addr2line, GNU addr2line and gdb"
    );
    println!("machine: {}", common::machine_summary());
    let vmscope = PathBuf::from(env!("CARGO_BIN_EXE_vmscope"));
    let tmp =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-whatis-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("create a scratch directory");
    let _cleanup = RemoveDir(tmp.clone());

    // The binary: vmscope's debug build, copied so a concurrent build cannot replace it.
    let debug_build = debug_build();
    let bin = tmp.join("vmscope-debug");
    std::fs::copy(&debug_build, &bin).expect("copy the debug build");
    let data = std::fs::read(&bin).expect("read the debug build");
    let file = object::File::parse(&*data).expect("parse the debug build");
    let dwarf: u64 = file
        .sections()
        .filter(|s| s.name().is_ok_and(|n| n.starts_with(".debug_")))
        .map(|s| s.size())
        .sum();
    println!(
        "binary: {} ({:.1} MB, {:.1} MB of DWARF)",
        debug_build.display(),
        data.len() as f64 / 1e6,
        dwarf as f64 / 1e6
    );
    assert!(
        dwarf >= MIN_DWARF,
        "the debug build has less than 10 MB of DWARF"
    );

    // Addresses: the middle of functions picked evenly over the symbol table.
    let mut funcs: Vec<(u64, u64)> = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 4)
        .map(|s| (s.address(), s.size()))
        .collect();
    funcs.sort_unstable();
    funcs.dedup_by_key(|f| f.0);
    let link: Vec<u64> = (0..ADDRESSES)
        .map(|i| funcs[i * funcs.len() / ADDRESSES])
        .map(|(a, s)| a + s / 2)
        .collect();
    drop(file);

    // The target: the copy, idle in its REPL reading a pipe we hold open.
    let child = Command::new(&bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the debug build");
    let target = ChildGuard(child);
    let pid = target.pid();
    let bias = wait_for_bias(pid, &bin);
    let runtime: Vec<u64> = link.iter().map(|a| a + bias).collect();
    let write = |name: &str, addrs: &[u64]| {
        let p = tmp.join(name);
        let text: String = addrs.iter().map(|a| format!("{a:#x}\n")).collect();
        std::fs::write(&p, text).expect("write the address file");
        p
    };
    let runtime_file = write("runtime.txt", &runtime);
    let link_file = write("link.txt", &link);
    let gdb_cmds = tmp.join("cmds.gdb");
    let cmds: String = link
        .iter()
        .map(|a| format!("info symbol {a:#x}\ninfo line *{a:#x}\n"))
        .collect();
    std::fs::write(&gdb_cmds, cmds).expect("write the gdb commands");
    println!(
        "target: pid {pid}, load bias {bias:#x}; vmscope: {}",
        vmscope.display()
    );

    let gimli = gimli_addr2line();
    check_agreement(&vmscope, pid, &runtime_file, gimli.as_deref(), &bin, &link);

    let pid_s = pid.to_string();
    let whatis_f = format!("whatis -f {}", runtime_file.display());
    let first = format!("whatis {:#x}", runtime[ADDRESSES / 2]);
    let cpu: Rc<RefCell<Vec<Vec<Duration>>>> = Rc::default();
    let mut names: Vec<String> = Vec::new();
    let mut cases: Vec<Case> = Vec::new();
    let mut add = |name: &str, mut cmd: Command, stdin: Option<PathBuf>| {
        let i = names.len();
        names.push(name.to_string());
        cpu.borrow_mut().push(Vec::new());
        let cpu = Rc::clone(&cpu);
        cases.push(Case::new(name, move || {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            match &stdin {
                Some(p) => cmd.stdin(std::fs::File::open(p).expect("open the address file")),
                None => cmd.stdin(Stdio::null()),
            };
            let m = common::run_measured_usage(&mut cmd).expect("spawn");
            assert!(m.status.success(), "{cmd:?} failed");
            cpu.borrow_mut()[i].push(m.cpu);
        }));
    };
    let mut v = Command::new(&vmscope);
    v.args(["-p", &pid_s, "--batch", "-ex", &whatis_f]);
    add("vmscope whatis -f (1,000)", v, None);
    match &gimli {
        Some(g) => {
            let mut c = Command::new(g);
            c.args(["-f", "-i", "-C", "-e"]).arg(&bin);
            add("gimli addr2line -f -i -C", c, Some(link_file.clone()));
        }
        None => println!(
            "SKIPPED gimli addr2line: not found (cargo install addr2line --features bin, then \
             rename it gimli-addr2line or set VMSCOPE_GIMLI_ADDR2LINE)"
        ),
    }
    if common::on_path("addr2line") && gnu_addr2line() {
        let mut c = Command::new("addr2line");
        c.args(["-f", "-i", "-C", "-e"]).arg(&bin);
        add("GNU addr2line -f -i -C", c, Some(link_file.clone()));
    } else {
        println!("SKIPPED GNU addr2line: not on PATH (apt-get install binutils)");
    }
    if common::on_path("gdb") {
        let mut c = Command::new("gdb");
        c.args(["-nx", "-batch", "-x"]).arg(&gdb_cmds).arg(&bin);
        add("gdb info symbol + info line", c, None);
    } else {
        println!("SKIPPED gdb: not on PATH");
    }
    let mut c = Command::new(&vmscope);
    c.args(["-p", &pid_s, "--batch", "-ex", &first]);
    add("vmscope attach + first whatis", c, None);

    let rounds = common::rounds(5);
    println!("{rounds} rounds, interleaved...\n");
    let stats = run_alternating(rounds, &mut cases);
    drop(cases);
    let cpu = cpu.borrow();
    // The first sample of each case is the warm-up run: leave it out of the CPU medians.
    let cpu_median = |i: usize| common::Stats::of(cpu[i][1..].to_vec()).median;
    let find = |prefix: &str| names.iter().position(|n| n.starts_with(prefix));
    let base = find("gimli").map(|i| stats[i].median);
    let mut table = Table::new(&["case", "median", "min – max", "CPU (user+sys)", "vs gimli"]);
    for (i, (name, s)) in names.iter().zip(&stats).enumerate() {
        table.row(vec![
            name.clone(),
            common::fmt_duration(s.median),
            s.spread(),
            common::fmt_duration(cpu_median(i)),
            base.map_or("—".into(), |b| common::ratio(s.median, b)),
        ]);
    }
    table.print();
    println!();

    let v = find("vmscope whatis").expect("vmscope case");
    let first_i = find("vmscope attach").expect("first case");
    if let Some(g) = find("gimli") {
        let (wall, cpu_r) = (
            stats[v].median.as_secs_f64() / stats[g].median.as_secs_f64(),
            cpu_median(v).as_secs_f64() / cpu_median(g).as_secs_f64(),
        );
        println!(
            "budget ≤ 1.2× gimli addr2line: {wall:.2}× wall, {cpu_r:.2}× CPU — {}",
            verdict(wall <= 1.2)
        );
    }
    if let Some(gdb) = find("gdb") {
        let x = stats[gdb].median.as_secs_f64() / stats[v].median.as_secs_f64();
        println!(
            "budget ≥ 5× faster than gdb: {x:.1}× — {}",
            verdict(x >= 5.0)
        );
    }
    if let Some(gnu) = find("GNU") {
        let x = stats[gnu].median.as_secs_f64() / stats[v].median.as_secs_f64();
        println!("GNU addr2line / vmscope: {x:.1}×");
    }
    let f = stats[first_i].median;
    println!(
        "budget first whatis after attach < 100 ms: {} wall, {} CPU — {}",
        common::fmt_duration(f),
        common::fmt_duration(cpu_median(first_i)),
        verdict(f < Duration::from_millis(100))
    );
}

/// Like `common::run_interleaved`, but odd rounds run the cases in reverse order: a case that
/// runs right after gdb or GNU addr2line (which evict caches) is not always the same one.
fn run_alternating(rounds: usize, cases: &mut [Case<'_>]) -> Vec<common::Stats> {
    for case in cases.iter_mut() {
        (case.run)();
    }
    let mut samples = vec![Vec::with_capacity(rounds); cases.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..cases.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let t = std::time::Instant::now();
            (cases[i].run)();
            samples[i].push(t.elapsed());
        }
    }
    samples.into_iter().map(common::Stats::of).collect()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "within budget" } else { "OVER BUDGET" }
}

/// Removes the scratch directory on every way out.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// target/debug/vmscope, built into a separate target directory when the debug build is missing
/// (a separate directory so the build does not wait on the lock `cargo bench` holds).
fn debug_build() -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .to_path_buf();
    let existing = target_dir.join("debug/vmscope");
    if existing.is_file() {
        return existing;
    }
    let own = target_dir.join("bench-whatis");
    println!(
        "no debug build at {}: building one into {}",
        existing.display(),
        own.display()
    );
    let status = Command::new(env!("CARGO"))
        .args(["build", "--bin", "vmscope", "--target-dir"])
        .arg(&own)
        .current_dir(common::crate_dir())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build failed");
    own.join("debug/vmscope")
}

/// The load bias of `bin` in process `pid`: the start of its mapping at file offset 0, less the
/// first segment's page (zero for a position-independent executable).
fn wait_for_bias(pid: i32, bin: &Path) -> u64 {
    let layout = vmscope::regions::elf::LoadLayout::read(std::fs::File::open(bin).unwrap())
        .expect("program headers");
    for _ in 0..250 {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        let line = maps.lines().find(|l| {
            l.ends_with(bin.to_str().unwrap()) && l.split_whitespace().nth(2) == Some("00000000")
        });
        if let Some(line) = line {
            let start = u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
            return layout.bias(start, 0, 4096).expect("a bias");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the target never mapped {}", bin.display());
}

/// The gimli addr2line CLI, if installed.
fn gimli_addr2line() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VMSCOPE_GIMLI_ADDR2LINE") {
        return Some(PathBuf::from(p));
    }
    if common::on_path("gimli-addr2line") {
        return Some(PathBuf::from("gimli-addr2line"));
    }
    let version = Command::new("addr2line").arg("--version").output().ok()?;
    String::from_utf8_lossy(&version.stdout)
        .starts_with("addr2line 0.")
        .then(|| PathBuf::from("addr2line"))
}

/// Whether `addr2line` on PATH is GNU's.
fn gnu_addr2line() -> bool {
    Command::new("addr2line")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU"))
}

/// Checks, once, that vmscope's source line for each address is gimli's (the innermost frame),
/// and prints how many agree.
fn check_agreement(
    vmscope: &Path,
    pid: i32,
    runtime_file: &Path,
    gimli: Option<&Path>,
    bin: &Path,
    link: &[u64],
) {
    let out = Command::new(vmscope)
        .args(["-p", &pid.to_string(), "--batch", "--json", "-ex"])
        .arg(format!("whatis -f {}", runtime_file.display()))
        .output()
        .expect("run vmscope");
    assert!(
        out.status.success(),
        "vmscope whatis -f failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let results = doc["results"].as_array().expect("results");
    assert_eq!(results.len(), link.len());
    let ours: Vec<Option<String>> = results
        .iter()
        .map(|r| {
            let l = &r["location"];
            let file = l["file"].as_str()?;
            Some(match l["line"].as_u64() {
                Some(line) => format!("{file}:{line}"),
                None => format!("{file}:?"),
            })
        })
        .collect();
    let with_symbol = results.iter().filter(|r| !r["symbol"].is_null()).count();
    println!(
        "vmscope: {} of {} addresses with a source line, {with_symbol} with a symbol",
        ours.iter().flatten().count(),
        link.len()
    );
    let Some(gimli) = gimli else { return };
    let args: Vec<String> = link.iter().map(|a| format!("{a:#x}")).collect();
    let out = Command::new(gimli)
        .args(["-a", "-i", "-e"])
        .arg(bin)
        .args(&args)
        .output()
        .expect("run gimli addr2line");
    // -a -i: an address line, then one file:line per frame, innermost first.
    let text = String::from_utf8_lossy(&out.stdout);
    let mut theirs: Vec<Option<String>> = Vec::new();
    let mut expect_first = false;
    for line in text.lines() {
        if line.starts_with("0x") {
            theirs.push(None);
            expect_first = true;
        } else if expect_first {
            expect_first = false;
            let loc = line.split(" (discriminator").next().unwrap_or(line);
            if !loc.starts_with("??") {
                *theirs.last_mut().expect("an address first") = Some(loc.to_string());
            }
        }
    }
    let agree = ours.iter().zip(&theirs).filter(|(a, b)| a == b).count();
    println!(
        "source lines agreeing with gimli addr2line: {agree} of {}",
        link.len()
    );
    for (i, (a, b)) in ours
        .iter()
        .zip(&theirs)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .take(3)
    {
        println!("  differs at {:#x}: vmscope {a:?}, gimli {b:?}", link[i]);
    }
}
