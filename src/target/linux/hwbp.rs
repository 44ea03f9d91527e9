//! Hardware watchpoints on a live Linux process: the watch list of a target, the split of a range
//! into aligned hardware slots, the debug registers themselves (x86_64 DR0–DR3/DR6/DR7 through
//! PTRACE_POKEUSER/PEEKUSER into `u_debugreg`; aarch64 through PTRACE_SETREGSET NT_ARM_HW_WATCH),
//! and the run that arms them on every thread, reports each hit and disarms them again.
//!
//! Two ways to arm a slot while ptrace holds the hitting thread:
//! - `perf-sigtrap` (the default): a PERF_TYPE_BREAKPOINT event per thread and slot with
//!   `sigtrap`, `inherit` and `remove_on_exec`. The kernel programs the debug registers, threads
//!   created later inherit the event, and the event dies with its file descriptor, so a vmscope
//!   killed with SIGKILL leaves no armed register behind.
//! - `debug-registers`: the registers written directly with ptrace, as gdb does. The kernel keeps
//!   ptrace-set debug registers after the tracer dies (a SIGKILLed tracer leaves the target to die
//!   of SIGTRAP at the next hit), so this is the fallback for kernels without perf `sigtrap`
//!   (before 5.13), or when `VMSCOPE_WATCH_BACKEND=debug-registers` asks for it.
//!
//! Passive watches (`watch --passive`) only sample pc and tid with perf events: no ptrace, so
//! they work while gdb or lldb owns the process, and they cannot see values.
//!
//! What is not Linux-specific (the slot split, the DR7/DR6 and DBGWCR encodings, the watch list
//! and its hit counting) lives in `target::debugreg`, shared with the Windows and macOS backends.

use super::LinuxProcess;
use super::perf;
use super::ptrace::{SigchldWait, Tracer, emergency};
use crate::addr::VirtAddr;
use crate::error::{Error, Result};
use crate::target::debugreg::{self, HitCount};
use crate::target::{Target, WatchEvent, WatchRun};
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use std::collections::HashSet;
use std::time::{Duration, Instant};

pub use crate::target::debugreg::{MAX_LEN, SLOTS, Slot, Watches, pieces};
#[cfg(target_arch = "x86_64")]
pub use arch::poke as poke_debug_register;

/// `si_code` of a SIGTRAP raised by a perf event with `sigtrap` set.
pub(super) const TRAP_PERF: i32 = 6;
/// `si_code` of a SIGTRAP raised by a ptrace-set hardware breakpoint.
pub(super) const TRAP_HWBKPT: i32 = 4;
/// Tags `si_perf_data` so a SIGTRAP from our events is told from the program's own.
const SIG_DATA_TAG: u64 = 0x766d_7363_6f70_6500; // "vmscope\0"

/// Which mechanism arms the slots of a stopping watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    PerfSigtrap,
    DebugRegisters,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::PerfSigtrap => "perf-sigtrap",
            Backend::DebugRegisters => "debug-registers",
        }
    }
}

/// Runs the watches of `p` until `max_hits`, `until`, Ctrl-C or the target's exit.
pub fn wait(
    p: &mut LinuxProcess,
    until: Option<Instant>,
    max_hits: Option<u64>,
    on_hit: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
) -> Result<WatchRun> {
    if p.watches.is_empty() {
        return Err(Error::usage(
            "no watches: set one with `watch EXPR [LEN] [-w|-rw]`",
        ));
    }
    p.ensure_alive()?;
    for (i, (addr, len)) in p.watches.ranges().into_iter().enumerate() {
        let mut buf = vec![0u8; len];
        let read = crate::target::Target::read(p, addr, &mut buf);
        let value = debugreg::value(read, buf)?;
        p.watches.set_last(i, value);
    }
    if p.watches.all_passive() {
        passive(p, until, max_hits, on_hit)
    } else {
        stopping(p, until, max_hits, on_hit)
    }
}

