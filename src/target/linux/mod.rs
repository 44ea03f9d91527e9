//! The live Linux backend. Passive by default: the memory map, threads and accounting come from
//! /proc, memory from `process_vm_readv` (falling back to /proc/PID/mem for what it refuses), and
//! the target keeps running. ptrace is taken only for `stop` and registers, through [`ptrace`].

pub mod hwbp;
pub mod launch;
pub mod maps;
pub mod pagemap;
pub mod perf;
pub mod procfs;
pub mod ptrace;
pub mod smaps;

use crate::addr::VirtAddr;
use crate::error::{Error, Result};
use crate::regions::{HoldsRegion, Region};
use crate::target::{ProcessFacts, Registers, StopReport, Target, TargetInfo, TargetKind, Thread};
use nix::errno::Errno;
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{ErrorKind, IoSliceMut};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Child;

/// A live process on this machine.
pub struct LinuxProcess {
    info: TargetInfo,
    /// The child process when vmscope started it: killed and reaped when dropped.
    child: Option<Child>,
    /// /proc/PID/mem, opened on first need.
    mem: Option<File>,
    tracer: Option<ptrace::Tracer>,
    /// Hardware watchpoints (`watch`), armed only while `watch_wait` runs.
    watches: hwbp::Watches,
}

impl LinuxProcess {
    /// /proc/PID/smaps, each region made a `T` as the parser completes it.
    fn smaps<T: HoldsRegion>(&mut self) -> Result<Vec<T>> {
        let path = format!("/proc/{}/smaps", self.pid());
        let file = File::open(&path).map_err(|e| self.io_error(&path, e))?;
        let regions = smaps::parse_smaps_into(file).map_err(|e| match e {
            smaps::SmapsError::Io(e) => self.io_error(&path, e),
            other => Error::BadFile {
                path: path.clone(),
                message: other.to_string(),
            },
        })?;
        if regions.is_empty() {
            self.ensure_alive()?;
        }
        Ok(regions)
    }

    /// Attaches passively to a running process: nothing is stopped or traced.
    pub fn attach(pid: i32) -> Result<LinuxProcess> {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        if pid <= 0 || !proc_dir.exists() {
            return Err(Error::NoSuchProcess { pid });
        }
        let mut p = LinuxProcess {
            info: TargetInfo {
                pid,
                exe: std::fs::read_link(proc_dir.join("exe")).ok(),
                arch: std::env::consts::ARCH,
                kind: TargetKind::Attached,
                page_size: page_size(),
                user_space: crate::target::UserSpace::linux(std::env::consts::ARCH),
            },
            child: None,
            mem: None,
            tracer: None,
            watches: hwbp::Watches::default(),
        };
        // Fail now, with the fix named, if we may not look at it: the kernel checks access when
        // the file is opened, so there is no need to read a map that may be 60,000 lines long.
        let maps = format!("/proc/{pid}/maps");
        if let Err(e) = File::open(&maps) {
            return Err(p.io_error(&maps, e));
        }
        if p.state()? == 'Z' {
            return Err(p.exited());
        }
        Ok(p)
    }

    /// Starts `program` with `args` (stdio inherited), runs it to its entry point so its libraries
    /// are loaded ([`launch`]), and attaches to it. It is killed when the
    /// target is dropped, as gdb does with the programs it runs.
    pub fn launch(program: &Path, args: &[String]) -> Result<LinuxProcess> {
        Self::adopt(launch::start(program, args)?)
    }

