//! Shared support for the benches in `bench/`: timing (median, min, max over interleaved rounds),
//! human durations and ratios, an aligned table printer, fixture programs built with the system C
//! compiler, and guards that kill what a bench started (on every exit path a destructor sees,
//! panics included) and undo the one system setting a bench may change (`vm.max_map_count`).
//!
//! Nothing here asserts on time: the benches print numbers and ratios for people to read.
#![allow(dead_code)] // each bench uses a subset

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Timing

/// Summary of the samples of one case.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub runs: usize,
    pub median: Duration,
    pub min: Duration,
    pub max: Duration,
    /// Median CPU time (user + system) of this process and of the children it reaped during a
    /// run, when [`run_interleaved`] measured it. On a loaded machine wall time includes waiting
    /// for a CPU; this does not.
    pub cpu: Option<Duration>,
}

impl Stats {
    /// The median (mean of the middle two for an even count), min and max of `samples`.
    pub fn of(mut samples: Vec<Duration>) -> Stats {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2
        };
        Stats {
            runs: n,
            median,
            min: samples[0],
            max: samples[n - 1],
            cpu: None,
        }
    }

    /// The median CPU time, or `—` when it was not measured.
    pub fn cpu_text(&self) -> String {
        self.cpu.map_or("—".into(), fmt_duration)
    }

    /// `min – max`, for the spread column.
    pub fn spread(&self) -> String {
        format!("{} – {}", fmt_duration(self.min), fmt_duration(self.max))
    }
}

/// One thing to time: a name and the work of one run.
pub struct Case<'a> {
    pub name: String,
    pub run: Box<dyn FnMut() + 'a>,
}

