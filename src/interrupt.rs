//! Ctrl-C and fatal signals. While the REPL runs, or is to follow (commands from `-ex`, `-x` and
//! the demo's tour before it), SIGINT only sets flags: long commands poll one ([`check`]), so
//! Ctrl-C interrupts the command, never the REPL; command files and `-ex` lists poll the other
//! between commands ([`stop_requested`]), so Ctrl-C also ends the file, as in gdb. Otherwise (batch
//! mode, a pipe), and for SIGTERM and SIGHUP, vmscope lets go of its target (detach every traced
//! thread, kill what it launched) and exits with 128 + the signal number.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Ctrl-C was pressed since the current command file or `-ex` list started: stop it.
static STOP: AtomicBool = AtomicBool::new(false);
static REPL_ACTIVE: AtomicBool = AtomicBool::new(false);

/// Fails with [`Error::Interrupted`] once Ctrl-C was pressed during the current command.
pub fn check() -> Result<()> {
    if INTERRUPTED.swap(false, Ordering::SeqCst) {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// Starts a command with no Ctrl-C pending; a Ctrl-C pressed at the prompt is forgotten.
pub fn command_scope() -> CommandScope {
    INTERRUPTED.store(false, Ordering::SeqCst);
    CommandScope
}

pub struct CommandScope;

impl Drop for CommandScope {
    fn drop(&mut self) {
        INTERRUPTED.store(false, Ordering::SeqCst);
    }
}

/// Whether Ctrl-C was pressed since [`clear_stop`]: a command file (and each file that sourced
/// it) or an `-ex` list stops before its next command.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Forgets a Ctrl-C pressed before a command file or `-ex` list starts.
pub fn clear_stop() {
    STOP.store(false, Ordering::SeqCst);
}

/// While the REPL runs (or is to follow), SIGINT interrupts commands instead of ending vmscope.
pub fn set_repl_active(active: bool) {
    REPL_ACTIVE.store(active, Ordering::SeqCst);
}

#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGINT && REPL_ACTIVE.load(Ordering::SeqCst) {
        INTERRUPTED.store(true, Ordering::SeqCst);
        STOP.store(true, Ordering::SeqCst);
        return;
    }
    crate::target::release_all_for_exit();
    // SAFETY: _exit is async-signal-safe and ends the process without running destructors,
    // which is what a signal handler must do.
    unsafe { libc::_exit(128 + sig) }
}

/// Installs the handlers for SIGINT, SIGTERM and SIGHUP.
#[cfg(unix)]
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

/// Windows' console control handler: Ctrl-C interrupts the command while the REPL runs; otherwise
/// (and for Ctrl-Break, closing the console, logoff, shutdown) vmscope lets go of its target and
/// the default handler ends the process.
#[cfg(windows)]
unsafe extern "system" fn on_console_event(event: u32) -> windows_sys::core::BOOL {
    use windows_sys::Win32::System::Console::CTRL_C_EVENT;
    if event == CTRL_C_EVENT && REPL_ACTIVE.load(Ordering::SeqCst) {
        INTERRUPTED.store(true, Ordering::SeqCst);
        STOP.store(true, Ordering::SeqCst);
        return 1; // handled: keep running
    }
    crate::target::release_all_for_exit();
    0 // not handled: the next handler (the default one) ends the process
}

/// Installs the console control handler (Ctrl-C, Ctrl-Break, close).
#[cfg(windows)]
pub fn install() {
    // SAFETY: the handler only touches atomics and lets go of the target; Windows runs it on a
    // thread of its own, which the atomics make safe.
    unsafe {
        windows_sys::Win32::System::Console::SetConsoleCtrlHandler(Some(on_console_event), 1);
    }
}
