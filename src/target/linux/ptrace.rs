//! ptrace control of a live process, taken only on demand: `stop` seizes and interrupts every
//! thread, `resume` continues them, `detach` lets go. A [`Tracer`] detaches when dropped (normal
//! exit, error, panic); for fatal signals it records its threads in [`emergency`] so the signal
//! handler can let go of them too.

use crate::error::{Error, Result};
use crate::target::Registers;
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

#[derive(Debug, Default)]
struct ThreadState {
    stopped: bool,
    /// A signal the thread was about to receive when it stopped: delivered on resume/detach.
    pending: Option<Signal>,
}

/// ptrace control over every thread of one process.
pub struct Tracer {
    pid: i32,
    threads: BTreeMap<i32, ThreadState>,
}

impl Tracer {
    /// Seizes every thread and stops it; threads born while this runs are caught too.
    pub fn stop_all(pid: i32) -> Result<Tracer> {
        let mut tracer = Tracer {
            pid,
            threads: BTreeMap::new(),
        };
        tracer.interrupt_all()?;
        Ok(tracer)
    }

    pub fn tids(&self) -> Vec<i32> {
        self.threads.keys().copied().collect()
    }

    pub fn is_stopped(&self) -> bool {
        !self.threads.is_empty() && self.threads.values().all(|t| t.stopped)
    }

    /// Seizes threads not yet traced and interrupts every running one, until the task list holds
    /// no thread we do not have stopped.
    fn interrupt_all(&mut self) -> Result<()> {
        loop {
            let tids = super::task_ids(self.pid)?;
            let mut new = false;
            for &tid in &tids {
                if let Entry::Vacant(slot) = self.threads.entry(tid) {
                    match ptrace::seize(Pid::from_raw(tid), ptrace::Options::empty()) {
                        Ok(()) => {
                            slot.insert(ThreadState::default());
                            emergency::add(tid);
                            new = true;
                        }
                        Err(Errno::ESRCH) => continue, // the thread exited meanwhile
                        Err(Errno::EPERM) => {
                            return Err(permission_error(self.pid));
                        }
                        Err(errno) => {
                            return Err(Error::Sys {
                                context: format!("ptrace seize thread {tid}"),
                                errno,
                            });
                        }
                    }
                }
            }
            let running: Vec<i32> = self
                .threads
                .iter()
                .filter(|(_, t)| !t.stopped)
                .map(|(&tid, _)| tid)
                .collect();
            for &tid in &running {
                let _ = ptrace::interrupt(Pid::from_raw(tid));
            }
            for tid in running {
                self.wait_stop(tid)?;
            }
            if !new {
                break;
            }
        }
        if !self.threads.contains_key(&self.pid) {
            return Err(Error::Exited {
                pid: self.pid,
                status: None,
            });
        }
        Ok(())
    }

    /// Waits for `tid` to reach a stop; a thread that exits instead is forgotten.
    fn wait_stop(&mut self, tid: i32) -> Result<()> {
        loop {
            match waitpid(Pid::from_raw(tid), Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::PtraceEvent(_, _, _)) => {
                    self.mark_stopped(tid, None);
                    return Ok(());
                }
                Ok(WaitStatus::Stopped(_, sig)) => {
                    // A signal-delivery-stop: hold the signal and give it back on resume.
                    let pending = (sig != Signal::SIGTRAP && sig != Signal::SIGSTOP).then_some(sig);
                    self.mark_stopped(tid, pending);
                    return Ok(());
                }
                Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) | Err(Errno::ECHILD) => {
                    self.threads.remove(&tid);
                    emergency::remove(tid);
                    return Ok(());
                }
                Err(Errno::EINTR) => continue,
                Ok(_) => continue,
                Err(errno) => {
                    return Err(Error::Sys {
                        context: format!("waiting for thread {tid} to stop"),
                        errno,
                    });
                }
            }
        }
    }

    fn mark_stopped(&mut self, tid: i32, pending: Option<Signal>) {
        let t = self.threads.entry(tid).or_default();
        t.stopped = true;
        if pending.is_some() {
            t.pending = pending;
        }
        emergency::set_stopped(tid, true);
    }

    /// Stops again after a resume (new threads are seized too).
    pub fn stop_again(&mut self) -> Result<()> {
        self.interrupt_all()
    }

    /// Lets every thread run, delivering any signal held back at the stop.
    pub fn resume_all(&mut self) -> Result<()> {
        for (&tid, t) in self.threads.iter_mut() {
            if !t.stopped {
                continue;
            }
            match ptrace::cont(Pid::from_raw(tid), t.pending.take()) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(errno) => {
                    return Err(Error::Sys {
                        context: format!("ptrace continue thread {tid}"),
                        errno,
                    });
                }
            }
            t.stopped = false;
            emergency::set_stopped(tid, false);
        }
        Ok(())
    }

    /// Detaches from every thread, leaving the process running.
    pub fn detach_all(&mut self) -> Result<()> {
        // PTRACE_DETACH needs the tracee stopped.
        if self.threads.values().any(|t| !t.stopped) {
            let _ = self.interrupt_all();
        }
        for (tid, t) in std::mem::take(&mut self.threads) {
            let _ = ptrace::detach(Pid::from_raw(tid), t.pending);
            emergency::remove(tid);
        }
        Ok(())
    }

    /// General registers of a stopped thread.
    pub fn registers(&self, tid: i32) -> Result<Registers> {
        match self.threads.get(&tid) {
            Some(t) if t.stopped => {}
            _ => {
                return Err(Error::NotStopped {
                    pid: self.pid,
                    what: format!("the registers of thread {tid}"),
                });
            }
        }
        let r = ptrace::getregs(Pid::from_raw(tid)).map_err(|errno| Error::Sys {
            context: format!("reading the registers of thread {tid}"),
            errno,
        })?;
        Ok(registers_from(tid, &r))
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.detach_all();
    }
}

