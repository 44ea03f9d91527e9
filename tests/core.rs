//! `vmscope --core`: core files written by gdb's `generate-core-file` and by the kernel from the
//! facts fixture, checked against the live process they came from (its regions as vmscope saw
//! them, the values the fixture says it wrote, its threads) and against broken cores.
//!
//! Needs gdb for the gdb-written cores and a core_pattern that writes a file for the kernel's;
//! a test that cannot have one says loudly what it skipped.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn have_gdb() -> bool {
    let ok = Command::new("gdb")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: gdb is not installed, so no gdb-written core can be made");
    }
    ok
}

/// The live regions of `pid` (JSON rows of `regions`).
fn live_regions(pid: i32) -> Vec<Value> {
    let (docs, out) = json_batch(pid, &["regions"]);
    assert!(out.status.success(), "{}", stderr(&out));
    docs[0]["regions"].as_array().unwrap().clone()
}

/// `vmscope --core CORE [EXTRA] --batch --json -ex CMD...`.
fn core_json(core: &Path, extra: &[&str], commands: &[&str]) -> (Vec<Value>, std::process::Output) {
    let core = core.to_str().unwrap();
    let mut args = vec!["--core", core];
    args.extend(extra);
    args.extend(["--batch", "--json"]);
    for c in commands {
        args.extend(["-ex", c]);
    }
    let out = vmscope(&args);
    let docs = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON ({e}): {l}")))
        .collect();
    (docs, out)
}

