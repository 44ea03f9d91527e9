//! The attach layer: everything that touches an operating system or a debugger host sits behind
//! the [`Target`] trait. Commands see only this trait; a backend that cannot do something answers
//! [`Error::Unsupported`], never a panic or a silent empty answer.

pub mod core;
pub mod debugreg;
#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(target_os = "macos")]
pub mod macos;
pub mod snapshot;
#[cfg(windows)]
pub mod windows;

use crate::addr::VirtAddr;
use crate::error::{Error, Result};
use crate::regions::Region;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What kind of thing is being inspected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A running process we attached to (`-p PID`, `attach PID`).
    Attached,
    /// A process vmscope started (`vmscope -- PROG`, `demo`): killed when vmscope exits.
    Launched,
    /// A saved snapshot (`vmscope --snapshot FILE`): the map and facts of a past moment, read-only.
    Snapshot,
    /// An ELF core file (`vmscope --core FILE`): a dead process's map, memory and registers.
    Core,
}

/// Facts fixed at attach time.
#[derive(Clone, Debug, Serialize)]
pub struct TargetInfo {
    pub pid: i32,
    #[serde(serialize_with = "crate::render::json::lossy_opt_path")]
    pub exe: Option<PathBuf>,
    pub arch: &'static str,
    pub kind: TargetKind,
    pub page_size: u64,
    /// The addresses the process can map: where `regions` counts free space.
    pub user_space: UserSpace,
}

/// The range of addresses a process may map, as its OS sets it: the free gaps of `regions` and
/// VMMap's "largest free block" are measured inside it. Each backend says what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct UserSpace {
    pub start: VirtAddr,
    pub end: VirtAddr,
    /// A higher top that applies once a mapping lies above `end`: Linux x86_64 with 5-level
    /// page tables hands out addresses above 47 bits only to a process that asks for them.
    pub extended_end: Option<VirtAddr>,
}

impl UserSpace {
    /// Linux on `arch`: from vm.mmap_min_addr (the default, 64 KiB, when it cannot be read) to
    /// TASK_SIZE: 47 bits less a page on x86_64 (56 with 5-level paging), 48 bits on aarch64
    /// (52 when asked for), 4 GiB less a page for 32-bit.
    pub fn linux(arch: &str) -> UserSpace {
        let start = std::fs::read_to_string("/proc/sys/vm/mmap_min_addr")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&v| v > 0)
            .unwrap_or(0x10000);
        let (end, extended_end) = match arch {
            "x86_64" => (0x7fff_ffff_f000, Some(0xff_ffff_ffff_f000)),
            "aarch64" => (1 << 48, Some(1 << 52)),
            "x86" | "arm" => (0xffff_f000, None),
            _ => (0x7fff_ffff_f000, None),
        };
        UserSpace {
            start: VirtAddr(start),
            end: VirtAddr(end),
            extended_end: extended_end.map(VirtAddr),
        }
    }
}

/// What `signal` did.
#[derive(Clone, Debug, Serialize)]
pub struct SignalSent {
    /// The signal's canonical name (`SIGUSR1`).
    pub name: &'static str,
    pub pid: i32,
    pub fate: SignalFate,
}

/// Where a sent signal was a moment later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalFate {
    /// Taken off the pending set: a handler ran (or is running), or the default action was
    /// taken (the process may have ended).
    Delivered,
    /// The process ignores it: the kernel dropped it.
    Ignored,
    /// Still pending after the wait: every thread blocks it, or the process is stopped.
    Pending,
}