    /// Takes ownership of a child process started elsewhere (the demo target).
    pub fn adopt(child: Child) -> Result<LinuxProcess> {
        let pid = child.id() as i32;
        ptrace::emergency::add_launched(pid);
        let mut p = LinuxProcess {
            info: TargetInfo {
                pid,
                exe: std::fs::read_link(format!("/proc/{pid}/exe")).ok(),
                arch: std::env::consts::ARCH,
                kind: TargetKind::Launched,
                page_size: page_size(),
                user_space: crate::target::UserSpace::linux(std::env::consts::ARCH),
            },
            child: Some(child),
            mem: None,
            tracer: None,
            watches: hwbp::Watches::default(),
        };
        // Right after fork, exe may still name vmscope itself; read it again once exec is done.
        if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) {
            p.info.exe = Some(exe);
        }
        Ok(p)
    }

    fn pid(&self) -> i32 {
        self.info.pid
    }

    /// Reads /proc/PID/NAME, mapping "gone" and "refused" to the errors users need.
    fn proc_read(&mut self, name: &str) -> Result<Vec<u8>> {
        let path = format!("/proc/{}/{name}", self.pid());
        std::fs::read(&path).map_err(|e| self.io_error(&path, e))
    }

    fn io_error(&mut self, what: &str, e: std::io::Error) -> Error {
        match e.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ENOENT) | Some(Errno::ESRCH) => self.exited(),
            Some(Errno::EACCES) | Some(Errno::EPERM) => Error::Permission {
                what: format!("reading {what}"),
                fix: "run vmscope as the process's user, as root, or with CAP_SYS_PTRACE".into(),
            },
            _ => Error::io(what.to_string(), e),
        }
    }

    /// The error for a target that is gone, with its exit status when we can learn it. ptrace
    /// lets go first: the threads of a dead process stay unreaped zombies, which its parent
    /// cannot collect, until their tracer reaps them.
    fn exited(&mut self) -> Error {
        self.tracer = None;
        let status = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
            .map(describe_status);
        Error::Exited {
            pid: self.pid(),
            status,
        }
    }

    fn state(&mut self) -> Result<char> {
        let stat = self.proc_read("stat")?;
        let stat = String::from_utf8_lossy(&stat);
        Ok(procfs::Stat::parse(&stat).map_or('?', |s| s.state()))
    }

    /// Checks the process still runs (a zombie counts as exited).
    fn ensure_alive(&mut self) -> Result<()> {
        match self.state()? {
            'Z' | 'X' => Err(self.exited()),
            _ => Ok(()),
        }
    }

    fn read_proc_mem(&mut self, addr: VirtAddr, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.mem.is_none() {
            self.mem = Some(File::open(format!("/proc/{}/mem", self.pid()))?);
        }
        let mem = self.mem.as_ref().expect("opened above");
        let mut done = 0;
        while done < buf.len() {
            match mem.read_at(&mut buf[done..], addr.get() + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(done)
    }

    /// A pagemap failure: "exited" when the process is gone (a zombie reads as nothing).
    fn pagemap_error(&mut self, e: std::io::Error) -> Error {
        if let Err(exited) = self.ensure_alive() {
            return exited;
        }
        self.io_error(&format!("/proc/{}/pagemap", self.pid()), e)
    }

    fn main_tid_or(&self, tid: Option<i32>) -> i32 {
        tid.unwrap_or(self.pid())
    }
}

impl Drop for LinuxProcess {
    fn drop(&mut self) {
        self.tracer = None; // detaches
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            ptrace::emergency::remove_launched(self.info.pid);
        }
    }
}

impl Target for LinuxProcess {
    fn info(&self) -> &TargetInfo {
        &self.info
    }

    fn regions(&mut self) -> Result<Vec<Region>> {
        let text = self.proc_read("maps")?;
        if text.is_empty() {
            // A zombie (or a kernel thread) has no memory map.
            self.ensure_alive()?;
        }
        maps::parse_maps(&text).map_err(|e| Error::BadFile {
            path: format!("/proc/{}/maps", self.pid()),
            message: e.to_string(),
        })
    }

    fn regions_with_usage(&mut self) -> Result<Vec<Region>> {
        self.smaps()
    }

    fn explained_with_usage(&mut self) -> Option<Result<Vec<crate::regions::classify::Explained>>> {
        Some(self.smaps())
    }

