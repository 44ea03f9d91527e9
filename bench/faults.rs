//! The hardware at work, measured beside its peers in one run.
//!
//! 1. `faults` overhead per page fault. fixtures/faulty.c touches 1 GiB of fresh pages (262,144
//!    faults; it drops them with MADV_DONTNEED before each round) and times itself. Each round
//!    it runs: unobserved; under `vmscope faults`; under `perf record -e page-faults -c 1 -d -p
//!    PID` (when perf is installed). The overhead per fault is (observed − unobserved) / faults,
//!    from the target's own clock; vmscope's samples and lost count are checked every round.
//!    Budget (DESIGN.md): no more overhead than perf.
//! 2. `watch` cost per hit. fixtures/watched.c adds 1 to a global N times in a timed loop, under:
//!    nothing; `vmscope watch` (perf-sigtrap, and the debug-registers backend); gdb's hardware
//!    watchpoint (`watch -l` with a `commands` list that continues, gdb printing old and new
//!    values as vmscope does); gdb's software watchpoint (`set can-use-hw-watchpoints 0`, which
//!    single-steps). gdb runs get a fresh target each round: a gdb that is killed leaves its
//!    debug registers armed, and the next write would kill the target with SIGTRAP.
//!
//! `cargo bench --bench faults`; `VMSCOPE_BENCH_ITERS=N` sets the rounds (default 5),
//! `VMSCOPE_BENCH_ONLY=faults|watch` runs one half.

mod common;

use common::{ChildGuard, Table, fmt_duration};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GIB_PAGES: u64 = 262_144;
const WATCH_HITS: u64 = 2_000;
const SOFT_WATCH_HITS: u64 = 200;

fn main() {
    println!("vmscope bench: `faults` overhead per fault and `watch` cost per hit");
    println!("machine: {}", common::machine_summary());
    let rounds = common::rounds(5);
    let vmscope = PathBuf::from(env!("CARGO_BIN_EXE_vmscope"));
    let only = std::env::var("VMSCOPE_BENCH_ONLY").unwrap_or_default();
    if only != "watch" {
        faults(&vmscope, rounds);
        println!();
    }
    if only != "faults" {
        watch(&vmscope, rounds);
    }
}

/// A scratch directory under the target dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "bench-{tag}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fixture started with a scratch dir and an argument; its JSON facts.
struct Target {
    child: ChildGuard,
    facts: Value,
    dir: Scratch,
}

