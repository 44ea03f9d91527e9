//! The gdb and lldb plugins, in real gdb and real lldb attached to the facts fixture (and on a
//! core of it): `vmscope regions --json` inside each debugger gives the same regions as vmscope
//! on its own, addresses are the debugger's expressions, `whatis &global` agrees with gdb's
//! `info symbol`, commands that need ptrace are refused, the plugins leave other plugins'
//! commands alone, and a missing binary or a vanished process is a clear debugger error.
//!
//! Needs gdb and lldb (Debian's lldb-19 with python3-lldb-19); a test whose debugger is missing
//! says loudly what it skipped.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn plugin(which: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("plugins/{which}/vmscope.py"))
}

fn works(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn have_gdb() -> bool {
    let ok = works(Command::new("gdb").args(["-nx", "-batch", "-ex", "python print(1)"]));
    if !ok {
        eprintln!("SKIPPED: gdb (with Python) is not installed: the gdb plugin is not tested");
    }
    ok
}

/// lldb with a working Python (lldb-14's is broken on Debian: use lldb-19).
fn lldb() -> Option<&'static str> {
    let found = ["lldb-19", "lldb"]
        .into_iter()
        .find(|l| works(Command::new(l).args(["-b", "-o", "script import lldb"])));
    if found.is_none() {
        eprintln!(
            "SKIPPED: lldb with Python is not installed (apt-get install lldb-19 python3-lldb-19): \
             the lldb plugin is not tested"
        );
    }
    found
}

/// Runs gdb in batch mode without the user's ~/.gdbinit (pwndbg, GEF...), with the plugin
/// finding this build through $VMSCOPE.
fn gdb(args: &[&str]) -> Output {
    Command::new("gdb")
        .args(["-nx", "-q", "-batch"])
        .args(args)
        .env("VMSCOPE", VMSCOPE)
        .stdin(Stdio::null())
        .output()
        .expect("run gdb")
}

fn lldb_run(lldb: &str, args: &[&str]) -> Output {
    Command::new(lldb)
        .args(["--no-lldbinit", "-b"])
        .args(args)
        .env("VMSCOPE", VMSCOPE)
        .stdin(Stdio::null())
        .output()
        .expect("run lldb")
}

fn both(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// The JSON documents a debugger printed among its own chatter.
fn json_docs(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON ({e}): {l}")))
        .collect()
}

/// What must agree between two `regions --json` answers on the same process.
fn shape(doc: &Value) -> Vec<(String, String, String, Value, String, String)> {
    doc["regions"]
        .as_array()
        .unwrap_or_else(|| panic!("not a regions document: {doc}"))
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (
                s("start"),
                s("end"),
                s("perms"),
                r["path"].clone(),
                s("kind"),
                s("detail"),
            )
        })
        .collect()
}

fn started() -> Fixture {
    Fixture::start_private("plugin-facts", None)
}

#[test]
fn shared_python_logic_self_test() {
    let common_py = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/vmscope_common.py");
    let Ok(out) = Command::new("python3").arg(&common_py).output() else {
        eprintln!("SKIPPED: python3 is not installed; the plugins' shared logic is tested in gdb");
        return;
    };
    assert!(out.status.success(), "{}", both(&out));
    assert!(stdout(&out).contains("self-test: ok"));
}

#[test]
fn gdb_regions_match_standalone() {
    if !have_gdb() {
        return;
    }
    let fx = started();
    let pid = fx.pid().to_string();
    let source = format!("source {}", plugin("gdb").display());
    let global = format!("{:#018x}", 0x1122_3344_5566_7788u64);
    let out = gdb(&[
        "-p",
        &pid,
        "-ex",
        &source,
        "-ex",
        "vmscope regions --json",
        "-ex",
        "vmscope x/gx &global_values",
        "-ex",
        "vmscope regions $sp --json",
        "-ex",
        "vms info --json",
    ]);
    let text = both(&out);
    assert!(!text.contains("Traceback"), "{text}");
    let docs = json_docs(&out);
    assert_eq!(docs.len(), 3, "{text}");
    assert!(
        stdout(&out).contains(&global),
        "x/gx &global_values through gdb:\n{text}"
    );
    // The process is stopped under gdb; its stack region is the one $sp is in.
    let selected = docs[1]["regions"].as_array().unwrap();
    assert_eq!(selected.len(), 1, "{}", docs[1]);
    assert_eq!(selected[0]["kind"], "stack");
    assert_eq!(docs[2]["pid"], fx.pid());
    // gdb has let go: vmscope on its own sees the same map.
    let (alone, o) = json_batch(fx.pid(), &["regions"]);
    assert!(o.status.success());
    assert_eq!(shape(&docs[0]), shape(&alone[0]));
}