#[cfg(target_arch = "x86_64")]
fn registers_from(tid: i32, r: &libc::user_regs_struct) -> Registers {
    Registers {
        tid,
        values: vec![
            ("rax", r.rax),
            ("rbx", r.rbx),
            ("rcx", r.rcx),
            ("rdx", r.rdx),
            ("rsi", r.rsi),
            ("rdi", r.rdi),
            ("rbp", r.rbp),
            ("rsp", r.rsp),
            ("r8", r.r8),
            ("r9", r.r9),
            ("r10", r.r10),
            ("r11", r.r11),
            ("r12", r.r12),
            ("r13", r.r13),
            ("r14", r.r14),
            ("r15", r.r15),
            ("rip", r.rip),
            ("eflags", r.eflags),
            ("cs", r.cs),
            ("ss", r.ss),
            ("ds", r.ds),
            ("es", r.es),
            ("fs", r.fs),
            ("gs", r.gs),
            ("fs_base", r.fs_base),
            ("gs_base", r.gs_base),
            ("orig_rax", r.orig_rax),
        ],
    }
}

#[cfg(target_arch = "aarch64")]
fn registers_from(tid: i32, r: &libc::user_regs_struct) -> Registers {
    const NAMES: [&str; 31] = [
        "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
        "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26",
        "x27", "x28", "x29", "x30",
    ];
    let mut values: Vec<(&'static str, u64)> = NAMES.iter().copied().zip(r.regs).collect();
    values.extend([("sp", r.sp), ("pc", r.pc), ("pstate", r.pstate)]);
    Registers { tid, values }
}

/// The error for a refused attach, naming the fixes.
pub fn permission_error(pid: i32) -> Error {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .map(|s| s.trim().to_string());
    let fix = match scope.as_deref() {
        Some("1") => "kernel.yama.ptrace_scope is 1: run `sudo sysctl kernel.yama.ptrace_scope=0`, \
                      run vmscope as root, or give it CAP_SYS_PTRACE (`sudo setcap cap_sys_ptrace+ep vmscope`)"
            .to_string(),
        Some("2") => "kernel.yama.ptrace_scope is 2 (admin only): run vmscope as root or with CAP_SYS_PTRACE".to_string(),
        Some("3") => "kernel.yama.ptrace_scope is 3: ptrace is disabled until reboot".to_string(),
        _ => "the process belongs to another user or is not dumpable: run vmscope as its user, as root, or with CAP_SYS_PTRACE".to_string(),
    };
    Error::Permission {
        what: format!("ptrace attach to process {pid}"),
        fix,
    }
}

/// What a fatal-signal handler needs to let go of traced threads and launched processes. Plain
/// atomics in fixed arrays: the handler may only use async-signal-safe operations.
pub mod emergency {
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    const SLOTS: usize = 1024;
    static TIDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
    static STOPPED: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
    static LAUNCHED: [AtomicI32; 8] = [const { AtomicI32::new(0) }; 8];

    pub fn add(tid: i32) {
        for slot in &TIDS {
            if slot
                .compare_exchange(0, tid, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return;
            }
        }
    }

    pub fn remove(tid: i32) {
        for (i, slot) in TIDS.iter().enumerate() {
            if slot
                .compare_exchange(tid, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                STOPPED[i].store(false, Ordering::SeqCst);
            }
        }
    }

    pub fn set_stopped(tid: i32, stopped: bool) {
        for (i, slot) in TIDS.iter().enumerate() {
            if slot.load(Ordering::SeqCst) == tid {
                STOPPED[i].store(stopped, Ordering::SeqCst);
            }
        }
    }

    /// Records a process vmscope started, to be killed if vmscope is.
    pub fn add_launched(pid: i32) {
        for slot in &LAUNCHED {
            if slot
                .compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return;
            }
        }
    }

    pub fn remove_launched(pid: i32) {
        for slot in &LAUNCHED {
            let _ = slot.compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// Called from a fatal-signal handler: detach every traced thread (stopping a running one
    /// first, as PTRACE_DETACH requires, with a bounded wait) and kill launched processes.
    /// Only raw syscalls: async-signal-safe.
    pub fn release_all() {
        for (i, slot) in TIDS.iter().enumerate() {
            let tid = slot.swap(0, Ordering::SeqCst);
            if tid == 0 {
                continue;
            }
            // SAFETY: ptrace/waitpid/nanosleep are async-signal-safe syscalls on plain integers;
            // a failure (thread gone, not stopped) only means the kernel detaches it at our exit.
            unsafe {
                if !STOPPED[i].load(Ordering::SeqCst) {
                    libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0);
                    let mut status = 0;
                    for _ in 0..100 {
                        if libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) != 0 {
                            break;
                        }
                        let ts = libc::timespec {
                            tv_sec: 0,
                            tv_nsec: 1_000_000,
                        };
                        libc::nanosleep(&ts, std::ptr::null_mut());
                    }
                }
                libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0);
            }
        }
        for slot in &LAUNCHED {
            let pid = slot.swap(0, Ordering::SeqCst);
            if pid != 0 {
                // SAFETY: kill is async-signal-safe; pid is a child we started.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}
