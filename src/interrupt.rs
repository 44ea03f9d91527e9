//! Ctrl-C and fatal signals. While the REPL runs a command, SIGINT only sets a flag that long
//! commands poll ([`check`]); otherwise, and for SIGTERM and SIGHUP, vmscope lets go of its target
//! (detach every traced thread, kill what it launched) and exits with 128 + the signal number.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static COMMAND_RUNNING: AtomicBool = AtomicBool::new(false);

/// Fails with [`Error::Interrupted`] once Ctrl-C was pressed during the current command.
pub fn check() -> Result<()> {
    if INTERRUPTED.swap(false, Ordering::SeqCst) {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// Marks a command as running (Ctrl-C interrupts it) until the guard is dropped.
pub fn command_scope(interactive: bool) -> CommandScope {
    INTERRUPTED.store(false, Ordering::SeqCst);
    COMMAND_RUNNING.store(interactive, Ordering::SeqCst);
    CommandScope
}

pub struct CommandScope;

impl Drop for CommandScope {
    fn drop(&mut self) {
        COMMAND_RUNNING.store(false, Ordering::SeqCst);
        INTERRUPTED.store(false, Ordering::SeqCst);
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGINT && COMMAND_RUNNING.load(Ordering::SeqCst) {
        INTERRUPTED.store(true, Ordering::SeqCst);
        return;
    }
    crate::target::release_all_for_exit();
    // SAFETY: _exit is async-signal-safe and ends the process without running destructors,
    // which is what a signal handler must do.
    unsafe { libc::_exit(128 + sig) }
}

/// Installs the handlers for SIGINT, SIGTERM and SIGHUP.
pub fn install() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only touches atomics and calls async-signal-safe functions.
        unsafe {
            let _ = sigaction(sig, &action);
        }
    }
}
