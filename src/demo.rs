//! `vmscope demo`: the guided tour. vmscope re-executes itself in a hidden mode as the demo target
//! (the classic teaching program: an int on the heap that a loop increments, a local on the stack,
//! a function pointer, a mapped file, a forked child sharing pages copy-on-write), attaches to it,
//! and runs `commands/tour.vms`. The target, its child and its file never outlive vmscope.

use crate::command::Session;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicUsize, Ordering};

/// The hidden argument that turns vmscope into the demo target.
pub const TARGET_ARG: &str = "__demo-target";

/// The tour, shipped in commands/ and built in so `demo` works from any directory.
pub const TOUR: &str = include_str!("../commands/tour.vms");

/// What the demo target knows about itself, printed as one JSON line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Facts {
    pub pid: i32,
    pub heap_int: u64,
    /// An int on its own heap page, shared copy-on-write with the child until it writes it.
    pub cow_int: u64,
    pub stack_local: u64,
    /// Where a function pointer is stored (on the stack), and the function it points to.
    pub func_ptr: u64,
    pub func: u64,
    pub mapped: u64,
    pub mapped_path: PathBuf,
    pub child_pid: i32,
}

/// The address of the demo's copy-on-write int, for the child's signal handler.
#[cfg(target_os = "linux")]
static COW_INT: AtomicUsize = AtomicUsize::new(0);

/// The demo child's SIGUSR1 handler: it writes the shared int, so the kernel gives the child a
/// private copy of that page (`signal SIGUSR1 $child_pid` in the tour).
#[cfg(target_os = "linux")]
extern "C" fn child_writes(_sig: libc::c_int) {
    let p = COW_INT.load(Ordering::SeqCst) as *mut u64;
    if !p.is_null() {
        // SAFETY: the page was allocated before the fork and is never freed; a volatile store is
        // async-signal-safe.
        unsafe { p.write_volatile(p.read_volatile() + 1) };
    }
}

/// The function whose address the demo publishes as its function pointer.
#[cfg(target_os = "linux")]
#[inline(never)]
fn bump(x: u64) -> u64 {
    std::hint::black_box(x + 1)
}

/// Runs as the demo target; never returns.
#[cfg(target_os = "linux")]
pub fn run_target() -> ! {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number; it makes this process die with
    // vmscope, even if vmscope is killed with SIGKILL.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_NAME, c"vmscope-demo".as_ptr());
    }
    let pid = std::process::id() as i32;
    let path = std::env::temp_dir().join(format!("vmscope-demo-{pid}.txt"));
    let text = b"Hello from the demo's mapped file: these bytes live in the page cache.\n\0";
    std::fs::write(&path, text).expect("write the demo file");
    let file = std::fs::File::open(&path).expect("open the demo file");
    // SAFETY: a fresh read-only private mapping of a file we just wrote; never unmapped while used.
    let mapped = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            text.len(),
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
        )
    };
    assert_ne!(mapped, libc::MAP_FAILED, "mmap the demo file");

    let heap_int: Box<u64> = Box::new(0);
    let heap_ptr = Box::into_raw(heap_int);
    // An int on a heap page of its own, written once before the fork and never again by the
    // parent: parent and child share its frame copy-on-write until the child writes it.
    let cow_layout = std::alloc::Layout::from_size_align(4096, 4096).expect("page layout");
    // SAFETY: a non-zero-sized layout; the block is leaked on purpose and lives until exit.
    let cow_ptr = unsafe { std::alloc::alloc_zeroed(cow_layout) } as *mut u64;
    assert!(!cow_ptr.is_null(), "allocate the copy-on-write page");
    // SAFETY: cow_ptr is a fresh, aligned, 4096-byte allocation.
    unsafe { cow_ptr.write_volatile(0xc0ffee) };
    COW_INT.store(cow_ptr as usize, Ordering::SeqCst);
    let stack_local: u64 = 0x5741_434b; // "STACK" in spirit: a recognisable value
    let func: fn(u64) -> u64 = bump;

    // SAFETY: fork in a single-threaded process; the child only calls async-signal-safe functions
    // (prctl, sigaction, pause, and a plain store from its SIGUSR1 handler). It shares every page
    // copy-on-write until one side writes.
    let child = unsafe { libc::fork() };
    if child == 0 {
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::signal(
                libc::SIGUSR1,
                child_writes as *const () as libc::sighandler_t,
            );
            loop {
                libc::pause();
            }
        }
    }
    let facts = Facts {
        pid,
        heap_int: heap_ptr as u64,
        cow_int: cow_ptr as u64,
        stack_local: std::ptr::addr_of!(stack_local) as u64,
        func_ptr: std::ptr::addr_of!(func) as u64,
        func: func as usize as u64,
        mapped: mapped as u64,
        mapped_path: path,
        child_pid: child,
    };
    std::thread::Builder::new()
        .name("demo-worker".into())
        .spawn(|| {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        })
        .expect("spawn the worker thread");
    // Let both threads settle into their sleeps before vmscope looks.
    std::thread::sleep(std::time::Duration::from_millis(20));
    println!(
        "{}",
        serde_json::to_string(&facts).expect("facts serialize")
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGUSR2,
            touch_requested as *const () as libc::sighandler_t,
        );
    }
    let mut touch_at: Option<std::time::Instant> = None;
    loop {
        // SAFETY: heap_ptr is a live Box we leaked on purpose; only this thread writes it.
        unsafe {
            *heap_ptr = func(std::ptr::read_volatile(heap_ptr));
        }
        std::hint::black_box(&stack_local);
        std::hint::black_box(&func);
        if TOUCH.swap(false, Ordering::SeqCst) {
            touch_at = Some(std::time::Instant::now() + TOUCH_DELAY);
        }
        if touch_at.is_some_and(|t| std::time::Instant::now() >= t) {
            touch_at = None;
            touch_fresh_pages();
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Set by SIGUSR2: touch fresh pages soon, so `faults` has something to see.
#[cfg(target_os = "linux")]
static TOUCH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// How long after SIGUSR2 the pages are touched: time for `faults` to start sampling.
#[cfg(target_os = "linux")]
const TOUCH_DELAY: std::time::Duration = std::time::Duration::from_millis(500);
/// How many fresh pages one SIGUSR2 touches.
pub const TOUCH_PAGES: usize = 256;

#[cfg(target_os = "linux")]
extern "C" fn touch_requested(_sig: libc::c_int) {
    TOUCH.store(true, Ordering::SeqCst);
}

/// Maps fresh anonymous memory and writes one byte per page: one page fault each.
#[cfg(target_os = "linux")]
#[inline(never)]
fn touch_fresh_pages() {
    let len = TOUCH_PAGES * 4096;
    // SAFETY: a fresh private anonymous mapping, written within its bounds, never unmapped (the
    // demo keeps what it touched so `regions` can show it).
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        ) as *mut u8;
        if p as *mut libc::c_void == libc::MAP_FAILED {
            return;
        }
        for page in 0..TOUCH_PAGES {
            p.add(page * 4096).write_volatile(1);
        }
    }
}