/// The facts fixture, its live regions, and a core of it written by gdb; the fixture is killed
/// once the core is written (its scratch files stay: the core's file mappings point there).
fn gdb_core(tag: &str) -> Option<(Fixture, Vec<Value>, PathBuf)> {
    if !have_gdb() {
        return None;
    }
    let mut fx = Fixture::start_private(tag, None);
    let live = live_regions(fx.pid());
    let core = fx.scratch.0.join(format!("{tag}.core"));
    let out = Command::new("gdb")
        .args(["-nx", "-batch", "-p", &fx.pid().to_string(), "-ex"])
        .arg(format!("generate-core-file {}", core.display()))
        .stdin(Stdio::null())
        .output()
        .expect("run gdb");
    assert!(
        core.is_file(),
        "gdb wrote no core:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    fx.kill();
    Some((fx, live, core))
}

/// (start, end, offset, path) of the file-backed rows.
fn file_backed(rows: &[Value]) -> Vec<(u64, u64, String, String)> {
    rows.iter()
        .filter(|r| !r["path"].is_null())
        .map(|r| {
            (
                hex(&r["start"]),
                hex(&r["end"]),
                r["offset"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn x_values(doc: &Value) -> Vec<u64> {
    doc["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not an x result: {doc}"))
        .iter()
        .map(|i| i["value"].as_u64().unwrap())
        .collect()
}

fn x_text(doc: &Value) -> String {
    doc["items"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Checks what the fixture wrote reads back from the core, from the core's own segments and
/// (literal, mapped file) from the files the core left out.
fn check_memory(fx: &Fixture, core: &Path) {
    let cmds = [
        format!("x/2gx {:#x}", fx.addr("global_values")),
        format!("x/s {:#x}", fx.addr("global_string")),
        format!("x/2gx {:#x}", fx.addr("heap")),
        format!("x/gx {:#x}", fx.addr("stack_local")),
        format!("x/s {:#x}", fx.addr("literal")),
        format!("x/s {:#x}", fx.addr("spaced_map")),
        format!("x/s {:#x}", fx.addr("memfd_map")),
        format!("x/gx {:#x}", fx.addr("global_fn_ptr")),
        "x/gx $rsp".to_string(),
        "info".to_string(),
        "threads".to_string(),
    ];
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let (docs, out) = core_json(core, &[], &cmds);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(
        x_values(&docs[0]),
        [0x1122_3344_5566_7788, 0xffff_ffff_ffff_fffd]
    );
    assert_eq!(x_text(&docs[1]), "\"hello, vmscope\"");
    assert_eq!(
        x_values(&docs[2]),
        [0x0101_0101_0101_0101, 0x0202_0202_0202_0202]
    );
    assert_eq!(x_values(&docs[3]), [0x5354_414b_5354_414b]);
    assert_eq!(x_text(&docs[4]), "\"a string literal in .rodata\"");
    assert_eq!(x_text(&docs[5]), "\"spaced file\"");
    assert_eq!(x_text(&docs[6]), "\"memfd bytes\"");
    assert_eq!(
        x_values(&docs[7]),
        [fx.addr("answer")],
        "global_fn_ptr = answer"
    );
    assert_eq!(
        docs[8]["items"].as_array().unwrap().len(),
        1,
        "$rsp from NT_PRSTATUS"
    );
    let info = &docs[9];
    assert_eq!(info["kind"], "core");
    assert_eq!(info["pid"], fx.pid());
    let comm: String = fixture_bin("facts")
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .take(15)
        .collect();
    assert_eq!(info["name"], comm.as_str());
    assert_eq!(info["threads"], 3);
    let tids: Vec<i64> = docs[10]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tid"].as_i64().unwrap())
        .collect();
    let mut want: Vec<i64> = fx.facts["tids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    let mut got = tids.clone();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "the core's threads are the fixture's");
}

#[test]
fn gdb_core_has_the_live_file_regions() {
    let Some((_fx, live, core)) = gdb_core("regions") else {
        return;
    };
    let (docs, out) = core_json(&core, &[], &["regions"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = docs[0]["regions"].as_array().unwrap();
    assert_eq!(
        file_backed(rows),
        file_backed(&live),
        "the same file-backed regions as the live process"
    );
    // gdb leaves out mappings it does not dump (vvar), never invents one: every region of the
    // core is a live region, with the same permissions where gdb keeps them.
    for r in rows {
        let l = live
            .iter()
            .find(|l| l["start"] == r["start"])
            .unwrap_or_else(|| panic!("not a live region: {r}"));
        assert_eq!(l["end"], r["end"], "{r}");
        let lp = l["perms"].as_str().unwrap();
        let rp = r["perms"].as_str().unwrap();
        // gdb marks every segment readable (a no-access page or vsyscall comes out `r`), so
        // only write and execute are compared.
        assert_eq!(&lp[1..3], &rp[1..3], "perms of {r} (live: {lp})");
        if matches!(
            l["kind"].as_str(),
            Some("heap" | "stack" | "image" | "file" | "shared")
        ) {
            assert_eq!(l["kind"], r["kind"], "kind of {r} (live: {l})");
            assert_eq!(l["detail"], r["detail"], "detail of {r}");
        }
    }
}

#[test]
fn gdb_core_reads_what_the_fixture_wrote() {
    let Some((fx, _live, core)) = gdb_core("memory") else {
        return;
    };
    check_memory(&fx, &core);
}

/// The kernel's core of the facts fixture (killed with SIGABRT), when core_pattern writes a
/// file we can find.
fn kernel_core() -> Option<(Fixture, Vec<Value>, PathBuf)> {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern")
        .unwrap_or_default()
        .trim()
        .to_string();
    if pattern.starts_with('|') {
        eprintln!(
            "SKIPPED: kernel core files: core_pattern pipes cores to a program ({pattern}), so \
             no file is written"
        );
        return None;
    }
    // RLIMIT_CORE up to the hard limit, in the fixture only; its cwd is where a relative
    // core_pattern writes.
    let fx = Fixture::start_private(
        "kcore",
        Some(
            "ulimit -c unlimited 2>/dev/null || ulimit -c \"$(ulimit -H -c)\"; exec \"$0\" \"$@\"",
        ),
    );
    let live = live_regions(fx.pid());
    let mut fx = fx;
    let started = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(fx.pid()),
        nix::sys::signal::Signal::SIGABRT,
    )
    .unwrap();
    let status = fx.child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    if !status.core_dumped() {
        eprintln!(
            "SKIPPED: kernel core files: the fixture died by {status} without dumping core \
             (core_pattern {pattern:?}, RLIMIT_CORE hard limit {:?})",
            Command::new("sh")
                .args(["-c", "ulimit -H -c"])
                .output()
                .ok()
                .map(|o| stdout(&o))
        );
        return None;
    }
    let dir = if pattern.contains('/') {
        let parent = Path::new(&pattern).parent().map(Path::to_path_buf);
        match parent {
            Some(p) if !p.to_string_lossy().contains('%') => {
                if p.is_absolute() {
                    p
                } else {
                    fx.scratch.0.join(p)
                }
            }
            _ => {
                eprintln!("SKIPPED: kernel core files: cannot tell where {pattern:?} writes");
                return None;
            }
        }
    } else {
        fx.scratch.0.clone()
    };
    let pid = fx.pid();
    let found = std::fs::read_dir(&dir).ok().and_then(|entries| {
        entries.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
            let fresh = std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= started);
            let elf =
                std::fs::read(p).is_ok_and(|b| b.starts_with(b"\x7fELF") && b.get(16) == Some(&4));
            fresh && elf && {
                let (docs, out) = core_json(p, &[], &["info"]);
                out.status.success() && docs[0]["pid"] == pid
            }
        })
    });
    match found {
        Some(core) => Some((fx, live, core)),
        None => {
            eprintln!(
                "SKIPPED: kernel core files: no core of process {pid} in {} (core_pattern \
                 {pattern:?})",
                dir.display()
            );
            None
        }
    }
}

#[test]
fn kernel_core_has_every_live_region() {
    let Some((fx, live, core)) = kernel_core() else {
        return;
    };
    let (docs, out) = core_json(&core, &[], &["regions"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = docs[0]["regions"].as_array().unwrap();
    // The kernel writes a segment for every mapping, with its exact permissions.
    let shape = |rows: &[Value]| -> Vec<(String, String, String)> {
        rows.iter()
            .map(|r| {
                (
                    r["start"].as_str().unwrap().into(),
                    r["end"].as_str().unwrap().into(),
                    r["perms"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    assert_eq!(
        shape(rows),
        shape(&live),
        "every live region, same permissions"
    );
    assert_eq!(file_backed(rows), file_backed(&live));
    for (r, l) in rows.iter().zip(&live) {
        assert_eq!(r["kind"], l["kind"], "kind of {r} (live: {l})");
    }
    check_memory(&fx, &core);
    if let Ok(mut cut) = std::fs::read(&core) {
        // The kernel puts its notes first: a truncated core opens, and what was cut off is an
        // error that says so.
        cut.truncate(cut.len() / 2);
        let short = fx.scratch.0.join("short.core");
        std::fs::write(&short, &cut).unwrap();
        let (docs, out) = core_json(&short, &[], &["x/gx $rsp"]);
        assert!(!out.status.success());
        let e = docs[0]["error"].as_str().unwrap_or_default();
        assert!(e.contains("truncated"), "{e}");
        assert!(!stderr(&out).contains("panicked"));
    }
}

#[test]
fn whatis_resolves_the_fixture_symbols_in_a_core() {
    if !has_command("whatis") {
        eprintln!("SKIPPED: `whatis` does not exist yet (issue 5); this test runs once it does");
        return;
    }
    let Some((fx, _live, core)) = gdb_core("whatis") else {
        return;
    };
    let cmds = [
        format!("whatis {:#x}", fx.addr("global_values")),
        format!("whatis {:#x}", fx.addr("global_values") + 8),
        format!("whatis {:#x}", fx.addr("answer")),
        format!("whatis {:#x}", fx.addr("bss_buf")),
    ];
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let (docs, out) = core_json(&core, &[], &cmds);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let symbol = |d: &Value| {
        // `whatis ADDR` prints one document; a batch form may wrap it in a list.
        let d = d.get("results").and_then(|r| r.get(0)).unwrap_or(d);
        (
            d["symbol"]["name"].as_str().unwrap_or_default().to_string(),
            d["symbol"]["offset"].as_u64().unwrap_or(u64::MAX),
        )
    };
    assert_eq!(symbol(&docs[0]), ("global_values".into(), 0));
    assert_eq!(symbol(&docs[1]), ("global_values".into(), 8));
    assert_eq!(symbol(&docs[2]), ("answer".into(), 0));
    assert_eq!(symbol(&docs[3]).0, "bss_buf");
}

#[test]
fn live_only_commands_say_a_core_has_no_page_tables() {
    let Some((fx, _live, core)) = gdb_core("live-only") else {
        return;
    };
    let mut cmds = vec![
        format!("translate {:#x}", fx.addr("global_values")),
        "stop".to_string(),
        "continue".to_string(),
    ];
    for (name, line) in [
        ("faults", "faults 100ms"),
        ("watch", "watch 0x1000 --count 1"),
    ] {
        if has_command(name) {
            cmds.push(line.to_string());
        } else {
            eprintln!("note: `{name}` does not exist yet; its core-file error is not checked");
        }
    }
    for c in &cmds {
        let (docs, out) = core_json(&core, &[], &[c]);
        assert_eq!(out.status.code(), Some(1), "{c}: {}", stdout(&out));
        let e = docs[0]["error"].as_str().unwrap_or_default();
        assert!(
            e.contains("core file") && e.contains("no live process"),
            "{c}: {e}"
        );
    }
    // Registers are there: the core is a process stopped for good.
    let (docs, out) = core_json(&core, &[], &["registers", "print $rip"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(docs[1]["value"].as_u64().unwrap() > 0);
    let (docs, _) = core_json(&core, &[], &["registers 1"]);
    assert!(docs[0]["error"].as_str().unwrap().contains("no thread 1"));
}

#[test]
fn broken_cores_are_errors_not_panics() {
    let Some((fx, _live, core)) = gdb_core("broken") else {
        return;
    };
    let bytes = std::fs::read(&core).unwrap();
    let dir = &fx.scratch.0;
    let check = |name: &str, data: &[u8], want: &str| {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        let out = vmscope(&[
            "--core",
            p.to_str().unwrap(),
            "--batch",
            "-ex",
            "regions",
            "-ex",
            "x/gx $rsp",
        ]);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{name}: {err}");
        if !want.is_empty() {
            assert_eq!(out.status.code(), Some(1), "{name}");
            assert!(err.contains(want), "{name}: {err}");
        }
    };
    // gdb writes its notes last: half a core has lost them.
    check("half.core", &bytes[..bytes.len() / 2], "truncated");
    check("empty.core", &[], "not an ELF file");
    check("text.core", b"this is not a core file\n", "not an ELF file");
    check("header.core", &bytes[..64], "corrupt");
    let fixture = std::fs::read(fixture_bin("facts")).unwrap();
    check("exe.core", &fixture, "not a core file");
    // Bytes flipped all over the headers and notes: whatever happens, no panic.
    let notes_and_headers: Vec<usize> = (0..4096.min(bytes.len()))
        .step_by(13)
        .chain((bytes.len().saturating_sub(40_000)..bytes.len()).step_by(997))
        .collect();
    for (n, at) in notes_and_headers.into_iter().enumerate() {
        if n % 4 != 0 {
            continue; // a sample keeps the test quick
        }
        let mut bad = bytes.clone();
        bad[at] ^= 0xa5;
        check("flipped.core", &bad, "");
    }
    // A core that does not exist.
    let out = vmscope(&["--core", "/nonexistent/core", "--batch", "-ex", "info"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/core"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exe_replaces_the_executable_and_a_changed_one_is_refused() {
    let Some((fx, _live, core)) = gdb_core("exe") else {
        return;
    };
    let literal = format!("x/s {:#x}", fx.addr("literal"));
    // The executable moved: --exe points at the copy, which still matches the core.
    let moved = fx.scratch.0.join("moved-facts");
    std::fs::copy(fx.scratch.0.join("fixture-facts"), &moved).unwrap();
    let (docs, out) = core_json(
        &core,
        &["--exe", moved.to_str().unwrap()],
        &[&literal, "info"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(x_text(&docs[0]), "\"a string literal in .rodata\"");
    assert_eq!(docs[1]["exe"], moved.to_str().unwrap());
    // Another program in its place: its first page differs from the core's copy, so reading
    // what the core left out refuses instead of showing another program's bytes.
    let other = fx.scratch.0.join("other");
    let src = fx.scratch.0.join("other.c");
    std::fs::write(
        &src,
        "const char *s = \"something else entirely\";\nint main(void) { return 0; }\n",
    )
    .unwrap();
    let built = Command::new("cc")
        .arg("-o")
        .arg(&other)
        .arg(&src)
        .status()
        .unwrap();
    assert!(built.success());
    let (docs, out) = core_json(&core, &["--exe", other.to_str().unwrap()], &[&literal]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let e = docs[0]["error"].as_str().unwrap();
    assert!(e.contains("not the file the process mapped"), "{e}");
    // Usage errors.
    for args in [
        vec!["--core", core.to_str().unwrap(), "-p", "1", "--batch"],
        vec!["--exe", "/bin/true", "--batch"],
        vec![
            "--core",
            core.to_str().unwrap(),
            "--batch",
            "--",
            "/bin/true",
        ],
    ] {
        let out = vmscope(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = vmscope(&[
        "--core",
        core.to_str().unwrap(),
        "--exe",
        "/nonexistent/exe",
        "--batch",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/exe"));
}