#[test]
fn lldb_regions_match_standalone() {
    let Some(lldb) = lldb() else {
        return;
    };
    let fx = started();
    let pid = fx.pid().to_string();
    // First on its own: lldb's expression evaluator maps memory of its own into the process
    // (an rwx page for JIT code), so the map after lldb has evaluated `&global_values` differs.
    let (alone, o) = json_batch(fx.pid(), &["regions"]);
    assert!(o.status.success());
    let import = format!("command script import {}", plugin("lldb").display());
    let global = format!("{:#018x}", 0x1122_3344_5566_7788u64);
    let out = lldb_run(
        lldb,
        &[
            "-p",
            &pid,
            "-o",
            &import,
            "-o",
            "vmscope regions --json",
            "-o",
            "vmscope x/gx &global_values",
            "-o",
            "vmscope regions $sp --json",
            "-o",
            "vms info --json",
        ],
    );
    let text = both(&out);
    assert!(!text.contains("Traceback"), "{text}");
    let docs = json_docs(&out);
    assert_eq!(docs.len(), 3, "{text}");
    assert!(stdout(&out).contains(&global), "{text}");
    let selected = docs[1]["regions"].as_array().unwrap();
    assert_eq!(selected[0]["kind"], "stack");
    assert_eq!(docs[2]["pid"], fx.pid());
    assert_eq!(shape(&docs[0]), shape(&alone[0]));
}

/// `info symbol ADDR` in gdb: `global_values + 8 in section .data` → (name, offset).
fn info_symbol(line: &str) -> Option<(String, u64)> {
    let (sym, _) = line.split_once(" in section ")?;
    Some(match sym.split_once(" + ") {
        Some((name, off)) => (name.trim().to_string(), off.trim().parse().ok()?),
        None => (sym.trim().to_string(), 0),
    })
}