    fn mapped_file(&mut self, region: &Region) -> Result<File> {
        // map_files/ opens the very inode mapped (deleted or replaced files too; needs
        // CAP_SYS_ADMIN); root/ resolves the path in the target's mount namespace.
        let by_range = format!(
            "/proc/{}/map_files/{:x}-{:x}",
            self.pid(),
            region.start.get(),
            region.end.get()
        );
        if let Ok(f) = File::open(&by_range) {
            return Ok(f);
        }
        let path = region
            .backing
            .path()
            .ok_or_else(|| Error::usage(format!("the region at {} maps no file", region.start)))?;
        let rooted = Path::new(&format!("/proc/{}/root", self.pid()))
            .join(path.strip_prefix("/").unwrap_or(path));
        File::open(&rooted)
            .or_else(|_| File::open(path))
            .map_err(|e| Error::io(path.display().to_string(), e))
    }

    fn read(&mut self, addr: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let pid = Pid::from_raw(self.pid());
        let remote = [RemoteIoVec {
            base: addr.get() as usize,
            len: buf.len(),
        }];
        let mut done = match process_vm_readv(pid, &mut [IoSliceMut::new(buf)], &remote) {
            Ok(n) => n,
            Err(Errno::ESRCH) => return Err(self.exited()),
            Err(Errno::EFAULT) | Err(Errno::EPERM) | Err(Errno::EIO) => 0,
            Err(errno) => {
                return Err(Error::Sys {
                    context: format!("process_vm_readv at {addr}"),
                    errno,
                });
            }
        };
        if done < buf.len() {
            // process_vm_readv refuses pages without PROT_READ; /proc/PID/mem reads them.
            let at = VirtAddr(addr.get() + done as u64);
            match self.read_proc_mem(at, &mut buf[done..]) {
                Ok(n) => done += n,
                Err(e) if done == 0 => {
                    return Err(match e.raw_os_error().map(Errno::from_raw) {
                        Some(Errno::ESRCH) | Some(Errno::ENOENT) => self.exited(),
                        Some(Errno::EACCES) | Some(Errno::EPERM) => Error::Permission {
                            what: format!("reading memory of process {}", self.pid()),
                            fix:
                                "run vmscope as the process's user, as root, or with CAP_SYS_PTRACE"
                                    .into(),
                        },
                        _ => Error::Unreadable {
                            addr,
                            len: buf.len(),
                            reason: unreadable_reason(&e),
                        },
                    });
                }
                Err(_) => {}
            }
        }
        if done == 0 {
            self.ensure_alive()?;
            return Err(Error::Unreadable {
                addr,
                len: buf.len(),
                reason: "not mapped".into(),
            });
        }
        Ok(done)
    }

    fn threads(&mut self) -> Result<Vec<Thread>> {
        self.ensure_alive()?;
        let pid = self.pid();
        let mut threads = Vec::new();
        for tid in task_ids(pid)? {
            let dir = format!("/proc/{pid}/task/{tid}");
            let Ok(stat) = std::fs::read_to_string(format!("{dir}/stat")) else {
                continue; // exited meanwhile
            };
            let Some(stat) = procfs::Stat::parse(&stat) else {
                continue;
            };
            let syscall = std::fs::read_to_string(format!("{dir}/syscall"))
                .ok()
                .and_then(|s| procfs::parse_syscall(&s));
            let mut thread = Thread {
                tid,
                name: stat.comm.to_string(),
                state: stat.state(),
                syscall: syscall.as_ref().and_then(|s| s.syscall()),
                sp: syscall.as_ref().map(|s| s.sp),
                pc: syscall.as_ref().map(|s| s.pc),
            };
            if let Some(regs) = self.tracer.as_ref().and_then(|t| t.registers(tid).ok()) {
                thread.sp = regs.get("sp").map(VirtAddr);
                thread.pc = regs.get("pc").map(VirtAddr);
            }
            threads.push(thread);
        }
        Ok(threads)
    }

