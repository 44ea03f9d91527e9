//! The attach layer: everything that touches an operating system or a debugger host sits behind
//! the [`Target`] trait. Commands see only this trait; a backend that cannot do something answers
//! [`Error::Unsupported`], never a panic or a silent empty answer.

#[cfg(target_os = "linux")]
pub mod linux;

use crate::addr::VirtAddr;
use crate::error::{Error, Result};
use crate::regions::Region;
use serde::Serialize;
use std::path::PathBuf;

/// What kind of thing is being inspected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A running process we attached to (`-p PID`, `attach PID`).
    Attached,
    /// A process vmscope started (`vmscope -- PROG`, `demo`): killed when vmscope exits.
    Launched,
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
#[derive(Clone, Debug, Default, Serialize)]
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
    /// The value of a register; `pc`, `sp` and `fp` are accepted as aliases.
    pub fn get(&self, name: &str) -> Option<u64> {
        let name = match name {
            "pc" => "rip",
            "sp" => "rsp",
            "fp" => "rbp",
            other => other,
        };
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
    }
}

/// What a `stop` did.
#[derive(Clone, Debug, Serialize)]
pub struct StopReport {
    pub pid: i32,
    pub threads: Vec<i32>,
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

    /// Sends a signal (`SIGUSR1`, `USR1` or a number) to the target, or to `pid`; returns the
    /// signal's canonical name.
    fn signal(&mut self, signal: &str, pid: Option<i32>) -> Result<String> {
        let _ = (signal, pid);
        Err(self.unsupported("sending signals"))
    }

    /// Lets a stopped target run again.
    fn resume(&mut self) -> Result<()> {
        Err(self.unsupported("continue"))
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
    #[cfg(not(target_os = "linux"))]
    {
        Err(Error::Unsupported {
            what: "attaching to a live process".into(),
            target: std::env::consts::OS.into(),
        })
    }
}