impl Target {
    fn start(name: &str, arg: u64) -> Target {
        let bin = common::build_fixture(name);
        let dir = Scratch::new(name);
        let mut child = Command::new(&bin)
            .arg(&dir.0)
            .arg(arg.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let facts = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
        Target {
            child: ChildGuard(child),
            facts,
            dir,
        }
    }

    fn pid(&self) -> i32 {
        self.child.pid()
    }

    fn addr(&self, key: &str) -> u64 {
        let s = self.facts[key].as_str().unwrap();
        u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill on a child this bench started.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for DIR/NAME and returns its whitespace-separated numbers.
    fn wait_file(&self, name: &str, secs: u64) -> Vec<u64> {
        let path = self.dir.0.join(name);
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "{} never appeared",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        text.split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    }
}

fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

fn perf_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|l| l.to_string_lossy().contains("perf_event"))
                .count()
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ns(v: f64) -> Duration {
    Duration::from_nanos(v.max(0.0) as u64)
}

// ---------------------------------------------------------------------------------------------
// faults

fn faults(vmscope: &Path, rounds: usize) {
    println!("== faults: touching 1 GiB of fresh pages ({GIB_PAGES} faults), {rounds} rounds ==");
    let target = Target::start("faulty", GIB_PAGES);
    let have_perf = common::on_path("perf");
    if !have_perf {
        println!("SKIPPED perf record: perf is not installed (Debian package linux-perf)");
    }
    let mut round_no = 0;
    let mut run_round = |target: &Target| -> (u64, u64) {
        round_no += 1;
        target.signal(libc::SIGUSR1);
        let v = target.wait_file(&format!("round-{round_no}"), 120);
        (v[0], v[1])
    };
    let mut base = Vec::new();
    let mut under_vmscope = Vec::new();
    let mut under_perf = Vec::new();
    let (mut vm_samples, mut vm_lost, mut perf_samples) = (Vec::new(), Vec::new(), Vec::new());
    let mut faults_seen = Vec::new();
    run_round(&target); // warm-up: first touch of the region, page tables built
    // The cases take turns in a rotating order, so the drift of a shared machine is spread over
    // all of them rather than charged to whichever runs at a given place in the round.
    let cases = if have_perf { 3 } else { 2 };
    for r in 0..rounds {
        for case in (0..cases).map(|i| (i + r) % cases) {
            match case {
                0 => {
                    let (f, t) = run_round(&target);
                    faults_seen.push(f as f64);
                    base.push(t as f64);
                }
                1 => {
                    // A run long enough to cover the round, ended by its own timer.
                    let last = base.last().copied().unwrap_or(2e9);
                    let secs = (last / 1e9 * 2.0 + 1.0).ceil() as u64;
                    let child = Command::new(vmscope)
                        .args(["-p", &target.pid().to_string(), "--batch", "--json", "-ex"])
                        .arg(format!("faults {secs}s --top 1"))
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("run vmscope");
                    let me = child.id();
                    assert!(
                        wait_until(20, || perf_fds(me) >= 2),
                        "vmscope did not start sampling"
                    );
                    let (_, t) = run_round(&target);
                    under_vmscope.push(t as f64);
                    let out = child.wait_with_output().unwrap();
                    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                        panic!(
                            "vmscope faults: {e}: {}",
                            String::from_utf8_lossy(&out.stderr)
                        )
                    });
                    vm_samples.push(doc["samples"].as_f64().unwrap());
                    vm_lost.push(doc["lost"].as_f64().unwrap());
                }
                _ => {
                    let data = target.dir.0.join("perf.data");
                    let mut perf = Command::new("perf")
                        .args(["record", "-e", "page-faults", "-c", "1", "-d", "-p"])
                        .arg(target.pid().to_string())
                        .arg("-o")
                        .arg(&data)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("run perf");
                    let me = perf.id();
                    assert!(wait_until(20, || perf_fds(me) >= 1), "perf did not start");
                    // perf opens its events before it enables them: give it a moment.
                    std::thread::sleep(Duration::from_millis(300));
                    let (_, t) = run_round(&target);
                    under_perf.push(t as f64);
                    // SAFETY: SIGINT to the perf we started: it writes its file and exits.
                    unsafe { libc::kill(me as i32, libc::SIGINT) };
                    let mut err = String::new();
                    perf.stderr
                        .take()
                        .unwrap()
                        .read_to_string(&mut err)
                        .unwrap();
                    let _ = perf.wait();
                    // "[ perf record: Captured and wrote 12.3 MB perf.data (262150 samples) ]"
                    let samples = err
                        .split("perf.data (")
                        .nth(1)
                        .and_then(|s| s.split_whitespace().next())
                        .and_then(|s| s.parse::<f64>().ok());
                    perf_samples.push(samples.unwrap_or(f64::NAN));
                    let _ = std::fs::remove_file(&data);
                }
            }
        }
    }
    let faults = median(faults_seen);
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let signed = |v: f64| {
        if v < 0.0 {
            format!("-{}", fmt_duration(ns(-v)))
        } else {
            fmt_duration(ns(v))
        }
    };
    let (b, b_min) = (median(base.clone()), min(&base));
    let mut table = Table::new(&[
        "case",
        "touch 1 GiB: median",
        "min",
        "per fault",
        "overhead/fault (median)",
        "(min)",
        "samples",
        "lost",
    ]);
    let mut row = |name: &str, runs: &[f64], samples: String, lost: String| -> (f64, f64) {
        let (m, lo) = (median(runs.to_vec()), min(runs));
        let (over, over_min) = ((m - b) / faults, (lo - b_min) / faults);
        let is_base = std::ptr::eq(runs, base.as_slice());
        table.row(vec![
            name.into(),
            fmt_duration(ns(m)),
            fmt_duration(ns(lo)),
            fmt_duration(ns(m / faults)),
            if is_base { "—".into() } else { signed(over) },
            if is_base {
                "—".into()
            } else {
                signed(over_min)
            },
            samples,
            lost,
        ]);
        (over, over_min)
    };
    row("no monitoring", &base, "—".into(), "—".into());
    let vm = row(
        "vmscope faults",
        &under_vmscope,
        format!("{:.0}", median(vm_samples)),
        format!("{:.0}", median(vm_lost)),
    );
    let pf = have_perf.then(|| {
        row(
            "perf record -e page-faults -c 1 -d",
            &under_perf,
            format!("{:.0}", median(perf_samples)),
            "—".into(),
        )
    });
    table.print();
    println!("faults per round: {faults:.0}");
    if let Some(pf) = pf {
        println!(
            "overhead per fault, vmscope vs perf: {} vs {} (medians), {} vs {} (minimums); \
             budget: vmscope ≤ perf. Differences below the round-to-round spread of the \
             unobserved runs are noise.",
            signed(vm.0),
            signed(pf.0),
            signed(vm.1),
            signed(pf.1)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// watch

/// One timed loop of `hits` writes under `observe`, which sets up the observer, returns a
/// closure that waits for it to be armed, and is torn down after.
fn timed_writes(target: &Target, seq: &mut u64) -> u64 {
    target.signal(libc::SIGALRM);
    *seq += 1;
    let want = *seq;
    let path = target.dir.0.join("actions");
    assert!(
        wait_until(600, || std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .is_some_and(|n| n >= want)),
        "the target never finished its writes"
    );
    target.wait_file("bench-ns", 5)[0]
}

fn vmscope_watch(vmscope: &Path, target: &Target, seq: &mut u64, backend: &str, hits: u64) -> u64 {
    let mut child = Command::new(vmscope)
        .args(["-p", &target.pid().to_string(), "--batch", "--json", "-ex"])
        .arg(format!(
            "watch {:#x} --count {hits}",
            target.addr("watched")
        ))
        .env("VMSCOPE_WATCH_BACKEND", backend)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run vmscope");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let armed = lines.next().expect("armed line").unwrap();
    assert!(armed.contains("\"watching\""), "{armed}");
    // Read the hits as they come: a full pipe would hold vmscope, and with it the hitting thread.
    let counter = std::thread::spawn(move || {
        lines
            .filter(|l| l.as_ref().is_ok_and(|l| l.contains("\"hit\"")))
            .count()
    });
    let t = timed_writes(target, seq);
    let _ = child.wait();
    let reported = counter.join().unwrap();
    assert_eq!(
        reported as u64, hits,
        "vmscope reported {reported} of {hits} hits"
    );
    t
}

fn gdb_watch(target: &Target, seq: &mut u64, hardware: bool) -> u64 {
    let script = target.dir.0.join("watch.gdb");
    std::fs::write(
        &script,
        format!(
            "set pagination off\nset confirm off\n{}handle SIGALRM nostop noprint pass\n\
             watch -l *(long *){:#x}\ncommands\ncontinue\nend\ncontinue\n",
            if hardware {
                ""
            } else {
                "set can-use-hw-watchpoints 0\n"
            },
            target.addr("watched")
        ),
    )
    .unwrap();
    let mut gdb = Command::new("gdb")
        .args(["-nx", "-q", "-batch", "-p", &target.pid().to_string(), "-x"])
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run gdb");
    let gdb_pid = gdb.id() as i32;
    let status = format!("/proc/{}/status", target.pid());
    // Attached and running again (gdb stops the target to attach, then continues it).
    assert!(
        wait_until(60, || std::fs::read_to_string(&status).is_ok_and(|s| {
            s.contains(&format!("TracerPid:\t{gdb_pid}")) && s.contains("State:\tS")
        })),
        "gdb did not attach"
    );
    std::thread::sleep(Duration::from_millis(300));
    let t = timed_writes(target, seq);
    let _ = gdb.kill();
    let _ = gdb.wait();
    t
}

fn watch(vmscope: &Path, rounds: usize) {
    println!("== watch: a loop of {WATCH_HITS} writes to a watched global, {rounds} rounds ==");
    let target = Target::start("watched", WATCH_HITS);
    let mut seq = 0;
    timed_writes(&target, &mut seq); // warm-up
    let (mut base, mut perf_trap, mut dregs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        base.push(timed_writes(&target, &mut seq) as f64);
        perf_trap
            .push(vmscope_watch(vmscope, &target, &mut seq, "perf-sigtrap", WATCH_HITS) as f64);
        dregs.push(vmscope_watch(vmscope, &target, &mut seq, "debug-registers", WATCH_HITS) as f64);
    }
    let b = median(base);
    let per_hit = |t: f64, hits: u64| ns((t - b * hits as f64 / WATCH_HITS as f64) / hits as f64);
    let mut table = Table::new(&["case", "hits", "loop (median)", "cost per hit"]);
    table.row(vec![
        "no watch".into(),
        "0".into(),
        fmt_duration(ns(b)),
        "—".into(),
    ]);
    let vp = median(perf_trap);
    table.row(vec![
        "vmscope watch (perf-sigtrap)".into(),
        WATCH_HITS.to_string(),
        fmt_duration(ns(vp)),
        fmt_duration(per_hit(vp, WATCH_HITS)),
    ]);
    let vd = median(dregs);
    table.row(vec![
        "vmscope watch (debug-registers)".into(),
        WATCH_HITS.to_string(),
        fmt_duration(ns(vd)),
        fmt_duration(per_hit(vd, WATCH_HITS)),
    ]);
    drop(target);
    if !common::on_path("gdb") {
        table.print();
        println!("SKIPPED gdb: gdb is not installed");
        return;
    }
    let (mut hw, mut sw) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Target::start("watched", WATCH_HITS);
        let mut seq = 0;
        hw.push(gdb_watch(&t, &mut seq, true) as f64);
        drop(t);
        let t = Target::start("watched", SOFT_WATCH_HITS);
        let mut seq = 0;
        sw.push(gdb_watch(&t, &mut seq, false) as f64);
    }
    let gh = median(hw);
    table.row(vec![
        "gdb watch -l (hardware)".into(),
        WATCH_HITS.to_string(),
        fmt_duration(ns(gh)),
        fmt_duration(per_hit(gh, WATCH_HITS)),
    ]);
    let gs = median(sw);
    table.row(vec![
        "gdb watch, can-use-hw-watchpoints 0 (software)".into(),
        SOFT_WATCH_HITS.to_string(),
        fmt_duration(ns(gs)),
        fmt_duration(per_hit(gs, SOFT_WATCH_HITS)),
    ]);
    table.print();
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    let v = per_hit(vp, WATCH_HITS);
    println!(
        "per hit: gdb hardware / vmscope = {:.2}×, gdb software / vmscope = {:.0}×",
        ratio(v, per_hit(gh, WATCH_HITS)),
        ratio(v, per_hit(gs, SOFT_WATCH_HITS))
    );
}