/// The demo target is a Linux program (fork, PR_SET_PDEATHSIG, /proc): elsewhere it says so.
#[cfg(not(target_os = "linux"))]
pub fn run_target() -> ! {
    eprintln!("vmscope: the demo target runs only on Linux");
    std::process::exit(1)
}

/// Starts the demo target and returns it with its facts. The demo needs Linux (fork,
/// PR_SET_PDEATHSIG, a subreaper, /proc): elsewhere it is not supported yet.
#[cfg(not(target_os = "linux"))]
pub fn start_target() -> Result<(Box<dyn crate::target::Target>, Facts)> {
    Err(Error::Unsupported {
        what: "the demo (it needs Linux's fork, PR_SET_PDEATHSIG and /proc)".into(),
        target: std::env::consts::OS.into(),
    })
}

/// Starts the demo target and returns it with its facts.
#[cfg(target_os = "linux")]
pub fn start_target() -> Result<(Box<dyn crate::target::Target>, Facts)> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    // The demo target's forked child is orphaned when the target is killed: as a subreaper,
    // vmscope inherits it and reaps it in `clean_up`, instead of leaving a zombie to init.
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only changes how orphans are reparented.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("finding vmscope's own path", e))?;
    let mut command = Command::new(exe);
    command
        .arg(TARGET_ARG)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    // Its own process group, so Ctrl-C during a tour command does not kill the demo target.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|e| Error::io("starting the demo target", e))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| Error::io("reading the demo target's facts", e))?;
    let facts: Facts = match serde_json::from_str(&line) {
        Ok(f) => f,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Usage(format!("the demo target did not start: {e}")));
        }
    };
    let target = crate::target::linux::LinuxProcess::adopt(child)?;
    Ok((Box::new(target), facts))
}

/// Runs the tour against a session holding the demo target; the caller decides about the REPL.
pub fn tour(session: &mut Session, facts: &Facts) -> Result<bool> {
    for (name, value) in [
        ("heap_int", facts.heap_int),
        ("cow_int", facts.cow_int),
        ("stack_local", facts.stack_local),
        ("func_ptr", facts.func_ptr),
        ("func", facts.func),
        ("mapped", facts.mapped),
        ("child_pid", facts.child_pid as u64),
    ] {
        session.vars.insert(name.to_string(), value);
    }
    crate::script::run_text(session, "commands/tour.vms", TOUR, false)
}

/// Once the target is gone: reaps its orphaned child (killed by PDEATHSIG) and removes the file.
pub fn clean_up(facts: &Facts) {
    let _ = std::fs::remove_file(&facts.mapped_path);
    #[cfg(target_os = "linux")]
    for _ in 0..200 {
        let mut status = 0;
        // SAFETY: waitpid on a pid we are (as subreaper) the parent of; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(facts.child_pid, &mut status, libc::WNOHANG) };
        if r != 0 {
            break; // reaped, or not our child (ECHILD)
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
