//! Test support: fixture programs built once per run with the system C compiler, started with a
//! scratch directory, their self-reported facts parsed; and helpers to run the vmscope binary.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const VMSCOPE: &str = env!("CARGO_BIN_EXE_vmscope");

/// Builds fixtures/NAME.c once per test run (`cc -g -O0 -pthread`) and returns the binary.
pub fn fixture_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/{name}.c"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fixture-{name}"));
    // fixtures/NAME.cpp is C++, built the same way with `c++`.
    let cpp = src.with_extension("cpp");
    let (compiler, src) = if cpp.exists() {
        ("c++", cpp)
    } else {
        ("cc", src)
    };
    let status = Command::new(compiler)
        .args(["-g", "-O0", "-pthread", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run cc (install a C compiler)");
    assert!(status.success(), "cc failed to build {}", src.display());
    built.insert(name.to_string(), out.clone());
    out
}

/// A unique scratch directory under the target dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("scratch-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running fixture and the facts it printed about itself; killed on drop.
pub struct Fixture {
    pub child: Child,
    pub facts: Value,
    pub scratch: Scratch,
}

impl Fixture {
    pub fn start(name: &str) -> Fixture {
        Self::start_bin(&fixture_bin(name), name)
    }

    pub fn start_bin(bin: &Path, tag: &str) -> Fixture {
        let scratch = Scratch::new(tag);
        let child = Command::new(bin)
            .arg(&scratch.0)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start fixture");
        Self::from_child(child, scratch)
    }

    /// The facts fixture, run from a copy of its binary in its own scratch directory (also its
    /// working directory): other test binaries rebuild fixtures into the shared target directory
    /// while the caller runs, and a replaced executable would show as `(deleted)` in the map and
    /// in a core. With `shell_prefix`, the copy runs as `sh -c SCRIPT BIN SCRATCH`. Returns once
    /// the fixture sits in pause().
    pub fn start_private(tag: &str, shell_prefix: Option<&str>) -> Fixture {
        let scratch = Scratch::new(tag);
        let bin = scratch.0.join("fixture-facts");
        std::fs::copy(fixture_bin("facts"), &bin).unwrap();
        // A child another test thread forked while the copy was open for writing holds that
        // descriptor until it execs: exec of the copy fails with ETXTBSY meanwhile. Retry.
        let mut attempts = 0;
        let child = loop {
            let mut cmd = match shell_prefix {
                Some(script) => {
                    let mut c = Command::new("sh");
                    c.args(["-c", script]).arg(&bin);
                    c
                }
                None => Command::new(&bin),
            };
            // sh would exec the copy itself and fail there, out of our sight: give the
            // short-lived forks time to exec first.
            if shell_prefix.is_some() && attempts == 0 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            match cmd
                .arg(&scratch.0)
                .current_dir(&scratch.0)
                .stdout(Stdio::piped())
                .stdin(Stdio::null())
                .spawn()
            {
                Ok(child) => break child,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("start facts: {e}"),
            }
        };
        let fx = Self::from_child(child, scratch);
        fx.wait_paused();
        fx
    }

    /// Reads the one JSON line a started fixture prints about itself.
    fn from_child(mut child: Child, scratch: Scratch) -> Fixture {
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let facts: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("fixture printed bad JSON ({e}): {line:?}"));
        Fixture {
            child,
            facts,
            scratch,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// An address fact (printed with %p) as a number.
    pub fn addr(&self, key: &str) -> u64 {
        let s = self.facts[key]
            .as_str()
            .unwrap_or_else(|| panic!("no fact {key}"));
        u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until every thread of the fixture is blocked in pause() (x86_64 syscall 34), so
    /// each has a stack pointer to be found by.
    pub fn wait_paused(&self) {
        assert!(
            wait_until(10, || every_thread_in(self.pid(), |s| s.starts_with("34 "))),
            "the fixture's threads never all reached pause()"
        );
    }

    /// The one-letter state from /proc/PID/stat.
    pub fn state(&self) -> char {
        proc_state(self.pid())
    }

    /// Kills the fixture without reaping it and waits until it is a zombie, which must count as
    /// exited too.
    pub fn kill_to_zombie(&mut self) {
        self.child.kill().unwrap();
        let pid = self.pid();
        assert!(wait_until(5, || proc_state(pid) == 'Z'));
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether every thread of `pid` is blocked in a system call (so each has a stack pointer to be
/// found by): /proc/PID/task/TID/syscall says `running` for one that is not.
pub fn threads_blocked(pid: i32) -> bool {
    every_thread_in(pid, |s| !s.is_empty() && !s.starts_with("running"))
}

/// Whether /proc/PID/task/TID/syscall satisfies `is` for every thread of `pid`.
fn every_thread_in(pid: i32, is: impl Fn(&str) -> bool) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|d| {
        d.filter_map(|e| e.ok())
            .all(|e| std::fs::read_to_string(e.path().join("syscall")).is_ok_and(|s| is(&s)))
    })
}

pub fn proc_state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .unwrap_or('?')
}

/// Runs vmscope with `args` and stdin from /dev/null.
pub fn vmscope(args: &[&str]) -> Output {
    Command::new(VMSCOPE)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run vmscope")
}

/// Runs vmscope with `args`, feeding `input` on stdin.
pub fn vmscope_stdin(args: &[&str], input: &str) -> Output {
    let mut s = Piped::start(args);
    s.send_raw(input);
    s.finish()
}

/// A vmscope session fed from a pipe, so the test decides when each command is sent.
pub struct Piped {
    pub child: Child,
}

impl Piped {
    pub fn start(args: &[&str]) -> Piped {
        let child = Command::new(VMSCOPE)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run vmscope");
        Piped { child }
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) {
        self.send_raw(&format!("{line}\n"));
    }

    pub fn send_raw(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin (vmscope exits at end of input) and collects the output.
    pub fn finish(mut self) -> Output {
        drop(self.child.stdin.take());
        self.child.wait_with_output().unwrap()
    }
}

/// A piped session whose output is read as it comes, so the test can wait for an answer before
/// it acts (kills the target, lets a program exit) instead of sleeping a guessed time.
pub struct Conversation {
    session: Piped,
    lines: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<String>,
}

impl Conversation {
    pub fn start(args: &[&str]) -> Conversation {
        let mut session = Piped::start(args);
        let out = session.child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Conversation {
            session,
            lines,
            reader,
        }
    }

    pub fn send(&mut self, line: &str) {
        self.session.send(line);
    }

    /// vmscope's own pid.
    pub fn id(&self) -> u32 {
        self.session.child.id()
    }

    /// Sends `line`, then waits (up to 60 s) until everything it printed is out: an `echo`
    /// after it marks the end.
    pub fn ask(&mut self, line: &str) {
        self.session.send(line);
        self.session.send("echo --answered--");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains("--answered--") => return,
                Ok(_) => {}
                Err(e) => panic!("no answer to `{line}`: {e}"),
            }
        }
    }

    /// Closes the input; the whole stdout, and the rest (stderr, status).
    pub fn finish(self) -> (String, Output) {
        let out = self.session.finish();
        (self.reader.join().unwrap(), out)
    }
}

/// `vmscope -p PID --batch [EXTRA...] -ex CMD...`.
pub fn batch(pid: i32, extra: &[&str], commands: &[&str]) -> Output {
    let pid = pid.to_string();
    let mut args = vec!["-p", &pid, "--batch"];
    args.extend(extra);
    for c in commands {
        args.extend(["-ex", c]);
    }
    vmscope(&args)
}

/// `vmscope -p PID --batch -ex CMD...` with text output.
pub fn text_batch(pid: i32, commands: &[&str]) -> Output {
    batch(pid, &[], commands)
}

/// `vmscope -p PID --batch --json -ex CMD...`: one JSON document per command.
pub fn json_batch(pid: i32, commands: &[&str]) -> (Vec<Value>, Output) {
    let out = batch(pid, &["--json"], commands);
    let docs = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line ({e}): {l}")))
        .collect();
    (docs, out)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `body` (a test's comparison of vmscope's answer with a second, independent read of the
/// kernel) until it passes, at most `attempts` times. For facts the kernel may change between the
/// two reads behind both readers' backs: compaction migrating a page to another frame, khugepaged
/// collapsing pages, another process mapping a shared page. A real disagreement fails every
/// attempt, and the last one fails the test with its own message.
pub fn retried(attempts: u32, body: impl Fn()) {
    for attempt in 1..attempts {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&body)) {
            Ok(()) => return,
            Err(_) => eprintln!("attempt {attempt} of {attempts} disagreed (above); trying again"),
        }
    }
    body();
}

/// Waits until `cond` holds, for up to `secs` seconds.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// A hex address string from JSON as a number.
pub fn hex(v: &Value) -> u64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a hex string: {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// The TracerPid line of /proc/PID/status (0: untraced); None once the process is gone.
pub fn tracer_pid(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Sends signal `sig` to `pid`, which must succeed.
pub fn send_signal(pid: i32, sig: i32) {
    // SAFETY: kill on the pid of a fixture the test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether this vmscope build has the command `name` (`help NAME` succeeds).
pub fn has_command(name: &str) -> bool {
    vmscope(&["--batch", "-ex", &format!("help {name}")])
        .status
        .success()
}

/// `text_batch(pid, [cmd])` fails with exit status 1 and a message containing `want`, no panic.
pub fn assert_clear_error(pid: i32, cmd: &str, want: &str) {
    let out = text_batch(pid, &[cmd]);
    assert_eq!(out.status.code(), Some(1), "{cmd}");
    let err = stderr(&out);
    assert!(err.contains(want), "{cmd}: {err}");
    assert!(!err.contains("panicked"), "{cmd}: {err}");
}

/// Whether `script` (util-linux) is installed to allocate a pseudo-terminal; says loudly when not.
pub fn have_script() -> bool {
    let ok = Command::new("script").arg("--version").output().is_ok();
    if !ok {
        eprintln!("SKIPPED: `script` (util-linux) is not installed, so no pseudo-terminal test");
    }
    ok
}

/// The interactive vmscope (attached to a pid, or launching a program) in a real pseudo-terminal
/// (`script` allocates it), its history kept under `state`; the test types keys into it and
/// waits for what the screen shows before typing on.
pub struct Terminal {
    pub child: Child,
    stdin: ChildStdin,
    screen: std::sync::Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// How far [`Terminal::expect`] has read the screen.
    seen: usize,
}

impl Terminal {
    pub fn start(pid: i32, state: &Scratch) -> Terminal {
        Terminal::run(&format!("-p {pid}"), state)
    }

    /// The interactive vmscope with the arguments `args` (one shell-quoted string).
    pub fn run(args: &str, state: &Scratch) -> Terminal {
        // `exec`: whatever shell `script` runs (dash when $SHELL is unset, as in CI) must not stay
        // between the terminal and vmscope, or Ctrl-C kills the shell and the session with it.
        let cmd = format!("exec {VMSCOPE} {args}");
        let mut child = Command::new("script")
            .args(["-qfec", &cmd, "/dev/null"])
            .env("XDG_STATE_HOME", &state.0)
            .env("NO_COLOR", "1")
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let screen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut out, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            child,
            stdin,
            screen,
            reader: Some(reader),
            seen: 0,
        }
    }

    /// Types `keys`, then gives vmscope `wait_ms` milliseconds to act on them.
    pub fn keys(&mut self, keys: &str, wait_ms: u64) {
        self.stdin.write_all(keys.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(wait_ms));
    }

    /// Waits (up to 30 s) until `text` appears on the screen after what earlier calls found.
    pub fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let screen = self.screen.lock().unwrap();
                let shown = String::from_utf8_lossy(&screen[self.seen..]);
                if let Some(at) = shown.find(text) {
                    // `at` counts bytes of the lossy text: the same bytes unless the screen
                    // held invalid UTF-8, when it is only an approximation, which is harmless.
                    self.seen += at + text.len();
                    return;
                }
                if Instant::now() >= deadline {
                    panic!(
                        "{text:?} never appeared; the screen so far:\n{}",
                        String::from_utf8_lossy(&screen)
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the REPL's prompt, ready for the next line.
    pub fn prompt(&mut self) {
        self.expect("(vmscope) ");
    }

    /// Closes the terminal's input, waits (up to 30 s) for the session to end and returns what
    /// it showed.
    pub fn finish(mut self) -> Output {
        drop(self.stdin);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "the terminal session did not end; the screen:\n{}",
                    String::from_utf8_lossy(&self.screen.lock().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.reader.take().unwrap().join().unwrap();
        let mut stderr = Vec::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_end(&mut e, &mut stderr);
        }
        let stdout = std::mem::take(&mut *self.screen.lock().unwrap());
        Output {
            status,
            stdout,
            stderr,
        }
    }
}