/// A thread of the target.
#[derive(Clone, Debug, Serialize)]
pub struct Thread {
    pub tid: i32,
    pub name: String,
    /// The one-letter state of /proc (`R`, `S`, `D`, `T`, `t`, `Z`...).
    pub state: char,
    /// Where it is blocked, when it is: the syscall number and name.
    pub syscall: Option<Syscall>,
    /// Stack pointer and program counter, when known (blocked in a syscall or stopped).
    pub sp: Option<VirtAddr>,
    pub pc: Option<VirtAddr>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Syscall {
    pub number: i64,
    pub name: Option<&'static str>,
}

/// Whole-process facts for `info`, from the OS's own accounting.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProcessFacts {
    pub name: String,
    pub cmdline: Vec<String>,
    pub state: String,
    pub threads: u64,
    /// Sizes in bytes, as the kernel accounts them (None when the OS does not say).
    pub vm_size: Option<u64>,
    pub vm_rss: Option<u64>,
    pub rss_anon: Option<u64>,
    pub rss_file: Option<u64>,
    pub rss_shmem: Option<u64>,
    pub vm_swap: Option<u64>,
    pub minflt: Option<u64>,
    pub majflt: Option<u64>,
}

/// General registers of one stopped thread, by name (lower case, as gdb spells them).
#[derive(Clone, Debug, Serialize)]
pub struct Registers {
    pub tid: i32,
    pub values: Vec<(&'static str, u64)>,
}

impl Registers {
    /// The value of a register; `pc`, `sp` and `fp` are accepted as aliases of the x86_64
    /// names, and names the backend uses itself (aarch64's `pc`, `sp`) win over the aliases.
    pub fn get(&self, name: &str) -> Option<u64> {
        let find = |n: &str| self.values.iter().find(|(r, _)| *r == n).map(|&(_, v)| v);
        find(name).or_else(|| match name {
            "pc" => find("rip").or_else(|| find("eip")),
            "sp" => find("rsp").or_else(|| find("esp")),
            "fp" => find("rbp").or_else(|| find("x29")).or_else(|| find("ebp")),
            _ => None,
        })
    }
}

/// What a `stop` did.
#[derive(Clone, Debug, Serialize)]
pub struct StopReport {
    pub pid: i32,
    pub threads: Vec<i32>,
}

/// What a hardware watchpoint fires on. x86_64 has no read-only watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum WatchAccess {
    #[serde(rename = "w")]
    Write,
    #[serde(rename = "r")]
    Read,
    #[serde(rename = "rw")]
    ReadWrite,
}

/// A watchpoint as the target holds it (`watch`, `watches`).
#[derive(Clone, Debug, Serialize)]
pub struct WatchInfo {
    pub id: u32,
    pub expression: String,
    pub address: VirtAddr,
    pub len: u64,
    pub access: WatchAccess,
    /// Sampled with perf events, without ptrace: no values, works beside a debugger.
    pub passive: bool,
    /// The aligned pieces `(address, length)` that each take one hardware slot.
    pub slots: Vec<(VirtAddr, u8)>,
    pub hits: u64,
}

/// One hit of a watchpoint, reported while the hitting thread is held (not when passive).
#[derive(Clone, Debug)]
pub struct WatchHit {
    pub id: u32,
    pub tid: i32,
    pub pc: Option<VirtAddr>,
    /// The watched bytes before and after the access (None when passive).
    pub old: Option<Vec<u8>>,
    pub new: Option<Vec<u8>>,
    /// The watch's hit number since it was set.
    pub hit: u64,
}

/// What `watch_wait` reports while it runs.
#[derive(Clone, Copy, Debug)]
pub enum WatchEvent<'a> {
    /// Every watch is armed on every thread: accesses count from now on.
    Armed {
        backend: &'a str,
        threads: usize,
    },
    Hit(&'a WatchHit),
}

/// How one `watch_wait` went.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WatchRun {
    /// `perf-sigtrap`, `debug-registers` or `perf-sampling` (passive).
    pub backend: String,
    pub hits: u64,
    /// Passive hits the kernel counted but could not record (ring buffer full).
    pub lost: u64,
    /// Why it ended: `count`, `time`, `interrupted` or `exited`.
    pub ended: String,
}

/// One sampled page fault.
#[derive(Clone, Copy, Debug)]
pub struct FaultSample {
    pub tid: i32,
    /// The faulting instruction (a kernel address for faults taken inside a system call).
    pub pc: VirtAddr,
    /// The data address that faulted.
    pub addr: VirtAddr,
    pub time_ns: u64,
    pub major: bool,
}

