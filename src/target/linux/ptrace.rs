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
use std::time::Duration;

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
    /// ptrace options of every traced thread (PTRACE_O_TRACECLONE while `watch` runs).
    options: ptrace::Options,
}

impl Tracer {
    /// Seizes every thread and stops it; threads born while this runs are caught too.
    pub fn stop_all(pid: i32) -> Result<Tracer> {
        let mut tracer = Tracer {
            pid,
            threads: BTreeMap::new(),
            options: ptrace::Options::empty(),
        };
        tracer.interrupt_all()?;
        Ok(tracer)
    }

    pub fn pid(&self) -> i32 {
        self.pid
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
                    match ptrace::seize(Pid::from_raw(tid), self.options) {
                        Ok(()) => {
                            slot.insert(ThreadState::default());
                            emergency::add(tid);
                            new = true;
                        }
                        // The thread exited meanwhile (a zombie cannot be seized: EPERM).
                        Err(Errno::ESRCH) => continue,
                        Err(Errno::EPERM) if exited(thread_state(self.pid, tid)) => continue,
                        // A thread born under PTRACE_O_TRACECLONE is ours already; its parent's
                        // clone event has not been collected yet.
                        Err(Errno::EPERM) if traced_by_us(self.pid, tid) => {
                            slot.insert(ThreadState::default());
                            emergency::add(tid);
                            new = true;
                        }
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
            self.wait_stops(&running)?;
            if !new {
                break;
            }
        }
        // No thread is left to stop: every one exited, or is exiting. (A leader that called
        // pthread_exit is a zombie while the other threads run on: that process has not exited.)
        if !self.threads.values().any(|t| t.stopped) {
            return Err(Error::Exited {
                pid: self.pid,
                status: None,
            });
        }
        Ok(())
    }

    /// Waits until each of `wanted` has stopped, or exited (then it is forgotten). Every traced
    /// thread is polled, not just the wanted ones one after another: a thread-group leader that
    /// has exited is reported only once every other thread is reaped, so a blocking wait for it
    /// alone never returns when the whole process is killed meanwhile (its siblings' exits wait
    /// for us).
    fn wait_stops(&mut self, wanted: &[i32]) -> Result<()> {
        let _sigchld = SigchldWait::block();
        loop {
            let mut progressed = false;
            for tid in self.tids() {
                progressed |= self.collect(tid, true)?.is_some();
            }
            let waiting: Vec<i32> = wanted
                .iter()
                .copied()
                .filter(|tid| self.threads.get(tid).is_some_and(|t| !t.stopped))
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            if !progressed {
                // A leader that called pthread_exit stays a zombie, unreaped, while the other
                // threads run on: it never stops, and runs no code either.
                if waiting.iter().all(|&tid| {
                    let state = thread_state(self.pid, tid);
                    state.is_none() || exited(state)
                }) {
                    return Ok(());
                }
                SigchldWait::wait(Duration::from_millis(10));
            }
        }
    }

    /// One look, without blocking, at `tid`'s next report; the thread's state follows (stopped;
    /// forgotten once exited; a thread born of PTRACE_EVENT_CLONE adopted, running until its own
    /// first stop is collected). With `hold_signal`, the signal of a signal-delivery-stop is kept
    /// and given back on resume; without, the caller deals with it.
    fn collect(&mut self, tid: i32, hold_signal: bool) -> Result<Option<WaitStatus>> {
        let flags = WaitPidFlag::__WALL | WaitPidFlag::WNOHANG;
        let status = match waitpid(Pid::from_raw(tid), Some(flags)) {
            Ok(status) => status,
            Err(Errno::EINTR) => return Ok(None),
            Err(Errno::ECHILD) => {
                self.forget(tid);
                return Ok(None);
            }
            Err(errno) => {
                return Err(Error::Sys {
                    context: format!("waiting for thread {tid}"),
                    errno,
                });
            }
        };
        match status {
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => self.forget(tid),
            WaitStatus::PtraceEvent(_, _, event) => {
                self.adopt_clone(tid, event);
                self.mark_stopped(tid, None);
            }
            WaitStatus::Stopped(_, sig) => {
                // A signal-delivery-stop: the signal is the program's, given back on resume.
                let held = hold_signal && sig != Signal::SIGTRAP && sig != Signal::SIGSTOP;
                self.mark_stopped(tid, held.then_some(sig));
            }
            _ => return Ok(None),
        }
        Ok(Some(status))
    }

    fn forget(&mut self, tid: i32) {
        self.threads.remove(&tid);
        emergency::remove(tid);
    }