#[test]
fn gdb_whatis_matches_info_symbol() {
    if !has_command("whatis") {
        eprintln!("SKIPPED: `whatis` does not exist yet (issue 5); this test runs once it does");
        return;
    }
    if !have_gdb() {
        return;
    }
    let fx = started();
    let pid = fx.pid().to_string();
    let source = format!("source {}", plugin("gdb").display());
    let exprs = [
        "&global_values",
        "&global_values[1]",
        "&global_string",
        "answer",
        "&bss_buf[100]",
    ];
    let mut args: Vec<String> = vec!["-p".into(), pid, "-ex".into(), source];
    for e in exprs {
        args.push("-ex".into());
        args.push(format!("vmscope whatis {e} --json"));
        args.push("-ex".into());
        args.push(format!("info symbol {e}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = gdb(&args);
    let text = stdout(&out);
    let mut docs = json_docs(&out).into_iter();
    let mut symbols = text.lines().filter_map(info_symbol);
    for e in exprs {
        let doc = docs
            .next()
            .unwrap_or_else(|| panic!("no whatis for {e}:\n{}", both(&out)));
        let doc = doc
            .get("results")
            .and_then(|r| r.get(0))
            .cloned()
            .unwrap_or(doc);
        let (name, offset) = symbols
            .next()
            .unwrap_or_else(|| panic!("no info symbol for {e}:\n{text}"));
        assert_eq!(doc["symbol"]["name"], name.as_str(), "{e}: {doc}");
        assert_eq!(doc["symbol"]["offset"], offset, "{e}: {doc}");
    }
}

#[test]
fn plugins_on_a_core_match_standalone() {
    if !have_gdb() {
        return;
    }
    let mut fx = started();
    let core = fx.scratch.0.join("plugin.core");
    let made = gdb(&[
        "-p",
        &fx.pid().to_string(),
        "-ex",
        &format!("generate-core-file {}", core.display()),
    ]);
    assert!(core.is_file(), "{}", both(&made));
    fx.kill();
    let exe = fx.scratch.0.join("fixture-facts");
    let (exe_s, core_s) = (exe.to_str().unwrap(), core.to_str().unwrap());
    let alone = vmscope(&[
        "--core", core_s, "--exe", exe_s, "--batch", "--json", "-ex", "regions",
    ]);
    assert!(alone.status.success(), "{}", both(&alone));
    let alone = json_docs(&alone);
    let global = format!("{:#018x}", 0x1122_3344_5566_7788u64);

    let source = format!("source {}", plugin("gdb").display());
    let out = gdb(&[
        exe_s,
        "-c",
        core_s,
        "-ex",
        &source,
        "-ex",
        "vmscope regions --json",
        "-ex",
        "vmscope x/gx &global_values",
        "-ex",
        "vmscope translate &global_values",
    ]);
    let text = both(&out);
    assert_eq!(shape(&json_docs(&out)[0]), shape(&alone[0]), "{text}");
    assert!(text.contains(&global), "{text}");
    assert!(text.contains("no live process or page tables"), "{text}");

    let Some(lldb) = lldb() else {
        return;
    };
    let import = format!("command script import {}", plugin("lldb").display());
    let out = lldb_run(
        lldb,
        &[
            exe_s,
            "-c",
            core_s,
            "-o",
            &import,
            "-o",
            "vmscope regions --json",
            "-o",
            "vmscope x/gx &global_values",
            "-o",
            "vmscope translate &global_values",
        ],
    );
    let text = both(&out);
    assert_eq!(shape(&json_docs(&out)[0]), shape(&alone[0]), "{text}");
    assert!(text.contains(&global), "{text}");
    assert!(text.contains("no live process or page tables"), "{text}");
}

#[test]
fn ptrace_commands_are_refused_and_watch_is_passive() {
    if !have_gdb() {
        return;
    }
    let fx = started();
    let source = format!("source {}", plugin("gdb").display());
    let out = gdb(&[
        "-p",
        &fx.pid().to_string(),
        "-ex",
        &source,
        "-ex",
        "vmscope stop",
        "-ex",
        "vmscope registers",
        "-ex",
        "vmscope continue",
        "-ex",
        "vmscope whatis nosuchsymbol",
        "-ex",
        "vmscope x/gx $nosuchreg + 1",
        "-ex",
        "vmscope bogus",
    ]);
    let err = stderr(&out);
    assert!(!both(&out).contains("Traceback"), "{}", both(&out));
    for (what, want) in [
        ("stop", "`stop` is not available inside the debugger"),
        ("registers", "info registers"),
        ("continue", "`continue` is not available"),
        ("a bad expression", "cannot evaluate `nosuchsymbol`"),
        ("an unknown command", "unknown command `bogus`"),
    ] {
        assert!(err.contains(want), "{what}: {err}");
    }
    if has_command("watch") {
        // `watch` becomes `watch --passive`: perf events, no ptrace.
        let out = gdb(&[
            "-p",
            &fx.pid().to_string(),
            "-ex",
            &source,
            "-ex",
            "vmscope watch &global_values --for 200ms",
        ]);
        let text = both(&out);
        assert!(text.contains("passive"), "{text}");
        assert!(!text.contains("vmscope: "), "an error: {text}");
    }
    // The process was never stopped by vmscope: gdb detaches and it runs on.
    drop(out);
    assert!(
        wait_until(5, || matches!(fx.state(), 'S' | 'R')),
        "state {}",
        fx.state()
    );
}

#[test]
fn plugins_leave_other_commands_alone_and_reload_cleanly() {
    let scratch = Scratch::new("plugin-coexist");
    if have_gdb() {
        // A stand-in for pwndbg/GEF: it owns vmmap, xinfo and (say) vms before vmscope loads.
        let fake = scratch.0.join("fake_pwndbg.py");
        std::fs::write(
            &fake,
            "import gdb\n\
             class Fake(gdb.Command):\n\
             \x20   def __init__(self, name):\n\
             \x20       super().__init__(name, gdb.COMMAND_USER)\n\
             \x20       self.name = name\n\
             \x20   def invoke(self, arg, from_tty):\n\
             \x20       print('fake ' + self.name)\n\
             for n in ('vmmap', 'xinfo', 'telescope', 'vms'):\n\
             \x20   Fake(n)\n",
        )
        .unwrap();
        let fx = started();
        let ours = format!("source {}", plugin("gdb").display());
        let theirs = format!("source {}", fake.display());
        let out = gdb(&[
            "-p",
            &fx.pid().to_string(),
            "-ex",
            &theirs,
            "-ex",
            &ours,
            "-ex",
            &ours,
            "-ex",
            "vms",
            "-ex",
            "vmmap",
            "-ex",
            "xinfo",
            "-ex",
            "vmscope info --json",
        ]);
        let text = stdout(&out);
        assert!(!both(&out).contains("Traceback"), "{}", both(&out));
        for n in ["vms", "vmmap", "xinfo"] {
            assert!(
                text.contains(&format!("fake {n}")),
                "{n} was shadowed:\n{text}"
            );
        }
        assert_eq!(json_docs(&out)[0]["pid"], fx.pid());
        // Alone, the plugin takes `vms`, and sourcing it twice is harmless.
        let out = gdb(&[
            "-p",
            &fx.pid().to_string(),
            "-ex",
            &ours,
            "-ex",
            &ours,
            "-ex",
            "vms info --json",
        ]);
        assert_eq!(json_docs(&out)[0]["pid"], fx.pid(), "{}", both(&out));
        let help = gdb(&["-ex", &ours, "-ex", "help vmscope"]);
        assert!(
            stdout(&help).contains("Address expressions are gdb's"),
            "{}",
            both(&help)
        );
    }
    if let Some(lldb) = lldb() {
        let fake = scratch.0.join("fake_lldb.py");
        std::fs::write(
            &fake,
            "def fake(debugger, command, ctx, result, internal_dict):\n\
             \x20   result.AppendMessage('fake command')\n\
             def __lldb_init_module(debugger, internal_dict):\n\
             \x20   for n in ('vms', 'vmmap'):\n\
             \x20       debugger.HandleCommand(f'command script add -f fake_lldb.fake {n}')\n",
        )
        .unwrap();
        let fx = started();
        let ours = format!("command script import {}", plugin("lldb").display());
        let theirs = format!("command script import {}", fake.display());
        let out = lldb_run(
            lldb,
            &[
                "-p",
                &fx.pid().to_string(),
                "-o",
                &theirs,
                "-o",
                &ours,
                "-o",
                &ours,
                "-o",
                "vms",
                "-o",
                "vmscope info --json",
            ],
        );
        assert!(!both(&out).contains("Traceback"), "{}", both(&out));
        assert!(
            stdout(&out).contains("fake command"),
            "vms was shadowed:\n{}",
            both(&out)
        );
        assert_eq!(json_docs(&out)[0]["pid"], fx.pid(), "{}", both(&out));
        let out = lldb_run(lldb, &["-o", &ours, "-o", "help vmscope"]);
        assert!(
            stdout(&out).contains("Address expressions are lldb's"),
            "{}",
            both(&out)
        );
    }
}

#[test]
fn a_missing_binary_is_a_clear_error() {
    // The plugin copied out of the repository: no target/release beside it, no $VMSCOPE, and a
    // PATH without vmscope.
    let scratch = Scratch::new("plugin-missing");
    let plugins = scratch.0.join("plugins");
    for (from, to) in [
        ("plugins/gdb/vmscope.py", "gdb/vmscope.py"),
        ("plugins/lldb/vmscope.py", "lldb/vmscope.py"),
        ("plugins/vmscope_common.py", "vmscope_common.py"),
    ] {
        let to = plugins.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join(from), &to).unwrap();
    }
    let path = "/usr/local/bin:/usr/bin:/bin";
    assert!(
        !Command::new("sh")
            .args(["-c", "command -v vmscope"])
            .env("PATH", path)
            .status()
            .unwrap()
            .success(),
        "vmscope is installed in {path}: this test needs it absent"
    );
    let fx = started();
    let pid = fx.pid().to_string();
    if have_gdb() {
        let source = format!("source {}", plugins.join("gdb/vmscope.py").display());
        let run = |vmscope_env: Option<&str>| {
            let mut c = Command::new("gdb");
            c.args([
                "-nx",
                "-q",
                "-batch",
                "-p",
                &pid,
                "-ex",
                &source,
                "-ex",
                "vmscope regions",
            ])
            .env("PATH", path)
            .env_remove("VMSCOPE")
            .stdin(Stdio::null());
            if let Some(v) = vmscope_env {
                c.env("VMSCOPE", v);
            }
            c.output().unwrap()
        };
        let out = run(None);
        let err = stderr(&out);
        assert!(
            err.contains("vmscope: cannot find the vmscope binary: set $VMSCOPE"),
            "{err}"
        );
        assert!(!err.contains("Traceback"), "{err}");
        let out = run(Some("/nonexistent/vmscope"));
        assert!(
            stderr(&out).contains("not an executable file"),
            "{}",
            stderr(&out)
        );
    }
    if let Some(lldb) = lldb() {
        let import = format!(
            "command script import {}",
            plugins.join("lldb/vmscope.py").display()
        );
        let out = Command::new(lldb)
            .args([
                "--no-lldbinit",
                "-b",
                "-p",
                &pid,
                "-o",
                &import,
                "-o",
                "vmscope regions",
            ])
            .env("PATH", path)
            .env_remove("VMSCOPE")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = both(&out);
        assert!(text.contains("cannot find the vmscope binary"), "{text}");
        assert!(!text.contains("Traceback"), "{text}");
    }
}

#[test]
fn a_vanished_process_is_a_clear_error() {
    if !have_gdb() {
        return;
    }
    let fx = started();
    let pid = fx.pid();
    let source = format!("source {}", plugin("gdb").display());
    // The process is killed while gdb holds it, before gdb notices.
    let out = gdb(&[
        "-p",
        &pid.to_string(),
        "-ex",
        &source,
        "-ex",
        &format!(
            "shell kill -9 {pid}; while [ -e /proc/{pid} ] && ! grep -q '^State:.Z' \
             /proc/{pid}/status; do sleep 0.01; done"
        ),
        "-ex",
        "vmscope regions",
    ]);
    let err = stderr(&out);
    assert!(!err.contains("Traceback"), "{err}");
    assert!(
        err.contains(&format!("vmscope: process {pid} exited")) || err.contains("has no process"),
        "{err}"
    );
    assert!(!err.contains("vmscope: vmscope:"), "{err}");
}