/// What the kernel counted during a `sample_faults` run, beside the samples delivered.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FaultTotals {
    pub minor: u64,
    pub major: u64,
    /// Faults counted but not recorded (ring buffer full).
    pub lost: u64,
    /// The process exited before the run ended.
    pub exited: bool,
}

/// A process, core file or snapshot whose memory vmscope explains.
pub trait Target {
    fn info(&self) -> &TargetInfo;

    /// Every mapping, sorted by address.
    fn regions(&mut self) -> Result<Vec<Region>>;

    /// Every mapping with its memory usage (`Region::usage` filled), sorted by address.
    fn regions_with_usage(&mut self) -> Result<Vec<Region>> {
        Err(self.unsupported("memory usage per region"))
    }

    /// For a target that carries its classification with it (a saved snapshot): `regions`, as
    /// this target gave them, with their saved kinds and details; `classify::explain` returns
    /// these instead of classifying again. Others give the regions back (`Err`).
    #[allow(clippy::result_large_err)]
    fn classified(
        &mut self,
        regions: Vec<Region>,
    ) -> std::result::Result<Vec<crate::regions::classify::Explained>, Vec<Region>> {
        Err(regions)
    }

    /// [`Target::regions_with_usage`] with each region given its own kind as it is read
    /// ([`HoldsRegion::wrap`](crate::regions::HoldsRegion)), by a backend that streams its map:
    /// the Linux one does it on the thread parsing smaps while the kernel writes the rest. None
    /// from the others: `classify::explain_with_usage` then classifies what
    /// `regions_with_usage` gives.
    fn explained_with_usage(&mut self) -> Option<Result<Vec<crate::regions::classify::Explained>>> {
        None
    }

    /// Opens the file behind a file-backed region (the very file mapped, even when its path was
    /// deleted or replaced, where the OS allows).
    fn mapped_file(&mut self, region: &Region) -> Result<std::fs::File> {
        let path = region
            .backing
            .path()
            .ok_or_else(|| Error::usage(format!("the region at {} maps no file", region.start)))?;
        std::fs::File::open(path).map_err(|e| Error::io(path.display().to_string(), e))
    }

    /// Reads memory at `addr` into `buf`; returns how many bytes were read (fewer than asked when
    /// the range runs into unreadable memory). Reading nothing at all is an error.
    fn read(&mut self, addr: VirtAddr, buf: &mut [u8]) -> Result<usize>;

    fn threads(&mut self) -> Result<Vec<Thread>>;

    fn facts(&mut self) -> Result<ProcessFacts>;

    /// Registers of a thread (the main thread when `tid` is None); needs the target stopped.
    fn registers(&mut self, tid: Option<i32>) -> Result<Registers> {
        let _ = tid;
        Err(self.unsupported("registers"))
    }

    /// Stops every thread (ptrace on Linux).
    fn stop(&mut self) -> Result<StopReport> {
        Err(self.unsupported("stop"))
    }

    /// Page-table state over `range` (page aligned): the runs of present, swapped and guard
    /// pages (`translate`, `shared`). Core files and snapshots have no page tables.
    fn pages(&mut self, range: std::ops::Range<VirtAddr>) -> Result<crate::pages::PageScan> {
        let _ = range;
        Err(self.unsupported("reading page tables"))
    }

    /// The decoded page-table entries of `count` base pages from `start` (page aligned).
    fn page_entries(&mut self, start: VirtAddr, count: usize) -> Result<crate::pages::PageEntries> {
        let _ = (start, count);
        Err(self.unsupported("reading page tables"))
    }

    /// What the OS knows of physical frames (page flags, map counts), where it lets us see it.
    fn frames(&mut self, pfns: &[u64]) -> Result<Vec<crate::pages::Frame>> {
        let _ = pfns;
        Err(self.unsupported("reading physical page flags"))
    }