    fn mark_stopped(&mut self, tid: i32, pending: Option<Signal>) {
        let t = self.threads.entry(tid).or_default();
        t.stopped = true;
        if pending.is_some() {
            t.pending = pending;
        }
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
        }
        Ok(())
    }

    /// Detaches from every thread, leaving the process running.
    pub fn detach_all(&mut self) -> Result<()> {
        // PTRACE_DETACH needs the tracee stopped.
        if self.threads.values().any(|t| !t.stopped) {
            let _ = self.interrupt_all();
        }
        // Threads that cannot be detached because they have exited (or are exiting).
        let mut dying = Vec::new();
        for (tid, t) in std::mem::take(&mut self.threads) {
            // Debug registers outlive the tracer: never leave a watch armed behind us.
            if emergency::is_armed(tid) {
                super::hwbp::clear_raw(tid);
                emergency::set_armed(tid, false);
            }
            if ptrace::detach(Pid::from_raw(tid), t.pending) == Err(Errno::ESRCH) {
                dying.push(tid);
            }
            emergency::remove(tid);
        }
        reap(dying);
        Ok(())
    }

    /// Sets ptrace options (PTRACE_O_TRACECLONE for `watch`) on every traced thread, which must
    /// be stopped, and on every thread seized from now on.
    pub fn set_options(&mut self, options: ptrace::Options) -> Result<()> {
        self.options = options;
        for &tid in self.threads.keys() {
            match ptrace::setoptions(Pid::from_raw(tid), options) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(errno) => {
                    return Err(Error::Sys {
                        context: format!("ptrace setoptions thread {tid}"),
                        errno,
                    });
                }
            }
        }
        Ok(())
    }

    /// The next stop or exit of a running thread, without blocking. The thread's state follows
    /// (stopped; forgotten once exited; a thread born of PTRACE_EVENT_CLONE is adopted, running
    /// until its own first stop is collected).
    pub fn poll_event(&mut self) -> Result<Option<WaitStatus>> {
        let running: Vec<i32> = self
            .threads
            .iter()
            .filter(|(_, t)| !t.stopped)
            .map(|(&tid, _)| tid)
            .collect();
        for tid in running {
            if let Some(status) = self.collect(tid, false)? {
                return Ok(Some(status));
            }
        }
        Ok(None)
    }

    /// Lets one stopped thread run, delivering `sig`.
    pub fn resume_one(&mut self, tid: i32, sig: Option<Signal>) -> Result<()> {
        match ptrace::cont(Pid::from_raw(tid), sig) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(errno) => {
                return Err(Error::Sys {
                    context: format!("ptrace continue thread {tid}"),
                    errno,
                });
            }
        }
        if let Some(t) = self.threads.get_mut(&tid) {
            t.stopped = false;
            t.pending = None;
        }
        Ok(())
    }

    /// Leaves a thread in its group stop (job control) but lets SIGCONT wake it: PTRACE_LISTEN.
    pub fn listen_one(&mut self, tid: i32) -> Result<()> {
        // SAFETY: PTRACE_LISTEN takes no pointers; it fails harmlessly for a vanished thread.
        let r = unsafe { emergency::raw(libc::PTRACE_LISTEN, tid, 0, 0) };
        if r != 0 && Errno::last() != Errno::ESRCH {
            return self.resume_one(tid, None);
        }
        if let Some(t) = self.threads.get_mut(&tid) {
            t.stopped = false;
        }
        Ok(())
    }

    /// Resumes a thread and waits for its next stop or exit (to collect a signal it has pending).
    pub fn step_to_next_stop(&mut self, tid: i32) -> Result<()> {
        self.resume_one(tid, None)?;
        self.wait_stops(&[tid])
    }

    /// A thread born of PTRACE_EVENT_CLONE is traced from its first instruction: adopt it.
    fn adopt_clone(&mut self, parent: i32, event: i32) {
        if event != libc::PTRACE_EVENT_CLONE {
            return;
        }
        if let Ok(new) = ptrace::getevent(Pid::from_raw(parent)) {
            let new = new as i32;
            if let Entry::Vacant(slot) = self.threads.entry(new) {
                slot.insert(ThreadState::default());
                emergency::add(new);
            }
        }
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

/// SIGCHLD blocked in this thread while vmscope waits for ptrace stops (a `stop`, a `watch`), so
/// the wait can sleep in `sigtimedwait` (a Ctrl-C handler interrupts it) between polls.
pub struct SigchldWait {
    was_blocked: bool,
}

impl SigchldWait {
    pub fn block() -> SigchldWait {
        use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        let mut old = SigSet::empty();
        let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old));
        SigchldWait {
            was_blocked: old.contains(Signal::SIGCHLD),
        }
    }

    /// Sleeps until a SIGCHLD (a child stopped or exited), a handled signal, or `timeout`.
    pub fn wait(timeout: Duration) {
        // SAFETY: sigset_t is plain data; all zeros is a valid (empty) value, set up below.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: sigemptyset/sigaddset initialize a sigset_t we own; sigtimedwait only reads
        // it and the timespec, and writes no siginfo (null).
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            libc::sigtimedwait(&set, std::ptr::null_mut(), &ts);
        }
    }
}