/// Counts hits and hands them on; answers whether `max_hits` is reached.
struct HitCounter<'a> {
    count: HitCount,
    on_hit: &'a mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
}

impl HitCounter<'_> {
    fn new<'a>(
        max: Option<u64>,
        on_hit: &'a mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
    ) -> HitCounter<'a> {
        HitCounter {
            count: HitCount::new(max),
            on_hit,
        }
    }

    /// Reports a hit of watch number `w` (an index into the watch list).
    fn report(
        &mut self,
        p: &mut LinuxProcess,
        w: usize,
        tid: i32,
        pc: Option<VirtAddr>,
        new: Option<Vec<u8>>,
    ) -> Result<()> {
        let hit = p.watches.hit(w, tid, pc, new);
        self.count.total += 1;
        (self.on_hit)(p, WatchEvent::Hit(&hit))
    }

    fn armed(&mut self, p: &mut LinuxProcess, backend: &str, threads: usize) -> Result<()> {
        (self.on_hit)(p, WatchEvent::Armed { backend, threads })
    }

    fn done(&self) -> bool {
        self.count.done()
    }
}

/// Why a run stops, checked between events.
fn should_end(until: Option<Instant>, hits: &HitCounter<'_>) -> Option<&'static str> {
    hits.count.end_reason(until)
}

/// A stopping watch: ptrace holds each hitting thread while its hit is reported.
fn stopping(
    p: &mut LinuxProcess,
    until: Option<Instant>,
    max_hits: Option<u64>,
    on_hit: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
) -> Result<WatchRun> {
    let pid = p.pid();
    if p.tracer.is_none()
        && let Some(other) = tracer_of(pid)
    {
        return Err(Error::Usage(format!(
            "process {pid} is traced by process {other} (a debugger?), and ptrace allows one \
             tracer: `watch --passive` watches without ptrace"
        )));
    }
    let had_tracer = p.tracer.is_some();
    let was_stopped = p.tracer.as_ref().is_some_and(|t| t.is_stopped());
    let mut tracer = match p.tracer.take() {
        Some(mut t) => {
            if !t.is_stopped() {
                t.stop_again()?;
            }
            t
        }
        None => Tracer::stop_all(pid)?,
    };
    let result = (|| {
        tracer.set_options(ptrace::Options::PTRACE_O_TRACECLONE)?;
        let slots = p.watches.slots();
        let mut armed = Armed::arm(&mut tracer, pid, &slots)?;
        tracer.resume_all()?;
        let mut hits = HitCounter::new(max_hits, on_hit);
        let threads = tracer.tids().len();
        let ended = hits
            .armed(p, armed.backend.name(), threads)
            .and_then(|()| run_stopping(p, &mut tracer, &mut armed, &slots, until, &mut hits));
        let backend = armed.backend;
        armed.disarm(&mut tracer);
        let ended = ended?;
        Ok(WatchRun {
            backend: backend.name().into(),
            hits: hits.count.total,
            lost: 0,
            ended: ended.into(),
        })
    })();
    // Give ptrace back as it was: detached, or stopped by an earlier `stop`.
    if tracer.tids().is_empty() {
        drop(tracer);
    } else {
        let _ = tracer.set_options(ptrace::Options::empty());
        // A tracer only outlives a command while the target is stopped (`continue` detaches).
        if had_tracer && was_stopped {
            p.tracer = Some(tracer);
        } else {
            let _ = tracer.detach_all();
        }
    }
    match result {
        Ok(run) if run.ended == "exited" => Err(p.exited()),
        other => other,
    }
}

/// Slots armed on the target; disarmed (and forgotten by the signal handler) on drop.
struct Armed {
    backend: Backend,
    /// perf-sigtrap: the breakpoint events, one per thread and slot.
    events: Option<perf::Breakpoints>,
    /// Threads whose slots are set (debug registers), or whose events exist (perf).
    tids: HashSet<i32>,
    slots: Vec<Slot>,
}

impl Armed {
    fn arm(tracer: &mut Tracer, pid: i32, slots: &[(usize, Slot)]) -> Result<Armed> {
        let plain: Vec<Slot> = slots.iter().map(|&(_, s)| s).collect();
        let tids = tracer.tids();
        let forced = std::env::var("VMSCOPE_WATCH_BACKEND").ok();
        let mut armed = Armed {
            backend: Backend::PerfSigtrap,
            events: None,
            tids: HashSet::new(),
            slots: plain.clone(),
        };
        if forced.as_deref() != Some("debug-registers") {
            let data: Vec<u64> = (0..plain.len() as u64).map(|i| SIG_DATA_TAG | i).collect();
            match perf::Breakpoints::open(&tids, &plain, Some(&data)) {
                Ok(events) => {
                    armed.tids = tids.iter().copied().collect();
                    armed.events = Some(events);
                    return Ok(armed);
                }
                // Kernels before 5.13 have no `sigtrap` (EINVAL, or E2BIG for the attr size):
                // fall back to the debug registers. Anything else is an answer to give.
                Err(e)
                    if forced.is_none()
                        && matches!(
                            e.raw_os_error(),
                            Some(libc::EINVAL) | Some(libc::E2BIG) | Some(libc::EOPNOTSUPP)
                        ) => {}
                Err(e) => return Err(perf::breakpoint_error(pid, e)),
            }
        }
        armed.backend = Backend::DebugRegisters;
        for tid in tids {
            armed.arm_thread(tid)?;
        }
        Ok(armed)
    }

    /// Sets the debug registers of one stopped thread.
    fn arm_thread(&mut self, tid: i32) -> Result<()> {
        if self.backend != Backend::DebugRegisters || !self.tids.insert(tid) {
            return Ok(());
        }
        emergency::set_armed(tid, true);
        match arch::arm(tid, &self.slots) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(errno) => Err(Error::Sys {
                context: format!("setting the debug registers of thread {tid}"),
                errno,
            }),
        }
    }

    /// The slots a SIGTRAP of `tid` reports, or none when it is not ours.
    fn triggered(&self, tid: i32, info: &libc::siginfo_t) -> Vec<usize> {
        let words = siginfo_words(info);
        match (self.backend, info.si_code) {
            (Backend::PerfSigtrap, TRAP_PERF) => {
                let data = words[3];
                let slot = (data & 0xff) as usize;
                if data & !0xff == SIG_DATA_TAG && slot < self.slots.len() {
                    vec![slot]
                } else {
                    Vec::new()
                }
            }
            (Backend::DebugRegisters, TRAP_HWBKPT) => {
                arch::triggered(tid, &self.slots, words[2]).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// Disarms every slot; the target must not trap on them once this returns.
    fn disarm(&mut self, tracer: &mut Tracer) {
        // Closing the events removes them from every thread, inherited ones included.
        self.events = None;
        let _ = tracer.stop_again();
        if self.backend == Backend::DebugRegisters {
            for tid in tracer.tids() {
                if clear_raw(tid) {
                    emergency::set_armed(tid, false);
                }
            }
        }
        self.tids.clear();
        // A hit raised just before disarming may still be queued: collect it, so the thread is
        // not left to die of a SIGTRAP once ptrace lets go.
        for tid in tracer.tids() {
            for _ in 0..4 {
                if !emergency::sigtrap_queued(tid) {
                    break;
                }
                if tracer.step_to_next_stop(tid).is_err() {
                    break;
                }
            }
        }
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        self.events = None;
        if self.backend == Backend::DebugRegisters {
            for &tid in &self.tids {
                // A running thread cannot be written: it stays marked, and the tracer clears it
                // when it stops it to detach.
                if clear_raw(tid) {
                    emergency::set_armed(tid, false);
                }
            }
        }
    }
}

/// The process tracing `pid` (a debugger), if any: /proc's TracerPid.
fn tracer_of(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
        .filter(|&t: &i32| t != 0)
}

/// The first four words of a siginfo: signo/errno, code, then (for SIGTRAP) `si_addr` and
/// `si_perf_data`, which libc's `siginfo_t` does not name.
fn siginfo_words(info: &libc::siginfo_t) -> [u64; 4] {
    const _: () = assert!(std::mem::size_of::<libc::siginfo_t>() >= 32);
    // SAFETY: siginfo_t is a plain 128-byte C struct; its first 32 bytes are initialized by the
    // kernel (PTRACE_GETSIGINFO fills the whole struct) and read unaligned as integers.
    unsafe { std::ptr::read_unaligned(info as *const libc::siginfo_t as *const [u64; 4]) }
}

/// The event loop of a stopping watch. Returns why it ended.
fn run_stopping(
    p: &mut LinuxProcess,
    tracer: &mut Tracer,
    armed: &mut Armed,
    slots: &[(usize, Slot)],
    until: Option<Instant>,
    hits: &mut HitCounter<'_>,
) -> Result<&'static str> {
    let _sigchld = SigchldWait::block();
    loop {
        if let Some(why) = should_end(until, hits) {
            return Ok(why);
        }
        let Some(status) = tracer.poll_event()? else {
            if tracer.tids().is_empty() {
                return Ok("exited");
            }
            let wait = until
                .map(|u| u.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::MAX)
                .min(Duration::from_millis(50));
            SigchldWait::wait(wait);
            continue;
        };
        match status {
            WaitStatus::Stopped(pid, Signal::SIGTRAP) => {
                let tid = pid.as_raw();
                let info = ptrace::getsiginfo(pid).ok();
                let fired = info.map(|i| armed.triggered(tid, &i)).unwrap_or_default();
                if fired.is_empty() {
                    // The program's own SIGTRAP: deliver it.
                    tracer.resume_one(tid, Some(Signal::SIGTRAP))?;
                    continue;
                }
                let pc = tracer
                    .registers(tid)
                    .ok()
                    .and_then(|r| r.get("pc"))
                    .map(VirtAddr);
                let mut seen = Vec::new();
                for slot in fired {
                    let w = slots[slot].0;
                    if seen.contains(&w) {
                        continue;
                    }
                    seen.push(w);
                    let (addr, len) = {
                        let info = p.watches.info(w);
                        (info.address, info.len as usize)
                    };
                    let mut buf = vec![0u8; len];
                    let new = match crate::target::Target::read(p, addr, &mut buf) {
                        Ok(n) if n == len => Some(buf),
                        _ => None,
                    };
                    let result = hits.report(p, w, tid, pc, new);
                    if let Err(e) = result {
                        let _ = tracer.resume_one(tid, None);
                        return Err(e);
                    }
                }
                tracer.resume_one(tid, None)?;
            }
            WaitStatus::Stopped(pid, sig) => tracer.resume_one(pid.as_raw(), Some(sig))?,
            WaitStatus::PtraceEvent(pid, sig, event) => {
                let tid = pid.as_raw();
                if event == libc::PTRACE_EVENT_STOP && !armed.tids.contains(&tid) {
                    // A thread born while watching, at its first stop: arm it (perf events
                    // were inherited at clone already).
                    if armed.backend == Backend::DebugRegisters {
                        armed.arm_thread(tid)?;
                    } else {
                        armed.tids.insert(tid);
                    }
                    tracer.resume_one(tid, None)?;
                } else if event == libc::PTRACE_EVENT_STOP
                    && matches!(
                        sig,
                        Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU
                    )
                {
                    // A group stop (job control): keep it stopped, but listening for SIGCONT.
                    tracer.listen_one(tid)?;
                } else {
                    tracer.resume_one(tid, None)?;
                }
            }
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) if tracer.tids().is_empty() => {
                return Ok("exited");
            }
            _ => {}
        }
    }
}

/// A passive watch: perf breakpoint events sample pc and tid; nothing is stopped.
fn passive(
    p: &mut LinuxProcess,
    until: Option<Instant>,
    max_hits: Option<u64>,
    on_hit: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
) -> Result<WatchRun> {
    let pid = p.pid();
    let slots = p.watches.slots();
    let plain: Vec<Slot> = slots.iter().map(|&(_, s)| s).collect();
    let mut events =
        perf::PassiveBreakpoints::open(pid, &plain).map_err(|e| perf::breakpoint_error(pid, e))?;
    let mut hits = HitCounter::new(max_hits, on_hit);
    let threads = events.threads();
    if let Err(e) = hits.armed(p, "perf-sampling", threads) {
        events.close();
        return Err(e);
    }
    let ended = loop {
        if let Some(why) = should_end(until, &hits) {
            break why;
        }
        let mut batch = Vec::new();
        let alive = events.drain(&mut batch);
        for (slot, tid, pc) in batch {
            let w = slots[slot].0;
            hits.report(p, w, tid, Some(VirtAddr(pc)), None)?;
            if hits.done() {
                break;
            }
        }
        if !alive {
            break "exited";
        }
        let wait = until
            .map(|u| u.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::MAX)
            .min(Duration::from_millis(50));
        events.poll(wait);
    };
    let lost = events.close();
    if ended == "exited" {
        return Err(p.exited());
    }
    Ok(WatchRun {
        backend: "perf-sampling".into(),
        hits: hits.count.total,
        lost,
        ended: ended.into(),
    })
}

/// Clears every watch slot of `tid`. Raw syscalls only: the fatal-signal handler calls it.
/// Returns whether the registers could be written (the thread must be ptrace-stopped).
pub fn clear_raw(tid: i32) -> bool {
    arch::clear_raw(tid)
}

#[cfg(target_arch = "x86_64")]
mod arch {
    //! x86_64: DR0–DR3 hold the addresses, DR7 enables each (L0–L3) with its condition
    //! (01 write, 11 read or write) and length (00 1, 01 2, 11 4, 10 8 bytes), DR6 says which
    //! fired (encodings in `debugreg::x86`). ptrace reaches them at
    //! `offsetof(struct user, u_debugreg)`.
    use super::Slot;
    use crate::target::debugreg::x86::{dr7, fired};
    use nix::errno::Errno;
    use nix::sys::ptrace;
    use nix::unistd::Pid;

    fn offset(reg: usize) -> u64 {
        (std::mem::offset_of!(libc::user, u_debugreg) + reg * 8) as u64
    }

    /// Writes debug register `reg` (0–7) of a stopped thread.
    pub fn poke(tid: i32, reg: usize, value: u64) -> Result<(), Errno> {
        ptrace::write_user(
            Pid::from_raw(tid),
            offset(reg) as ptrace::AddressType,
            value as libc::c_long,
        )
    }

    /// Programs a stopped thread. DR7 is zeroed first: a new thread's DR7 can read back as
    /// enabled (copied from its parent) while none of its breakpoints exist.
    pub fn arm(tid: i32, slots: &[Slot]) -> Result<(), Errno> {
        poke(tid, 7, 0)?;
        for (i, s) in slots.iter().enumerate() {
            poke(tid, i, s.addr)?;
        }
        poke(tid, 6, 0)?;
        poke(tid, 7, dr7(slots))
    }

    /// The slots DR6 says fired; DR6 is cleared for the next hit.
    pub fn triggered(tid: i32, slots: &[Slot], _addr: u64) -> Result<Vec<usize>, Errno> {
        let pid = Pid::from_raw(tid);
        let dr6 = ptrace::read_user(pid, offset(6) as ptrace::AddressType)? as u64;
        poke(tid, 6, 0)?;
        Ok(fired(dr6, slots.len()))
    }

    /// Disables every slot (DR7 = 0). The address registers are left alone: writing one the
    /// thread never used would make the kernel reserve a breakpoint slot for it.
    pub fn clear_raw(tid: i32) -> bool {
        // SAFETY: PTRACE_POKEUSER with integer arguments is a plain, async-signal-safe syscall;
        // it fails harmlessly when the thread is gone or not stopped.
        unsafe {
            let ok = super::emergency::raw(libc::PTRACE_POKEUSER, tid, offset(7) as usize, 0) == 0;
            super::emergency::raw(libc::PTRACE_POKEUSER, tid, offset(6) as usize, 0);
            ok
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arch {
    //! aarch64: the watchpoint registers (DBGWVR address, DBGWCR control) through
    //! PTRACE_SETREGSET with NT_ARM_HW_WATCH. A control word holds enable (bit 0), privilege
    //! (EL0 = 0b10 at bits 1–2), load/store (bits 3–4) and the byte-address-select mask of the
    //! bytes watched within the 8-byte-aligned doubleword (bits 5–12). The hit's data address
    //! comes in `si_addr`. The register values come from `debugreg::arm64`.
    use super::Slot;
    use crate::target::debugreg::arm64;
    use nix::errno::Errno;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const NT_ARM_HW_WATCH: libc::c_int = 0x403;

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct DebugReg {
        addr: u64,
        ctrl: u32,
        pad: u32,
    }

    /// `struct user_hwdebug_state`.
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct HwDebugState {
        dbg_info: u32,
        pad: u32,
        regs: [DebugReg; 16],
    }

    fn reg(s: &Slot) -> DebugReg {
        DebugReg {
            addr: arm64::wvr(s),
            ctrl: arm64::wcr(s),
            pad: 0,
        }
    }

    /// How many registers the last `arm` wrote: clearing writes those only, since writing a
    /// register the thread never used makes the kernel reserve a slot for it.
    static USED: AtomicUsize = AtomicUsize::new(0);

    fn set(tid: i32, state: &HwDebugState, regs: usize) -> libc::c_long {
        let mut iov = libc::iovec {
            iov_base: state as *const HwDebugState as *mut libc::c_void,
            iov_len: 8 + regs.min(16) * std::mem::size_of::<DebugReg>(),
        };
        // SAFETY: PTRACE_SETREGSET reads iov_len bytes of `state` (a live repr(C) struct); the
        // kernel copies them and keeps no pointer. It is a plain async-signal-safe syscall.
        unsafe {
            super::emergency::raw(
                libc::PTRACE_SETREGSET,
                tid,
                NT_ARM_HW_WATCH as usize,
                &raw mut iov as usize,
            )
        }
    }

    pub fn arm(tid: i32, slots: &[Slot]) -> Result<(), Errno> {
        let mut state = HwDebugState::default();
        for (i, s) in slots.iter().enumerate().take(16) {
            state.regs[i] = reg(s);
        }
        // Registers a previous run used are written too (disabled), so none is left enabled.
        let regs = USED
            .fetch_max(slots.len(), Ordering::SeqCst)
            .max(slots.len());
        if set(tid, &state, regs) == 0 {
            Ok(())
        } else {
            Err(Errno::last())
        }
    }

    /// The slot whose doubleword holds the reported data address.
    pub fn triggered(_tid: i32, slots: &[Slot], addr: u64) -> Result<Vec<usize>, Errno> {
        Ok(arm64::fired(slots, addr).into_iter().collect())
    }

    pub fn clear_raw(tid: i32) -> bool {
        set(tid, &HwDebugState::default(), USED.load(Ordering::SeqCst)) == 0
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod arch {
    use super::Slot;
    use nix::errno::Errno;

    pub fn arm(_tid: i32, _slots: &[Slot]) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }

    pub fn triggered(_tid: i32, _slots: &[Slot], _addr: u64) -> Result<Vec<usize>, Errno> {
        Ok(Vec::new())
    }

    pub fn clear_raw(_tid: i32) -> bool {
        false
    }
}

// The slot split, the encodings and the slot accounting are tested in `target::debugreg`.
