//! `snapshot`, `diff` and `vmscope --snapshot` against the truth: a saved snapshot reads back as
//! the very `regions` and `layout` it was taken with; the churn fixture maps, unmaps, grows,
//! protects, splits and dirties memory on command, and `diff` must report exactly that; bad
//! files and arguments give clear errors; a target that exits midway is reported.

mod common;
use common::*;
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The churn fixture and the two FIFOs it obeys: one letter per command, one byte back when done.
struct Churn {
    f: Fixture,
    cmd: File,
    ack: File,
}

impl Churn {
    fn start() -> Churn {
        let f = Fixture::start("churn");
        let cmd = OpenOptions::new()
            .write(true)
            .open(f.facts["cmd"].as_str().unwrap())
            .unwrap();
        let ack = File::open(f.facts["ack"].as_str().unwrap()).unwrap();
        Churn { f, cmd, ack }
    }

    /// Sends each letter and waits for the fixture to have done it.
    fn send(&mut self, letters: &str) {
        for c in letters.bytes() {
            self.cmd.write_all(&[c]).unwrap();
            let mut done = [0u8];
            self.ack
                .read_exact(&mut done)
                .expect("the fixture answers each command");
            assert_eq!(done[0], c);
        }
    }

    fn pid(&self) -> i32 {
        self.f.pid()
    }

    fn addr(&self, key: &str) -> u64 {
        self.f.addr(key)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.f.scratch.0.join(name)
    }
}