impl Drop for SigchldWait {
    fn drop(&mut self) {
        use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
        if !self.was_blocked {
            // A SIGCHLD left pending is discarded on unblocking (its default is to ignore).
            let mut set = SigSet::empty();
            set.add(Signal::SIGCHLD);
            let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
        }
    }
}

/// The state letter of thread `tid` of `pid` (/proc's stat), if it is still there.
fn thread_state(pid: i32, tid: i32) -> Option<char> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
        .ok()
        .and_then(|text| super::procfs::Stat::parse(&text).map(|s| s.state()))
}

/// Whether a thread state says it has exited and waits to be reaped.
fn exited(state: Option<char>) -> bool {
    matches!(state, Some('Z' | 'X'))
}

/// Reaps traced threads that have exited, so the process's parent can collect it: the kernel
/// keeps a dead tracee for its tracer. A leader is reported only after its other threads, hence
/// the rounds; bounded (about 100 ms), since a thread may have failed to detach for another
/// reason and never be reaped here (the kernel lets it go when vmscope exits).
fn reap(mut tids: Vec<i32>) {
    let _sigchld = SigchldWait::block();
    for _ in 0..10 {
        tids.retain(|&tid| {
            let pid = Pid::from_raw(tid);
            match waitpid(pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => true,
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => false,
                // A stop: it was alive after all, and can be let go now.
                Ok(_) => {
                    let _ = ptrace::detach(pid, None);
                    false
                }
            }
        });
        if tids.is_empty() {
            return;
        }
        SigchldWait::wait(Duration::from_millis(10));
    }
}