    fn facts(&mut self) -> Result<ProcessFacts> {
        let mut facts = ProcessFacts::default();
        let status = self.proc_read("status")?;
        procfs::parse_status(&String::from_utf8_lossy(&status), &mut facts);
        let stat = self.proc_read("stat")?;
        let stat = String::from_utf8_lossy(&stat);
        if let Some(stat) = procfs::Stat::parse(&stat) {
            procfs::parse_faults(&stat, &mut facts);
            if matches!(stat.state(), 'Z' | 'X') {
                return Err(self.exited());
            }
        }
        facts.cmdline = procfs::parse_cmdline(&self.proc_read("cmdline")?);
        Ok(facts)
    }

    fn registers(&mut self, tid: Option<i32>) -> Result<Registers> {
        let tid = self.main_tid_or(tid);
        match &self.tracer {
            Some(t) if t.is_stopped() => t.registers(tid),
            _ => Err(Error::NotStopped {
                pid: self.pid(),
                what: "registers".into(),
            }),
        }
    }

    fn stop(&mut self) -> Result<StopReport> {
        self.ensure_alive()?;
        let stopped = match &mut self.tracer {
            Some(t) => t.stop_again(),
            None => ptrace::Tracer::stop_all(self.info.pid).map(|t| self.tracer = Some(t)),
        };
        if let Err(e) = stopped {
            // Let go now (reaping what exited) rather than hold a dead process's threads.
            self.tracer = None;
            return Err(e);
        }
        let tids = self.tracer.as_ref().map(|t| t.tids()).unwrap_or_default();
        Ok(StopReport {
            pid: self.pid(),
            threads: tids,
        })
    }

    fn pages(&mut self, range: std::ops::Range<VirtAddr>) -> Result<crate::pages::PageScan> {
        pagemap::pages(self.pid(), range).map_err(|e| self.pagemap_error(e))
    }

    fn page_entries(&mut self, start: VirtAddr, count: usize) -> Result<crate::pages::PageEntries> {
        pagemap::entries(self.pid(), start, count).map_err(|e| self.pagemap_error(e))
    }

    fn frames(&mut self, pfns: &[u64]) -> Result<Vec<crate::pages::Frame>> {
        Ok(pagemap::frames(pfns))
    }

    fn signal(&mut self, signal: &str, pid: Option<i32>) -> Result<crate::target::SignalSent> {
        use nix::sys::signal::Signal;
        let upper = signal.to_ascii_uppercase();
        let sig = match upper.parse::<i32>() {
            Ok(n) => Signal::try_from(n).ok(),
            Err(_) if upper.starts_with("SIG") => upper.parse().ok(),
            Err(_) => format!("SIG{upper}").parse().ok(),
        }
        .ok_or_else(|| {
            Error::usage(format!(
                "`{signal}` is not a signal (try SIGUSR1, USR1, 10)"
            ))
        })?;
        let pid = pid.unwrap_or(self.pid());
        if pid == self.pid() {
            // kill(2) succeeds on a zombie: it must say the process exited instead.
            self.ensure_alive()?;
        }
        nix::sys::signal::kill(Pid::from_raw(pid), sig).map_err(|errno| match errno {
            Errno::ESRCH if pid == self.pid() => self.exited(),
            Errno::ESRCH => Error::NoSuchProcess { pid },
            Errno::EPERM => Error::Permission {
                what: format!("sending {} to process {pid}", sig.as_str()),
                fix: "run vmscope as the process's user or as root".into(),
            },
            errno => Error::Sys {
                context: format!("kill({pid}, {})", sig.as_str()),
                errno,
            },
        })?;
        Ok(crate::target::SignalSent {
            name: sig.as_str(),
            pid,
            fate: signal_fate(pid, sig as i32),
        })
    }

    /// Resumes by detaching: a target left running must not stay traced, or the first signal
    /// it receives would stop it in a signal-delivery-stop that nobody waits for. `stop` seizes
    /// it again.
    fn resume(&mut self) -> Result<()> {
        match self.tracer.take() {
            Some(mut t) => t.detach_all(),
            None => Err(Error::usage(format!(
                "process {} is not stopped by vmscope",
                self.pid()
            ))),
        }
    }

