//! The command line, command files and bad input: clear errors, the right exit status, no panic.

mod common;
use common::*;
use std::io::Write;
use std::process::Command;

#[test]
fn help_documents_exit_statuses() {
    let out = vmscope(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for needle in [
        "Exit status:",
        "2  usage error",
        "-ex CMD",
        "--batch",
        "--color",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--no-such-flag"][..],
        &["-p", "notapid"],
        &["--color", "purple"],
    ] {
        let out = vmscope(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn attaching_to_a_missing_process_fails_clearly() {
    // pid_max is at most 2^22, so this pid cannot exist.
    let out = vmscope(&["-p", "99999999", "--batch", "-ex", "info"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no process with pid 99999999"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_commands_give_errors_and_status_1_without_a_target() {
    let cases: &[(&str, &str)] = &[
        ("frobnicate", "unknown command `frobnicate`: try `help`"),
        ("info", "no target: attach to one with `attach PID`"),
        ("print 1 +", "expected an expression"),
        ("print 0xfffffffffffffffff", "too large"),
        ("attach abc", "`abc` is not a number"),
        ("set color purple", "expected on or off"),
        ("set nothing on", "no setting `nothing`"),
        ("help nonsense", "unknown command `nonsense`"),
        ("source /nonexistent/file.vms", "cannot read command file"),
        ("x/4q 0x10", "unknown format letter `q`"),
    ];
    for (cmd, want) in cases {
        let out = vmscope(&["--batch", "-ex", cmd]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = stderr(&out);
        assert!(err.contains(want), "{cmd}: expected {want:?} in {err:?}");
        assert!(!err.contains("panicked"), "{cmd}: {err}");
    }
}

#[test]
fn parse_errors_show_a_caret_under_the_column() {
    let out = vmscope(&["--batch", "-ex", "print 1 + )"]);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    let src = lines
        .iter()
        .position(|l| l.contains("print 1 + )"))
        .expect(&err);
    let caret = lines[src + 1].find('^').expect("a caret line");
    assert_eq!(caret, lines[src].find(')').unwrap(), "{err}");

    let out = vmscope(&["--batch", "-ex", "x/8gz 0x10"]);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    let src = lines
        .iter()
        .position(|l| l.contains("x/8gz 0x10"))
        .expect(&err);
    assert_eq!(
        lines[src + 1].find('^').unwrap(),
        lines[src].find('z').unwrap(),
        "{err}"
    );
}

#[test]
fn json_errors_are_documents_on_stdout() {
    let out = vmscope(&["--batch", "--json", "-ex", "frobnicate", "-ex", "print 6*7"]);
    assert_eq!(out.status.code(), Some(1));
    let docs: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs[0]["command"], "frobnicate");
    assert!(
        docs[0]["error"]
            .as_str()
            .unwrap()
            .contains("unknown command")
    );
    assert_eq!(docs[1]["value"], 42);
    assert_eq!(docs[1]["hex"], "0x2a");
}

#[test]
fn command_files_stop_at_the_first_error_with_file_and_line() {
    let dir = Scratch::new("cmdfile");
    let file = dir.0.join("steps.vms");
    let mut f = std::fs::File::create(&file).unwrap();
    writeln!(f, "# a comment\n\necho first\nprint 1 +\necho never").unwrap();
    drop(f);
    let path = file.to_str().unwrap();
    let out = vmscope(&["--batch", "-x", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("first"));
    assert!(!stdout(&out).contains("never"));
    assert!(
        stderr(&out).contains(&format!("{path}:4: expected an expression")),
        "{}",
        stderr(&out)
    );

    // --keep-going reports the error and goes on; the status still says something failed.
    let out = vmscope(&["--batch", "--keep-going", "-x", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("never"));

    // `source` from -ex reports the same location.
    let out = vmscope(&["--batch", "-ex", &format!("source {path}")]);
    assert!(
        stderr(&out).contains(&format!("{path}:4:")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ex_and_x_run_in_command_line_order() {
    let dir = Scratch::new("order");
    let file = dir.0.join("mid.vms");
    std::fs::write(&file, "echo two\n").unwrap();
    let out = vmscope(&[
        "-ex",
        "echo one",
        "-x",
        file.to_str().unwrap(),
        "-ex",
        "echo three",
        "-batch",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "one\ntwo\nthree\n");
}

#[test]
fn a_command_file_that_sources_itself_is_stopped() {
    let dir = Scratch::new("loop");
    let file = dir.0.join("loop.vms");
    std::fs::write(&file, format!("source {}\n", file.display())).unwrap();
    let out = vmscope(&["--batch", "-x", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nested more than 16 deep"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn shipped_command_files_run() {
    // The tour needs the demo's variables: `vmscope demo` runs it (see lifecycle tests).
    // Every other shipped file must run against a fixture without error.
    let f = Fixture::start("facts");
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/commands")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "tour.vms" {
            continue;
        }
        let out = vmscope(&[
            "-p",
            &f.pid().to_string(),
            "--batch",
            "-x",
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}: {}", path.display(), stderr(&out));
    }
}

#[test]
fn help_lists_every_command_and_explains_one() {
    let out = vmscope(&["--batch", "-ex", "help"]);
    let text = stdout(&out);
    for name in [
        "help", "info", "threads", "x", "stop", "continue", "detach", "attach", "set", "source",
        "quit",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(name)),
            "help lacks {name}:\n{text}"
        );
    }
    let out = vmscope(&["--batch", "-ex", "help x"]);
    assert!(stdout(&out).contains("x[/NFU] EXPR"));
    assert!(stdout(&out).contains("aliases: examine"));
}

#[test]
fn color_never_and_always() {
    let f = Fixture::start("facts");
    let pid = f.pid().to_string();
    let plain = vmscope(&["-p", &pid, "--batch", "--color", "never", "-ex", "threads"]);
    assert!(!stdout(&plain).contains('\x1b'));
    let colored = vmscope(&["-p", &pid, "--batch", "--color", "always", "-ex", "threads"]);
    assert!(stdout(&colored).contains("\x1b["));
}

#[test]
fn permission_errors_name_the_fix() {
    if Command::new("setpriv").arg("--version").output().is_err() || !is_root() {
        eprintln!("SKIPPED: needs root and setpriv to run vmscope as an unprivileged user");
        return;
    }
    let f = Fixture::start("facts");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", VMSCOPE])
        .args(["-p", &f.pid().to_string(), "--batch", "-ex", "info"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("permission denied") && err.contains("CAP_SYS_PTRACE"),
        "{err}"
    );
}

#[test]
fn signal_sends_and_rejects_bad_input() {
    let f = Fixture::start("facts");
    let pid = f.pid().to_string();
    let out = vmscope(&[
        "-p",
        &pid,
        "--batch",
        "-ex",
        "signal SIGCONT",
        "-ex",
        "signal cont",
        "-ex",
        "signal 18",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out)
            .matches(&format!("sent SIGCONT to process {pid}"))
            .count(),
        3
    );
    for (cmd, want) in [
        ("signal NOPE", "`NOPE` is not a signal"),
        ("signal USR1 99999999", "no process with pid 99999999"),
        ("signal", "signal needs a signal name"),
    ] {
        let out = vmscope(&["-p", &pid, "--batch", "-ex", cmd]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        assert!(stderr(&out).contains(want), "{cmd}: {}", stderr(&out));
    }
    assert_eq!(f.state(), 'S', "the fixture survived");
}

/// `signal` says what became of the signal, checked against the process itself: its handler's
/// count, and its pending set in /proc/PID/status read here.
#[test]
fn signal_says_delivered_ignored_or_pending() {
    let f = Fixture::start("signals");
    f.wait_paused();
    let pid = f.pid();
    let hups = f.addr("hups");
    let out = text_batch(pid, &["signal SIGHUP", "signal SIGUSR1", "signal SIGUSR2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            format!("sent SIGHUP to process {pid}: delivered"),
            format!("sent SIGUSR1 to process {pid}: it ignores SIGUSR1"),
            format!(
                "sent SIGUSR2 to process {pid}: still pending (every thread blocks it, or the \
                 process is stopped)"
            ),
        ]
    );
    // The handler ran once; SIGUSR2 (12) sits in the process's pending set.
    let (docs, _) = json_batch(pid, &[&format!("x/1wd {hups:#x}")]);
    assert_eq!(docs[0]["items"][0]["value"], 1, "{}", docs[0]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let pending = status
        .lines()
        .find_map(|l| l.strip_prefix("ShdPnd:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(pending, 1 << 11, "{status}");
}
