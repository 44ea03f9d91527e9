//! A target's life around vmscope: it exits midway, vmscope is killed while the target is stopped,
//! the demo cleans up after itself. Also ptrace stop/continue/registers against /proc.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn commands_from_a_pipe_are_all_answered() {
    let f = Fixture::start("facts");
    let out = vmscope_stdin(&["-p", &f.pid().to_string()], "info\nthreads\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("pid:          {}", f.pid())),
        "{text}"
    );
    assert!(
        text.contains("worker-1") && text.contains("worker-2"),
        "{text}"
    );
}

#[test]
fn a_target_that_exits_midway_is_reported_and_the_session_survives() {
    let mut f = Fixture::start("facts");
    let g = Fixture::start("facts");
    let pid = f.pid();
    let mut s = Conversation::start(&["-p", &pid.to_string()]);
    s.ask("info");
    // Killed but not reaped: a zombie, which must count as exited too.
    f.kill_to_zombie();
    for cmd in [
        "info",
        "threads",
        &format!("x/gx {:#x}", f.addr("heap")),
        "stop",
        "signal SIGCONT",
    ] {
        s.send(cmd);
    }
    s.send(&format!("attach {}", g.pid()));
    s.send("info");
    let (text, out) = s.finish();
    let err = stderr(&out);
    assert_eq!(
        err.matches(&format!("process {pid} exited")).count(),
        5,
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        text.contains(&format!("attached to process {}", g.pid())),
        "{text}"
    );
    assert!(
        text.contains(&format!("pid:          {}", g.pid())),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_launched_program_reports_its_exit_status() {
    let dir = Scratch::new("launch");
    let go = dir.0.join("go");
    let script = format!(
        "while [ ! -e '{}' ]; do sleep 0.02; done; exit 3",
        go.display()
    );
    let mut s = Conversation::start(&["--", "/bin/sh", "-c", &script]);
    let me = s.id();
    let mut pid = 0;
    assert!(wait_until(10, || {
        pid = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        pid != 0
    }));
    s.ask("info");
    std::fs::write(&go, "").unwrap();
    assert!(
        wait_until(10, || proc_state(pid) == 'Z'),
        "the program did not exit"
    );
    s.send("info");
    let (text, out) = s.finish();
    let err = stderr(&out);
    assert!(
        err.contains(&format!("process {pid} exited (exit code 3)")),
        "{err}"
    );
    assert!(text.contains("command line: /bin/sh -c while"), "{text}");
}

#[test]
fn stop_registers_continue_detach() {
    let f = Fixture::start("facts");
    let pid = f.pid();
    f.wait_paused();
    // The main thread is blocked in pause(): /proc says where its stack pointer is.
    let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap();
    let sp_proc = u64::from_str_radix(
        syscall
            .split_whitespace()
            .nth(7)
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let (docs, out) = json_batch(
        pid,
        &[
            "stop",
            "registers",
            "print $sp",
            "x/gx $sp",
            "threads",
            "continue",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let rsp = docs[1]["registers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "rsp")
        .map(|r| hex(&r["value"]))
        .unwrap();
    assert_eq!(rsp, sp_proc);
    assert_eq!(docs[2]["value"].as_u64().unwrap(), sp_proc);
    assert!(sp_proc < f.addr("stack_local"));
    assert_eq!(hex(&docs[3]["address"]), sp_proc);
    let main = &docs[4]["threads"][0];
    assert_eq!(hex(&main["sp"]), sp_proc);
    // vmscope exited: the target runs again and nobody traces it.
    assert!(wait_until(5, || tracer_pid(pid) == Some(0)));
    assert!(wait_until(5, || f.state() == 'S'), "state {}", f.state());
}

#[test]
fn registers_need_a_stopped_target() {
    let f = Fixture::start("facts");
    let (docs, out) = json_batch(f.pid(), &["registers", "print $sp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        docs[0]["error"]
            .as_str()
            .unwrap()
            .contains("run `stop` first"),
        "{}",
        docs[0]
    );
    assert!(
        docs[1]["error"]
            .as_str()
            .unwrap()
            .contains("run `stop` first"),
        "{}",
        docs[1]
    );
}

fn kill_vmscope_while_stopped(signal: i32) -> (Fixture, std::process::ExitStatus) {
    let f = Fixture::start("facts");
    let pid = f.pid();
    let mut s = Conversation::start(&["-p", &pid.to_string()]);
    // Answered once every thread is stopped.
    s.ask("stop");
    assert_eq!(proc_state(pid), 't', "target not stopped");
    // SAFETY: kill on the pid of a child we started.
    unsafe { libc::kill(s.id() as i32, signal) };
    let (_, out) = s.finish();
    (f, out.status)
}

#[test]
fn a_sigkilled_vmscope_leaves_the_target_running() {
    let (f, _) = kill_vmscope_while_stopped(libc::SIGKILL);
    assert!(
        wait_until(5, || tracer_pid(f.pid()) == Some(0)),
        "still traced"
    );
    assert!(wait_until(5, || f.state() == 'S'), "state {}", f.state());
}

#[test]
fn sigterm_and_sighup_detach_before_exiting() {
    for sig in [libc::SIGTERM, libc::SIGHUP] {
        let (f, status) = kill_vmscope_while_stopped(sig);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.code(),
            Some(128 + sig),
            "{status:?} {:?}",
            status.signal()
        );
        assert_eq!(tracer_pid(f.pid()), Some(0));
        assert!(wait_until(5, || f.state() == 'S'), "state {}", f.state());
    }
}

#[test]
fn info_agrees_with_proc_status() {
    let f = Fixture::start("facts");
    let (docs, out) = json_batch(f.pid(), &["info"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = std::fs::read_to_string(format!("/proc/{}/status", f.pid())).unwrap();
    let kb = |key: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    };
    let d = &docs[0];
    assert_eq!(d["pid"], f.pid());
    assert_eq!(d["name"], "fixture-facts");
    assert_eq!(d["threads"], 3);
    assert_eq!(d["vm_size"].as_u64().unwrap(), kb("VmSize:"));
    assert_eq!(d["vm_swap"].as_u64().unwrap(), kb("VmSwap:"));
    assert_eq!(d["rss_shmem"].as_u64().unwrap(), kb("RssShmem:"));
    assert!(d["minflt"].as_u64().unwrap() > 0);
    assert!(d["exe"].as_str().unwrap().ends_with("fixture-facts"));
    assert_eq!(
        d["cmdline"][1].as_str().unwrap(),
        f.scratch.0.to_str().unwrap()
    );
    assert_eq!(d["stopped"], false);
}

#[test]
fn threads_match_the_fixture() {
    let f = Fixture::start("facts");
    f.wait_paused();
    let (docs, out) = json_batch(f.pid(), &["threads"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let threads = docs[0]["threads"].as_array().unwrap();
    let tids: Vec<i64> = threads.iter().map(|t| t["tid"].as_i64().unwrap()).collect();
    let mut want: Vec<i64> = f.facts["tids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    want.sort();
    assert_eq!(tids, want);
    let names: Vec<&str> = threads
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"worker-1") && names.contains(&"worker-2"),
        "{names:?}"
    );
    for t in threads {
        assert_eq!(t["syscall"]["name"], "pause", "{t}");
        assert!(t["sp"].is_string() && t["pc"].is_string(), "{t}");
    }
}

#[test]
fn the_demo_runs_the_tour_and_leaves_nothing_behind() {
    let out = Command::new(VMSCOPE)
        .arg("demo")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}\n{}", text, stderr(&out));
    for needle in [
        "== 1. The process ==",
        "0x000000005741434b",
        "Hello from the demo's mapped file",
        "stopped process",
        "The tour is over",
    ] {
        assert!(text.contains(needle), "tour lacks {needle:?}:\n{text}");
    }
    let pid_of = |prefix: &str| -> i32 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix:?} in the tour"))
    };
    let target = pid_of("pid:");
    let child = text
        .lines()
        .find_map(|l| l.strip_prefix("$child_pid = "))
        .and_then(|v| v.split('(').nth(1))
        .and_then(|v| v.trim_end_matches(')').parse::<i32>().ok())
        .expect("child pid in the tour");
    for pid in [target, child] {
        assert!(
            wait_until(5, || !std::path::Path::new(&format!("/proc/{pid}"))
                .exists()),
            "process {pid} left behind (state {})",
            proc_state(pid)
        );
    }
    let leftovers = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy() == format!("vmscope-demo-{target}.txt"));
    assert!(!leftovers, "the demo's file was left in the temp dir");
}

/// In a terminal, Ctrl-C during the tour stops the tour (not vmscope, not the demo target) and
/// the REPL follows on the same target; the pid file of the info it answers is the truth.
#[test]
fn ctrl_c_during_the_tour_goes_on_to_the_repl() {
    if !have_script() {
        return;
    }
    let dir = Scratch::new("demo-ctrl-c");
    let mut term = Terminal::run("demo", &dir);
    term.expect("== 8. Page faults");
    term.keys("\x03", 0);
    term.prompt();
    term.keys("info\n", 0);
    term.expect("state:");
    term.prompt();
    term.keys("quit\n", 0);
    let out = term.finish();
    let text = stdout(&out);
    assert!(out.status.success(), "{:?}\n{text}", out.status);
    assert!(text.contains("interrupted"), "{text}");
    assert!(!text.contains("The tour is over"), "{text}");
    // The `info` typed at the prompt after the interrupted tour: the demo target, still running.
    let Some((_, after)) = text.split_once("(vmscope)") else {
        panic!("no prompt after the interrupted tour:\n{text}");
    };
    let state = after
        .lines()
        .find_map(|l| l.strip_prefix("state:"))
        .unwrap_or_else(|| panic!("no info answered at the prompt:\n{text}"))
        .trim();
    assert!(!state.starts_with(['t', 'T', 'Z', 'X']), "{state}");
    assert!(after.contains("__demo-target"), "{after}");
}

/// `vmscope -- PROG`: the first command sees the program with its libraries loaded (it ran to its
/// entry point), running and no longer traced; the truth is the kernel's own map and status.
#[test]
fn a_launched_program_has_its_libraries_loaded_and_runs_untraced() {
    for _ in 0..5 {
        let out = vmscope(&[
            "--batch",
            "--json",
            "-ex",
            "regions --kind image",
            "-ex",
            "info",
            "--",
            "/bin/sleep",
            "5",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let docs: Vec<serde_json::Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let pid = docs[1]["pid"].as_i64().unwrap();
        let images: Vec<&str> = docs[0]["regions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["path"].as_str())
            .collect();
        assert!(
            images.iter().any(|p| p.contains("/libc.so")),
            "process {pid}: no libc among {images:?}"
        );
        assert!(
            images.iter().any(|p| p.ends_with("/sleep")),
            "process {pid}: {images:?}"
        );
        let state = docs[1]["state"].as_str().unwrap();
        // Running on, not stopped or traced (D, paging in, is running on too).
        assert!(
            !state.starts_with(['t', 'T', 'Z', 'X']),
            "process {pid} is {state}"
        );
    }
}

/// Ctrl-C at the REPL interrupts vmscope, not the program it launched (its own process group);
/// `quit` then kills the program, as gdb does.
#[test]
fn ctrl_c_at_the_repl_does_not_reach_a_launched_program() {
    if !have_script() {
        return;
    }
    let dir = Scratch::new("launch-ctrl-c");
    let pid_file = dir.0.join("pid");
    let args = format!(
        "-- /bin/sh -c 'echo $$ > {}; exec sleep 1000'",
        pid_file.display()
    );
    let mut term = Terminal::run(&args, &dir);
    let mut pid = None;
    assert!(wait_until(10, || {
        pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        pid.is_some()
    }));
    let pid = pid.unwrap();
    // At the prompt the line editor reads Ctrl-C as a key; during a command the terminal is in
    // cooked mode and Ctrl-C is SIGINT to the foreground process group.
    term.prompt();
    term.keys("faults 20s\n", 0);
    term.expect("[  1.0s]"); // sampling: the terminal is in cooked mode
    term.keys("\x03", 0);
    term.expect("page faults sampled"); // the interrupted run's report
    term.prompt();
    let state = proc_state(pid);
    assert!(
        !matches!(state, 't' | 'T' | 'Z' | 'X' | '?'),
        "after Ctrl-C the program is {state}"
    );
    term.keys("quit\n", 0);
    let out = term.finish();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(
        wait_until(5, || !matches!(proc_state(pid), 'S' | 'R' | 'D' | 'T')),
        "quit left the program running"
    );
}

/// A launched program that cannot get to its entry point (the loader fails) is reported exited
/// with its status, and vmscope does not hang.
#[test]
fn a_launched_program_that_exits_before_its_entry_point_is_reported() {
    let dir = Scratch::new("launch-noentry");
    // An ELF the loader refuses: an executable with a missing interpreter.
    let bad = dir.0.join("noloader");
    let mut elf = std::fs::read("/bin/true").unwrap();
    // Point PT_INTERP's path at a file that does not exist by editing its first byte.
    let at = elf
        .windows(b"/lib64/ld-linux-x86-64.so.2".len())
        .position(|w| w == b"/lib64/ld-linux-x86-64.so.2");
    let Some(at) = at else {
        eprintln!("SKIPPED: /bin/true has no x86_64 PT_INTERP to break");
        return;
    };
    elf[at + 1] = b'X';
    std::fs::write(&bad, &elf).unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let started = std::time::Instant::now();
    let out = vmscope(&["--batch", "-ex", "info", "--", bad.to_str().unwrap()]);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot start") || err.contains("exited"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A process killed while `stop` waits for its threads: the leader's exit is reported only once
/// every other thread is reaped, so vmscope must keep reaping them instead of waiting on the
/// leader alone (it used to hang in half of these rounds, and held the target as an unreaped
/// zombie while it did).
#[test]
fn a_target_killed_during_stop_never_hangs_vmscope() {
    for round in 0..6u64 {
        let mut f = Fixture::start("facts");
        let pid = f.pid().to_string();
        let mut args = vec!["-p", &pid, "--batch"];
        // Over a second of work: the kill lands in the middle.
        for _ in 0..3000 {
            args.extend(["-ex", "stop", "-ex", "continue"]);
        }
        // stderr goes to a file: every command left fails with its own line, more than a pipe
        // holds while nobody reads it.
        let errors = f.scratch.0.join("stderr");
        let mut v = Command::new(VMSCOPE)
            .args(&args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&errors).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(10 + round * 25));
        f.kill_to_zombie();
        let mut status = None;
        let finished = wait_until(20, || {
            status = v.try_wait().unwrap();
            status.is_some()
        });
        if !finished {
            let _ = v.kill();
        }
        let status = v.wait().unwrap();
        let errors = std::fs::read_to_string(&errors).unwrap();
        let first = errors.lines().next().unwrap_or_default();
        assert!(
            finished,
            "round {round}: vmscope hung after its target was killed"
        );
        assert_eq!(status.code(), Some(1), "round {round}: {first}");
        assert!(first.contains("exited"), "round {round}: {first}");
    }
}

/// A target killed while vmscope holds it stopped (or is stopping it): the kernel keeps a dead
/// tracee for its tracer, so unless vmscope reaps its threads the target's own parent (this test)
/// cannot collect it while the session lives on (it could not in 12 of 20 runs).
#[test]
fn a_target_killed_while_traced_is_released_to_its_parent() {
    for round in 0..4u64 {
        let mut f = Fixture::start("facts");
        let mut s = Conversation::start(&["-p", &f.pid().to_string()]);
        // Few enough that the errors after the kill fit in the stderr pipe nobody reads yet.
        for _ in 0..300 {
            s.send("stop");
            s.send("continue");
        }
        std::thread::sleep(Duration::from_millis(5 + round * 20));
        f.child.kill().unwrap();
        // The session goes on; its next command sees the exit and lets go.
        s.ask("info");
        let mut status = None;
        assert!(
            wait_until(10, || {
                status = f.child.try_wait().unwrap();
                status.is_some()
            }),
            "round {round}: the parent could not reap its killed child while vmscope lived"
        );
        let (_, out) = s.finish();
        assert!(
            stderr(&out).contains("exited"),
            "round {round}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn stop_and_continue_reject_arguments_and_leave_the_target_alone() {
    let f = Fixture::start("facts");
    assert_clear_error(f.pid(), "stop now", "`stop` takes no arguments");
    assert_clear_error(f.pid(), "continue 5", "`continue` takes no arguments");
    assert_eq!(tracer_pid(f.pid()), Some(0));
    assert!(wait_until(5, || f.state() == 'S'), "state {}", f.state());
}