    fn watch_set(
        &mut self,
        expression: &str,
        addr: VirtAddr,
        len: u64,
        access: crate::target::WatchAccess,
        passive: bool,
    ) -> Result<crate::target::WatchInfo> {
        self.ensure_alive()?;
        self.watches.add(expression, addr, len, access, passive)
    }

    fn watch_book(&mut self) -> Option<&mut crate::target::debugreg::Watches> {
        Some(&mut self.watches)
    }

    fn watch_wait(
        &mut self,
        until: Option<std::time::Instant>,
        max_hits: Option<u64>,
        on_event: &mut dyn FnMut(&mut dyn Target, crate::target::WatchEvent<'_>) -> Result<()>,
    ) -> Result<crate::target::WatchRun> {
        hwbp::wait(self, until, max_hits, on_event)
    }

    fn sample_faults(
        &mut self,
        major_only: bool,
        until: Option<std::time::Instant>,
        tick: std::time::Duration,
        on_batch: &mut dyn FnMut(&[crate::target::FaultSample]) -> Result<()>,
    ) -> Result<crate::target::FaultTotals> {
        self.ensure_alive()?;
        perf::sample_faults(self.pid(), major_only, until, tick, on_batch)
    }

    fn detach(&mut self) -> Result<()> {
        if let Some(mut t) = self.tracer.take() {
            t.detach_all()?;
        }
        Ok(())
    }

    fn is_stopped(&self) -> bool {
        self.tracer.as_ref().is_some_and(|t| t.is_stopped())
    }
}

/// The thread ids of a process, from /proc/PID/task.
/// Whether process `pid` still runs: its /proc stat is there and says neither zombie nor dead.
pub fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|text| procfs::Stat::parse(&text).map(|s| s.state()))
        .is_some_and(|state| !matches!(state, 'Z' | 'X'))
}

pub fn task_ids(pid: i32) -> Result<Vec<i32>> {
    let dir = format!("/proc/{pid}/task");
    let entries = std::fs::read_dir(&dir).map_err(|e| match e.kind() {
        ErrorKind::NotFound => Error::Exited { pid, status: None },
        _ => Error::io(dir.clone(), e),
    })?;
    let mut tids: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |v| v as u64)
}

fn unreadable_reason(e: &std::io::Error) -> String {
    match e.raw_os_error().map(Errno::from_raw) {
        Some(Errno::EIO) | Some(Errno::EFAULT) => "not mapped".into(),
        _ => e.to_string(),
    }
}

/// "exit code 3" or "killed by SIGKILL".
/// What became of signal `sig` just sent to `pid` with kill(2): watched in /proc/PID/status
/// until it leaves the process's pending set, for up to [`SIGNAL_PATIENCE`], so that a command
/// after `signal` sees what the handler did (the demo's copy-on-write step relies on it).
fn signal_fate(pid: i32, sig: i32) -> crate::target::SignalFate {
    use crate::target::SignalFate;
    const SIGNAL_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);
    let bit = 1u64 << (sig - 1);
    let deadline = std::time::Instant::now() + SIGNAL_PATIENCE;
    loop {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            return SignalFate::Delivered; // gone: the signal ended it
        };
        if text.contains("\nState:\tZ") || text.contains("\nState:\tX") {
            return SignalFate::Delivered; // it ended the process
        }
        let masks = procfs::parse_signal_masks(&text);
        if masks.ignored & bit != 0 && masks.shared_pending & bit == 0 {
            return SignalFate::Ignored;
        }
        if masks.shared_pending & bit == 0 {
            return SignalFate::Delivered;
        }
        if std::time::Instant::now() >= deadline {
            return SignalFate::Pending;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

pub fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exit code {code}")
    } else if let Some(sig) = status.signal() {
        match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("killed by {}", s.as_str()),
            Err(_) => format!("killed by signal {sig}"),
        }
    } else {
        status.to_string()
    }
}