/// The tests of this file run one at a time: each spawns processes that map libc, which moves
/// the PSS and the shared/private split of every other process's library pages, and the
/// round-trip test compares two reads of a live process byte for byte.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The lines of /proc/PID/maps: (start, end, perms).
fn maps(pid: i32) -> Vec<(u64, u64, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut it = l.split_whitespace();
            let (s, e) = it.next().unwrap().split_once('-').unwrap();
            (
                u64::from_str_radix(s, 16).unwrap(),
                u64::from_str_radix(e, 16).unwrap(),
                it.next().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_saved_snapshot_reads_back_as_the_same_regions_and_layout() {
    let _serial = serial();
    let c = Churn::start();
    let file = c.file("s0.json");
    let pid = c.pid().to_string();
    // The fixture sits blocked on its FIFO: its own memory does not change while we look. Other
    // processes may still start or exit between the live `regions` and the snapshot (the PSS and
    // the private/shared split of library pages follow them), so try a few times.
    let mut last = (String::new(), String::new());
    let same = (0..5).any(|_| {
        let live = vmscope(&[
            "-p",
            &pid,
            "--batch",
            "-ex",
            "regions --wide --gaps",
            "-ex",
            "layout",
            "-ex",
            &format!("snapshot save {}", path_str(&file)),
        ]);
        assert!(live.status.success(), "{}", stderr(&live));
        let offline = vmscope(&[
            "--snapshot",
            path_str(&file),
            "--batch",
            "-ex",
            "regions --wide --gaps",
            "-ex",
            "layout",
        ]);
        assert!(offline.status.success(), "{}", stderr(&offline));
        let live_text = stdout(&live);
        let saved_message = live_text.find("saved the memory map").unwrap();
        last = (stdout(&offline), live_text[..saved_message].to_string());
        last.0 == last.1
    });
    assert!(same, "offline:\n{}\nlive:\n{}", last.0, last.1);

    // What was saved is what `regions --json` shows when it is opened again: every row (less
    // its backing), the summary, the totals and the largest free block.
    let out = vmscope(&[
        "--snapshot",
        path_str(&file),
        "--batch",
        "--json",
        "-ex",
        "regions",
        "-ex",
        "info",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let docs: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let mut rows = saved["regions"].clone();
    for r in rows.as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("backing");
    }
    assert_eq!(docs[0]["regions"], rows);
    for key in ["summary", "totals", "largest_free"] {
        assert_eq!(docs[0][key], saved[key], "{key}");
    }
    assert_eq!(docs[1]["kind"], "snapshot");
    assert_eq!(docs[1]["pid"], c.pid());
    assert_eq!(docs[1]["vm_rss"], saved["facts"]["vm_rss"]);

    // The file against /proc: one region per maps line, same ranges and permissions.
    assert_eq!(saved["format"], "vmscope snapshot");
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["pid"], c.pid());
    assert!(saved["exe"].as_str().unwrap().ends_with("fixture-churn"));
    assert!(saved["taken_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(saved["threads"][0]["tid"], c.pid());
    assert!(saved["facts"]["vm_rss"].as_u64().unwrap() > 0);
    let rows: Vec<(u64, u64, String)> = saved["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                hex(&r["start"]),
                hex(&r["end"]),
                r["perms"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(rows, maps(c.pid()));
    let heap = saved["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["backing"]["type"] == "heap")
        .unwrap();
    assert_eq!(heap["kind"], "heap");
}

/// `diff --json` from `vmscope -p PID --batch`.
fn diff_json(pid: i32, args: &str) -> Value {
    let (docs, out) = json_batch(pid, &[&format!("diff {args}")]);
    assert!(out.status.success(), "{}", stderr(&out));
    docs.into_iter().next().unwrap()
}

/// (start, changes) of every change, leaving out the regions that only changed how shared their
/// pages are: other processes on the machine map the same library pages and come and go.
fn changes_of(doc: &Value) -> Vec<(u64, Vec<String>)> {
    doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["changes"] != serde_json::json!(["sharing"]))
        .map(|c| {
            let side = if c["new"].is_null() {
                &c["old"]
            } else {
                &c["new"]
            };
            let names = c["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect();
            (hex(&side["start"]), names)
        })
        .collect()
}

fn change_at(doc: &Value, start: u64) -> &Value {
    doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            let side = if c["new"].is_null() {
                &c["old"]
            } else {
                &c["new"]
            };
            hex(&side["start"]) == start
        })
        .unwrap_or_else(|| panic!("no change at {start:#x}: {doc}"))
}

fn kind_delta(doc: &Value, kind: &str) -> Value {
    doc["by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {doc}"))["delta"]
        .clone()
}

#[test]
fn diff_reports_exactly_what_the_fixture_did() {
    let _serial = serial();
    let mut c = Churn::start();
    let before = c.file("before.json");
    let after = c.file("after.json");
    let (_, out) = json_batch(c.pid(), &[&format!("snapshot save {}", path_str(&before))]);
    assert!(out.status.success(), "{}", stderr(&out));
    let heap_before = maps(c.pid())
        .into_iter()
        .find(|(s, e, _)| *s < c.addr("heap_end") && c.addr("heap_end") <= *e)
        .unwrap();
    c.send("mdugpsfb");
    let doc = diff_json(c.pid(), path_str(&before));
    let (_, out) = json_batch(c.pid(), &[&format!("snapshot save {}", path_str(&after))]);
    assert!(out.status.success());

    let page = c.f.facts["page"].as_u64().unwrap();
    let (new, dirty, unmap, grow, prot, split, file) = (
        c.addr("new"),
        c.addr("dirty"),
        c.addr("unmap"),
        c.addr("grow"),
        c.addr("prot"),
        c.addr("split"),
        c.addr("file"),
    );
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut want = vec![
        (new, s(&["added"])),
        (dirty, s(&["usage"])),
        (unmap, s(&["removed"])),
        (grow, s(&["grown"])),
        (prot, s(&["perms"])),
        (split, s(&["shrunk"])),
        (split + page, s(&["added"])),
        (split + 2 * page, s(&["added"])),
        (file, s(&["added"])),
        (heap_before.0, s(&["grown", "usage"])),
    ];
    want.sort();
    assert_eq!(changes_of(&doc), want, "{doc:#}");

    let kib = |n: i64| n * 1024;
    let d = &change_at(&doc, new)["delta"];
    assert_eq!(
        (d["size"].as_i64(), d["rss"].as_i64()),
        (Some(kib(1024)), Some(0))
    );
    let d = &change_at(&doc, dirty)["delta"];
    assert_eq!(d["rss"].as_i64(), Some(kib(512)));
    assert_eq!(d["dirty"].as_i64(), Some(kib(512)));
    assert_eq!(d["private"].as_i64(), Some(kib(512)));
    assert_eq!(d["size"].as_i64(), Some(0));
    let d = &change_at(&doc, unmap)["delta"];
    assert_eq!(
        (d["size"].as_i64(), d["rss"].as_i64()),
        (Some(-kib(256)), Some(-kib(256)))
    );
    let g = change_at(&doc, grow);
    assert_eq!(g["delta"]["size"].as_i64(), Some(kib(256)));
    assert_eq!(hex(&g["old"]["end"]), grow + 256 * 1024);
    assert_eq!(hex(&g["new"]["end"]), grow + 512 * 1024);
    let p = change_at(&doc, prot);
    assert_eq!(
        (p["old"]["perms"].as_str(), p["new"]["perms"].as_str()),
        (Some("rw-p"), Some("r--p"))
    );
    assert_eq!(hex(&change_at(&doc, split + page)["split_from"]), split);
    assert_eq!(change_at(&doc, split + page)["new"]["perms"], "r--p");
    let f = change_at(&doc, file);
    assert_eq!(f["new"]["kind"], "file");
    assert_eq!(f["new"]["path"], c.f.facts["mapped_path"]);
    let h = change_at(&doc, heap_before.0);
    assert_eq!(h["delta"]["size"].as_i64(), Some(kib(256)));
    assert_eq!(h["delta"]["dirty"].as_i64(), Some(kib(256)));
    assert_eq!(h["new"]["kind"], "heap");

    // By kind: private gained 1 MiB mapped (new) and lost and gained 256 KiB (unmapped, grown);
    // the split made two more blocks, the new map one, the unmap one fewer.
    let p = kind_delta(&doc, "private");
    assert_eq!(p["size"].as_i64(), Some(kib(1024)));
    assert_eq!(p["rss"].as_i64(), Some(kib(512) - kib(256)));
    assert_eq!(p["dirty"].as_i64(), Some(kib(512) - kib(256)));
    assert_eq!(p["blocks"].as_i64(), Some(2));
    assert_eq!(kind_delta(&doc, "heap")["size"].as_i64(), Some(kib(256)));
    assert_eq!(kind_delta(&doc, "file")["blocks"].as_i64(), Some(1));
    for kind in ["image", "stack", "system"] {
        let k = kind_delta(&doc, kind);
        assert_eq!(
            (k["size"].as_i64(), k["rss"].as_i64(), k["dirty"].as_i64()),
            (Some(0), Some(0), Some(0)),
            "{kind}"
        );
    }
    // Dirtying 512 KiB and 256 KiB of heap took one minor fault per page at least.
    let minflt = &doc["process"]["minflt"];
    assert!(minflt[1].as_u64().unwrap() - minflt[0].as_u64().unwrap() >= (768 * 1024) / page);
    assert_eq!(doc["counts"]["added"], 4);
    assert_eq!(doc["counts"]["removed"], 1);

    // Two files give the same answer, with no target at all.
    let out = vmscope(&[
        "--batch",
        "--json",
        "-ex",
        &format!("diff {} {}", path_str(&before), path_str(&after)),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let files: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(changes_of(&files), want);
    assert_eq!(
        files["from"]["origin"],
        format!("snapshot {}", path_str(&before))
    );

    // The text names each change and where a split came from.
    let out = vmscope(&[
        "--batch",
        "-ex",
        &format!("diff {} {}", path_str(&before), path_str(&after)),
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("4 added, 1 removed, 2 grown, 1 shrunk"),
        "{text}"
    );
    assert!(text.contains(&format!("(split from {split:#x})")), "{text}");
    assert!(text.contains("(was rw-p)"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("+ added") && l.contains(&format!("{new:x}")))
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("- removed") && l.contains(&format!("{unmap:x}")))
    );
    let summary = vmscope(&[
        "--batch",
        "-ex",
        &format!("diff {} {} --summary", path_str(&before), path_str(&after)),
    ]);
    assert!(!stdout(&summary).contains("+ added"));
    assert!(stdout(&summary).contains("private"));
}

/// Reads one line of vmscope's JSON output.
fn next_doc(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> Value {
    let line = lines.next().expect("a document").unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn a_bare_diff_compares_with_the_last_regions_or_snapshot() {
    let _serial = serial();
    let mut c = Churn::start();
    let pid = c.pid().to_string();
    let mut s = Piped::start(&["-p", &pid, "--json"]);
    let mut lines = BufReader::new(s.child.stdout.take().unwrap()).lines();
    s.send("diff");
    let err = next_doc(&mut lines);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("run `regions` or `snapshot` first")
    );
    s.send("regions --summary");
    next_doc(&mut lines);
    c.send("m");
    s.send("diff");
    let doc = next_doc(&mut lines);
    assert_eq!(
        changes_of(&doc),
        vec![(c.addr("new"), vec!["added".to_string()])]
    );
    assert_eq!(doc["from"]["origin"], "the map `regions` showed");
    // `snapshot` moves the baseline; `diff` does not.
    s.send("snapshot");
    next_doc(&mut lines);
    c.send("d");
    for _ in 0..2 {
        s.send("diff");
        let doc = next_doc(&mut lines);
        assert_eq!(
            changes_of(&doc),
            vec![(c.addr("dirty"), vec!["usage".to_string()])]
        );
        assert_eq!(doc["from"]["origin"], "the snapshot taken");
    }
    let out = s.finish();
    // The first `diff` failed; everything else succeeded.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn a_snapshot_target_says_what_needs_a_live_process() {
    let _serial = serial();
    let c = Churn::start();
    let file = c.file("s.json");
    let (_, out) = json_batch(c.pid(), &[&format!("snapshot save {}", path_str(&file))]);
    assert!(out.status.success());
    let snap = path_str(&file);
    for cmd in ["x/4gx $new", "stop", "registers", "translate [heap]"] {
        let out = vmscope(&[
            "--snapshot",
            snap,
            "--batch",
            "-ex",
            &format!("set $new = {:#x}", c.addr("new")),
            "-ex",
            cmd,
        ]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = stderr(&out);
        assert!(
            err.contains("is not supported on snapshot") && err.contains(snap),
            "{cmd}: {err}"
        );
        assert!(!err.contains("panicked"), "{cmd}: {err}");
    }
    let (docs, out) = {
        let out = vmscope(&[
            "--snapshot",
            snap,
            "--batch",
            "--json",
            "-ex",
            "threads",
            "-ex",
            "layout",
            "-ex",
            "print [heap]",
        ]);
        let docs: Vec<Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (docs, out)
    };
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(docs[0]["threads"][0]["tid"], c.pid());
    assert!(!docs[1]["bands"].as_array().unwrap().is_empty());
    let heap = maps(c.pid())
        .into_iter()
        .find(|m| m.0 < c.addr("heap_end") && c.addr("heap_end") <= m.1)
        .unwrap();
    assert_eq!(docs[2]["value"].as_u64(), Some(heap.0));
}

#[test]
fn bad_files_and_arguments_are_clear_errors() {
    let _serial = serial();
    let c = Churn::start();
    let pid = c.pid().to_string();
    let good = c.file("good.json");
    let (_, out) = json_batch(c.pid(), &[&format!("snapshot save {}", path_str(&good))]);
    assert!(out.status.success());
    let text = std::fs::read(&good).unwrap();
    let truncated = c.file("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let newer = c.file("newer.json");
    std::fs::write(
        &newer,
        String::from_utf8_lossy(&text).replacen("\"version\":1", "\"version\":9", 1),
    )
    .unwrap();
    let other = c.file("other.json");
    std::fs::write(&other, "{\"hello\": 1}").unwrap();
    let garbage = c.file("garbage.bin");
    std::fs::write(&garbage, b"\x7fELF\x00\x01binary").unwrap();
    let bad_region = c.file("bad-region.json");
    std::fs::write(
        &bad_region,
        String::from_utf8_lossy(&text).replacen("\"perms\":\"", "\"perms\":\"q", 1),
    )
    .unwrap();
    let missing_dir = c.file("no/such/dir/x.json");
    let p = path_str;
    for (cmd, want) in [
        (
            "snapshot save".to_string(),
            "snapshot save needs a file name",
        ),
        ("snapshot load x".to_string(), "unknown `load`"),
        ("snapshot save a b".to_string(), "unexpected `b`"),
        (
            format!("snapshot save {}", p(&missing_dir)),
            "no/such/dir/x.json",
        ),
        (
            "diff /no/such/file.json".to_string(),
            "/no/such/file.json: cannot read the snapshot",
        ),
        (format!("diff {}", p(&truncated)), "truncated snapshot"),
        (
            format!("diff {}", p(&newer)),
            "snapshot format version 9 is newer",
        ),
        (format!("diff {}", p(&other)), "not a vmscope snapshot"),
        (
            format!("diff {}", p(&garbage)),
            "not a vmscope snapshot: not JSON",
        ),
        (format!("diff {}", p(&bad_region)), "bad permissions"),
        ("diff a b c".to_string(), "at most two snapshot files"),
        ("diff --frob".to_string(), "unknown flag `--frob`"),
        ("diff".to_string(), "nothing to compare with yet"),
    ] {
        let out = vmscope(&["-p", &pid, "--batch", "-ex", &cmd]);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{cmd}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
    // A failed save leaves nothing behind, not even its temporary file.
    assert!(!c.file("no").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&c.f.scratch.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // On the command line.
    let out = vmscope(&["--snapshot", p(&newer), "--batch", "-ex", "regions"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("newer than this vmscope reads"),
        "{}",
        stderr(&out)
    );
    let out = vmscope(&["--snapshot", p(&good), "-p", &pid, "--batch"]);
    assert_eq!(out.status.code(), Some(2), "--snapshot and -p conflict");
}

#[test]
fn a_target_that_exits_midway_is_reported() {
    let _serial = serial();
    let mut c = Churn::start();
    let pid = c.pid();
    let before = c.file("before.json");
    let later = c.file("later.json");
    let mut s = Piped::start(&["-p", &pid.to_string()]);
    let mut lines = BufReader::new(s.child.stdout.take().unwrap()).lines();
    s.send(&format!("snapshot save {}", path_str(&before)));
    s.send("regions --summary");
    // Both answers are in before the fixture goes.
    while !lines
        .next()
        .expect("regions answers")
        .unwrap()
        .starts_with("largest free block")
    {}
    c.send_exit();
    for cmd in [
        format!("snapshot save {}", path_str(&later)),
        format!("diff {}", path_str(&before)),
        "diff".to_string(),
        "layout".to_string(),
        "snapshot".to_string(),
    ] {
        s.send(&cmd);
    }
    let out = s.finish();
    let err = stderr(&out);
    assert_eq!(
        err.matches(&format!("process {pid} exited")).count(),
        5,
        "{err}"
    );
    assert!(!later.exists(), "no snapshot of a dead process");
    assert_eq!(out.status.code(), Some(1));
    // The saved snapshot still opens and diffs against another file.
    let out = vmscope(&[
        "--batch",
        "-ex",
        &format!("diff {0} {0}", path_str(&before)),
    ]);
    assert!(stdout(&out).contains("no changes"), "{}", stdout(&out));
}

impl Churn {
    /// Tells the fixture to exit and reaps it.
    fn send_exit(&mut self) {
        self.cmd.write_all(b"x").unwrap();
        let _ = self.f.child.wait();
    }
}