impl<'a> Case<'a> {
    pub fn new(name: impl Into<String>, run: impl FnMut() + 'a) -> Case<'a> {
        Case {
            name: name.into(),
            run: Box::new(run),
        }
    }
}

/// Runs every case once to warm up, then `rounds` rounds in which each case runs once, in
/// order. Interleaving spreads the drift of a shared, noisy machine over all cases instead of
/// charging it to whichever ran during a busy second. Wall time and CPU time (see
/// [`cpu_time`]) are both recorded.
pub fn run_interleaved(rounds: usize, cases: &mut [Case<'_>]) -> Vec<Stats> {
    for case in cases.iter_mut() {
        (case.run)();
    }
    let mut wall = vec![Vec::with_capacity(rounds); cases.len()];
    let mut cpu = vec![Vec::with_capacity(rounds); cases.len()];
    for _ in 0..rounds {
        for ((case, wall), cpu) in cases.iter_mut().zip(wall.iter_mut()).zip(cpu.iter_mut()) {
            let c = cpu_time();
            let t = Instant::now();
            (case.run)();
            wall.push(t.elapsed());
            cpu.push(cpu_time().saturating_sub(c));
        }
    }
    wall.into_iter()
        .zip(cpu)
        .map(|(wall, cpu)| Stats {
            cpu: Some(Stats::of(cpu).median),
            ..Stats::of(wall)
        })
        .collect()
}

/// CPU time used so far by this process (all threads, nanosecond clock) plus by every child it
/// has reaped (`RUSAGE_CHILDREN`, microseconds): the difference across a run is that run's CPU
/// cost, whether the work happened here or in a process it started and waited for.
pub fn cpu_time() -> Duration {
    // SAFETY: both are plain C structs the calls fill in; all-zero is a valid value of each.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    let mut children: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointers are to live locals of the types the calls expect.
    let (r1, r2) = unsafe {
        (
            libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts),
            libc::getrusage(libc::RUSAGE_CHILDREN, &mut children),
        )
    };
    let mut total = Duration::ZERO;
    if r1 == 0 {
        total += Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    }
    if r2 == 0 {
        total += timeval(children.ru_utime) + timeval(children.ru_stime);
    }
    total
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

/// How many rounds to run: `VMSCOPE_BENCH_ITERS` when set, else `default`.
pub fn rounds(default: usize) -> usize {
    std::env::var("VMSCOPE_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// A duration with three significant digits and a unit that fits: `812 ns`, `14.2 µs`,
/// `3.07 ms`, `1.25 s`.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

/// `a / b` as `2.31×` (`—` when `b` is zero).
pub fn ratio(a: Duration, b: Duration) -> String {
    if b.is_zero() {
        return "—".into();
    }
    let r = a.as_secs_f64() / b.as_secs_f64();
    if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

/// A size in KiB as `812 KiB` or `14.3 MiB`.
pub fn fmt_kib(kib: u64) -> String {
    if kib < 1024 {
        format!("{kib} KiB")
    } else {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Tables

/// A text table: the first column left-aligned, the others right-aligned (they hold numbers).
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.headers.len(), "row width");
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, (cell, &w)) in cells.iter().zip(&widths).enumerate() {
                let pad = " ".repeat(w - width(cell));
                if i == 0 {
                    let _ = write!(out, "{cell}{pad}");
                } else {
                    let _ = write!(out, "  {pad}{cell}");
                }
            }
            out.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.headers);
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        out += &line(&rule);
        for row in &self.rows {
            out += &line(row);
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A child process that is killed and reaped when dropped, on every path out of a bench that
/// runs destructors (return, `?`, panic with unwinding). The fixtures also ask the kernel to
/// kill them if the bench dies without unwinding (PR_SET_PDEATHSIG).
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd` to the end and returns how long it took (spawn to reap), its status and its peak
/// resident set in KiB (`ru_maxrss` from `wait4`, the child's own, not the sum of all children).
pub fn run_measured(cmd: &mut Command) -> std::io::Result<(Duration, ExitStatus, u64)> {
    let m = run_measured_usage(cmd)?;
    Ok((m.elapsed, m.status, m.max_rss_kib))
}

/// What [`run_measured_usage`] learnt about one run of a command.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// Spawn to reap.
    pub elapsed: Duration,
    pub status: ExitStatus,
    /// The child's own peak resident set (`ru_maxrss`), KiB.
    pub max_rss_kib: u64,
    /// The child's own user + system CPU time.
    pub cpu: Duration,
}

/// Runs `cmd` to the end; its time, status, peak RSS and CPU time from `wait4`.
///
/// The peak RSS is the larger of the child's own and the anonymous memory this process holds
/// when it starts the child (a few hundred KiB to a few MiB for a bench that holds little; more
/// if a library it called left memory in a thread's malloc arena). [`exact_peak_rss`] has no
/// such floor. `cmd` is started with fork + exec, not `posix_spawn`. With `posix_spawn`
/// (std's default, a vfork) the child execs from this process's own address space, and the
/// kernel carries that address space's peak RSS into the child's `ru_maxrss` at exec, so every
/// child would report at least the bench's own peak. After a fork, the copy the child execs
/// from holds only the pages of mappings with anonymous memory, and the allocator's free memory
/// is given back first (`malloc_trim`).
pub fn run_measured_usage(cmd: &mut Command) -> std::io::Result<Measured> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    /// Marks a command that already has the no-op `pre_exec` hook, so it is added only once.
    const FORKED: &str = "VMSCOPE_BENCH_FORK_SPAWN";
    if !cmd.get_envs().any(|(k, _)| k == FORKED) {
        cmd.env(FORKED, "1");
        // SAFETY: the hook does nothing, so it is trivially async-signal-safe; it exists only
        // because std falls back from posix_spawn to fork + exec when a command has one.
        unsafe {
            cmd.pre_exec(|| Ok(()));
        }
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the kernel; no pointer is involved.
    unsafe {
        libc::malloc_trim(0);
    }
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills in; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own unreaped child (std never waits for it: we drop `child`
        // without calling wait), and both out-pointers point to live locals of the right types.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let elapsed = start.elapsed();
    drop(child); // already reaped: dropping a std Child neither kills nor waits
    Ok(Measured {
        elapsed,
        status: ExitStatus::from_raw(status),
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
    })
}

/// Runs `cmd` once with its output captured, and fails with what it printed unless it exits 0.
pub fn run_checked(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

/// Whether `program` can be found on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(program);
            p.is_file()
                && std::fs::metadata(&p)
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
                    .unwrap_or(false)
        })
    })
}

/// This process's own peak RSS in KiB (`VmHWM` of /proc/self/status): unlike `ru_maxrss`, it
/// starts afresh at exec, so a child can report it exactly.
pub fn own_peak_rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// The crate's root directory.
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The release vmscope binary the running bench was built with (cargo builds the crate's binaries
/// before its benches, into target/release), built with `cargo build --release` if missing.
pub fn vmscope_binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_vmscope"));
    if !bin.is_file() {
        println!("{} is missing: cargo build --release", bin.display());
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--bin", "vmscope"])
            .current_dir(crate_dir())
            .status()
            .expect("run cargo build --release");
        assert!(status.success(), "cargo build --release failed");
    }
    bin
}

/// Builds fixtures/NAME.c with `cc -O2` into the target directory (rebuilt when the source is
/// newer) and returns the binary.
pub fn build_fixture(name: &str) -> PathBuf {
    build_c(&crate_dir().join(format!("fixtures/{name}.c")), name)
}

/// Builds the C program `src` with `cc -O2` into the target directory as `bench-NAME` (rebuilt
/// when the source is newer) and returns the binary.
pub fn build_c(src: &Path, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(dir).expect("create the target tmp directory");
    let out = dir.join(format!("bench-{name}"));
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(bin), Some(source)) = (modified(&out), modified(src))
        && bin >= source
    {
        return out;
    }
    // Build beside, then rename: benches running at the same time never see half a binary.
    let tmp = dir.join(format!("bench-{name}.{}.tmp", std::process::id()));
    let status = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&tmp)
        .arg(src)
        .status()
        .expect("run cc (the benches need a C compiler)");
    assert!(status.success(), "cc failed to build {}", src.display());
    std::fs::rename(&tmp, &out).expect("move the built binary into place");
    out
}

/// The exact peak RSS (KiB) and CPU time of one run of `cmd`'s program, arguments, environment
/// and directory, measured through bench/spawn_rss.c: a small helper forks and runs it, so unlike
/// [`run_measured`] the figure carries none of this process's memory. The command's stdout is
/// discarded (its stdin and stderr are null). Costs one extra fork + exec: use it outside the
/// timed runs.
pub fn exact_peak_rss(cmd: &Command) -> Result<(u64, Duration), String> {
    let helper = build_c(&crate_dir().join("bench/spawn_rss.c"), "spawn_rss");
    let mut c = Command::new(helper);
    c.arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => c.env(key, v),
            None => c.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        c.current_dir(dir);
    }
    c.stderr(Stdio::null());
    let out = run_checked(&mut c)?;
    let field = |name: &str| -> Result<u64, String> {
        out.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("spawn_rss printed {out:?}"))
    };
    if field("status")? != 0 {
        return Err(format!(
            "{:?} failed under spawn_rss (wait status {})",
            cmd.get_program(),
            field("status")?
        ));
    }
    let cpu = Duration::from_micros(field("utime_us")? + field("stime_us")?);
    Ok((field("maxrss_kib")?, cpu))
}

/// [`exact_peak_rss`] over `runs` runs: the largest peak, as text (`unmeasured: why` on error).
pub fn exact_peak_rss_text(cmd: &Command, runs: usize) -> String {
    let mut peak = 0;
    for _ in 0..runs.max(1) {
        match exact_peak_rss(cmd) {
            Ok((kib, _)) => peak = peak.max(kib),
            Err(e) => return format!("unmeasured: {e}"),
        }
    }
    fmt_kib(peak)
}

/// A running fixtures/many_maps.c and what it said about itself; killed on drop.
pub struct ManyMaps {
    pub child: ChildGuard,
    pub pid: i32,
    pub mappings: u64,
    /// A readable page whose first 8 bytes hold `first_value`.
    pub first_page: u64,
    pub first_value: u64,
}

impl ManyMaps {
    /// Starts many_maps with `n` mappings and waits for its JSON line.
    pub fn start(n: u64) -> Result<ManyMaps, String> {
        let bin = build_fixture("many_maps");
        let mut child = Command::new(&bin)
            .arg(n.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let child = ChildGuard(child);
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading many_maps' output: {e}"))?;
        if line.trim().is_empty() {
            let mut why = String::new();
            let _ = stderr.read_to_string(&mut why);
            return Err(format!("many_maps {n} did not start:\n{why}"));
        }
        let facts: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| format!("many_maps printed {line:?}, not JSON: {e}"))?;
        let hex = |key: &str| {
            facts[key]
                .as_str()
                .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                .ok_or_else(|| format!("many_maps' {key} in {line:?}"))
        };
        Ok(ManyMaps {
            pid: child.pid(),
            mappings: facts["mappings"].as_u64().ok_or("many_maps' mappings")?,
            first_page: hex("first_page")?,
            first_value: hex("first_value")?,
            child,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// System settings

const MAX_MAP_COUNT: &str = "/proc/sys/vm/max_map_count";

fn read_max_map_count() -> Option<u64> {
    std::fs::read_to_string(MAX_MAP_COUNT)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Makes sure `vm.max_map_count` leaves room for `needed` mappings, raising it (as root) when it
/// does not and saying so; the old value is written back when this guard is dropped.
pub struct MaxMapCount {
    restore: Option<u64>,
}

impl MaxMapCount {
    pub fn ensure(needed: u64) -> MaxMapCount {
        const RAISED: u64 = 262_144;
        let Some(now) = read_max_map_count() else {
            println!("note: cannot read {MAX_MAP_COUNT}; assuming it is high enough");
            return MaxMapCount { restore: None };
        };
        if needed <= now {
            println!("vm.max_map_count = {now}: enough for {needed} mappings, left unchanged");
            return MaxMapCount { restore: None };
        }
        match std::fs::write(MAX_MAP_COUNT, RAISED.to_string()) {
            Ok(()) => {
                println!(
                    "NOTE: raised vm.max_map_count {now} -> {RAISED} (as `sysctl -w \
                     vm.max_map_count={RAISED}`) to fit {needed} mappings; it is set back to \
                     {now} when the bench ends"
                );
                MaxMapCount { restore: Some(now) }
            }
            Err(e) => {
                println!(
                    "WARNING: vm.max_map_count = {now} is below the {needed} mappings needed and \
                     cannot be raised ({e}); run as root or `sudo sysctl -w \
                     vm.max_map_count={RAISED}` first"
                );
                MaxMapCount { restore: None }
            }
        }
    }
}

impl Drop for MaxMapCount {
    fn drop(&mut self) {
        if let Some(old) = self.restore.take() {
            match std::fs::write(MAX_MAP_COUNT, old.to_string()) {
                Ok(()) => println!("vm.max_map_count set back to {old}"),
                Err(e) => eprintln!("WARNING: could not set vm.max_map_count back to {old}: {e}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Context

/// One line about the machine, so numbers pasted elsewhere say where they come from.
pub fn machine_summary() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{cpus} CPUs ({model}), Linux {kernel}, load average {load}")
}
