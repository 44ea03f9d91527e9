//! Starting a program under control (`vmscope -- PROG ARGS`): it runs until its entry point, so
//! that the dynamic loader has mapped and relocated every library before the first command looks
//! at it (run freely from exec, `regions` almost always caught it with only ld.so mapped), then
//! it is let go and runs on.
//!
//! How, on x86_64: the child asks to be traced (PTRACE_TRACEME) and stops at its exec; an
//! execute breakpoint in DR0 at the entry point from its auxiliary vector (AT_ENTRY) stops it
//! again there, without writing to its code; the debug registers are cleared and it is detached.
//! Signals it receives meanwhile are passed on. A program that never gets there (a constructor
//! that blocks, a loader error) is let go after [`PATIENCE`], or reported exited as it is. Other
//! architectures start the program and let it run from exec.

use crate::error::{Error, Result};
use std::path::Path;
use std::process::{Child, Command};

/// How long a program may take from its exec to its entry point before it is let go anyway.
#[cfg(target_arch = "x86_64")]
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts `program` with `args`; on x86_64 it has reached its entry point when this returns (or
/// exited, or was let go after [`PATIENCE`]).
pub fn start(program: &Path, args: &[String]) -> Result<Child> {
    let mut command = Command::new(program);
    command.args(args);
    // Its own process group, as gdb gives its inferior: Ctrl-C at the REPL interrupts vmscope's
    // command and does not kill the program. It is then a background job of the terminal: its
    // output still shows, but reading the terminal stops it (SIGTTIN), as for `prog &`.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    #[cfg(target_arch = "x86_64")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and makes one system call,
        // which is async-signal-safe; it touches no memory of the parent's threads.
        unsafe {
            command.pre_exec(|| {
                if super::ptrace::emergency::raw(libc::PTRACE_TRACEME, 0, 0, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = command
        .spawn()
        .map_err(|e| Error::io(format!("cannot start {}", program.display()), e))?;
    super::ptrace::emergency::add_launched(child.id() as i32);
    #[cfg(target_arch = "x86_64")]
    to_entry::run(child.id() as i32)?;
    Ok(child)
}

#[cfg(target_arch = "x86_64")]
mod to_entry {
    use super::PATIENCE;
    use crate::error::{Error, Result};
    use crate::target::linux::hwbp::poke_debug_register;
    use nix::sys::ptrace;
    use nix::sys::signal::{Signal, kill};
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
    use nix::unistd::Pid;
    use std::time::Instant;

    /// AT_ENTRY in the auxiliary vector: the program's entry point.
    const AT_ENTRY: u64 = 9;
    /// DR7 with breakpoint 0 enabled locally (L0), condition 00 (execute), length 00.
    const DR7_EXEC_0: u64 = 1;

    /// What the child did next.
    enum Next {
        /// Stopped (a ptrace stop), with the signal of the stop.
        Stopped(Signal),
        /// Exited or was killed: left unreaped, for `Child::try_wait` to report.
        Gone,
        /// Still running after the deadline.
        Late,
    }

    /// Waits for the next stop or the end of `pid` until `deadline`. An exit is only peeked at
    /// (WNOWAIT), so the launcher's `Child` still reaps it and tells its status.
    fn next(pid: Pid, deadline: Instant) -> Result<Next> {
        loop {
            let flags = WaitPidFlag::WEXITED
                | WaitPidFlag::WSTOPPED
                | WaitPidFlag::WNOHANG
                | WaitPidFlag::WNOWAIT;
            match waitid(Id::Pid(pid), flags) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => return Ok(Next::Gone),
                Ok(_) => {
                    // A stop: take it off the queue (a ptrace stop is reaped by waitpid).
                    let status = waitpid(pid, Some(WaitPidFlag::__WALL))
                        .map_err(|e| Error::io("waiting for the launched program", e.into()))?;
                    match status {
                        WaitStatus::Stopped(_, sig) => return Ok(Next::Stopped(sig)),
                        WaitStatus::PtraceEvent(_, sig, _) => return Ok(Next::Stopped(sig)),
                        WaitStatus::Exited(..) | WaitStatus::Signaled(..) => {
                            return Ok(Next::Gone);
                        }
                        _ => {}
                    }
                }
                Err(e) => return Err(Error::io("waiting for the launched program", e.into())),
            }
            if Instant::now() >= deadline {
                return Ok(Next::Late);
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// The entry point from /proc/PID/auxv (pairs of native words).
    fn entry(pid: Pid) -> Option<u64> {
        let auxv = std::fs::read(format!("/proc/{pid}/auxv")).ok()?;
        auxv.chunks_exact(16).find_map(|pair| {
            let key = u64::from_ne_bytes(pair[..8].try_into().ok()?);
            let value = u64::from_ne_bytes(pair[8..].try_into().ok()?);
            (key == AT_ENTRY).then_some(value)
        })
    }

    /// Lets the stopped child go: breakpoint off, detached, `sig` delivered (or none).
    fn release(pid: Pid, sig: Option<Signal>) {
        let _ = poke_debug_register(pid.as_raw(), 7, 0);
        let _ = poke_debug_register(pid.as_raw(), 0, 0);
        let _ = ptrace::detach(pid, sig);
    }

    /// Runs a child that called PTRACE_TRACEME from its exec stop to its entry point.
    pub fn run(raw: i32) -> Result<()> {
        let pid = Pid::from_raw(raw);
        let deadline = Instant::now() + PATIENCE;
        // The exec stop (SIGTRAP) comes first.
        match next(pid, deadline)? {
            Next::Stopped(_) => {}
            Next::Gone => return Ok(()),
            Next::Late => return Err(Error::usage(format!("process {raw} did not start"))),
        }
        let Some(entry) = entry(pid) else {
            release(pid, None);
            return Ok(());
        };
        if poke_debug_register(raw, 0, entry).is_err()
            || poke_debug_register(raw, 7, DR7_EXEC_0).is_err()
        {
            release(pid, None);
            return Ok(());
        }
        let mut pending = None;
        loop {
            if ptrace::cont(pid, pending.take()).is_err() {
                return Ok(()); // gone meanwhile
            }
            match next(pid, deadline)? {
                Next::Stopped(Signal::SIGTRAP) => {
                    release(pid, None);
                    return Ok(());
                }
                // Its own signal: delivered, and on to the entry point.
                Next::Stopped(sig) => pending = Some(sig),
                Next::Gone => return Ok(()),
                Next::Late => {
                    // Stop it to let go of it; the SIGSTOP is swallowed by the detach.
                    let _ = kill(pid, Signal::SIGSTOP);
                    let _ = next(pid, Instant::now() + PATIENCE);
                    release(pid, None);
                    return Ok(());
                }
            }
        }
    }
}
