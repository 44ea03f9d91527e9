//! `regions` against the truth: a fixture's own addresses classified right, totals equal to
//! /proc/PID/smaps_rollup, one row per line of /proc/PID/maps; selection, filters and bad input.

mod common;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};

fn regions_json(pid: i32, args: &str) -> Value {
    let (docs, out) = json_batch(pid, &[&format!("regions {args}")]);
    assert!(out.status.success(), "{}", stderr(&out));
    docs.into_iter().next().unwrap()
}

/// The row holding `addr`.
fn row_at(doc: &Value, addr: u64) -> &Value {
    doc["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| hex(&r["start"]) <= addr && addr < hex(&r["end"]))
        .unwrap_or_else(|| panic!("no row holds {addr:#x}"))
}

#[test]
fn every_fact_is_classified_right() {
    let f = Fixture::start("facts");
    f.wait_paused();
    let doc = regions_json(f.pid(), "");
    let check = |key: &str, addr: u64, kind: &str, detail: &str| {
        let row = row_at(&doc, addr);
        assert_eq!(row["kind"], kind, "{key}: {row}");
        assert!(
            row["detail"].as_str().unwrap().contains(detail),
            "{key}: {row}"
        );
    };
    check("heap", f.addr("heap"), "heap", "[heap]");
    // glibc serves a 4 MiB malloc with its own mmap: private anonymous memory, not the heap.
    check("big_malloc", f.addr("big_malloc"), "private", "");
    check(
        "global_values",
        f.addr("global_values"),
        "image",
        "fixture-facts .data",
    );
    // The end of a 256 KiB bss lies past the file's data page, in the anonymous bss mapping.
    check(
        "bss_buf",
        f.addr("bss_buf") + 200 * 1024,
        "image",
        "fixture-facts .bss",
    );
    check(
        "literal",
        f.addr("literal"),
        "image",
        "fixture-facts .rodata",
    );
    check("answer", f.addr("answer"), "image", "fixture-facts .text");
    check(
        "spaced_map",
        f.addr("spaced_map"),
        "file",
        "map me\nplease x.txt",
    );
    check(
        "memfd_map",
        f.addr("memfd_map"),
        "shared",
        "memfd:fixture memfd",
    );
    check("sysv_map", f.addr("sysv_map"), "shared", "SYSV00000000");
    check("prot_none", f.addr("prot_none"), "guard", "");
    let main = row_at(&doc, f.addr("stack_local"));
    assert_eq!(main["kind"], "stack");
    assert_eq!(main["tid"], f.pid());
    let tids = f.facts["tids"].as_array().unwrap();
    for (i, stack) in f.facts["worker_stacks"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let row = row_at(&doc, hex(stack));
        assert_eq!(row["kind"], "stack", "{row}");
        assert_eq!(row["tid"], tids[i + 1], "{row}");
        assert_eq!(row["detail"], format!("thread {} stack", tids[i + 1]));
    }
    assert!(
        row_at(&doc, f.addr("answer"))["path"]
            .as_str()
            .unwrap()
            .ends_with("fixture-facts")
    );
    assert!(row_at(&doc, f.addr("heap"))["path"].is_null());
}

#[test]
fn totals_equal_smaps_rollup_and_rows_equal_maps_lines() {
    let f = Fixture::start("facts");
    f.wait_paused();
    // Pss divides each page by the number of page tables mapping it, and vmscope itself maps
    // libc and ld.so: while it reads smaps, the fixture's share of those pages is smaller than
    // with vmscope gone. So the kernel's rollup is read while the same vmscope session is alive
    // (after one warm-up read has faulted in what `regions` runs on). Other processes (the
    // parallel tests' fixtures) starting or exiting move Pss and the shared/private split too,
    // and one can start and exit inside a single read: retry until a read matches. A wrong total
    // fails every attempt; the last attempt's differences are shown.
    let mut s = Piped::start(&["-p", &f.pid().to_string(), "--json"]);
    let mut lines = BufReader::new(s.child.stdout.take().unwrap()).lines();
    let mut regions_now = || -> serde_json::Value {
        s.send("regions");
        serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap()
    };
    regions_now();
    let read_rollup =
        || std::fs::read_to_string(format!("/proc/{}/smaps_rollup", f.pid())).unwrap();
    let field = |rollup: &str, key: &str| -> u64 {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map(|v| v.split_whitespace().next().unwrap().parse::<u64>().unwrap() * 1024)
            .unwrap_or_else(|| panic!("no {key} in smaps_rollup"))
    };
    let differences = |doc: &serde_json::Value, rollup: &str| -> Vec<String> {
        let t = &doc["totals"];
        let mut out: Vec<String> = [
            ("rss", "Rss"),
            ("shared_clean", "Shared_Clean"),
            ("shared_dirty", "Shared_Dirty"),
            ("private_clean", "Private_Clean"),
            ("private_dirty", "Private_Dirty"),
            ("anonymous", "Anonymous"),
            ("swap", "Swap"),
            ("locked", "Locked"),
        ]
        .into_iter()
        .filter(|(json, key)| t[*json].as_u64().unwrap() != field(rollup, key))
        .map(|(json, key)| format!("{json} {} != {key} {}", t[json], field(rollup, key)))
        .collect();
        // Pss: rollup sums unrounded per-page shares; smaps rounds each region down to a kB.
        let (pss, rolled) = (t["pss"].as_u64().unwrap(), field(rollup, "Pss"));
        let regions = doc["regions"].as_array().unwrap().len() as u64;
        if pss > rolled || rolled - pss > regions * 1024 {
            out.push(format!("pss {pss} vs Pss {rolled} over {regions} regions"));
        }
        out
    };
    let mut last = Vec::new();
    let doc = (0..20)
        .find_map(|_| {
            let before = read_rollup();
            let doc = regions_now();
            if read_rollup() != before {
                last = vec!["smaps_rollup moved during the read".to_string()];
                return None;
            }
            last = differences(&doc, &before);
            last.is_empty().then_some(doc)
        })
        .unwrap_or_else(|| panic!("totals never matched smaps_rollup: {last:?}"));
    s.finish();
    let t = &doc["totals"];
    let regions = doc["regions"].as_array().unwrap().len() as u64;
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", f.pid())).unwrap();
    assert_eq!(regions as usize, maps.lines().count());
    let sum: u64 = doc["summary"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] != "free")
        .map(|s| s["rss"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, t["rss"].as_u64().unwrap());
    let free = doc["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "free")
        .unwrap();
    assert_eq!(free["largest"], doc["largest_free"]["size"]);
}

#[test]
fn selection_by_address_kind_perm_and_pattern() {
    let f = Fixture::start("facts");
    f.wait_paused();
    let heap = f.addr("heap");
    let doc = regions_json(f.pid(), &format!("{heap:#x} -A 1 -B 1"));
    let rows = doc["regions"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{doc}");
    assert_eq!(rows[1]["kind"], "heap");
    let doc = regions_json(f.pid(), "--kind stack");
    let rows = doc["regions"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["kind"] == "stack"));
    let doc = regions_json(f.pid(), "--perm x");
    assert!(
        doc["regions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["perms"].as_str().unwrap().contains('x'))
    );
    let doc = regions_json(f.pid(), "libc --kind image");
    let rows = doc["regions"].as_array().unwrap();
    assert!(
        !rows.is_empty()
            && rows
                .iter()
                .all(|r| r["detail"].as_str().unwrap().starts_with("libc"))
    );
    let doc = regions_json(f.pid(), "--sort size --top 2");
    let rows = doc["regions"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0]["size"].as_u64() >= rows[1]["size"].as_u64());
    let doc = regions_json(f.pid(), "--gaps --kind free");
    assert!(
        doc["regions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["kind"] == "free")
    );
    let doc = regions_json(f.pid(), "--summary");
    assert!(doc["regions"].as_array().unwrap().is_empty());
    assert!(!doc["summary"].as_array().unwrap().is_empty());
}

#[test]
fn text_table_escapes_names_and_marks_the_selection() {
    let f = Fixture::start("facts");
    let out = text_batch(
        f.pid(),
        &["regions", &format!("vmmap {:#x}", f.addr("heap"))],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("evil\\e[31mred.txt"), "{text}");
    assert!(text.contains("map me\\nplease x.txt"));
    assert!(!text.contains('\x1b'));
    assert!(text.contains("largest free block: 0x"));
    assert!(
        text.lines()
            .any(|l| l.contains("[heap]") && l.ends_with("<--")),
        "{text}"
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let f = Fixture::start("facts");
    let pid = f.pid().to_string();
    for (args, want) in [
        ("regions --kind nonsense", "no kind `nonsense`"),
        ("regions --perm q", "`q` is not a permission"),
        ("regions --sort color", "cannot sort by `color`"),
        ("regions --top", "--top needs a value"),
        ("regions --frob", "unknown flag `--frob`"),
        ("regions -A x 0x10", "`x` is not a number"),
        (
            "regions 0xffffffffffffffff",
            "outside the user address space",
        ),
    ] {
        let out = vmscope(&["-p", &pid, "--batch", "-ex", args]);
        assert_eq!(out.status.code(), Some(1), "{args}");
        assert!(stderr(&out).contains(want), "{args}: {}", stderr(&out));
    }
}

#[test]
fn a_target_that_exits_gives_process_exited() {
    let mut f = Fixture::start("facts");
    let pid = f.pid();
    f.kill();
    let out = vmscope_stdin(&["--batch", "-ex", &format!("attach {pid}")], "");
    assert!(
        stderr(&out).contains(&format!("no process with pid {pid}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_real_program_nobody_here_wrote() {
    // python3 with threads: its stacks must be found and its totals must match the kernel's.
    let mut py = std::process::Command::new("python3")
        .args(["-c", "import threading,time,sys\nev=threading.Event()\nts=[threading.Thread(target=ev.wait) for _ in range(3)]\n[t.start() for t in ts]\nprint('ready',flush=True)\ntime.sleep(600)"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(py.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let pid = py.id() as i32;
    // Right after `ready` the threads may still pass the interpreter lock around: a running
    // thread shows no stack pointer, so its stack could not be found.
    assert!(
        wait_until(10, || threads_blocked(pid)),
        "python never settled"
    );
    let doc = regions_json(pid, "");
    let _ = py.kill();
    let _ = py.wait();
    let stacks = doc["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "stack")
        .count();
    assert_eq!(stacks, 4, "main + 3 threads");
    assert!(
        doc["regions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["detail"].as_str().unwrap().contains(".text"))
    );
}