/// Whether `tid` is already traced by this process (auto-attached under PTRACE_O_TRACECLONE).
fn traced_by_us(pid: i32, tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .and_then(|v| v.trim().parse::<u32>().ok())
        })
        == Some(std::process::id())
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
    /// Threads whose debug registers hold a watch: cleared before they are let go.
    static ARMED: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
    /// perf event fds of armed watches: closed first, so no trap fires once ptrace is gone.
    static WATCH_FDS: [AtomicI32; 256] = [const { AtomicI32::new(-1) }; 256];
    static LAUNCHED: [AtomicI32; 8] = [const { AtomicI32::new(0) }; 8];

    /// ptrace(2) with its address and data passed pointer-sized, as the variadic C call reads
    /// them (a bare `0` would be a 32-bit int).
    ///
    /// # Safety
    /// `addr` and `data` must be what `request` expects: integers, or pointers to memory the
    /// kernel may read or write for it.
    pub unsafe fn raw(request: libc::c_uint, tid: i32, addr: usize, data: usize) -> libc::c_long {
        // SAFETY: the caller vouches for the arguments.
        unsafe {
            libc::ptrace(
                request,
                tid,
                addr as *mut libc::c_void,
                data as *mut libc::c_void,
            )
        }
    }

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
                ARMED[i].store(false, Ordering::SeqCst);
            }
        }
    }

    /// Records that `tid`'s debug registers hold (or no longer hold) a watch.
    pub fn set_armed(tid: i32, armed: bool) {
        for (i, slot) in TIDS.iter().enumerate() {
            if slot.load(Ordering::SeqCst) == tid {
                ARMED[i].store(armed, Ordering::SeqCst);
            }
        }
    }

    pub fn is_armed(tid: i32) -> bool {
        TIDS.iter()
            .enumerate()
            .any(|(i, slot)| slot.load(Ordering::SeqCst) == tid && ARMED[i].load(Ordering::SeqCst))
    }

    /// Records the fd of a perf event that can trap the target (a `watch` breakpoint).
    pub fn add_watch_fd(fd: i32) {
        for slot in &WATCH_FDS {
            if slot
                .compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Forgets a watch fd (before the caller closes it).
    pub fn remove_watch_fd(fd: i32) {
        for slot in &WATCH_FDS {
            let _ = slot.compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst);
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

    /// Called from a fatal-signal handler: detach every traced thread and kill launched
    /// processes. Only raw syscalls: async-signal-safe.
    pub fn release_all() {
        // Breakpoint events first: once they are closed no new trap can be raised, so the
        // threads detached below cannot die of a SIGTRAP nobody intercepts.
        for slot in &WATCH_FDS {
            let fd = slot.swap(-1, Ordering::SeqCst);
            if fd >= 0 {
                // SAFETY: close is async-signal-safe; the fd is one we opened and own.
                unsafe {
                    libc::close(fd);
                }
            }
        }
        // One budget for every thread: one that never stops (a zombie leader) cannot hold
        // vmscope's exit for long; the kernel detaches what is left when we exit.
        let mut budget_ms = 2000;
        for (i, slot) in TIDS.iter().enumerate() {
            let tid = slot.swap(0, Ordering::SeqCst);
            if tid != 0 {
                release(tid, ARMED[i].swap(false, Ordering::SeqCst), &mut budget_ms);
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

    /// Lets one traced thread go. What the main thread knows of it may be a moment old (the
    /// signal can land between a `PTRACE_CONT` and its bookkeeping), so nothing is assumed: the
    /// thread is interrupted (harmless when already stopped: detaching drops the trap), each
    /// step is retried until the thread is seen stopped, its debug registers are cleared, a
    /// SIGTRAP a watch raised just before is collected (it would kill the thread once untraced),
    /// and the detach gives back a signal the thread was stopped to receive.
    fn release(tid: i32, armed: bool, budget_ms: &mut u32) {
        let mut collected = 0;
        // SAFETY: ptrace, waitpid, kill and nanosleep on plain integers and stack buffers are
        // async-signal-safe syscalls; each fails harmlessly for a thread gone or running.
        unsafe {
            raw(libc::PTRACE_INTERRUPT, tid, 0, 0);
            loop {
                // Reap whatever it reported, so no stale stop lingers after we let go.
                let mut status = 0;
                libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG);
                let mut info: libc::siginfo_t = std::mem::zeroed();
                let stopped = raw(libc::PTRACE_GETSIGINFO, tid, 0, &raw mut info as usize) == 0
                    || errno() == libc::EINVAL; // a stop with no signal information
                if !stopped {
                    // Running still, or gone (a thread that exited is reaped above).
                    if libc::kill(tid, 0) != 0 || *budget_ms == 0 {
                        return;
                    }
                    *budget_ms -= 1;
                    let ms = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 1_000_000,
                    };
                    libc::nanosleep(&ms, std::ptr::null_mut());
                    continue;
                }
                if armed {
                    super::super::hwbp::clear_raw(tid);
                }
                if collected < 4 && sigtrap_queued(tid) {
                    // Let it take the SIGTRAP into a signal-delivery-stop, detached below
                    // without it.
                    collected += 1;
                    raw(libc::PTRACE_CONT, tid, 0, 0);
                    continue;
                }
                raw(libc::PTRACE_DETACH, tid, 0, signal_to_give_back(&info));
                return;
            }
        }
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    /// The signal a stopped thread was about to receive, to deliver on detach: none for an event
    /// stop (an interrupt, a clone, a group stop: `si_code` carries the event above bit 8) or
    /// for a SIGTRAP raised by a watch.
    fn signal_to_give_back(info: &libc::siginfo_t) -> usize {
        use super::super::hwbp::{TRAP_HWBKPT, TRAP_PERF};
        let event_stop = info.si_code > 0xff;
        let ours =
            info.si_signo == libc::SIGTRAP && matches!(info.si_code, TRAP_HWBKPT | TRAP_PERF);
        if info.si_signo <= 0 || event_stop || ours {
            0
        } else {
            info.si_signo as usize
        }
    }

    /// Whether a SIGTRAP waits in the private signal queue of `tid`, which must be
    /// ptrace-stopped (PTRACE_PEEKSIGINFO). A raw syscall: the fatal-signal handler uses it.
    pub fn sigtrap_queued(tid: i32) -> bool {
        // SAFETY: siginfo_t is plain data, valid when zeroed.
        let mut queued: [libc::siginfo_t; 8] = unsafe { std::mem::zeroed() };
        let args = libc::ptrace_peeksiginfo_args {
            off: 0,
            flags: 0,
            nr: queued.len() as i32,
        };
        // SAFETY: the kernel writes at most `nr` siginfo records into `queued`.
        let n = unsafe {
            raw(
                libc::PTRACE_PEEKSIGINFO,
                tid,
                &raw const args as usize,
                queued.as_mut_ptr() as usize,
            )
        };
        n > 0
            && queued[..n as usize]
                .iter()
                .any(|i| i.si_signo == libc::SIGTRAP)
    }
}