    /// Sends a signal (`SIGUSR1`, `USR1` or a number) to the target, or to `pid`, and says what
    /// became of it.
    fn signal(&mut self, signal: &str, pid: Option<i32>) -> Result<SignalSent> {
        let _ = (signal, pid);
        Err(self.unsupported("sending signals"))
    }

    /// Lets a stopped target run again.
    fn resume(&mut self) -> Result<()> {
        Err(self.unsupported("continue"))
    }

    /// Adds a hardware watchpoint on `len` bytes at `addr`; it is armed while `watch_wait`
    /// runs. Fails with the number of free slots when the hardware has too few.
    fn watch_set(
        &mut self,
        expression: &str,
        addr: VirtAddr,
        len: u64,
        access: WatchAccess,
        passive: bool,
    ) -> Result<WatchInfo> {
        let _ = (expression, addr, len, access, passive);
        Err(self.unsupported("hardware watchpoints"))
    }

    /// The watchpoints this target keeps, for a backend that has them: `watch_clear` and
    /// `watch_list` work on it.
    fn watch_book(&mut self) -> Option<&mut debugreg::Watches> {
        None
    }

    /// Removes watch `id`, or every watch; returns the ids removed.
    fn watch_clear(&mut self, id: Option<u32>) -> Result<Vec<u32>> {
        match self.watch_book() {
            Some(book) => book.clear(id),
            None => Err(self.unsupported("hardware watchpoints")),
        }
    }

    fn watch_list(&mut self) -> Result<Vec<WatchInfo>> {
        match self.watch_book() {
            Some(book) => Ok(book.list()),
            None => Err(self.unsupported("hardware watchpoints")),
        }
    }

    /// Arms every watch on every thread (threads created meanwhile included), lets the target
    /// run and tells `on_event` once armed and at each hit (with the target, to read memory or
    /// symbols while the hitting thread is held), until `max_hits` hits, `until`, Ctrl-C or the
    /// target's exit. Disarms before returning, on every path.
    fn watch_wait(
        &mut self,
        until: Option<std::time::Instant>,
        max_hits: Option<u64>,
        on_event: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
    ) -> Result<WatchRun> {
        let _ = (until, max_hits, on_event);
        Err(self.unsupported("hardware watchpoints"))
    }

    /// Samples the page faults of every thread (threads created meanwhile included) until
    /// `until` or Ctrl-C, handing `on_batch` what was sampled at least every `tick`.
    fn sample_faults(
        &mut self,
        major_only: bool,
        until: Option<std::time::Instant>,
        tick: std::time::Duration,
        on_batch: &mut dyn FnMut(&[FaultSample]) -> Result<()>,
    ) -> Result<FaultTotals> {
        let _ = (major_only, until, tick, on_batch);
        Err(self.unsupported("page-fault sampling"))
    }

    /// Gives up control: detach from ptrace and leave the target running.
    fn detach(&mut self) -> Result<()> {
        Ok(())
    }

    fn is_stopped(&self) -> bool {
        false
    }

    /// An [`Error::Unsupported`] naming this target.
    fn unsupported(&self, what: &str) -> Error {
        Error::Unsupported {
            what: what.to_string(),
            target: format!("process {}", self.info().pid),
        }
    }
}

/// Lets go of every traced thread and kills launched processes; called from a fatal-signal
/// handler, so it must be async-signal-safe.
pub fn release_all_for_exit() {
    #[cfg(target_os = "linux")]
    linux::ptrace::emergency::release_all();
}

/// Attaches passively to a live process with this OS's backend.
pub fn attach(pid: i32) -> Result<Box<dyn Target>> {
    #[cfg(target_os = "linux")]
    {
        Ok(Box::new(linux::LinuxProcess::attach(pid)?))
    }
    #[cfg(target_os = "macos")]
    {
        Ok(Box::new(macos::MacProcess::attach(pid)?))
    }
    #[cfg(windows)]
    {
        Ok(Box::new(windows::WinProcess::attach(pid)?))
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    {
        let _ = pid;
        Err(Error::Unsupported {
            what: "attaching to a live process".into(),
            target: std::env::consts::OS.into(),
        })
    }
}
